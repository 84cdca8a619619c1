"""Who is calling: the API Gateway authorizer, and the caller's rate limit.

The authorizer turns ``Authorization: Bearer <key>`` into the key's client, the request's
principal (API Gateway caches its answer for ``auth_cache_ttl_s``). ``caller`` is the first
line of every authenticated route: the principal, once its rate limit allows the request.
"""

import logging
import uuid

from chalice import AuthResponse

from chalicelib.access import keys, ratelimit
from chalicelib.errors import DependencyUnavailable, TooManyRequests

log = logging.getLogger(__name__)

# The principal of a request whose key could not be checked (the database is down): let
# through the gateway only to be answered 503 by ``caller``, instead of the authorizer's own 500.
UNVERIFIED = "unverified"


def authorize(auth_request) -> AuthResponse:
    """A key that is unknown, revoked or malformed is refused (403); no header is a 401."""
    try:
        client_id = keys.client_of(keys.bearer(auth_request.token))
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
