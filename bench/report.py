"""The results: the machine, the summary table, the JSON without raw samples, the plot."""

from __future__ import annotations

import contextlib
import os
import platform
import sys
import time
from pathlib import Path

from bench.stats import median_of, spread
from harness.orders import FLOW

TARGET_PER_MIN = 100  # the reference design: 100 orders/minute at 10 concurrent workers


def say(text: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {text}", file=sys.stderr, flush=True)


def machine() -> dict:
    info = {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "cpus_usable": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
    }
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                info["cpu_model"] = line.split(":", 1)[1].strip()
                break
    with contextlib.suppress(OSError, ValueError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                info["memory_gib"] = round(int(line.split()[1]) / 2**20, 1)
    with contextlib.suppress(OSError):
        info["loadavg_at_start"] = os.getloadavg()
    return info


Row = tuple[str, object, str, str]  # (metric, median, spread over runs, note)


def _over_runs(metric: str, runs: list[dict], key: str, note: str = "") -> Row:
    return (metric, median_of(runs, key), spread(runs, key), note)


def _zero_rows(p: dict) -> list[Row]:
    sub = [r["submit"] for r in p["zero"]]
    e2e = [r["e2e"] for r in p["zero"]]
    requests = f"{p['zero'][0]['submit']['requests']} requests/run"
    return [
        _over_runs("POST /api/orders/execute p50 (ms)", sub, "latency_p50_ms", requests),
        _over_runs(
            "POST /api/orders/execute p99 (ms)", sub, "latency_p99_ms", "10 closed-loop clients"
        ),
        _over_runs("POST requests/s", sub, "req_per_s", "workers run meanwhile"),
        _over_runs(
            "zero latency: orders/s (burst)", e2e, "orders_per_s", "first pending -> last terminal"
        ),
        _over_runs(
            "zero latency: submit->confirmed p50 (ms)",
            e2e,
            "latency_p50_ms",
            "in a burst (queueing included)",
        ),
        _over_runs("zero latency: submit->confirmed p99 (ms)", e2e, "latency_p99_ms"),
    ]


def _default_rows(p: dict) -> list[Row]:
    e2e = [r["e2e"] for r in p["default"]]
    ws = [r["ws"] for r in p["default"]]
    per_s = median_of(e2e, "orders_per_s")
    per_min = per_s * 60 if per_s else None
    target = (
        f"= {per_min:.0f}/min, {per_min / TARGET_PER_MIN:.1f}x the 100/min target"
        if per_min
        else ""
    )
    return [
        _over_runs("default latency: orders/s", e2e, "orders_per_s", target),
        _over_runs(
            "default latency: submit->confirmed p50 (ms)",
            e2e,
            "latency_p50_ms",
            "execution 2-3 s simulated",
        ),
        _over_runs("default latency: submit->confirmed p99 (ms)", e2e, "latency_p99_ms"),
        _over_runs(
            "default latency: peak orders in flight",
            e2e,
            "peak_in_flight",
            "10 invocations x batch of up to 10",
        ),
        _over_runs(
            "WebSocket push p50 (ms)", ws, "push_p50_ms", "recorded in Postgres -> received"
        ),
        _over_runs(
            "WebSocket push p99 (ms)",
            ws,
            "push_p99_ms",
            f"{sum(w['live_events'] for w in ws)} live events",
        ),
        _over_runs(
            "default latency: invocation-seconds per order",
            [r.get("invocations", {}) for r in p["default"]],
            "invocation_s_per_order",
            "sum of handler durations / orders; target <= 0.5",
        ),
    ]


def _capacity_rows(p: dict) -> list[Row]:
    rows: list[Row] = []
    if "burst" in p:
        b = p["burst"]
        n = b["e2e"].get("expected")
        rows += [
            ("burst: sockets opened", f"{b['ws']['opened']} / {n}", "", "one client per order"),
            (
                "burst: clients that got the terminal status",
                f"{b['ws']['followed_to_terminal']} / {n}",
                "",
                f"{b['ws']['errors']} client errors",
            ),
            ("burst: submit->confirmed p99 (ms)", b["e2e"].get("latency_p99_ms"), "", "default"),
            (
                "burst: invocation-seconds per order",
                b["invocations"].get("invocation_s_per_order"),
                "",
                f"{b['invocations'].get('invocations_per_order')} invocations per order",
            ),
        ]
    if "connections" in p:
        c = p["connections"]
        rows.append(
            (
                "connections: open together / dropped",
                f"{c['opened']} / {c['dropped']}",
                "",
                f"of {c['connections']}; {c['replayed']} got their replay; "
                f"connect p99 {c['connect_p99_ms']} ms",
            )
        )
    if "posts" in p:
        s = p["posts"]
        note = f"{s['requests']} at once; p99 {s['latency_p99_ms']} ms"
        rows += [
            ("concurrent POSTs: errors", s["errors"], "", note),
            ("concurrent POSTs: requests/s", s["req_per_s"], "", ""),
        ]
    if "flood" in p:
        f = p["flood"]
        back = f["rss_back_after_s"]
        rows += [
            (
                "flood: submit p99 without / with (ms)",
                f"{f['submit_p99_ms_without_flood']} / {f['submit_p99_ms_with_flood']}",
                "",
                f"{f['frames']} frames on one socket, 10 clients",
            ),
            (
                "flood: the socket's frames answered / throttled",
                f"{f['socket'].get('answers')} / {f['socket'].get('throttled')}",
                "",
                "closed 1008 by the runtime"
                if f["socket"].get("closed_by_server")
                else f["socket"].get("error") or "not closed",
            ),
            (
                "flood: runtime RSS before / peak / end (MiB)",
                f"{f['rss_before_mib']} / {f['rss_peak_mib']} / {f['rss_end_mib']}",
                "",
                f"every {len(f['rss_after_mib']) - 1} x 5 s after: "
                + " ".join(str(m) for m in f["rss_after_mib"]),
            ),
            (
                "flood: runtime RSS back within 30 s",
                "yes" if f.get("rss_back") else "no",
                "",
                f"within {f['rss_tolerance_mib']} MiB of before"
                + (f", after {back} s" if back is not None else "")
                + "; the warm-up flood (first after start): "
                + " -> ".join(map(str, f["rss_warm_up_flood_mib"])),
            ),
            *(
                (
                    f"flood: RSS of {name} before / peak / end (MiB)",
                    f"{p['before_mib']} / {p['peak_mib']} / {p['after_mib'][-1]}",
                    "",
                    "",
                )
                for name, p in f["rss_per_process"].items()
            ),
        ]
    return rows


def _statement_rows(s: dict, load: str = "") -> list[Row]:
    rows: list[Row] = []
    if "statements_per_order" in s:
        rows.append(
            (
                f"Postgres statements per order{load}",
                s["statements_per_order"],
                "",
                "pg_stat_statements, BEGIN/COMMIT included",
            )
        )
    rows.append(
        (
            f"Postgres transactions per order{load}",
            s["transactions_per_order"],
            "",
            "xact_commit; the bench's own and the idle rate left out",
        )
    )
    rows.append(
        (
            f"Postgres rows inserted / updated per order{load}",
            f"{s['rows_inserted_per_order']} / {s['rows_updated_per_order']}",
            "",
            "pg_stat_database tup_*",
        )
    )
    if "redis_commands_per_order" in s:
        note = "INFO total_commands_processed, idle periods included"
        rows.append((f"Redis commands per order{load}", s["redis_commands_per_order"], "", note))
    if "sqs_calls_per_order" in s:
        idle = s.get("sqs_empty_receives_per_order")
        note = f"the SQS server's, pollers' included; plus {idle} empty receives of idle pollers"
        rows.append((f"SQS calls per order{load}", s["sqs_calls_per_order"], "", note))
    return rows


def summary_rows(results: dict) -> list[Row]:
    """(metric, median, spread over runs, note) for every phase that ran."""
    p = results["phases"]
    rows: list[Row] = []
    if "zero" in p:
        rows += _zero_rows(p)
    if "single" in p:
        single = p["single"]
        note = f"{single['orders']} orders, one at a time"
        rows.append(("zero latency: one order alone p50 (ms)", single["latency_p50_ms"], "", note))
    if "drain" in p:
        rows.append(
            _over_runs(
                "zero latency: worker drain orders/s",
                p["drain"],
                "orders_per_s",
                "queue pre-filled, HTTP idle",
            )
        )
        if all(r.get("commits_per_order") is not None for r in p["drain"]):
            rows.append(
                _over_runs(
                    "zero latency: worker drain Postgres commits per order",
                    p["drain"],
                    "commits_per_order",
                    "full batches: status writes share commits",
                )
            )
    if "default" in p:
        rows += _default_rows(p)
    if "statements" in p:
        rows += _statement_rows(p["statements"], f" ({p['statements'].get('clients', 10)} clients)")
    if "statements_light" in p:
        rows += _statement_rows(p["statements_light"], " (one client)")
    rows += _capacity_rows(p)
    if "limits" in p:
        rows += _limits_rows(p["limits"])
    if "cannon" in p and "post" in p["cannon"]:
        rows += _cannon_rows(p["cannon"])
    if "router" in p and "routes_per_s" in p["router"]:
        r = p["router"]
        note = f"{r.get('quotes_per_s')} venue quotes/s; bench/router.py"
        rows.append(("router: routes/s (one core)", r["routes_per_s"], "", note))
    for kind in ("direct", "multihop"):
        if kind in p.get("quote", {}):
            q = p["quote"][kind]
            note = f"{q['calls']} calls over every listed pair; bench/quote.py"
            rows.append((f"GET /api/quote p99, {kind} (ms)", q["p99_ms"], "", note))
    return rows


def _cannon_rows(c: dict) -> list[Row]:
    """autocannon's POST and GET, and the CPU per order over every process."""
    post, get = c["post"], c["get"]
    note = f"autocannon, {c['connections']} connections, workers running"
    rows: list[Row] = [
        ("autocannon: POST req/s", post["req_per_s"], "", note),
        ("autocannon: POST p99 (ms)", post["latency_p99_ms"], "", f"non-2xx {post['non_2xx']}"),
        ("autocannon: GET /api/orders/{id} req/s", get["req_per_s"], "", note),
        ("autocannon: POST / GET req/s", c["post_over_get"], "", "target >= 0.35"),
    ]
    cpu = post.get("cpu_ms_per_order") or {}
    if cpu:
        split = ", ".join(f"{k} {v}" for k, v in cpu.items() if k != "all")
        rows.append(("CPU per confirmed order, all processes (ms)", cpu["all"], "", split))
    return rows


def _limits_rows(lim: dict) -> list[Row]:
    """Market p99 without and with the open limit orders; one check's cost per case."""
    note = f"{lim['orders_per_burst']} market orders, zero latency"
    open_note = (
        f"{lim['open_limit_orders']} open limit orders over {lim['pairs']} pairs, "
        f"a check every {lim.get('check_interval_s', 2):g} s"
    )
    rows: list[Row] = [
        ("limits: market p99, none open (ms)", lim["p99_ms"]["without"], "", note),
        ("limits: market p99, orders open (ms)", lim["p99_ms"]["with"], "", open_note),
        ("limits: market p99 with / without", lim["p99_ratio"], "", "target <= 1.10"),
    ]
    for case in lim.get("check_cost", []):
        detail = f"{case['candidates']} rows read by the range queries"
        if "pg_buffers" in case:
            detail += f", {case['pg_statements']} statements, {case['pg_buffers']} buffers"
        name = f"limits: one check, {case['open']} open, {case['triggered']} triggered (ms)"
        rows.append((name, case["wall_ms"], "", detail))
    return rows


def limits_table(lim: dict) -> str:
    """The check-cost cases as a Markdown table (for the README's Measured section)."""
    lines = [
        "| open | triggered | wall ms | rows read (candidates) | statements | rows returned"
        " | shared buffers |",
        "|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for c in lim.get("check_cost", []):
        lines.append(
            f"| {c['open']:,} | {c['triggered']:,} | {c['wall_ms']} | {c['candidates']:,}"
            f" | {c.get('pg_statements', '-')} | {c.get('pg_rows', '-')}"
            f" | {c.get('pg_buffers', '-')} |"
        )
    return "\n".join(lines)


def print_table(results: dict) -> None:
    from rich.console import Console
    from rich.table import Table

    m = results["machine"]
    title = (
        f"order engine on {m.get('cpus')} CPUs ({m.get('cpu_model', '?')}), "
        f"{m.get('memory_gib')} GiB, Python {m['python']}"
    )
    table = Table(title=title, title_justify="left")
    for name, justify in (
        ("metric", "left"),
        ("median", "right"),
        ("runs min..max", "right"),
        ("note", "left"),
    ):
        table.add_column(name, justify=justify)
    for metric, value, rng, note in summary_rows(results):
        table.add_row(metric, _fmt(value), rng, note)
    console = Console(width=140)
    console.print(table)
    services = results["services"]
    console.print(
        f"services: Postgres {services.get('postgres_version')} ({services.get('postgres')}); "
        f"{services.get('redis')}; SQS {services.get('sqs')}. "
        f"Runs: {results['settings']['runs']} after a warm-up."
    )


def print_baseline(baseline: dict) -> None:
    from rich.console import Console
    from rich.table import Table

    if not baseline["found"]:
        print(f"baseline {baseline['rev']}: its bench wrote no results")
        return
    table = Table(title=f"this commit / {baseline['rev']}, same session", title_justify="left")
    for name in ("metric", "new", "old", "new / old"):
        table.add_column(name, justify="left" if name == "metric" else "right")
    for row in baseline["ratios"]:
        table.add_row(row["metric"], _fmt(row["new"]), _fmt(row["old"]), _fmt(row["new_over_old"]))
    Console(width=140).print(table)


def _fmt(value) -> str:
    if isinstance(value, float):
        return f"{value:,.1f}" if value >= 10 else f"{value:.2f}"
    return "-" if value is None else str(value)


def strip_private(obj):
    """The JSON without the raw samples (keys starting with ``_``)."""
    if isinstance(obj, dict):
        return {k: strip_private(v) for k, v in obj.items() if not k.startswith("_")}
    if isinstance(obj, list):
        return [strip_private(v) for v in obj]
    return obj


def plot(results: dict, path: Path) -> Path | None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    p = results["phases"]
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.2))

    def cdf(ax, samples, label, style="-", color=None):
        if samples:
            xs = sorted(s * 1000 for s in samples)
            ys = [(i + 1) / len(xs) for i in range(len(xs))]
            ax.plot(xs, ys, style, color=color, label=label)

    for i, run in enumerate(p.get("zero", [])):
        color = f"C{i}"
        cdf(axes[0], run["submit"].get("_latencies_s"), f"POST, run {i + 1}", "-", color)
        cdf(axes[0], run["e2e"].get("_latencies_s"), f"to confirmed, run {i + 1}", "--", color)
    axes[0].set(
        title="zero simulated latency: POST and submit->confirmed", xlabel="ms", ylabel="fraction"
    )
    for i, run in enumerate(p.get("default", [])):
        cdf(axes[1], run["e2e"].get("_latencies_s"), f"run {i + 1}")
    axes[1].set(title="submit->confirmed, default latency (2-3 s)", xlabel="ms")
    by_status: dict[str, list[float]] = {}
    for run in p.get("default", []):
        for status, values in run["ws"].get("_by_status_s", {}).items():
            by_status.setdefault(status, []).extend(v * 1000 for v in values)
    if by_status:
        names = [s for s in [*FLOW[1:], "failed"] if s in by_status]
        axes[2].boxplot([by_status[s] for s in names], tick_labels=names, showfliers=False)
    axes[2].set(title="WebSocket push latency by status", ylabel="ms")
    for ax in axes[:2]:
        ax.legend(fontsize=7)
        ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
