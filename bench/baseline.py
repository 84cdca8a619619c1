"""``--baseline REV``: the bench of an earlier commit, run in a temporary ``git worktree`` with
the same interpreter and options (those it knows), and new / old ratios per metric."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from bench.report import say

PROJECT_DIR = Path(__file__).resolve().parents[1]


def _skip_choices(help_text: str) -> list[str]:
    match = re.search(r"--skip \{([^}]*)\}", help_text)
    return match.group(1).split(",") if match else []


def forwardable(options: list[tuple[str, str | None]], help_text: str) -> list[str]:
    """The (flag, value) options an older ``python -m bench --help`` lists, as arguments;
    ``--only`` becomes ``--skip`` of its other phases when it has no ``--only``."""
    phases = _skip_choices(help_text)
    out: list[str] = []
    only = [v for f, v in options if f == "--only"]
    for flag, value in options:
        if flag in ("--skip", "--only") and value not in phases:
            continue  # a scenario that commit does not have
        if flag == "--only" and "--only" not in help_text:
            continue
        if re.search(rf"(^|[\s\[]){re.escape(flag)}\b", help_text):
            out += [flag] if value is None else [flag, value]
    if only and "--only" not in help_text:
        out += [a for p in phases if p not in only for a in ("--skip", p)]
    return out


def run(rev: str, options: list[tuple[str, str | None]], timeout_s: float) -> dict:
    """The older bench's JSON results ({} when it wrote none)."""
    folder = Path(tempfile.mkdtemp(prefix="bench-baseline-"))
    tree = folder / "tree"
    subprocess.run(
        ["git", "worktree", "add", "--detach", "--quiet", str(tree), rev],
        cwd=PROJECT_DIR,
        check=True,
    )
    try:
        bench = [sys.executable, "-m", "bench"]
        help_text = subprocess.run(
            [*bench, "--help"], cwd=tree, capture_output=True, text=True, timeout=60
        ).stdout
        args = forwardable(options, help_text)
        latest = tree / "bench" / "results" / "latest.json"
        if re.search(r"\s--out\b", help_text):
            args += ["--out", str(folder / "results")]
            latest = folder / "results" / "latest.json"
        say(f"baseline {rev}: python -m bench {' '.join(args)} (in {tree})")
        subprocess.run([*bench, *args], cwd=tree, stdout=sys.stderr, timeout=timeout_s, check=False)
        return json.loads(latest.read_text()) if latest.exists() else {}
    finally:
        subprocess.run(
            ["git", "worktree", "remove", "--force", str(tree)], cwd=PROJECT_DIR, check=False
        )
        shutil.rmtree(folder, ignore_errors=True)


def ratios(new_summary: list[dict], old_summary: list[dict]) -> list[dict]:
    """Per metric of the new run: its value, the old one (when the old bench measured it) and
    new / old."""
    old = {row["metric"]: row["median"] for row in old_summary}
    out = []
    for row in new_summary:
        before, now = old.get(row["metric"]), row["median"]
        numbers = isinstance(now, int | float) and isinstance(before, int | float)
        ratio = round(now / before, 2) if numbers and before else None
        out.append({"metric": row["metric"], "new": now, "old": before, "new_over_old": ratio})
    return out
