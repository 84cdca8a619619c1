"""Messages the worker cannot process: they go to the DLQ, and the orders they name fail.

``poison`` is the worker's: a message it cannot read is moved to the DLQ with the reason.
``handle`` is the DLQ's own handler: an order whose message was dead-lettered (unreadable, or
received ``max_receive_count`` times) is failed with the reason, unless a worker holds it
right now (that delivery finishes it, or the reaper does once its lease has run out).
"""

import json
import logging
import re

from chalicelib.backends import queue
from chalicelib.orders import moves, store
from chalicelib.orders.lifecycle import Actor
from chalicelib.orders.moves import Publisher

log = logging.getLogger(__name__)

UUID_RE = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", re.I)
DEAD_LETTERED = "dead_lettered"
UNREADABLE_MESSAGE = "unreadable_message"


def poison(body: str, reason: str, publisher: Publisher) -> None:
    log.error("dead-lettering message: %s", reason)
    queue.dead_letter(body, reason)
    _fail_named(body, reason, UNREADABLE_MESSAGE, publisher)


def _fail_named(body: str | None, reason: str, code: str, publisher: Publisher) -> None:
    named = _named_order(body)
    if named is None:
        return
    if store.is_leased(named):
        log.warning("order %s is being worked on; not failing it for: %s", named, reason)
        return
    moves.fail(named, reason, code, Actor.DEAD_LETTER, publisher)


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


def handle(event, publisher: Publisher) -> None:
    """The DLQ handler. It never raises: a raise would have the DLQ redeliver the whole batch
    every 30 s for its 14 days of retention, and a retry cannot do better than the reaper,
    which fails (or enqueues again) every order left unfinished past ``reaper_deadline_s``.
    So a record that cannot be handled is logged (ERROR, with its body) and dropped.
    """
    for record in event:
        message = record.to_dict()
        try:
            attrs = message.get("messageAttributes", {})
            reason = attrs.get("reason", {}).get("stringValue") or "message dead-lettered"
            _fail_named(record.body, reason, DEAD_LETTERED, publisher)
        except Exception:
            log.exception("dead letter %s dropped: %.200s", message["messageId"], record.body)
