"""``python -m localaws.sqs_server PORT``: moto's SQS on 127.0.0.1:PORT, in a process of its own
(SQS is a service of its own in AWS, and moto's server would otherwise share the gateway's
interpreter). It prints ``ready`` once it listens and runs until its standard input closes: the
runtime closes it to stop the server, and a runtime killed outright closes it too, so no server
outlives it.

Three things make moto's stock server slow under a burst (figures in docs/BENCHMARKS.md,
"The SQS emulator") or lose a message in one, and this server avoids them:

- ``moto.server`` serves every service behind a dispatcher that matches each request's host
  against every service's URL patterns, under one global lock, and werkzeug's development
  server closes the connection after every response (a new TCP connection and thread per
  call). Only SQS is asked of this server: it serves moto's SQS application alone, under
  waitress, which keeps connections alive and answers from a pool of threads.
- moto's SQS reads the clock through ``datetime`` arithmetic (~10 us a call) several times per
  queued message on every send and receive, and each received message recomputes every queue
  attribute, message counts included. So a call costs O(queue depth) with a large constant,
  a receive O(depth x batch): 26-47 ms a send and 0.7-1 s a receive at a depth of 1,000. The clock
  here is ``time.time()`` (the same value: seconds since the epoch), and the retention check
  reads the one attribute it needs (``faster_moto``).
- moto's SQS backend is not thread-safe (a message sent while another is deleted can be lost):
  every call runs under one lock, and a long poll waits outside it.
"""

import functools
import json
import sys
import threading
import time
from collections import Counter

from waitress import wasyncore
from waitress.server import create_server

# Enough request threads for every long poll at once (a runtime's pollers, the tests' and the
# bench's clients) with room for the sends beside them.
THREADS = 64


# moto's SQS backend is not thread-safe: DeleteMessage rebuilds a queue's message list
# without the lock SendMessage appends under, so a message sent meanwhile is lost, and two
# receives at once can hand out the same message or fail ("Set changed size during
# iteration"). Every call runs under this lock; a long poll waits outside it.
_CALLS = threading.RLock()
# The SQS calls served, by backend method (a batch call counts once): ``GET /_calls`` answers
# them as JSON, for the bench's calls per order.
CALLS: Counter[str] = Counter()
CALLS_PATH = "/_calls"
_inside = threading.local()  # a batch call runs the single one: only the outer one counts
_SERIALIZED = (
    "create_queue", "get_queue_url", "list_queues", "delete_queue", "get_queue_attributes",
    "set_queue_attributes", "send_message", "send_message_batch", "delete_message",
    "delete_message_batch", "change_message_visibility", "change_message_visibility_batch",
    "purge_queue", "list_dead_letter_source_queues", "tag_queue", "untag_queue",
)  # fmt: skip


def faster_moto() -> None:
    """moto's SQS, one call at a time, with a cheap clock and a retention check of O(1)."""
    import moto.sqs.models as models

    backend = models.SQSBackend
    if getattr(backend, "_serialized", False):
        return
    models.unix_time = time.time
    models.unix_time_millis = lambda: time.time() * 1000.0

    def is_message_valid_based_on_retention_period(self, queue_name: str, message) -> bool:
        retention_s = int(self.get_queue(queue_name).message_retention_period)
        return retention_s + message.sent_timestamp / 1000 > time.time()

    backend.is_message_valid_based_on_retention_period = is_message_valid_based_on_retention_period
    for name in _SERIALIZED:
        setattr(backend, name, _serialized(getattr(backend, name)))
    backend.receive_message = _long_poll(backend.receive_message)
    backend._serialized = True


def _serialized(method):
    @functools.wraps(method)
    def call(*args, **kwargs):
        with _CALLS:
            outer = not getattr(_inside, "depth", 0)
            if outer:
                CALLS[method.__name__] += 1
            _inside.depth = getattr(_inside, "depth", 0) + 1
            try:
                return method(*args, **kwargs)
            finally:
                _inside.depth -= 1

    return call


def _long_poll(receive):
    """ReceiveMessage: an immediate receive under the lock, then, while nothing came and the
    wait lasts, the queue's own wait for a visible message (at most a second at a time,
    since a delayed message turning visible wakes nobody), outside the lock."""

    @functools.wraps(receive)
    def receive_message(self, queue_name, count, wait_seconds_timeout, visibility_timeout,
                        *args, **kwargs):  # fmt: skip
        deadline = time.monotonic() + (wait_seconds_timeout or 0)
        while True:
            with _CALLS:
                messages = receive(self, queue_name, count, 0, visibility_timeout, *args, **kwargs)
            left = deadline - time.monotonic()
            if messages or left <= 0:
                with _CALLS:  # an idle poller's empty receives apart from the ones that got some
                    CALLS["receive_message" if messages else "receive_message_empty"] += 1
                return messages
            self.get_queue(queue_name).wait_for_messages(min(1.0, left))

    return receive_message


def _with_call_counts(app):
    """The SQS application, and ``GET /_calls``: the calls served so far."""

    def serve(environ, start_response):
        if environ.get("PATH_INFO") != CALLS_PATH:
            return app(environ, start_response)
        with _CALLS:
            body = json.dumps(CALLS).encode()
        start_response("200 OK", [("Content-Type", "application/json"),
                                  ("Content-Length", str(len(body)))])  # fmt: skip
        return [body]

    return serve


class Server:
    """moto's SQS application under waitress, answering in a thread of its own."""

    def __init__(self, port: int, host: str = "127.0.0.1"):
        from moto.moto_server.werkzeug_app import create_backend_app

        faster_moto()
        self._sockets: dict = {}  # waitress's socket map: the loop runs while it holds any
        self._server = create_server(
            _with_call_counts(create_backend_app("sqs")),
            map=self._sockets,
            host=host,
            port=port,
            threads=THREADS,
            ident="moto-sqs",
        )
        self._thread = threading.Thread(target=self._server.run, name="sqs-server", daemon=True)
        self._thread.start()

    def shutdown(self) -> None:
        # The sockets are closed by the loop's own thread (waitress's trigger runs the thunk
        # there): closed from this one, the loop's next select() meets a closed descriptor.
        server = self._server
        if not self._thread.is_alive():  # stopped already: its trigger is closed
            return
        server.trigger.pull_trigger(lambda: wasyncore.close_all(self._sockets))
        self._thread.join(5)
        server.task_dispatcher.shutdown()


def serve(port: int, host: str = "127.0.0.1") -> Server:
    """The server, answering; ``shutdown()`` stops it."""
    return Server(port, host)


def main() -> None:
    server = serve(int(sys.argv[1]))
    print("ready", flush=True)
    sys.stdin.read()
    server.shutdown()


if __name__ == "__main__":
    main()
