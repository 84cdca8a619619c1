"""Per-client request rate limit, in Redis, taken in one Lua step (GCRA: a token bucket kept
as one number).

``ratelimit:{client}`` holds the client's theoretical arrival time, in ms of Redis's own clock
(so the function containers' clocks do not matter): each request moves it one interval
(``1000 / rate_limit_per_s``) on from now or from where it was, whichever is later, and is
refused when that lands more than ``rate_limit_burst`` intervals ahead of now; the wait until
it would not becomes the 429's ``Retry-After``. The same answers as a bucket of
``rate_limit_burst`` tokens refilled at ``rate_limit_per_s``, for three Redis calls a request
(TIME, GET, SET) where the bucket took four.
"""

import logging
import math

from chalicelib.backends.cache import redis_client
from chalicelib.backends.drivers import unavailable_as
from chalicelib.config import get_settings
from chalicelib.errors import DependencyUnavailable

log = logging.getLogger(__name__)

# KEYS[1]: the arrival time; ARGV: ms per request, burst. Returns ms to wait (0: admitted).
_TAKE = """
local interval, burst = tonumber(ARGV[1]), tonumber(ARGV[2])
local t = redis.call('TIME')
local now = t[1] * 1000 + t[2] / 1000
local due = math.max(tonumber(redis.call('GET', KEYS[1]) or now), now) + interval
local ahead = due - now
if ahead > burst * interval then return math.ceil(ahead - burst * interval) end
redis.call('SET', KEYS[1], tostring(due), 'PX', math.ceil(ahead))
return 0
"""


def take(client_id) -> int:
    """0 when the request may go on, else the seconds until the client has a token again.

    Redis being down lets the request through (logged): the stage's throttling in API
    Gateway still bounds the traffic, and an outage of the limiter is no outage of the API.
    """
    access = get_settings().access
    return _take(f"ratelimit:{client_id}", access.rate_limit_per_s, access.rate_limit_burst)


def take_connect(source_ip: str) -> int:
    """As ``take``, for a WebSocket ``$connect`` from the address, before any key is read."""
    push = get_settings().push
    return _take(
        f"ratelimit:connect:{source_ip}", push.ws_connect_rate_per_s, push.ws_connect_burst
    )


def _take(key: str, rate_per_s: float, burst: int) -> int:
    try:
        with unavailable_as("redis"):
            wait_ms = redis_client().register_script(_TAKE)(
                keys=[key], args=[1000 / rate_per_s, burst]
            )
    except DependencyUnavailable as e:
        log.warning("rate limit not applied to %s: %s", key, e)
        return 0
    return math.ceil(int(wait_ms) / 1000)
