-- Orders and their status history. Amounts are integer base units.
CREATE TABLE orders (
    id               uuid PRIMARY KEY,
    type             text        NOT NULL DEFAULT 'market',
    status           text        NOT NULL,
    token_in         text        NOT NULL,
    token_out        text        NOT NULL,
    mint_in          text        NOT NULL,
    mint_out         text        NOT NULL,
    amount_in        bigint      NOT NULL CHECK (amount_in > 0),
    slippage_bps     integer     NOT NULL CHECK (slippage_bps BETWEEN 1 AND 5000),
    venues           text[]      NOT NULL,
    last_seq         integer     NOT NULL DEFAULT 1,
    attempts         integer     NOT NULL DEFAULT 0,
    last_error       text,
    route            jsonb,
    tx_hash          text,
    executed_price   numeric,
    amount_out       bigint CHECK (amount_out >= 0),
    failure_reason   text,
    idempotency_key  text UNIQUE,
    request_hash     text,
    enqueued_at      timestamptz,
    lease_until      timestamptz,
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX orders_created_idx ON orders (created_at DESC, id DESC);
CREATE INDEX orders_status_created_idx ON orders (status, created_at DESC, id DESC);
-- The reaper's scan: only orders that are still open.
CREATE INDEX orders_open_idx ON orders (updated_at)
    WHERE status NOT IN ('confirmed', 'failed');

CREATE TABLE order_status_history (
    id          bigserial PRIMARY KEY,
    order_id    uuid        NOT NULL REFERENCES orders (id),
    seq         integer     NOT NULL CHECK (seq > 0),
    status      text        NOT NULL,
    payload     jsonb       NOT NULL DEFAULT '{}',
    created_at  timestamptz NOT NULL DEFAULT now(),
    UNIQUE (order_id, seq)
);
