"""The layout holds: no import cycle anywhere (imports inside functions included), the local
runtime never imports the test harness, and no library module is also a script."""

import ast
import graphlib
from pathlib import Path

import grimp
import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("chalicelib", "localaws", "harness")


@pytest.fixture(scope="module")
def graph():
    return grimp.build_graph(*PACKAGES, cache_dir=None)


def test_no_module_imports_itself_back(graph):
    """A module graph with a cycle cannot be sorted; grimp counts every import statement,
    those inside functions too, so none can hide one."""
    edges = {m: graph.find_modules_directly_imported_by(m) for m in graph.modules}
    try:
        list(graphlib.TopologicalSorter(edges).static_order())
    except graphlib.CycleError as e:
        pytest.fail(f"import cycle: {' -> '.join(e.args[1])}")


def test_the_local_runtime_does_not_import_the_test_harness(graph):
    assert not graph.chain_exists(importer="localaws", imported="harness", as_packages=True)


def test_the_engine_imports_neither_the_runtime_nor_the_harness(graph):
    for other in ("localaws", "harness"):
        assert not graph.chain_exists(importer="chalicelib", imported=other, as_packages=True)


def _is_main_guard(node: ast.stmt) -> bool:
    return (
        isinstance(node, ast.If)
        and isinstance(node.test, ast.Compare)
        and isinstance(node.test.left, ast.Name)
        and node.test.left.id == "__name__"
    )


def test_only_the_command_line_is_a_script():
    """``python -m chalicelib`` is the one command line of the engine."""
    scripts = [
        str(path.relative_to(ROOT))
        for path in (ROOT / "chalicelib").rglob("*.py")
        if path.name != "__main__.py"
        and any(_is_main_guard(node) for node in ast.parse(path.read_text()).body)
    ]
    assert scripts == []
