"""``python -m bench.timed_runtime``: ``python -m localaws`` with every invocation's duration
logged, one ``invoked <function> <ms>ms`` line each, for invocation-seconds per order.

The emulator does not log its SQS, WebSocket and schedule invocations' durations, so this
launcher wraps the two places it calls the app from (``Functions.call`` for events, Chalice's
``LocalGateway.handle_request`` for REST) in the bench's own process and then runs the
emulator unchanged. The runtime's arguments are the emulator's.
"""

import functools
import logging
import sys
import time

from chalice.local import LocalGateway

from localaws import __main__ as localaws_main
from localaws.functions import Functions

log = logging.getLogger("localaws.invocation")


def _timed(method, function_name):
    @functools.wraps(method)
    def timed(self, *args, **kwargs):
        started = time.perf_counter()
        try:
            return method(self, *args, **kwargs)
        finally:
            elapsed_ms = (time.perf_counter() - started) * 1000
            log.info("invoked %s %.1fms", function_name(args, kwargs), elapsed_ms)

    return timed


Functions.call = _timed(Functions.call, lambda args, kwargs: args[0] if args else kwargs["name"])
LocalGateway.handle_request = _timed(
    LocalGateway.handle_request, lambda args, kwargs: f"rest:{kwargs.get('method', 'HTTP')}"
)

if __name__ == "__main__":
    sys.exit(localaws_main.main())
