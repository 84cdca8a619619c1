"""The bench's own bookkeeping: invocation durations from the runtime's log, the options a
baseline commit is given, new / old ratios, and resident memory from /proc."""

import os
import subprocess
import sys

import pytest

from bench import baseline, invocations
from bench.__main__ import forwarded_options
from bench.rss import rss_by_process, rss_kib, tree_rss_kib

OLD_HELP = """usage: python -m bench [-h] [--runs RUNS] [--orders ORDERS] [--quick]
                       [--skip {zero,single,drain,default,statements,router}] [--out OUT]
"""


def test_invocation_seconds_per_order_by_function():
    log = (
        "15:49:56 INFO  localaws.report: REPORT process_orders Duration: 800.0 ms\n"
        "15:49:56 INFO  localaws: POST /api/orders/execute 202 12ms\n"
        "15:49:57 INFO  localaws.report: REPORT rest:POST Duration: 100.0 ms\n"
        "15:49:57 INFO  localaws.report: REPORT rest:POST Duration: 300.6 ms\n"
    )
    cost = invocations.per_order(log, orders=2)
    assert cost["invocation_s_per_order"] == pytest.approx(0.6003, abs=1e-4)
    assert cost["invocations_per_order"] == 1.5
    assert cost["by_function"]["rest:POST"] == {"invocations": 2, "s_per_order": 0.2003}
    assert invocations.per_order("no invocations", 5)["invocation_s_per_order"] is None


def test_baseline_gets_only_the_options_its_bench_knows():
    options = forwarded_options(["--quick", "--runs=2", "--posts", "50", "--baseline", "abc"])
    assert options == [("--quick", None), ("--runs", "2"), ("--posts", "50")]
    assert baseline.forwardable(options, OLD_HELP) == ["--quick", "--runs", "2"]


def test_only_becomes_skip_of_the_other_phases_on_an_older_bench():
    options = [("--only", "default"), ("--only", "flood")]  # flood: not in that commit
    args = baseline.forwardable(options, OLD_HELP)
    skipped = set(args[1::2])
    assert set(args[0::2]) == {"--skip"}
    assert skipped == {"zero", "single", "drain", "statements", "router"}


def test_ratios_pair_metrics_by_name_and_tolerate_missing_ones():
    new = [
        {"metric": "orders/s", "median": 6.0},
        {"metric": "invocation-seconds", "median": 0.4},
        {"metric": "rows", "median": "6 / 8"},
    ]
    old = [{"metric": "orders/s", "median": 4.0}, {"metric": "rows", "median": "6 / 6"}]
    by_metric = {r["metric"]: r for r in baseline.ratios(new, old)}
    assert by_metric["orders/s"]["new_over_old"] == 1.5
    assert by_metric["invocation-seconds"] == {
        "metric": "invocation-seconds",
        "new": 0.4,
        "old": None,
        "new_over_old": None,
    }
    assert by_metric["rows"]["new_over_old"] is None


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="/proc")
def test_tree_rss_counts_child_processes():
    child = subprocess.Popen(
        [sys.executable, "-c", "import sys; print('up', flush=True); sys.stdin.read()"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
    )
    try:
        child.stdout.readline()  # started: its memory no longer grows
        own = rss_kib(os.getpid())
        assert own > 0
        assert tree_rss_kib(os.getpid()) >= own + rss_kib(child.pid) > own
    finally:
        child.stdin.close()
        child.wait(10)
    assert rss_kib(child.pid) == 0


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="/proc")
def test_rss_by_process_names_the_root_and_named_workers():
    named = "from pathlib import Path; Path('/proc/self/comm').write_text('websocket-3')"
    child = subprocess.Popen(
        [sys.executable, "-c", f"import sys; {named}; print('up', flush=True); sys.stdin.read()"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
    )
    try:
        child.stdout.readline()
        by_process = rss_by_process(os.getpid())
        assert by_process["gateway"] == rss_kib(os.getpid())
        assert by_process["websocket-3"] == rss_kib(child.pid) > 0
    finally:
        child.stdin.close()
        child.wait(10)
