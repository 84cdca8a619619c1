"""All settings, read from the environment in one place.

Every field can be set by an environment variable of the same name in upper case
(``DATABASE_URL``, ``ORDER_ENGINE_SEED``...). Chalice stages set them in
``.chalice/config.json``; anything that runs the engine elsewhere sets them in the process env.
Orderings between timeouts that must hold are checked when the settings load.
"""

from decimal import Decimal
from functools import lru_cache
from typing import Annotated, Literal

from pydantic import AliasChoices, BaseModel, Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class NewListing(BaseModel):
    """A token the mock market lists at a future slot, with a Raydium pool against ``quote``.
    Reserves are in base units."""

    symbol: str = Field(pattern=r"^[A-Z0-9]{1,10}$")
    mint: str = Field(min_length=32, max_length=44)
    decimals: int = Field(ge=0, le=18)
    slot: int = Field(ge=0)  # the first slot the pool trades at
    quote: str = "USDC"
    reserve: int = Field(gt=0)  # of the new token
    quote_reserve: int = Field(gt=0)


class Settings(BaseSettings):
    model_config = SettingsConfigDict(extra="ignore", frozen=True)

    # Storage
    database_url: str = "postgresql://postgres@127.0.0.1:5432/order_engine"
    db_pool_max: int = Field(10, ge=1)
    db_pool_timeout_s: float = Field(5, gt=0)  # wait for a pooled connection, then 503
    redis_url: str = "redis://127.0.0.1:6379/0"
    redis_timeout_s: float = Field(2, gt=0)  # connect and socket timeout

    # Queue. ``aws_endpoint_url`` points SQS at LocalStack or moto; unset means real AWS.
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

    # WebSocket push. The API Gateway management endpoint; unset: derived from the event.
    ws_management_endpoint: str | None = None
    # The secret the local emulator's management API asks of every call (generated at each
    # start of the emulator); unused in AWS, where the calls are signed.
    ws_management_secret: str | None = None
    # What clients are told to connect to in the 202 answer.
    ws_public_url: str = "ws://localhost:3000/api/orders/execute"
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

    # Order lifecycle
    max_attempts: int = Field(3, ge=1)
    retry_base_delay_s: int = Field(1, ge=0)
    # A waiting order whose check meets a venue's fault is checked again after the base
    # delay, doubled for each fault in a row, up to this (SQS delays at most 900 s).
    waiting_retry_max_delay_s: int = Field(60, ge=0, le=900)
    lease_s: int = Field(60, ge=1)  # how long one worker owns an order; >= worker timeout
    reaper_deadline_s: int = Field(300, ge=1)  # a non-terminal order untouched this long is reaped
    max_body_bytes: int = Field(16 * 1024, ge=256)
    # Admission control, 429 beyond: orders in flight engine-wide (an order waiting in `open`
    # is not), and orders not yet terminal per client (waiting ones too; exact).
    # (MAX_OPEN_ORDERS, its name when waiting orders counted too, is still read.)
    max_orders_in_flight: int = Field(
        10_000, ge=1, validation_alias=AliasChoices("max_orders_in_flight", "max_open_orders")
    )
    max_open_orders_per_client: int = Field(1_000, ge=1)
    # How often the limit check job runs in AWS (EventBridge rates are whole minutes; the
    # local runtime runs every schedule at its own --schedule-interval).
    limit_check_interval_minutes: int = Field(1, ge=1)

    # Clients. Requests per second (and burst) per client, past which 429; the API
    # Gateway authorizer's cache (a revoked key still passes there until it expires); the
    # Origins a WebSocket may be opened from (one not listed is refused; no Origin is fine).
    rate_limit_per_s: float = Field(20, gt=0)
    rate_limit_burst: int = Field(40, ge=1)
    auth_cache_ttl_s: int = Field(60, ge=0, le=3600)
    ws_allowed_origins: tuple[str, ...] = ("http://localhost:3000", "http://127.0.0.1:3000")
    # In AWS: the Secrets Manager ids of the database password and the Redis AUTH token,
    # put into DATABASE_URL and REDIS_URL (which then carry none). Unset locally.
    database_password_secret: str | None = None
    redis_auth_secret: str | None = None
    unsent_after_s: int = Field(10, ge=1)  # an order not enqueued by then: its send failed

    # Mock venues
    order_engine_seed: int = 42
    quote_latency_ms: int = Field(200, ge=0)
    exec_latency_min_ms: int = Field(2000, ge=0)
    exec_latency_max_ms: int = Field(3000, ge=0)
    slot_ms: int = Field(400, ge=1)
    quote_valid_slots: int = Field(10, ge=1)  # a quote expires this many slots after its pool read
    quote_cache_slots: int = Field(2, ge=0)  # how long a pool snapshot is reused (0: no cache)
    drift_trades_per_slot: int = Field(2, ge=0)
    venue_timeout_rate: float = Field(0.0, ge=0, le=1)
    blockhash_expiry_rate: float = Field(0.0, ge=0, le=1)

    # Market safety
    price_impact_cap_bps: int = Field(300, ge=0, le=10_000)  # a route moving prices more fails
    oracle_deviation_bps: int = Field(500, ge=0, le=10_000)  # its price this far off the oracle
    arb_half_life_slots: int = Field(10, ge=0)  # pools' gap to the oracle halves (0: no arb)
    oracle_wander_bps: int = Field(100, ge=0, le=2_000)  # oracle drift while the market drifts
    max_order_ui: dict[str, Annotated[Decimal, Field(gt=0)]] = Field(default_factory=dict)
    # New tokens the market lists later, for sniper orders: LISTINGS='[{"symbol": "NEW", ...}]'.
    listings: tuple[NewListing, ...] = ()

    log_level: str = "INFO"
    log_format: Literal["text", "json"] = "text"  # json: JSON lines and EMF metrics (AWS)

    @model_validator(mode="after")
    def _timeouts_nest(self) -> "Settings":
        _before("ws_client_send_timeout_s", "ws_push_timeout_s", self)
        _before("ws_push_timeout_s", "ws_lock_lease_s", self)
        _before("exec_latency_min_ms", "exec_latency_max_ms", self, strict=False)
        _before("retry_base_delay_s", "waiting_retry_max_delay_s", self, strict=False)
        return self


def _before(smaller: str, larger: str, settings: Settings, strict: bool = True) -> None:
    a, b = getattr(settings, smaller), getattr(settings, larger)
    if a > b or (strict and a == b):
        relation = "below" if strict else "at most"
        raise ValueError(f"{smaller.upper()} ({a}) must be {relation} {larger.upper()} ({b})")


@lru_cache
def get_settings() -> Settings:
    return Settings()
