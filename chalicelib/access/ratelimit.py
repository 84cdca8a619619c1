"""Per-client request rate limit: a token bucket in Redis, taken in one Lua step.

``ratelimit:{client}`` holds ``tokens`` and ``at`` (ms, Redis's own clock, so the function
containers' clocks do not matter). A request takes one token; the bucket refills at
``rate_limit_per_s`` up to ``rate_limit_burst``. An empty bucket answers how long until
the next token, which becomes the 429's ``Retry-After``.
"""

import logging
import math

from chalicelib.backends.cache import redis_client
from chalicelib.backends.drivers import unavailable_as
from chalicelib.config import get_settings
from chalicelib.errors import DependencyUnavailable

log = logging.getLogger(__name__)

# KEYS[1] bucket; ARGV: refill per second, burst. Returns ms to wait (0: a token was taken).
_TAKE = """
local rate, burst = tonumber(ARGV[1]), tonumber(ARGV[2])
local t = redis.call('TIME')
local now = t[1] * 1000 + math.floor(t[2] / 1000)
local b = redis.call('HMGET', KEYS[1], 'tokens', 'at')
local tokens = tonumber(b[1]) or burst
local at = tonumber(b[2]) or now
tokens = math.min(burst, tokens + math.max(0, now - at) * rate / 1000)
local wait = 0
if tokens >= 1 then tokens = tokens - 1 else wait = math.ceil((1 - tokens) * 1000 / rate) end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'at', now)
redis.call('PEXPIRE', KEYS[1], math.ceil(burst * 1000 / rate) + 1000)
return wait
"""


def take(client_id) -> int:
    """0 when the request may go on, else the seconds until the client has a token again.

    Redis being down lets the request through (logged): the stage's throttling in API
    Gateway still bounds the traffic, and an outage of the limiter is no outage of the API.
    """
    settings = get_settings()
    try:
        with unavailable_as("redis"):
            wait_ms = redis_client().register_script(_TAKE)(
                keys=[f"ratelimit:{client_id}"],
                args=[settings.access.rate_limit_per_s, settings.access.rate_limit_burst],
            )
    except DependencyUnavailable as e:
        log.warning("rate limit not applied to client %s: %s", client_id, e)
        return 0
    return math.ceil(int(wait_ms) / 1000)
