"""Router micro-benchmark: pool reads plus route decisions per second, on one core.

A reference market with zero simulated latency and no drift. The direct figure: each
iteration reads both venues' pools (``Market.snapshot``) and runs ``best_route`` for the next
order of a fixed mix of pairs and sizes. The multi-hop figure: each iteration runs
``router.plan`` (direct, split, two hops through SOL, USDC or USDT, two hops with splits)
for the next order over every listed pair at each size, reading every pool it weighs (up
to 14). Guards measure impact and oracle deviation but refuse nothing, so the $2M orders
the cap would fail are still routed. Run: ``python -m bench.router``.
"""

import itertools
import time
from fractions import Fraction

from chalicelib.config import MarketSettings
from chalicelib.dex import VENUES, Market, best_route, plan
from chalicelib.dex.guards import OFF
from chalicelib.dex.listing import REFERENCE_USD
from chalicelib.tokens import resolve

PAIRS = [("SOL", "USDC"), ("USDC", "SOL"), ("SOL", "BONK"), ("JUP", "USDC"), ("USDC", "USDT")]
LISTED = ("SOL", "USDC", "USDT", "JUP", "BONK")
EVERY_PAIR = [(a, b) for a in LISTED for b in LISTED if a != b]
SIZES_USD = {"small $100": 100, "medium $50k": 50_000, "large $2M": 2_000_000}


def _orders(pairs=PAIRS) -> list[tuple[str, str, object, object, int]]:
    orders = []
    for label, usd in SIZES_USD.items():
        for a, b in pairs:
            token_in, token_out = resolve(a), resolve(b)
            price = REFERENCE_USD["WSOL" if token_in.native else token_in.symbol]
            amount = int(Fraction(usd) / price * 10**token_in.decimals)
            orders.append((label, f"{a}->{b}", token_in, token_out, amount))
    return orders


def _market() -> tuple[Market, MarketSettings]:
    settings = MarketSettings(
        quote_latency_ms=0, exec_latency_min_ms=0, exec_latency_max_ms=0, drift_trades_per_slot=0
    )
    return Market(settings.order_engine_seed, settings, clock=lambda: 0), settings


def run_multihop(seconds: float = 3.0) -> dict:
    """Plans per second over every listed pair, two hops with splits allowed."""
    market, settings = _market()
    per_size = {label: {"routes": 0, "seconds": 0.0, "multihop": 0} for label in SIZES_USD}
    deadline = time.perf_counter() + seconds
    for label, _, token_in, token_out, amount in itertools.cycle(_orders(EVERY_PAIR)):
        started = time.perf_counter()
        if started > deadline:
            break
        route = plan(
            market.snapshot, token_in, token_out, amount, 50, settings.quote_valid_slots, guards=OFF
        )
        stats = per_size[label]
        stats["seconds"] += time.perf_counter() - started
        stats["routes"] += 1
        stats["multihop"] += route.hops > 1
    total_routes = sum(s["routes"] for s in per_size.values())
    total_seconds = sum(s["seconds"] for s in per_size.values())
    return {
        "routes_per_s": round(total_routes / total_seconds),
        "pairs": len(EVERY_PAIR),
        "by_size": {
            label: {
                "routes_per_s": round(s["routes"] / s["seconds"]),
                "ms_per_route": round(1000 * s["seconds"] / s["routes"], 3),
                "multihop_share": round(s["multihop"] / s["routes"], 2),
            }
            for label, s in per_size.items()
        },
    }


def run(seconds: float = 3.0) -> dict:
    market, settings = _market()
    orders = _orders()
    per_size = {label: {"routes": 0, "seconds": 0.0, "splits": 0} for label in SIZES_USD}
    deadline = time.perf_counter() + seconds
    for label, _, token_in, token_out, amount in itertools.cycle(orders):
        started = time.perf_counter()
        if started > deadline:
            break
        snaps = [market.snapshot(venue, token_in, token_out) for venue in VENUES]
        route = best_route(
            snaps, token_in, token_out, amount, 50, settings.quote_valid_slots, guards=OFF
        )
        stats = per_size[label]
        stats["seconds"] += time.perf_counter() - started
        stats["routes"] += 1
        stats["splits"] += route.kind == "split"
    total_routes = sum(s["routes"] for s in per_size.values())
    total_seconds = sum(s["seconds"] for s in per_size.values())
    result = {
        "routes_per_s": round(total_routes / total_seconds),
        "quotes_per_s": round(total_routes * len(VENUES) / total_seconds),
        "by_size": {
            label: {
                "routes_per_s": round(s["routes"] / s["seconds"]),
                "ms_per_route": round(1000 * s["seconds"] / s["routes"], 3),
                "split_share": round(s["splits"] / s["routes"], 2),
            }
            for label, s in per_size.items()
        },
    }
    print(f"router, one core, {seconds:.0f} s: pool reads of both venues + best_route")
    print(f"{'order size':<14}{'routes/s':>10}{'ms/route':>10}{'split':>8}")
    for label, row in result["by_size"].items():
        split = f"{row['split_share']:.0%}"
        print(f"{label:<14}{row['routes_per_s']:>10}{row['ms_per_route']:>10.3f}{split:>8}")
    print(f"{'mix':<14}{result['routes_per_s']:>10}")
    multihop = result["multihop"] = run_multihop(seconds)
    print(
        f"router.plan, one core, {seconds:.0f} s: every pool read + direct, split, 2-hop and "
        f"2-hop-with-splits over all {multihop['pairs']} listed pairs"
    )
    print(f"{'order size':<14}{'routes/s':>10}{'ms/route':>10}{'2-hop':>8}")
    for label, row in multihop["by_size"].items():
        hopped = f"{row['multihop_share']:.0%}"
        print(f"{label:<14}{row['routes_per_s']:>10}{row['ms_per_route']:>10.3f}{hopped:>8}")
    print(f"{'mix':<14}{multihop['routes_per_s']:>10}")
    return result


if __name__ == "__main__":
    run()
