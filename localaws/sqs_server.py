"""``python -m localaws.sqs_server PORT``: moto's SQS on 127.0.0.1:PORT, in a process of its own
(SQS is a service of its own in AWS, and moto's server would otherwise share the gateway's
interpreter). It prints ``ready`` once it listens and runs until its standard input closes: the
runtime closes it to stop the server, and a runtime killed outright closes it too, so no server
outlives it.

Two things make moto's stock server slow under a burst (figures in docs/BENCHMARKS.md,
"The SQS emulator"), and this server avoids both:

- ``moto.server`` serves every service behind a dispatcher that matches each request's host
  against every service's URL patterns, under one global lock, and werkzeug's development
  server closes the connection after every response (a new TCP connection and thread per
  call). Only SQS is asked of this server: it serves moto's SQS application alone, under
  waitress, which keeps connections alive and answers from a pool of threads.
- moto's SQS reads the clock through ``datetime`` arithmetic (~10 us a call) several times per
  queued message on every send and receive, and each received message recomputes every queue
  attribute, message counts included. So a call costs O(queue depth) with a large constant,
  a receive O(depth x batch): 26 ms a send and 670 ms a receive at a depth of 1,000. The clock
  here is ``time.time()`` (the same value: seconds since the epoch), and the retention check
  reads the one attribute it needs (``faster_moto``).
"""

import sys
import threading
import time

from waitress.server import create_server

# Enough request threads for every long poll at once (a runtime's pollers, the tests' and the
# bench's clients) with room for the sends beside them.
THREADS = 64


def faster_moto() -> None:
    """moto's SQS with a cheap clock and a retention check of O(1); behaviour unchanged."""
    import moto.sqs.models as models

    models.unix_time = time.time
    models.unix_time_millis = lambda: time.time() * 1000.0

    def is_message_valid_based_on_retention_period(self, queue_name: str, message) -> bool:
        retention_s = int(self.get_queue(queue_name).message_retention_period)
        return retention_s + message.sent_timestamp / 1000 > time.time()

    models.SQSBackend.is_message_valid_based_on_retention_period = (
        is_message_valid_based_on_retention_period
    )


class Server:
    """moto's SQS application under waitress, answering in a thread of its own."""

    def __init__(self, port: int, host: str = "127.0.0.1"):
        from moto.moto_server.werkzeug_app import create_backend_app

        faster_moto()
        self._server = create_server(
            create_backend_app("sqs"), host=host, port=port, threads=THREADS, ident="moto-sqs"
        )
        self._thread = threading.Thread(target=self._server.run, name="sqs-server", daemon=True)
        self._thread.start()

    def shutdown(self) -> None:
        self._server.close()
        self._server.task_dispatcher.shutdown()
        self._thread.join(5)


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
