"""The hand mutation audit's list stays true to the code (``make audit`` is not run here),
and the audit puts a mutated file back whatever stops it."""

import os

import pytest

from tests import hand_audit
from tests.hand_audit import MUTANTS, ROOT, Mutant


@pytest.mark.parametrize("mutant", MUTANTS, ids=lambda m: m.name)
def test_each_mutant_changes_exactly_one_place_and_names_tests_that_exist(mutant):
    text = (ROOT / mutant.path).read_text()
    assert text.count(mutant.original) == 1, "the line changed: update tests/hand_audit.py"
    assert mutant.apply(text) != text
    paths = [a.split("::")[0] for a in mutant.tests if a.startswith("tests/")]
    assert paths and all((ROOT / p).is_file() for p in paths), mutant.tests
    assert mutant.tests.count("-k") <= 1, "pytest keeps only the last -k"


def test_the_list_is_at_least_25_mutants_with_distinct_names():
    assert len(MUTANTS) >= 25
    assert len({m.name for m in MUTANTS}) == len(MUTANTS)


@pytest.mark.parametrize("stop", [KeyboardInterrupt(), SystemExit(143), RuntimeError("boom")])
def test_the_file_is_put_back_byte_for_byte_with_its_mtime(tmp_path, monkeypatch, stop):
    target = tmp_path / "module.py"
    target.write_bytes(b"def f(x):\n    return x >= 1\n")
    os.utime(target, ns=(1_000_000_000, 1_000_000_000))
    seen = []

    def pytest_stopped(args):
        seen.append(target.read_text())
        raise stop

    monkeypatch.setattr(hand_audit, "ROOT", tmp_path)
    monkeypatch.setattr(hand_audit, "_pytest", pytest_stopped)
    mutant = Mutant("m", "module.py", "x >= 1", "x > 1", ("tests/x.py",), "nothing")
    with pytest.raises(type(stop)):
        hand_audit._run(mutant)

    assert seen == ["def f(x):\n    return x > 1\n"]  # the tests ran on the mutant
    assert target.read_bytes() == b"def f(x):\n    return x >= 1\n"
    assert target.stat().st_mtime_ns == 1_000_000_000


@pytest.mark.parametrize(
    ("code", "caught", "how"),
    [(0, False, "tests passed"), (1, True, "tests failed"), (2, True, "not collected"),
     (None, True, "timed out")],
)  # fmt: skip
def test_what_pytest_answers_is_caught_or_survived(tmp_path, monkeypatch, code, caught, how):
    (tmp_path / "module.py").write_text("x = 1\n")
    monkeypatch.setattr(hand_audit, "ROOT", tmp_path)
    monkeypatch.setattr(hand_audit, "_pytest", lambda args: (code, ""))
    outcome = hand_audit._run(Mutant("m", "module.py", "1", "2", ("t",), "x"))
    assert (outcome.caught, outcome.how) == (caught, how)


def test_no_tests_selected_stops_the_audit(tmp_path, monkeypatch):
    (tmp_path / "module.py").write_text("x = 1\n")
    monkeypatch.setattr(hand_audit, "ROOT", tmp_path)
    monkeypatch.setattr(hand_audit, "_pytest", lambda args: (5, "no tests ran"))
    with pytest.raises(SystemExit, match="exited 5"):
        hand_audit._run(Mutant("m", "module.py", "1", "2", ("-k", "nothing"), "x"))
    assert (tmp_path / "module.py").read_text() == "x = 1\n"


def test_it_refuses_a_tree_with_changes_to_a_file_it_mutates(monkeypatch):
    monkeypatch.setattr(hand_audit, "_dirty", lambda paths: [" M " + paths[0]])
    with pytest.raises(SystemExit, match="uncommitted changes"):
        hand_audit.main(["--only", MUTANTS[0].name, "--no-baseline"])
