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
import re
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from datetime import UTC, datetime, timedelta

from chalicelib import logs, metrics
from chalicelib.backends import queue
from chalicelib.backends.cache import cached_snapshot
from chalicelib.config import Settings, get_settings
from chalicelib.dex import DexError, Faults, NoRoute, get_market, router
from chalicelib.orders import store
from chalicelib.orders.models import OrderStatus
from chalicelib.orders.records import OrderRecord, StatusChange
from chalicelib.push.notify import Notifier

log = logging.getLogger(__name__)

FLOW = list(OrderStatus)  # the statuses in lifecycle order
UUID_RE = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", re.I)

# Why an order failed, as a short code from a bounded set (the ``Reason`` metric dimension;
# the free text is in the order): a venue error's ``DexError.code``, or one of these.
ATTEMPTS_EXHAUSTED = "attempts_exhausted"
DEAD_LETTERED = "dead_lettered"
UNREADABLE_MESSAGE = "unreadable_message"
STUCK = "stuck"
MAX_PRICE_EXCEEDED = "max_price_exceeded"
SNIPER = "sniper"


class LostRace(Exception):
    """Another delivery moved the order on; this one stops without writing."""


def process_batch(event, notifier: Notifier) -> dict:
    """The SQS handler: returns the messages to redeliver (ReportBatchItemFailures)."""
    records = list(event)
    # A batch's orders run side by side, so the venues' simulated latency is paid once per
    # batch, not once per order.
    # Each order runs in a copy of the invocation's context: its log fields and metrics.
    # Their status writes share transactions (``commit_group``).
    contexts = [contextvars.copy_context() for _ in records]
    group = store.new_commit_group()
    with ThreadPoolExecutor(max_workers=max(1, len(records)), thread_name_prefix="order") as ex:
        done = list(ex.map(lambda c, r: c.run(_handle_in, group, r, notifier), contexts, records))
    log.debug("batch of %d: %d commits of status writes", len(records), group.commits)
    failures = [
        {"itemIdentifier": r.to_dict()["messageId"]}
        for r, ok in zip(records, done, strict=True)
        if not ok
    ]
    return {"batchItemFailures": failures}


def _handle_in(group, record, notifier: Notifier) -> bool:
    token = group.join()
    try:
        return _handle(record, notifier)
    finally:
        group.leave(token)


def _handle(record, notifier: Notifier) -> bool:
    """Process one message; True when it may be deleted."""
    message_id = record.to_dict().get("messageId")
    with logs.bind(messageId=message_id):
        try:
            return _dispatch(record, notifier)
        except Exception:
            # Postgres or SQS down, a bug: the queue redelivers after the visibility timeout,
            # the attempt budget and the DLQ bound how often. Never the whole batch.
            log.exception("message %s failed; it will be redelivered", message_id)
            return False


def _dispatch(record, notifier: Notifier) -> bool:
    try:
        message = json.loads(record.body)
        kind = message["kind"]
        order_id = str(message["orderId"])
    except (ValueError, KeyError, TypeError) as e:
        _poison(record.body, f"unreadable message: {e!r}", notifier)
        return True
    logs.update(orderId=order_id)
    if kind == "order":
        return _run_order(order_id, record.receipt_handle, notifier)
    if kind == "replay":
        sent = notifier.replay(order_id, message["connectionId"])
        # A replay is given up on before the queue would move it to the DLQ (whose
        # handler fails the orders it names): a subscriber's trouble never fails an order.
        settings = get_settings()
        attributes = record.to_dict().get("attributes", {})
        receive_count = int(attributes.get("ApproximateReceiveCount", 1))
        if sent or receive_count >= min(settings.replay_tries, settings.max_receive_count - 1):
            return True
        queue.retry_later(record.receipt_handle, 1)
        return False
    _poison(record.body, f"unknown message kind {kind!r}", notifier)
    return True


def _poison(body: str, reason: str, notifier: Notifier) -> None:
    log.error("dead-lettering message: %s", reason)
    queue.dead_letter(body, reason)
    _fail_named(body, reason, UNREADABLE_MESSAGE, notifier)


def _fail_named(body: str | None, reason: str, code: str, notifier: Notifier) -> None:
    """Fail the order a dead message names, unless a worker holds it right now: that
    delivery finishes it, or the reaper does once its lease has run out."""
    named = _named_order(body)
    if named is None:
        return
    if store.is_leased(named):
        log.warning("order %s is being worked on; not failing it for: %s", named, reason)
        return
    fail_order(named, reason, code, notifier)


def _named_order(body: str | None) -> str | None:
    """The order a dead message was about, if any. A replay job names a subscriber's
    order, not work on it: losing one must not fail the order."""
    try:
        message = json.loads(body or "")
    except ValueError:
        message = None
    if isinstance(message, dict) and message.get("kind") == "replay":
        return None
    named = UUID_RE.search(body or "")
    return named.group(0) if named else None


def _run_order(order_id: str, receipt_handle: str, notifier: Notifier) -> bool:
    settings = get_settings()
    order = store.claim(order_id, settings.lease_s)
    if order is None:
        current = store.get_order(order_id)
        if current is None or current.status.terminal:
            return True
        # Another delivery of this order is running: look again when its lease ends.
        queue.retry_later(receipt_handle, settings.lease_s)
        return False
    try:
        return _run_claimed(order, receipt_handle, notifier)
    finally:
        if order.type == SNIPER:
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


def _run_claimed(order: OrderRecord, receipt_handle: str, notifier: Notifier) -> bool:
    settings = get_settings()
    order_id, attempt = str(order.id), order.attempts
    logs.update(attempt=attempt, status=order.status)
    if attempt > settings.max_attempts:
        reason = f"gave up after {settings.max_attempts} attempts: {order.last_error}"
        fail_order(order_id, reason, ATTEMPTS_EXHAUSTED, notifier)
        return True
    try:
        if order.tx_in_flight:
            _check_landing(order, notifier)
        else:
            metrics.count("OrderAttempts")  # a landing check is no new attempt
            _attempt(order, notifier)
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
            delay = _waiting_retry_delay(order.waiting_faults, settings)
            metrics.count("OrderRetries", Reason=e.code)
            log.info("order %s waits: %s; checking again in %ss", order_id, e, delay)
            queue.send_order(order_id, delay_s=delay)
            return True
        if not e.transient or attempt >= settings.max_attempts:
            fail_order(order_id, str(e), e.code, notifier)
            return True
        delay = settings.retry_base_delay_s * 2 ** (attempt - 1)
        metrics.count("OrderRetries", Reason=e.code)
        log.info("order %s attempt %d: %s; retrying in %ss", order_id, attempt, e, delay)
        store.release(order_id, order.lease_until, error=str(e))
        queue.retry_later(receipt_handle, delay)
        return False


class _Steps:
    """Records an order's statuses from the seq it was read at, and pushes each one."""

    def __init__(self, order: OrderRecord, notifier: Notifier):
        self.order_id, self.seq, self._notifier = str(order.id), order.last_seq, notifier
        self._recorded = FLOW.index(order.status)

    def reached(self, status: OrderStatus) -> bool:
        return self._recorded >= FLOW.index(status)

    def __call__(self, change: StatusChange) -> None:
        new_seq = store.advance(self.order_id, self.seq, change)
        if new_seq is None:
            raise LostRace(self.order_id)
        self.seq = new_seq
        logs.update(status=change.status)
        summary = _summary(change.payload)
        log.info("order %s %s seq=%d%s", self.order_id, change.status, new_seq, summary)
        self._notifier.publish(self.order_id)


def _attempt(order: OrderRecord, notifier: Notifier) -> None:
    """One attempt, resumed from the order's recorded status, up to sending the transaction."""
    settings = get_settings()
    order_id, attempt = str(order.id), order.attempts
    step = _Steps(order, notifier)
    token_in, token_out = order.token_in, order.token_out
    faults = _faults(order)
    market = get_market(settings)

    # A limit order waits in ``open`` until the route at its size meets its limit; a sniper
    # order until its token's pool trades and its turn in the line comes.
    waiting = order.waits and not step.reached(OrderStatus.ROUTING)
    if waiting and _expired(order):
        expire_order(order_id, notifier)
        return
    if waiting and not step.reached(OrderStatus.OPEN):
        step(StatusChange.opened(order))
    if not waiting and not step.reached(OrderStatus.ROUTING):
        step(StatusChange.routing(order.venues, attempt))
    if waiting and order.type == SNIPER:
        head = store.sniper_line_head(token_out.mint)
        if head is None or head.id != order.id:
            log.info("order %s waits its turn behind %s", order_id, head and head.id)
            store.release_waiting(order_id, order.lease_until)
            return
    try:
        snapshots = router.quote_venues(
            market,
            token_in,
            token_out,
            list(order.venues),
            faults=faults,
            # A new pool moves with every sniper's trade: read it, never a cached copy.
            fetch=None
            if order.type == SNIPER
            else lambda venue, a, b: cached_snapshot(
                venue, a, b, lambda v, x, y: market.snapshot(v, x, y, faults)
            ),
        )
        route = router.best_route(
            snapshots,
            token_in,
            token_out,
            order.amount_in,
            order.slippage_bps,
            settings.quote_valid_slots,
        )
    except DexError as e:
        if not waiting or e.transient or not _waits_on(order, e):
            raise  # a transient fault of a waiting order: see _run_claimed
        log.info("order %s waits: %s", order_id, e)
        store.release_waiting(order_id, order.lease_until)
        return
    if order.limit_min_out is not None:
        if waiting and order.type == SNIPER and route.out_amount < order.limit_min_out:
            fail_order(order_id, f"the price is above maxPrice {order.max_price}: "
                       f"{route.out_amount} out < {order.limit_min_out}", MAX_PRICE_EXCEEDED,
                       notifier)  # fmt: skip
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
        step(StatusChange.building(route))

    market.submit(route)
    signature, delay_s = faults.signature(), market.landing_delay_s(faults)
    lands_at = datetime.now(UTC) + timedelta(seconds=delay_s)
    if not step.reached(OrderStatus.SUBMITTED):
        step(StatusChange.submitted(signature, route, lands_at))
    else:  # a retried attempt sends a new transaction; its status was recorded already
        moved = store.update_fields(
            order_id,
            order.lease_until,
            tx_hash=signature,
            route=route.to_dict(),
            tx_lands_at=lands_at,
        )
        if not moved:  # our lease ran out and another delivery holds the order now
            raise LostRace(order_id)
    if delay_s > 0:
        _check_later(order, delay_s)
    else:  # landed already (no simulated latency): nothing to wait for, no message to send
        _confirm(step, order, route, signature, faults)


def _waits_on(order: OrderRecord, error: DexError) -> bool:
    """Whether a waiting order whose route cannot be formed yet goes on waiting. A limit
    order does whatever the reason (no pool, a guard's refusal): the check job treats the
    same as "not yet" and a later price may pass. A sniper order waits for its pool to
    trade (``NoRoute``); a guard's refusal once it trades fails it, as a price beyond
    maxPrice does: it heads its token's line, and a new pool moves only with the line's
    own fills, so waiting would hold up every order behind it for good."""
    return order.type != SNIPER or isinstance(error, NoRoute)


def _waiting_retry_delay(faults_before: int, settings: Settings) -> int:
    """The base delay, doubled for each fault in a row before this one, capped."""
    cap = settings.waiting_retry_max_delay_s
    return min(settings.retry_base_delay_s * 2 ** min(faults_before, 16), cap)


def _check_later(order: OrderRecord, delay_s: float) -> None:
    """A delayed message brings the delivery that checks the transaction; this one ends.
    The lease goes first (if still ours), or a quick check would find the order still held.
    A crash between the two leaves an in-flight order with no message: the reaper sends one."""
    store.release(order.id, order.lease_until)
    queue.send_order(str(order.id), delay_s=math.ceil(max(0.0, delay_s)))


def _check_landing(order: OrderRecord, notifier: Notifier) -> None:
    """The transaction was sent: record ``confirmed`` once it has landed, or look again."""
    wait_s = (order.tx_lands_at - datetime.now(UTC)).total_seconds()
    if wait_s > 0:  # came early (a duplicate message, the reaper): look again then
        _check_later(order, wait_s)
        return
    _confirm(_Steps(order, notifier), order, order.route, order.tx_hash, _faults(order))


def _faults(order: OrderRecord) -> Faults:
    """The seeded venue faults of the order's current attempt (and waiting check)."""
    settings = get_settings()
    return Faults.for_attempt(
        settings.order_engine_seed,
        str(order.id),
        order.attempts,
        settings,
        waiting_checks=order.waiting_checks,
    )


def _confirm(step: _Steps, order: OrderRecord, route, tx_hash: str, faults: Faults) -> None:
    """The transaction lands on the simulated pools; ``confirmed`` is recorded."""
    execution = get_market(get_settings()).land(route, faults)
    step(
        StatusChange.confirmed(
            tx_hash,
            route,
            execution.amount_out,
            execution.executed_price,
            order.token_out,
            order.attempts,
        )
    )
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


def fail_order(order_id: str, reason: str, code: str, notifier: Notifier) -> None:
    """Record ``failed`` with the reason (``code``: its short form, for the metric), unless
    the order is already terminal or unknown."""
    with logs.bind(orderId=order_id):
        for _ in range(3):  # a concurrent status change moves last_seq: read it again
            order = store.get_order(order_id)
            if order is None or order.status.terminal:
                return
            change = StatusChange.failed(reason, order.attempts)
            seq = store.advance(order.id, order.last_seq, change)
            if seq is not None:
                logs.update(attempt=order.attempts, status=OrderStatus.FAILED, reason=code)
                log.info("order %s failed seq=%d: %s", order_id, seq, reason)
                metrics.count("OrdersFailed", Reason=code)
                notifier.publish(order_id)
                return
        log.error("order %s could not be failed (%s)", order_id, reason)


def _expired(order: OrderRecord) -> bool:
    return order.expires_at is not None and order.expires_at <= datetime.now(UTC)


def expire_order(order_id: str, notifier: Notifier) -> bool:
    """Record ``expired`` for a limit order still waiting past its expiry; False when it
    moved on (it triggered, or was cancelled) in the meantime."""
    with logs.bind(orderId=order_id):
        for _ in range(3):  # a concurrent status change moves last_seq: read it again
            order = store.get_order(order_id)
            if order is None or order.status not in (OrderStatus.PENDING, OrderStatus.OPEN):
                return False
            seq = store.advance(order.id, order.last_seq, StatusChange.expired(order.expires_at))
            if seq is not None:
                log.info("order %s expired seq=%d", order_id, seq)
                metrics.count("OrdersExpired")
                notifier.publish(order_id)
                return True
        return False


def record_dead_letters(event, notifier: Notifier) -> None:
    """The DLQ handler: an order whose message was dead-lettered is failed with the reason.

    It never raises: a raise would have the DLQ redeliver the whole batch every 30 s for its
    14 days of retention, and a retry cannot do better than the reaper, which fails (or
    enqueues again) every order left unfinished past ``reaper_deadline_s``. So a record that
    cannot be handled is logged (ERROR, with its body) and dropped.
    """
    for record in event:
        message = record.to_dict()
        try:
            attrs = message.get("messageAttributes", {})
            reason = attrs.get("reason", {}).get("stringValue") or "message dead-lettered"
            _fail_named(record.body, reason, DEAD_LETTERED, notifier)
        except Exception:
            log.exception("dead letter %s dropped: %.200s", message["messageId"], record.body)
