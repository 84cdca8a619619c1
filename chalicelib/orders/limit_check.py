"""The limit check job: wakes the limit orders a price move has made executable.

Runs on a schedule (``limit_check_interval_minutes`` in AWS; the local runtime's schedule
interval locally). It never scans every waiting order: for each pair with orders waiting it
reads the pair's best spot price from the quote cache, skips the pair when that price has not
moved since the last check, and otherwise reads, with range queries of the
``(mint_in, mint_out, limit_price, id) WHERE status = 'open'`` index paged on
``(limit_price, id)``, every order whose limit is at or below it, and only those (no fill can
beat the spot price, so no other order can trigger): the cost follows the orders that
trigger, not the orders open. Those whose route at their size meets the limit are enqueued;
the worker checks again and executes (a route the guards refuse, or none at all, is "not
yet" for both: the order waits). Orders
past their expiry are ended ``expired``. And for each newly listed token, the sniper order
whose turn it is is enqueued (the worker then wakes each next one as the previous finishes).
"""

import logging
from dataclasses import dataclass
from fractions import Fraction

from chalicelib import tokens
from chalicelib.backends import queue, venues
from chalicelib.backends.cache import redis_client
from chalicelib.config import get_settings
from chalicelib.dex import VENUES, DexError, router
from chalicelib.dex.snapshot import ratio_to_decimal
from chalicelib.orders import moves, store
from chalicelib.orders.lifecycle import Actor
from chalicelib.orders.moves import Publisher
from chalicelib.orders.worker import wake_sniper_line

log = logging.getLogger(__name__)

LAST_PRICES = "limits:last-price"  # Redis hash: "mint_in:mint_out" -> the price last checked
PRICE_PLACES = 18


@dataclass
class CheckResult:
    pairs_moved: int = 0
    candidates: int = 0  # rows the range queries read
    enqueued: int = 0
    expired: int = 0
    snipers_woken: int = 0
    stops_triggered: int = 0


def run(publisher: Publisher) -> CheckResult:
    result = CheckResult()
    for order in store.expired_orders():
        result.expired += moves.expire(str(order.id), Actor.LIMIT_CHECK, publisher)
    settings = get_settings()
    fetch = venues.cached_fetch()
    last = redis_client().hgetall(LAST_PRICES)
    for mint_in, mint_out in store.waiting_pairs():
        token_in, token_out = tokens.resolve(mint_in), tokens.resolve(mint_out)
        snapshots = _snapshots(fetch, token_in, token_out)
        if not snapshots:
            continue
        oracle = _oracle_price(snapshots, token_in, token_out)
        if oracle is not None:  # every run: the oracle moves while the pools may not
            result.stops_triggered += _trigger_stops(mint_in, mint_out, oracle, publisher)
        prices = {snap.venue: _spot_price(snap, token_in, token_out) for snap in snapshots}
        price = max(prices.values())
        key, seen = f"{mint_in}:{mint_out}", ",".join(f"{v}={p}" for v, p in prices.items())
        if last.get(key) == seen:  # no venue's price moved (an order may use one venue)
            continue
        result.pairs_moved += 1
        # Every order the price meets, page by page (the price is recorded as checked only
        # once all are handled: a crash before that has the next run look again).
        for page in store.triggered_orders(mint_in, mint_out, price):
            result.candidates += len(page)
            for order in page:
                if _meets_limit(order, snapshots, settings.market.quote_valid_slots):
                    queue.send_order(str(order.id))
                    result.enqueued += 1
        redis_client().hset(LAST_PRICES, key, seen)
    for mint in tokens.listed_mints():  # sniper lines: the order whose turn it is
        result.snipers_woken += wake_sniper_line(mint)
    if result.pairs_moved or result.expired or result.snipers_woken or result.stops_triggered:
        log.info("limit check: %s", result)
    return result


def _snapshots(fetch: venues.Fetch, token_in, token_out) -> list:
    snapshots = []
    for venue in VENUES:
        try:
            snapshots.append(fetch(venue, token_in, token_out))
        except DexError as e:  # no pool on this venue, or it timed out: the others decide
            log.debug("limit check: %s %s/%s: %s", venue, token_in, token_out, e)
    return snapshots


def _oracle_price(snapshots, token_in, token_out):
    """The oracle's price of the pair, UI units of tokenOut per tokenIn (None without a feed:
    a new listing)."""
    for snap in snapshots:
        pair = snap.oracle_price(token_in.mint)
        if pair is not None:
            scale = Fraction(10**token_in.decimals, 10**token_out.decimals)
            return ratio_to_decimal(pair.rate * scale, PRICE_PLACES)
    return None


def _trigger_stops(mint_in: str, mint_out: str, oracle, publisher: Publisher) -> int:
    """Record the trigger of every stop order of the pair the oracle price crossed (read
    with a range query of ``orders_waiting_stop_idx``) and enqueue it: it then executes as a
    market order, or waits for its limitPrice as a limit order does."""
    triggered = 0
    for order in store.crossed_stops(mint_in, mint_out, oracle):
        if moves.trigger(order, oracle, publisher):
            queue.send_order(str(order.id))
            triggered += 1
    return triggered


def _spot_price(snapshot, token_in, token_out):
    """The venue's next-sliver rate, in UI units of tokenOut per tokenIn: no fill of any
    size pays more there (the best venue's bounds a split too)."""
    scale = Fraction(10**token_in.decimals, 10**token_out.decimals)
    return ratio_to_decimal(snapshot.marginal_rate(token_in.mint) * scale, PRICE_PLACES)


def _meets_limit(order, snapshots, valid_slots: int) -> bool:
    usable = [snap for snap in snapshots if snap.venue in order.venues]
    if not usable:
        return False
    try:
        route = router.best_route(
            usable, order.token_in, order.token_out, order.amount_in, order.slippage_bps,
            valid_slots,
        )  # fmt: skip
    except DexError:
        return False  # the guards refuse it now; a later move may pass
    return route.out_amount >= order.limit_min_out
