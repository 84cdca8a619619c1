"""Every setting, read from the environment in one place and grouped by concern.

``get_settings()`` is the one object the engine reads them through: ``settings.storage``,
``.queue``, ``.push``, ``.lifecycle``, ``.access``, ``.market`` and ``.logging``. Each field is
set by the environment variable of its name in upper case (``DATABASE_URL``,
``ORDER_ENGINE_SEED``...), whatever its group. Chalice stages set them in
``.chalice/config.json``; anything that runs the engine elsewhere sets them in the process env.
Orderings between settings that must hold are checked when they load.
"""

from collections.abc import Mapping
from decimal import Decimal
from functools import cache, lru_cache
from typing import Annotated, Any, Literal

from pydantic import AliasChoices, BaseModel, ConfigDict, Field, model_validator
from pydantic_settings import BaseSettings, EnvSettingsSource, SettingsConfigDict


class _Group(BaseSettings):
    model_config = SettingsConfigDict(extra="ignore", frozen=True)


def _before(group: BaseModel, smaller: str, larger: str, strict: bool = True) -> None:
    a, b = getattr(group, smaller), getattr(group, larger)
    if a > b or (strict and a == b):
        relation = "below" if strict else "at most"
        raise ValueError(f"{smaller.upper()} ({a}) must be {relation} {larger.upper()} ({b})")


class StorageSettings(_Group):
    database_url: str = "postgresql://postgres@127.0.0.1:5432/order_engine"
    db_pool_max: int = Field(10, ge=1)
    db_pool_timeout_s: float = Field(5, gt=0)  # wait for a pooled connection, then 503
    redis_url: str = "redis://127.0.0.1:6379/0"
    redis_timeout_s: float = Field(2, gt=0)  # connect and socket timeout
    # In AWS: the Secrets Manager ids of the database password and the Redis AUTH token,
    # put into DATABASE_URL and REDIS_URL (which then carry none). Unset locally.
    database_password_secret: str | None = None
    redis_auth_secret: str | None = None


class QueueSettings(_Group):
    # ``aws_endpoint_url`` points SQS at LocalStack or moto; unset means real AWS.
    aws_endpoint_url: str | None = None
    aws_region: str = Field("us-east-1", validation_alias="AWS_DEFAULT_REGION")
    orders_queue_name: str = "order-engine-orders"
    orders_dlq_name: str = "order-engine-orders-dlq"
    orders_queue_url: str | None = None  # resolved from the name when unset
    worker_batch_size: int = Field(10, ge=1, le=10)
    # Lambda's MaximumConcurrency for the worker's event source (2-1000); each invocation holds
    # up to ``db_pool_max`` connections. Unset: no cap (the local runtime uses --concurrency).
    worker_max_concurrency: int | None = Field(None, ge=2, le=1000)
    visibility_timeout_s: int = Field(60, ge=1)
    max_receive_count: int = Field(5, ge=1)


class PushSettings(_Group):
    # The API Gateway management endpoint; unset: derived from the event.
    ws_management_endpoint: str | None = None
    # The secret the local emulator's management API asks of every call (generated at each
    # start of the emulator); unused in AWS, where the calls are signed.
    ws_management_secret: str | None = None
    # What clients are told to connect to in the 202 answer.
    ws_public_url: str = "ws://localhost:3000/api/orders/execute"
    # The Origins a WebSocket may be opened from (one not listed is refused; no Origin is fine).
    ws_allowed_origins: tuple[str, ...] = ("http://localhost:3000", "http://127.0.0.1:3000")
    ws_subscription_ttl_s: int = Field(2 * 3600, ge=60)
    # Three timeouts that must nest: a gateway closes a client that stops reading after
    # ws_client_send_timeout_s, so a push hears "gone" before its own ws_push_timeout_s,
    # which ends before the order's publish lock (ws_lock_lease_s) could expire under it.
    ws_client_send_timeout_s: float = Field(4, gt=0)
    ws_push_timeout_s: float = Field(5, gt=0)
    ws_lock_lease_s: float = Field(30, gt=0)
    ws_lock_wait_s: float = Field(10, gt=0)  # a publisher waits this long for the lock
    # How often a waiting publisher retries the lock: it is held for a few round trips, so
    # redis-py's default (0.1 s) would add up to 100 ms to a push that waited at all.
    ws_lock_poll_s: float = Field(0.01, gt=0)
    # A connection younger than this that a post finds gone is presumed still connecting
    # (API Gateway refuses posts until $connect returned).
    ws_connect_grace_s: float = Field(30, gt=0)
    replay_tries: int = Field(10, ge=1)  # deliveries of a replay job before it is given up
    ws_max_subscriptions: int = Field(100, ge=1)  # orders one connection may watch at once
    # Connections one client may hold open at once (``$connect`` beyond: 429); a connection
    # whose ``$disconnect`` was lost stops counting after ws_subscription_ttl_s.
    ws_max_connections_per_client: int = Field(20, ge=1)
    # Per source IP, before any key is looked up: ``$connect`` attempts a second (burst),
    # past which 429 ``connect_rate_limited``; and open connections, past which 429
    # ``too_many_connections``.
    ws_connect_rate_per_s: float = Field(2, gt=0)
    ws_connect_burst: int = Field(20, ge=1)
    ws_max_connections_per_source: int = Field(50, ge=1)

    @model_validator(mode="after")
    def _timeouts_nest(self) -> "PushSettings":
        _before(self, "ws_client_send_timeout_s", "ws_push_timeout_s")
        _before(self, "ws_push_timeout_s", "ws_lock_lease_s")
        return self


class LifecycleSettings(_Group):
    max_attempts: int = Field(3, ge=1)
    retry_base_delay_s: int = Field(1, ge=0)
    # A waiting order whose check meets a venue's fault is checked again after the base
    # delay, doubled for each fault in a row, up to this (SQS delays at most 900 s).
    waiting_retry_max_delay_s: int = Field(60, ge=0, le=900)
    lease_s: int = Field(60, ge=1)  # how long one worker owns an order; >= worker timeout
    reaper_deadline_s: int = Field(300, ge=1)  # a live order untouched this long is reaped
    unsent_after_s: int = Field(10, ge=1)  # an order not enqueued by then: its send failed
    # How often the limit check job runs in AWS (EventBridge rates are whole minutes; the
    # local runtime runs every schedule at its own --schedule-interval).
    limit_check_interval_minutes: int = Field(1, ge=1)

    @model_validator(mode="after")
    def _delays_nest(self) -> "LifecycleSettings":
        _before(self, "retry_base_delay_s", "waiting_retry_max_delay_s", strict=False)
        return self


class AccessSettings(_Group):
    """What each client may do, and how it is let in."""

    max_body_bytes: int = Field(16 * 1024, ge=256)
    # The local gateway (``python -m localaws``) answers 408 and closes a connection whose
    # request headers are not all in this long after it opened (or after its last answer),
    # and one whose body is not all in this long after its headers.
    local_header_timeout_s: float = Field(10, gt=0)
    local_body_timeout_s: float = Field(10, gt=0)
    # Requests per second (and burst) per client, past which 429.
    rate_limit_per_s: float = Field(20, gt=0)
    rate_limit_burst: int = Field(40, ge=1)
    # The API Gateway authorizer's cache: a revoked key still passes there until it expires.
    auth_cache_ttl_s: int = Field(60, ge=0, le=3600)
    # Admission control, 429 beyond: orders in flight engine-wide (an order waiting in `open`
    # is not), and orders not yet terminal per client (waiting ones too; exact).
    # (MAX_OPEN_ORDERS, its name when waiting orders counted too, is still read.)
    max_orders_in_flight: int = Field(
        10_000, ge=1, validation_alias=AliasChoices("max_orders_in_flight", "max_open_orders")
    )
    max_open_orders_per_client: int = Field(1_000, ge=1)


class NewListing(BaseModel):
    """A token the mock market lists at a future slot, with a Raydium pool against ``quote``.
    Reserves are in base units."""

    model_config = ConfigDict(frozen=True)

    symbol: str = Field(pattern=r"^[A-Z0-9]{1,10}$")
    mint: str = Field(min_length=32, max_length=44)
    decimals: int = Field(ge=0, le=18)
    slot: int = Field(ge=0)  # the first slot the pool trades at
    quote: str = "USDC"
    reserve: int = Field(gt=0)  # of the new token
    quote_reserve: int = Field(gt=0)


class MarketSettings(_Group):
    """The mock venues and chain, and the market-safety guards (``chalicelib.dex`` reads these)."""

    order_engine_seed: int = 42
    quote_latency_ms: int = Field(200, ge=0)
    exec_latency_min_ms: int = Field(2000, ge=0)
    exec_latency_max_ms: int = Field(3000, ge=0)
    slot_ms: int = Field(400, ge=1)
    quote_valid_slots: int = Field(10, ge=1)  # a quote expires this many slots after its pool read
    quote_cache_slots: int = Field(2, ge=0)  # how long a pool snapshot is reused (0: no cache)
    drift_trades_per_slot: int = Field(2, ge=0)
    venue_timeout_rate: float = Field(0.0, ge=0, le=1)
    blockhash_expiry_rate: float = Field(0.0, ge=0, le=1)  # fault injection, beside congestion
    # The chain's congestion model (dex/chain.py) decides each transaction's priority fee and
    # the slots it takes to land (the wait adds to exec latency), or drops it once its
    # blockhash expires; off: it lands after the exec latency alone, for free.
    congestion: bool = True
    price_impact_cap_bps: int = Field(300, ge=0, le=10_000)  # a route moving prices more fails
    oracle_deviation_bps: int = Field(500, ge=0, le=10_000)  # its price this far off the oracle
    arb_half_life_slots: int = Field(10, ge=0)  # pools' gap to the oracle halves (0: no arb)
    oracle_wander_bps: int = Field(100, ge=0, le=2_000)  # oracle drift while the market drifts
    max_order_ui: dict[str, Annotated[Decimal, Field(gt=0)]] = Field(default_factory=dict)
    # New tokens the market lists later, for sniper orders: LISTINGS='[{"symbol": "NEW", ...}]'.
    listings: tuple[NewListing, ...] = ()

    @model_validator(mode="after")
    def _latencies_nest(self) -> "MarketSettings":
        _before(self, "exec_latency_min_ms", "exec_latency_max_ms", strict=False)
        return self


class LoggingSettings(_Group):
    log_level: str = "INFO"
    log_format: Literal["text", "json"] = "text"  # json: JSON lines and EMF metrics (AWS)


class Settings(BaseModel):
    model_config = ConfigDict(frozen=True)

    storage: StorageSettings = Field(default_factory=StorageSettings)
    queue: QueueSettings = Field(default_factory=QueueSettings)
    push: PushSettings = Field(default_factory=PushSettings)
    lifecycle: LifecycleSettings = Field(default_factory=LifecycleSettings)
    access: AccessSettings = Field(default_factory=AccessSettings)
    market: MarketSettings = Field(default_factory=MarketSettings)
    logging: LoggingSettings = Field(default_factory=LoggingSettings)

    def updated(self, **changes: Any) -> "Settings":
        """A copy with some fields changed, named flat as in the environment (tests, bench)."""
        by_group: dict[str, dict[str, Any]] = {}
        for name, value in changes.items():
            by_group.setdefault(group_of(name), {})[name] = value
        return self.model_copy(
            update={g: getattr(self, g).model_copy(update=v) for g, v in by_group.items()}
        )


@cache
def _groups() -> dict[str, str]:
    return {
        field: group
        for group, info in Settings.model_fields.items()
        for field in info.annotation.model_fields
    }


def group_of(field: str) -> str:
    """The group a setting belongs to: ``group_of("slot_ms") == "market"``."""
    try:
        return _groups()[field]
    except KeyError:
        raise AttributeError(f"no setting {field!r}") from None


def _environment_names(field_name: str, field) -> list[str]:
    alias = field.validation_alias
    names = alias.choices if isinstance(alias, AliasChoices) else [alias or field_name]
    return [name.upper() for name in names]


def environment_names() -> set[str]:
    """Every environment variable a setting is read from (DATABASE_URL, AWS_DEFAULT_REGION...)."""
    return {
        name
        for info in Settings.model_fields.values()
        for field_name, field in info.annotation.model_fields.items()
        for name in _environment_names(field_name, field)
    }


def from_values(values: Mapping[str, Any]) -> Settings:
    """Settings from ``values`` (keyed by environment variable) and the defaults only, never
    the process environment: what a Chalice stage's functions run with (``infra``). Values
    are parsed as the environment's are: a list or a mapping is JSON (``WS_ALLOWED_ORIGINS``)."""
    groups = {}
    for group, info in Settings.model_fields.items():
        given = _ValuesSource(info.annotation, values)()
        groups[group] = _without_environment(info.annotation)(**given)
    return Settings(**groups)


class _ValuesSource(EnvSettingsSource):
    """pydantic-settings' environment source, reading ``values`` instead of ``os.environ``."""

    def __init__(self, group: type[_Group], values: Mapping[str, Any]):
        self._values = values
        super().__init__(group)

    def _load_env_vars(self) -> Mapping[str, Any]:
        return {k if self.case_sensitive else k.lower(): v for k, v in self._values.items()}


@cache
def _without_environment(group: type[_Group]) -> type[_Group]:
    class Given(group):
        @classmethod
        def settings_customise_sources(cls, settings_cls, init_settings, **_sources):
            return (init_settings,)

    return Given


def default(field: str) -> Any:
    """A setting's default value, before the environment."""
    return Settings.model_fields[group_of(field)].annotation.model_fields[field].default


@lru_cache
def get_settings() -> Settings:
    return Settings()
