"""boto3 sessions and clients.

The one place where the engine knows that an AWS endpoint can be overridden: ``AWS_ENDPOINT_URL``
(or ``LOCALSTACK_HOST``) for SQS, ``WS_MANAGEMENT_ENDPOINT`` for the WebSocket management API.
Unset, both are real AWS.
"""

import os
import threading
from functools import lru_cache

import boto3
import botocore.loaders
import botocore.session
from botocore.config import Config

from chalicelib.config import Settings, get_settings

# Fail fast when the queue is unreachable: the API answers 503 (or records the order for
# the reaper) instead of hanging in botocore's default 60 s connect and 5 retries.
# A connection per thread that may call at once: the handlers of one process share a
# client, and botocore's default pool holds 10.
MAX_POOL_CONNECTIONS = 64
SQS_CLIENT_CONFIG = Config(
    connect_timeout=2,
    read_timeout=25,
    retries={"max_attempts": 2, "mode": "standard"},
    max_pool_connections=MAX_POOL_CONNECTIONS,
)


def management_client_config(settings: Settings) -> Config:
    """Pushes to WebSocket connections: a stuck post must not hold the order's publish lock
    for long (``ws_push_timeout_s`` < ``ws_lock_lease_s``), and is never retried: a post that
    timed out may still arrive, and a retry would deliver the frame twice (the replay job
    catches up)."""
    return Config(
        connect_timeout=2,
        read_timeout=settings.push.ws_push_timeout_s,
        retries={"max_attempts": 1, "mode": "standard"},
        max_pool_connections=MAX_POOL_CONNECTIONS,
    )


@lru_cache
def _loader() -> botocore.loaders.Loader:
    return botocore.loaders.create_loader()


def _core_session() -> botocore.session.Session:
    """A botocore session that reads service models and endpoint rules through this
    process's one loader: a session of its own loads (and keeps) its own copy, ~8 MiB."""
    core = botocore.session.get_session()
    core.register_component("data_loader", _loader())
    return core


class ConfiguredSession(boto3.session.Session):
    """A boto3 session whose clients get ``config``, merged under the caller's own:
    ``app.websocket_api`` makes its client itself, without a config."""

    def __init__(self, config: Config, **kwargs):
        super().__init__(botocore_session=_core_session(), **kwargs)
        self._config = config

    def client(self, service_name, **kwargs):  # noqa: D102 - boto3 signature
        given = kwargs.get("config")
        kwargs["config"] = self._config.merge(given) if given else self._config
        return super().client(service_name, **kwargs)


class EndpointSession(ConfiguredSession):
    """A boto3 session whose clients all talk to one endpoint, whatever they are given.

    ``app.websocket_api`` builds its management client with
    ``endpoint_url=https://{domain}/{stage}`` taken from the API Gateway event; an overridden
    management endpoint must win over that. localstack-client's Session forces endpoints the
    same way but yields to ``AWS_ENDPOINT_URL`` (which points at the queue), so it cannot
    send SQS and management calls to two places at once.
    """

    def __init__(self, endpoint_url: str, region_name: str, config: Config):
        super().__init__(
            config,
            aws_access_key_id="local",
            aws_secret_access_key="local",
            region_name=region_name,
        )
        self._endpoint_url = endpoint_url

    def client(self, service_name, **kwargs):  # noqa: D102 - boto3 signature
        kwargs["endpoint_url"] = self._endpoint_url
        return super().client(service_name, **kwargs)


def aws_session(settings: Settings | None = None) -> boto3.session.Session:
    """The session SQS clients come from."""
    settings = settings or get_settings()
    if settings.queue.aws_endpoint_url:
        return EndpointSession(
            settings.queue.aws_endpoint_url, settings.queue.aws_region, SQS_CLIENT_CONFIG
        )
    if os.environ.get("LOCALSTACK_HOST"):
        from localstack_client.session import Session  # dev dependency, local use only

        return Session(region_name=settings.queue.aws_region)
    return boto3.session.Session(
        botocore_session=_core_session(), region_name=settings.queue.aws_region
    )


MANAGEMENT_SECRET_HEADER = "X-Management-Secret"


def management_session(settings: Settings | None = None) -> boto3.session.Session:
    """The session ``app.websocket_api`` pushes through.

    An overridden endpoint (the local emulator) gets ``ws_management_secret`` in a header on
    every call: the emulator serves its management API on the public port and refuses a
    call without it. AWS signs the calls instead (SigV4), and needs no such header."""
    settings = settings or get_settings()
    config = management_client_config(settings)
    if not settings.push.ws_management_endpoint:
        return ConfiguredSession(config, region_name=settings.queue.aws_region)
    session = EndpointSession(
        settings.push.ws_management_endpoint, settings.queue.aws_region, config
    )
    if secret := settings.push.ws_management_secret:

        def add_secret(request, **_):
            request.headers[MANAGEMENT_SECRET_HEADER] = secret

        session.events.register("before-sign.apigatewaymanagementapi", add_secret)
    return session


_sqs_client_lock = threading.Lock()


def sqs_client():
    """This process's SQS client, created once: handler threads that need it at the same
    moment would otherwise each build one (a session and its loaded models, ~9 MiB each)."""
    with _sqs_client_lock:
        return _new_sqs_client()


@lru_cache
def _new_sqs_client():
    return aws_session().client("sqs", config=SQS_CLIENT_CONFIG)


def load_management_models(session: boto3.session.Session) -> None:
    """Load the management API's service model and endpoint rules into ``session`` (~8 MiB)
    by building a client and dropping it: the client ``app.websocket_api`` makes on its first
    push then costs a fraction of that. The endpoint does not matter, nothing is sent."""
    session.client("apigatewaymanagementapi", endpoint_url="https://warm-up.invalid")
