"""``python -m localaws.demo`` (``make demo``): watch orders execute, live.

Submits ``--count`` market orders at once to a running engine (``ORDER_ENGINE_URL``,
default http://localhost:3000) across pairs and sizes, opens one WebSocket per order (the
``wsUrl`` of its 202 answer), shows each order's status stream side by side, then a table
of the routes, prices, amounts out and transaction hashes. Exits 1 when an order does not
reach a terminal status within ``--timeout`` seconds (or cannot be submitted).
"""

import argparse
import asyncio
import json
import os
import sys
import time
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path

import aiohttp
from rich import box
from rich.console import Console
from rich.live import Live
from rich.table import Table

from chalicelib.orders import lifecycle

FLOW = [s.value for s in lifecycle.MARKET_PATH]
TERMINAL = frozenset(s.value for s in lifecycle.TERMINAL)

# (tokenIn, tokenOut, sizes in UI units): order i takes pair i % 5 and, past the first
# five, the next size of that pair.
ORDERS = (
    ("SOL", "USDC", ("1.5", "40", "0.25")),
    ("USDC", "SOL", ("250", "5000", "12.5")),
    ("SOL", "USDT", ("0.75", "15", "3")),
    ("JUP", "USDC", ("400", "12000", "75")),
    ("BONK", "SOL", ("25000000", "400000000", "1000000")),
)
STYLE = {"confirmed": "green", "failed": "red", "pending": "dim"}


@dataclass
class Order:
    token_in: str
    token_out: str
    amount: str
    order_id: str = ""
    ws_url: str = ""
    events: dict[int, dict] = field(default_factory=dict)  # seq -> event: duplicates vanish
    error: str = ""
    started: float = field(default_factory=time.monotonic)
    finished: float | None = None

    @property
    def pair(self) -> str:
        return f"{self.token_in}/{self.token_out}"

    @property
    def last(self) -> dict:
        return self.events[max(self.events)] if self.events else {}

    @property
    def status(self) -> str:
        return self.last.get("status", "error" if self.error else "submitting")

    @property
    def done(self) -> bool:
        return self.status in TERMINAL or bool(self.error)


def orders_for(count: int) -> list[Order]:
    return [
        Order(token_in, token_out, sizes[(i // len(ORDERS)) % len(sizes)])
        for i in range(count)
        for token_in, token_out, sizes in [ORDERS[i % len(ORDERS)]]
    ]


async def submit(http: aiohttp.ClientSession, base_url: str, order: Order) -> None:
    body = {
        "type": "market",
        "tokenIn": order.token_in,
        "tokenOut": order.token_out,
        "amount": order.amount,
        "slippageBps": 100,
    }
    async with http.post(f"{base_url}/api/orders/execute", json=body) as response:
        answer = await response.json(content_type=None)
        if response.status not in (200, 202):
            raise RuntimeError(f"HTTP {response.status}: {answer.get('error', answer)}")
    order.order_id, order.ws_url = answer["orderId"], answer["wsUrl"]


async def watch(http: aiohttp.ClientSession, order: Order) -> None:
    """Follow one order's statuses until a terminal one; reconnects resume after the last seq."""
    while not order.done:
        since = max(order.events, default=0)
        try:
            async with http.ws_connect(order.ws_url, params={"since": since}) as socket:
                async for frame in socket:
                    if frame.type != aiohttp.WSMsgType.TEXT:
                        break
                    event = json.loads(frame.data)
                    if event.get("type") == "status" and event.get("orderId") == order.order_id:
                        order.events.setdefault(event["seq"], event)
                    if order.done:
                        break
        except aiohttp.ClientError:
            await asyncio.sleep(0.5)
    order.finished = time.monotonic()


async def run_order(http, base_url: str, order: Order) -> None:
    try:
        await submit(http, base_url, order)
        await watch(http, order)
    except Exception as e:
        order.error = str(e) or type(e).__name__
        order.finished = time.monotonic()


# -- display ------------------------------------------------------------------------------


def _bar(order: Order, width: int = 10) -> str:
    reached = max(
        (FLOW.index(e["status"]) for e in order.events.values() if e["status"] in FLOW), default=-1
    )
    filled = width if order.status in TERMINAL else width * (reached + 1) // len(FLOW)
    color = STYLE.get(order.status, "cyan")
    return f"[{color}]{'━' * filled}[/][dim]{'━' * (width - filled)}[/]"


def _label(order: Order) -> str:
    return f"{order.amount} {order.token_in}→{order.token_out}"


def live_table(orders: list[Order]) -> Table:
    table = Table(title="orders, live", box=box.SIMPLE_HEAD)
    table.add_column("#", justify="right")
    table.add_column("order", no_wrap=True)
    table.add_column("progress", no_wrap=True)
    table.add_column("status stream (seq: status)")
    table.add_column("time", justify="right", no_wrap=True)
    for i, order in enumerate(orders, 1):
        stream = " ".join(
            f"[{STYLE.get(e['status'], 'cyan')}]{seq}:{e['status']}[/]"
            for seq, e in sorted(order.events.items())
        )
        if order.error:
            stream = f"[red]{order.error}[/]"
        elapsed = (order.finished or time.monotonic()) - order.started
        table.add_row(str(i), _label(order), _bar(order), stream or "…", f"{elapsed:.1f}s")
    return table


def _route(route: dict | None) -> str:
    legs = (route or {}).get("legs") or []
    if len(legs) <= 1:
        return " ".join(leg.get("venue", "?") for leg in legs)
    total = sum(int(leg["inAmount"]) for leg in legs) or 1
    return " + ".join(f"{leg['venue']} {100 * int(leg['inAmount']) / total:.0f}%" for leg in legs)


def _significant(value: Decimal, digits: int = 6) -> str:
    """``value`` to ``digits`` significant digits, never in scientific notation."""
    if not value:
        return "0"
    return format(value.quantize(Decimal(1).scaleb(value.adjusted() - digits + 1)), "f")


def _short(text: str, keep: int = 6) -> str:
    return text if len(text) <= 2 * keep + 1 else f"{text[:keep]}…{text[-keep:]}"


def result_table(orders: list[Order]) -> Table:
    table = Table(title="results (price: out per in)", box=box.SIMPLE_HEAD)
    table.add_column("order", no_wrap=True)
    table.add_column("route", min_width=8)
    table.add_column("price", justify="right", no_wrap=True)
    table.add_column("amount out", justify="right", no_wrap=True)
    table.add_column("tx hash", no_wrap=True)
    for order in orders:
        last = order.last
        if order.status == "confirmed":
            price = Decimal(str(last.get("executedPrice", "0")))
            out = last.get("amountOutUi") or last.get("amountOut", "")
            route, amount = _route(last.get("route")), f"{out} {order.token_out}"
            price_text = _significant(price)
        else:
            reason = order.error or last.get("reason") or "no terminal status in time"
            route, amount, price_text = f"[red]{order.status}: {reason}[/]", "", ""
        table.add_row(_label(order), route, price_text, amount, _short(last.get("txHash", ""), 4))
    return table


def _dev_key() -> str | None:
    path = Path(__file__).resolve().parents[1] / ".data" / "dev-api-key"
    return path.read_text().strip() if path.exists() else None


async def main_async(args: argparse.Namespace) -> int:
    console = Console()
    orders = orders_for(args.count)
    base_url = args.url.rstrip("/")
    console.print(f"submitting {len(orders)} orders to {base_url} …")
    key = args.api_key or _dev_key()
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    timeout = aiohttp.ClientTimeout(total=None)
    async with aiohttp.ClientSession(timeout=timeout, headers=headers) as http:
        tasks = [asyncio.create_task(run_order(http, base_url, o)) for o in orders]
        with Live(live_table(orders), console=console, refresh_per_second=8) as live:
            deadline = time.monotonic() + args.timeout
            while not all(t.done() for t in tasks) and time.monotonic() < deadline:
                await asyncio.wait(tasks, timeout=0.125)
                live.update(live_table(orders))
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            live.update(live_table(orders))
    console.print(result_table(orders))
    unfinished = [o for o in orders if o.status not in TERMINAL]
    if unfinished:
        console.print(
            f"[red]{len(unfinished)} order(s) did not reach confirmed or failed "
            f"within {args.timeout:.0f}s[/]"
        )
        return 1
    return 0


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m localaws.demo",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--url", default=os.environ.get("ORDER_ENGINE_URL", "http://localhost:3000")
    )
    parser.add_argument(
        "--api-key",
        default=os.environ.get("ORDER_ENGINE_API_KEY"),
        help="the API key (env ORDER_ENGINE_API_KEY; default: the one `make run` keeps in "
        ".data/dev-api-key)",
    )
    parser.add_argument("--count", type=int, default=5, help="orders to submit at once")
    parser.add_argument(
        "--timeout",
        type=float,
        default=60,
        help="seconds for every order to reach a terminal status",
    )
    try:
        return asyncio.run(main_async(parser.parse_args(argv)))
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
