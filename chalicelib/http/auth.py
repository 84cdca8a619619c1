"""Who is calling: the API Gateway authorizer, and the caller's rate limit.

The authorizer turns ``Authorization: Bearer <key>`` into the key's client, the request's
principal. API Gateway caches its answer for ``auth_cache_ttl_s``; so does each execution
environment, keyed by the key's hash (the local gateway, like ``chalice local``, asks the
authorizer on every request): a key costs one lookup per environment and period, and a
revoked key still passes for up to the same period as behind API Gateway. ``caller`` is the
first line of every authenticated route: the principal, once its rate limit allows the request.
"""

import hashlib
import logging
import threading
import uuid
from functools import cache

from cachetools import TTLCache
from chalice import AuthResponse

from chalicelib.access import keys, ratelimit
from chalicelib.config import get_settings
from chalicelib.errors import DependencyUnavailable, TooManyRequests

log = logging.getLogger(__name__)

# The principal of a request whose key could not be checked (the database is down): let
# through the gateway only to be answered 503 by ``caller``, instead of the authorizer's own 500.
UNVERIFIED = "unverified"


@cache
def _answers() -> TTLCache:
    """key hash -> its client (None: refused), for ``auth_cache_ttl_s``; bounded, so a flood
    of made-up keys cannot grow it."""
    return TTLCache(maxsize=10_000, ttl=get_settings().access.auth_cache_ttl_s)


_answers_lock = threading.Lock()  # the handler threads of one environment share it


def _client_of(key: str | None) -> uuid.UUID | None:
    if key is None or not get_settings().access.auth_cache_ttl_s:
        return keys.client_of(key)
    digest = hashlib.sha256(key.encode()).digest()
    with _answers_lock:
        if digest in _answers():
            return _answers()[digest]
    client_id = keys.client_of(key)  # outside the lock: a slow lookup holds up no other
    with _answers_lock:
        _answers()[digest] = client_id
    return client_id


def authorize(auth_request) -> AuthResponse:
    """A key that is unknown, revoked or malformed is refused (403); no header is a 401."""
    try:
        client_id = _client_of(keys.bearer(auth_request.token))
    except DependencyUnavailable as e:
        log.warning("API key not checked: %s", e)
        return AuthResponse(routes=["*"], principal_id=UNVERIFIED)
    if client_id is None:
        return AuthResponse(routes=[], principal_id="anonymous")
    return AuthResponse(routes=["*"], principal_id=str(client_id))


def caller(request) -> uuid.UUID:
    """The client the authorizer admitted, once its rate limit allows the request."""
    principal = request.context["authorizer"]["principalId"]
    if principal == UNVERIFIED:
        raise DependencyUnavailable("database", "the API key was not checked")
    client_id = uuid.UUID(principal)
    wait_s = ratelimit.take(client_id)
    if wait_s:
        raise TooManyRequests("too many requests; retry after the Retry-After seconds", wait_s)
    return client_id
