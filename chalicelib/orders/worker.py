"""One order's lifecycle, driven by SQS deliveries.

``pending -> routing -> building -> submitted -> confirmed | failed``; a limit order waits in
``open`` after ``pending`` (a delivery finds its limit unmet and lets go; the limit check job
enqueues it again when the price moves to meet it) or ends ``expired``; until ``submitted``
the client may cancel (``cancelled``). Each delivery claims
the order (a lease), resumes from the status recorded in Postgres, and records each further
status exactly once (``store.advance``). An attempt quotes, routes and sends the transaction
(``submitted``), then ends: the transaction lands some slots later, and a delayed message
brings a later delivery that checks it and records ``confirmed``, as a Solana client polls a
signature's status. No invocation waits for the chain. A transient fault (venue timeout,
expired quote, a blockhash that expired before landing, slippage beyond the bound) ends the
attempt: the message is hidden for an exponential backoff and the queue redelivers it;
statuses already recorded are not emitted again. After ``max_attempts`` the order is
``failed`` with its reason. While a limit or sniper order waits in ``open``, such a fault
spends no attempt: the order goes on waiting and a fresh message checks it again. The Lambda
never sleeps.
"""

import contextvars
import json
import logging
import math
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from datetime import UTC, datetime, timedelta

from chalicelib import logs, metrics
from chalicelib.backends import queue, venues
from chalicelib.config import LifecycleSettings, get_settings
from chalicelib.dex import (
    EXACT_OUT,
    BlockhashExpired,
    DexError,
    Faults,
    NoRoute,
    Route,
    SlippageExceeded,
    router,
)
from chalicelib.dex.route import steps_for
from chalicelib.dex.slippage import input_rose_message
from chalicelib.orders import auto_slippage, dead_letters, lifecycle, moves, oco, parents, store
from chalicelib.orders.lifecycle import Actor, OrderStatus, OrderType
from chalicelib.orders.moves import Publisher
from chalicelib.orders.records import HistoryRecord, OrderRecord, StatusChange, landing_columns

log = logging.getLogger(__name__)

# Why an order failed, as a short code from a bounded set (the ``Reason`` metric dimension;
# the free text is in the order): a venue error's ``DexError.code``, or one of these.
ATTEMPTS_EXHAUSTED = "attempts_exhausted"
MAX_PRICE_EXCEEDED = "max_price_exceeded"


class LostRace(Exception):
    """Another delivery moved the order on; this one stops without writing."""


def process_batch(event, publisher: Publisher) -> dict:
    """The SQS handler: returns the messages to redeliver (ReportBatchItemFailures)."""
    records = list(event)
    # A batch's orders run side by side, so the venues' simulated latency is paid once per
    # batch, not once per order.
    # Each order runs in a copy of the invocation's context: its log fields and metrics.
    # Their status writes share transactions (``commit_group``).
    contexts = [contextvars.copy_context() for _ in records]
    group = store.new_commit_group()
    with ThreadPoolExecutor(max_workers=max(1, len(records)), thread_name_prefix="order") as ex:
        done = list(ex.map(lambda c, r: c.run(_handle_in, group, r, publisher), contexts, records))
    log.debug("batch of %d: %d commits of status writes", len(records), group.commits)
    failures = [
        {"itemIdentifier": r.to_dict()["messageId"]}
        for r, ok in zip(records, done, strict=True)
        if not ok
    ]
    return {"batchItemFailures": failures}


def _handle_in(group, record, publisher: Publisher) -> bool:
    token = group.join()
    try:
        return _handle(record, publisher)
    finally:
        group.leave(token)


def _handle(record, publisher: Publisher) -> bool:
    """Process one message; True when it may be deleted."""
    message_id = record.to_dict().get("messageId")
    with logs.bind(messageId=message_id):
        try:
            return _dispatch(record, publisher)
        except Exception:
            # Postgres or SQS down, a bug: the queue redelivers after the visibility timeout,
            # the attempt budget and the DLQ bound how often. Never the whole batch.
            log.exception("message %s failed; it will be redelivered", message_id)
            return False


def _dispatch(record, publisher: Publisher) -> bool:
    try:
        message = json.loads(record.body)
        kind = message["kind"]
        order_id = str(message["orderId"])
    except (ValueError, KeyError, TypeError) as e:
        dead_letters.poison(record.body, f"unreadable message: {e!r}", publisher)
        return True
    logs.update(orderId=order_id)
    if kind == "order" and message.get("slice") is not None:
        return _run_parent(order_id, message["slice"], record, publisher)
    if kind == "order":
        return _run_order(order_id, record.receipt_handle, publisher)
    if kind == "replay":
        sent = publisher.replay(order_id, message["connectionId"])
        # A replay is given up on before the queue would move it to the DLQ (whose
        # handler fails the orders it names): a subscriber's trouble never fails an order.
        settings = get_settings()
        attributes = record.to_dict().get("attributes", {})
        receive_count = int(attributes.get("ApproximateReceiveCount", 1))
        if sent or receive_count >= min(
            settings.push.replay_tries, settings.queue.max_receive_count - 1
        ):
            return True
        queue.retry_later(record.receipt_handle, 1)
        return False
    dead_letters.poison(record.body, f"unknown message kind {kind!r}", publisher)
    return True


def _run_parent(order_id: str, slice_index, record, publisher: Publisher) -> bool:
    """A parent's slice message (``parents.run``)."""
    parent = store.get_order(order_id)
    if parent is None or not parent.is_parent or not isinstance(slice_index, int):
        dead_letters.poison(record.body, "not a parent's slice message", publisher)
        return True
    attributes = record.to_dict().get("attributes", {})
    redelivered = int(attributes.get("ApproximateReceiveCount", 1)) > 1
    return parents.run(parent, slice_index, redelivered, publisher)


def _run_order(order_id: str, receipt_handle: str, publisher: Publisher) -> bool:
    settings = get_settings()
    lifecycle_settings = settings.lifecycle
    claimed = store.claim_and_start(
        order_id, lifecycle_settings.lease_s, lifecycle_settings.max_attempts
    )
    if claimed is None:
        current = store.get_order(order_id)
        if current is None or current.status.terminal:
            return True
        if current.is_parent:  # a parent's first message, or the reaper's: its next slice
            return parents.run(current, None, False, publisher)
        # Another delivery of this order is running: look again when its lease ends.
        queue.retry_later(receipt_handle, settings.lifecycle.lease_s)
        return False
    order, started = claimed
    if started is not None:  # the claim recorded ``routing``
        _announce(order_id, started, publisher)
    try:
        return _run_claimed(order, receipt_handle, publisher)
    finally:
        if order.type == OrderType.SNIPER:
            wake_sniper_line(order.token_out.mint, after=order.id)


def wake_sniper_line(mint: str, after=None) -> bool:
    """Enqueue the sniper order whose turn it is for the token, if it is waiting (``after``:
    the order just handled, which never wakes itself). One order of a line runs at a time,
    so they fill in arrival order."""
    head = store.sniper_line_head(mint)
    if head is None or head.status != OrderStatus.OPEN or head.id == after:
        return False
    queue.send_order(str(head.id))
    return True


def _run_claimed(order: OrderRecord, receipt_handle: str, publisher: Publisher) -> bool:
    settings = get_settings()
    order_id, attempt = str(order.id), order.attempts
    logs.update(attempt=attempt, status=order.status)
    if attempt > settings.lifecycle.max_attempts:
        reason = f"gave up after {settings.lifecycle.max_attempts} attempts: {order.last_error}"
        moves.fail(order_id, reason, ATTEMPTS_EXHAUSTED, Actor.WORKER, publisher)
        return True
    try:
        if order.tx_in_flight:
            _check_landing(order, publisher)
        else:
            metrics.count("OrderAttempts")  # a landing check is no new attempt
            _attempt(order, publisher)
        return True
    except LostRace:
        log.info("order %s moved on elsewhere; this delivery stops", order_id)
        return True
    except DexError as e:
        if (
            e.transient
            and order.waits
            and store.release_waiting(order_id, order.lease_until, error=str(e))
        ):
            # Still waiting in ``open`` (no route formed, nothing sent): a venue's fault
            # spends no attempt, or a long wait would end "gave up after N attempts". A
            # fresh message checks again after a delay that doubles with each fault in a
            # row; this one is deleted rather than hidden, since each redelivery counts
            # towards the DLQ, whose handler fails the order. (The check job would enqueue
            # a limit order again only on the next price move, so relying on it alone
            # could miss a price that met it.)
            delay = _waiting_retry_delay(order.waiting_faults, settings.lifecycle)
            metrics.count("OrderRetries", Reason=e.code)
            log.info("order %s waits: %s; checking again in %ss", order_id, e, delay)
            queue.send_order(order_id, delay_s=delay)
            return True
        if not e.transient or attempt >= settings.lifecycle.max_attempts:
            moves.fail(order_id, str(e), e.code, Actor.WORKER, publisher)
            return True
        delay = settings.lifecycle.retry_base_delay_s * 2 ** (attempt - 1)
        metrics.count("OrderRetries", Reason=e.code)
        log.info("order %s attempt %d: %s; retrying in %ss", order_id, attempt, e, delay)
        store.release(order_id, order.lease_until, error=str(e))
        queue.retry_later(receipt_handle, delay)
        return False


class _Steps:
    """Records an order's statuses from the status and seq it was read at, and pushes them."""

    def __init__(self, order: OrderRecord, publisher: Publisher):
        self.order_id, self._publisher = str(order.id), publisher
        self.status, self.seq = order.status, order.last_seq
        self._linked = order.linked_order_id
        self._parent = order.parent_order_id
        self._unpushed: list[HistoryRecord] = []

    def reached(self, status: OrderStatus) -> bool:
        return lifecycle.reached(self.status, status)

    def __call__(self, change: StatusChange, push: bool = True) -> None:
        """Record ``change``; ``push=False`` for a status the next one follows at once (it
        is pushed with it: one look at the subscribers fewer). Whatever ends the attempt
        before that, a later status is pushed with every one before it."""
        if change.status == OrderStatus.ROUTING and self._linked is not None:
            entry = oco.start(self.order_id, self._linked, self.status, self.seq, change,
                              self._publisher)  # fmt: skip
        else:
            entry = store.advance(self.order_id, self.status, self.seq, change, Actor.WORKER)
        if entry is None:
            raise LostRace(self.order_id)
        self.status, self.seq = change.status, entry.seq
        self._unpushed.append(entry)
        _log_status(self.order_id, entry)
        if push:
            entries, self._unpushed = self._unpushed, []
            _push(self._publisher, self.order_id, entries)
        if change.status.terminal and self._parent is not None:  # its fill, on the parent's
            self._publisher.publish(str(self._parent))


def _log_status(order_id: str, entry: HistoryRecord) -> None:
    logs.update(status=entry.status)
    log.info("order %s %s seq=%d%s", order_id, entry.status, entry.seq, _summary(entry.payload))


def _announce(order_id: str, entry: HistoryRecord, publisher: Publisher) -> None:
    """A status just recorded: logged, and pushed from the row written (not read back)."""
    _log_status(order_id, entry)
    _push(publisher, order_id, [entry])


def _push(publisher: Publisher, order_id: str, entries: list[HistoryRecord]) -> None:
    # The subscribers are read afresh for each push: one who subscribed after this delivery's
    # first push must get the next status live, not only at the terminal one.
    publisher.publish(order_id, entries)


def _attempt(order: OrderRecord, publisher: Publisher) -> None:
    """One attempt, resumed from the order's recorded status, up to sending the transaction."""
    settings = get_settings()
    order_id, attempt = str(order.id), order.attempts
    step = _Steps(order, publisher)
    faults = _faults(order)
    market = venues.market()

    # A limit order waits in ``open`` until the route at its size meets its limit; a sniper
    # order until its token's pool trades and its turn in the line comes.
    waiting = order.waits and not step.reached(OrderStatus.ROUTING)
    if waiting and _expired(order):
        moves.expire(order_id, Actor.WORKER, publisher)
        return
    if waiting and not step.reached(OrderStatus.OPEN):
        step(StatusChange.opened(order))
    if waiting and order.awaits_trigger:  # the check job records the trigger, then wakes it
        store.release_waiting(order_id, order.lease_until)
        return
    if not waiting and not step.reached(OrderStatus.ROUTING):
        step(StatusChange.routing(order.venues, attempt))
    if waiting and order.type == OrderType.SNIPER:
        head = store.sniper_line_head(order.token_out.mint)
        if head is None or head.id != order.id:
            log.info("order %s waits its turn behind %s", order_id, head and head.id)
            store.release_waiting(order_id, order.lease_until)
            return
    try:
        route = _route(order, market, faults, settings)
    except DexError as e:
        if not waiting or e.transient or not _waits_on(order, e):
            raise  # a transient fault of a waiting order: see _run_claimed
        log.info("order %s waits: %s", order_id, e)
        store.release_waiting(order_id, order.lease_until)
        return
    if order.limit_min_out is not None:
        if waiting and order.type == OrderType.SNIPER and route.out_amount < order.limit_min_out:
            reason = (f"the price is above maxPrice {order.max_price}: "
                      f"{route.out_amount} out < {order.limit_min_out}")  # fmt: skip
            moves.fail(order_id, reason, MAX_PRICE_EXCEEDED, Actor.WORKER, publisher)
            return
        if waiting and route.out_amount < order.limit_min_out:
            log.info("order %s waits: %d out < limit %d", order_id, route.out_amount,
                     order.limit_min_out)  # fmt: skip
            store.release_waiting(order_id, order.lease_until)
            return
        # Never worse than the limit, whatever the slippage allows.
        route = replace(route, min_out=max(route.min_out, order.limit_min_out))
    if order.min_out is not None:
        # The minimum the client accepted (its quote's, at submit) or was shown (with
        # ``building``) binds every attempt: a re-quote after prices moved never lowers
        # it (the landing fails on slippage instead).
        route = replace(route, min_out=max(route.min_out, order.min_out))
    if waiting:
        step(StatusChange.routing(order.venues, attempt))
    if not step.reached(OrderStatus.BUILDING):
        step(StatusChange.building(route), push=False)  # ``submitted`` follows at once

    market.submit(route)
    landing = None
    if settings.market.congestion:  # a retry (a later attempt) pays a higher fee
        landing = market.send(
            route, faults, attempt, order.max_priority_lamports, order.last_fee_price
        )
    signature = faults.signature()
    delay_s = market.landing_delay_s(faults) + (landing.delay_s if landing else 0)
    lands_at = datetime.now(UTC) + timedelta(seconds=delay_s)
    if not step.reached(OrderStatus.SUBMITTED):
        step(StatusChange.submitted(signature, route, lands_at, landing))
    else:  # a retried attempt sends a new transaction; its status was recorded already
        moved = store.update_fields(
            order_id,
            order.lease_until,
            tx_hash=signature,
            route=route.to_dict(),
            tx_lands_at=lands_at,
            **landing_columns(landing),
        )
        if not moved:  # our lease ran out and another delivery holds the order now
            raise LostRace(order_id)
    if delay_s > 0:
        _check_later(order, delay_s)
    else:  # landed already (no simulated latency): nothing to wait for, no message to send
        _confirm(step, order, route, signature, faults)


def _route(order: OrderRecord, market, faults: Faults, settings) -> Route:
    """The best route the order's choices allow: direct, split, or through a middle token.
    A sniper's new pool moves with every sniper's trade: it is read live, never a cached
    copy, and only directly."""
    options = replace(order.route_options, venues=order.venues)
    if order.type == OrderType.SNIPER:
        options = replace(options, only_direct_routes=True)

        def fetch(venue, a, b):
            return market.snapshot(venue, a, b, faults)
    else:
        fetch = venues.cached_fetch(faults)
    if not order.exact_out:
        return router.plan(
            fetch, order.token_in, order.token_out, order.amount_in, order.slippage_bps,
            settings.market.quote_valid_slots, options,
        )  # fmt: skip
    route = router.plan(
        fetch, order.token_in, order.token_out, order.amount_out_wanted, order.slippage_bps,
        settings.market.quote_valid_slots, options, swap_mode=EXACT_OUT,
    )  # fmt: skip
    return _within_budget(order, route)


def _within_budget(order: OrderRecord, route: Route) -> Route:
    """An exact-output route never spends more than the order's ``amount_in`` (its quote's
    maxIn, or its route's at submit): the prices moved too far if it must."""
    budget = order.amount_in
    if route.in_amount > budget:
        raise SlippageExceeded(
            input_rose_message(budget, route.in_amount, budget, order.token_in),
            amount_in=route.in_amount,
            max_in=budget,
        )
    most = min(route.max_in, budget)
    steps = steps_for(route.legs, order.token_in, order.token_out, route.in_amount,
                      route.out_amount, most)  # fmt: skip
    return replace(route, max_in=most, steps=steps)


def _waits_on(order: OrderRecord, error: DexError) -> bool:
    """Whether a waiting order whose route cannot be formed yet goes on waiting. A limit
    order does whatever the reason (no pool, a guard's refusal): the check job treats the
    same as "not yet" and a later price may pass. A sniper order waits for its pool to
    trade (``NoRoute``); a guard's refusal once it trades fails it, as a price beyond
    maxPrice does: it heads its token's line, and a new pool moves only with the line's
    own fills, so waiting would hold up every order behind it for good."""
    return order.type != OrderType.SNIPER or isinstance(error, NoRoute)


def _waiting_retry_delay(faults_before: int, settings: LifecycleSettings) -> int:
    """The base delay, doubled for each fault in a row before this one, capped."""
    cap = settings.waiting_retry_max_delay_s
    return min(settings.retry_base_delay_s * 2 ** min(faults_before, 16), cap)


def _check_later(order: OrderRecord, delay_s: float) -> None:
    """A delayed message brings the delivery that checks the transaction; this one ends.
    The lease goes first (if still ours), or a quick check would find the order still held.
    A crash between the two leaves an in-flight order with no message: the reaper sends one."""
    store.release(order.id, order.lease_until)
    queue.send_order(str(order.id), delay_s=math.ceil(max(0.0, delay_s)))


def _check_landing(order: OrderRecord, publisher: Publisher) -> None:
    """The transaction was sent: record ``confirmed`` once it has landed, or look again."""
    wait_s = (order.tx_lands_at - datetime.now(UTC)).total_seconds()
    if wait_s > 0:  # came early (a duplicate message, the reaper): look again then
        _check_later(order, wait_s)
        return
    if order.tx_dropped:  # found out now, as a client finds out once the blockhash is too old
        raise BlockhashExpired(
            f"not landed at a priority fee of {order.fee_lamports} lamports before its"
            " blockhash expired"
        )
    _confirm(_Steps(order, publisher), order, order.route, order.tx_hash, _faults(order))


def _faults(order: OrderRecord) -> Faults:
    """The seeded venue faults of the order's current attempt (and waiting check)."""
    settings = get_settings()
    return Faults.for_attempt(
        settings.market.order_engine_seed,
        str(order.id),
        order.attempts,
        settings.market,
        waiting_checks=order.waiting_checks,
    )


def _confirm(step: _Steps, order: OrderRecord, route, tx_hash: str, faults: Faults) -> None:
    """The transaction lands on the simulated pools; ``confirmed`` is recorded."""
    execution = venues.market().land(route, faults)
    landing = None
    if order.landing_slots is not None:
        landing = {
            "feeLamports": str(order.fee_lamports),
            "computeUnits": order.compute_units,
            "slots": order.landing_slots,
        }
    step(
        StatusChange.confirmed(
            tx_hash,
            route,
            execution.amount_out,
            execution.executed_price,
            order.token_out,
            order.attempts,
            landing,
            execution.amount_in if order.exact_out else None,
        )
    )
    auto_slippage.record(route, execution.amount_out)  # what "auto" slippage reads
    metrics.count("OrdersConfirmed")
    latency = datetime.now(UTC) - order.created_at
    metrics.milliseconds("SubmitToConfirmed", latency.total_seconds() * 1000)


def _summary(payload: dict) -> str:
    """The few payload fields worth a log line (the full payload is in the history)."""
    route = payload.get("route") or {}
    fields = {
        "route": route.get("reason"),
        "amountOut": payload.get("amountOut"),
        "txHash": payload.get("txHash"),
        "reason": payload.get("reason"),
    }
    return "".join(f" {k}={v}" for k, v in fields.items() if v)


def _expired(order: OrderRecord) -> bool:
    return order.expires_at is not None and order.expires_at <= datetime.now(UTC)
