"""Push order statuses to subscribed WebSocket connections: ``Notifier``, built once in ``app.py``
around ``app.websocket_api``.

Delivery is catch-up: a subscription remembers the last seq it delivered, and every push
sends the stored history after it, in seq order, then moves the mark. The worker calls
``Notifier.publish`` after each recorded status; a new subscriber gets ``replay`` (its own
catch-up).
Both run under a short per-order Redis lock, so two publishers never interleave: each
connection sees seq strictly increasing, without gap or duplicate, whatever the timing
between a subscribe, its replay and live statuses.

A gone connection (``WebsocketDisconnectedError``) loses all its subscriptions and is never
retried; any other push failure is logged and queued for a replay. Nothing here raises into
the worker: a push failure never fails an order.
"""

import logging
import threading
from collections.abc import Sequence
from enum import StrEnum

from chalice import WebsocketDisconnectedError
from chalice.app import WebsocketAPI

from chalicelib import logs, metrics
from chalicelib.backends import queue
from chalicelib.config import get_settings
from chalicelib.orders import store
from chalicelib.orders.records import HistoryRecord
from chalicelib.push import subscriptions as subs
from chalicelib.push.messages import status_message

log = logging.getLogger(__name__)


class Delivery(StrEnum):
    """How pushing to one connection went."""

    SENT = "sent"
    CONNECTING = "connecting"  # refused as gone, but its $connect may not have returned yet
    GONE = "gone"  # the connection is closed: its subscriptions are dropped
    UNSENT = "unsent"  # another failure: a replay job tries again


class Notifier:
    """Pushes through the app's WebSocket API. Nothing here raises: a push failure never
    fails an order."""

    def __init__(self, websocket_api: WebsocketAPI):
        self._api = websocket_api
        self._configured = False
        self._posted = False
        self._first_post = threading.Lock()

    def send(self, connection_id: str, message: str) -> Delivery:
        """Post one message: SENT, GONE (the connection is closed) or UNSENT."""
        try:
            self._post(connection_id, message)
            return Delivery.SENT
        except WebsocketDisconnectedError:
            metrics.count("PushesGone")
            return Delivery.GONE
        except Exception as e:  # a push failure must never escape
            log.warning("push to connection %s failed: %r", connection_id, e)
            metrics.count("PushesFailed")
            return Delivery.UNSENT

    def close(self, connection_id: str) -> None:
        """Close the connection (its ``$disconnect`` follows); never raises."""
        try:
            self._configure()
            self._api.close(connection_id)
        except WebsocketDisconnectedError:
            pass
        except Exception as e:
            log.warning("closing connection %s failed: %r", connection_id, e)

    def _post(self, connection_id: str, message: str) -> None:
        """Chalice makes its management client on the first send, unguarded: handler threads
        pushing at once would each make one (~1 MiB apiece, kept by the allocator). Until a
        post has been tried, posts go one at a time, so there is one per process."""
        if self._posted:
            self._api.send(connection_id, message)
            return
        with self._first_post:
            try:
                self._api.send(connection_id, message)
            except ValueError:  # no endpoint configured yet: no client was made
                raise
            except Exception:  # answered or failed, the client exists now
                self._posted = True
                raise
            self._posted = True

    def _configure(self) -> None:
        """Point the WebSocket API at the endpoint recorded by the WebSocket handlers.

        Chalice configures it only inside WebSocket handlers; the worker is an SQS handler.
        Configuring is a no-op once an endpoint is set, so one look in Redis per process.
        """
        if self._configured:
            return
        endpoint = subs.endpoint()
        stage = endpoint.get("stage")
        if not stage:
            return
        self._configured = True
        if endpoint.get("apiId"):
            try:
                self._api.configure_from_api_id(endpoint["apiId"], stage)
                return
            except ValueError:  # no region known: fall back on the domain name
                pass
        if endpoint.get("domain"):
            self._api.configure(endpoint["domain"], stage)

    def _deliver(self, order_id: str, connection_id: str, last: int, entries) -> Delivery:
        """Send ``entries`` after ``last`` to one connection and record how far it got."""
        with logs.bind(orderId=order_id, connectionId=connection_id):
            return self._deliver_entries(order_id, connection_id, last, entries)

    def _deliver_entries(self, order_id: str, connection_id: str, last: int, entries) -> Delivery:
        sent, outcome, terminal = last, Delivery.SENT, False
        for entry in entries:
            if entry.seq <= sent:
                continue
            outcome = self.send(connection_id, status_message(order_id, entry))
            if outcome != Delivery.SENT:
                break
            sent, terminal = entry.seq, entry.status.terminal
        if outcome == Delivery.GONE:
            if sent == last and _is_connecting(connection_id):
                return (
                    Delivery.CONNECTING
                )  # not open yet: the replay queued on $connect will catch up
            log.info("connection %s is gone; dropping its subscriptions", connection_id)
            subs.remove_connection(connection_id)
            return Delivery.GONE
        if sent > last:
            # A terminal status delivered ends the subscription; the socket stays open (it
            # may watch other orders).
            subs.delivered(connection_id, order_id, sent, done=terminal)
        return outcome

    def publish(self, order_id, latest: Sequence[HistoryRecord] = ()) -> None:
        """Catch every subscriber of the order up with its history.

        ``latest``: the rows just recorded, in seq order; when they are all any subscriber
        lacks, the history is not read back, and when the order was not watched as the last
        was written, nobody is looked for (``store.watch``). Otherwise the subscribers are
        read on every publish: one who subscribed after the previous status gets this one
        live."""
        order_id = str(order_id)
        if latest and not latest[-1].watched:
            return  # nobody had subscribed when it was written: a subscriber since caught up
        try:
            connection_ids = subs.connections(order_id)
            if not connection_ids:
                return
            self._configure()
            with subs.order_lock(order_id):
                # Read before the lock, and enough: only the cursors, read under it, say what
                # to send. A subscription added since has a replay of its own to catch it up;
                # one dropped since has no cursor left.
                cursors = subs.cursors(order_id, connection_ids)
                if not cursors:
                    return
                since = min(cursors.values())
                if latest and latest[0].seq - 1 <= since:  # what they lack is all in latest
                    entries = [entry for entry in latest if entry.seq > since]
                else:
                    entries = store.history(order_id, since=since)
                outcomes = {
                    connection_id: self._deliver(order_id, connection_id, last, entries)
                    for connection_id, last in cursors.items()
                }
        except Exception:  # a push failure never fails the order
            log.exception("publishing order %s failed", order_id)
            # Nothing may publish this order again (the status may be terminal): each
            # subscriber gets a replay job, which catches it up from its own cursor.
            try:
                for connection_id in subs.connections(order_id):
                    _queue_replay(connection_id, order_id)
            except Exception:
                log.exception("could not queue replays of order %s", order_id)
            return
        for connection_id, outcome in outcomes.items():
            if outcome == Delivery.UNSENT:
                _queue_replay(connection_id, order_id)

    def replay(self, order_id, connection_id: str) -> bool:
        """Catch one connection up with the order's history after its last delivered seq.

        True when done (or nothing left to do: unsubscribed, gone); False to try again later
        (the connection is not open yet, or a transient failure).
        """
        order_id = str(order_id)
        try:
            self._configure()
            with subs.order_lock(order_id):
                last = subs.cursors(order_id, [connection_id]).get(connection_id)
                if last is None:
                    return True
                entries = store.history(order_id, since=last)
                outcome = self._deliver(order_id, connection_id, last, entries)
        except subs.LockBusy:
            log.warning("replay of order %s to %s: lock busy, later", order_id, connection_id)
            return False
        except Exception:
            log.exception("replay of order %s to %s failed", order_id, connection_id)
            return False
        return outcome in (Delivery.SENT, Delivery.GONE)


def _is_connecting(connection_id: str) -> bool:
    age = subs.age_s(connection_id)
    return age is not None and age < get_settings().push.ws_connect_grace_s


def _queue_replay(connection_id: str, order_id: str) -> None:
    try:
        last = subs.cursors(order_id, [connection_id]).get(connection_id)
        if last is not None:
            queue.send_replay(connection_id, order_id, last)
    except Exception:
        log.exception("could not queue a replay of order %s to %s", order_id, connection_id)
