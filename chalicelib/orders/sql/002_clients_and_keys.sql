-- Clients and their API keys; every order belongs to one client.
CREATE TABLE clients (
    id          uuid PRIMARY KEY,
    name        text        NOT NULL UNIQUE,
    created_at  timestamptz NOT NULL DEFAULT now()
);

-- A key is shown once; only its sha256 is kept, with a public prefix to name it by.
CREATE TABLE api_keys (
    prefix      text PRIMARY KEY,
    client_id   uuid        NOT NULL REFERENCES clients (id),
    key_hash    bytea       NOT NULL UNIQUE,
    created_at  timestamptz NOT NULL DEFAULT now(),
    revoked_at  timestamptz
);

-- Orders placed before keys existed belong to a legacy client that has no key.
INSERT INTO clients (id, name) VALUES ('00000000-0000-0000-0000-000000000000', 'legacy');
ALTER TABLE orders ADD COLUMN client_id uuid REFERENCES clients (id);
UPDATE orders SET client_id = '00000000-0000-0000-0000-000000000000';
ALTER TABLE orders ALTER COLUMN client_id SET NOT NULL;

-- An idempotency key is the client's own: another client's same key is another order.
ALTER TABLE orders DROP CONSTRAINT orders_idempotency_key_key;
CREATE UNIQUE INDEX orders_client_idempotency_idx ON orders (client_id, idempotency_key);
CREATE INDEX orders_client_created_idx ON orders (client_id, created_at DESC, id DESC);
CREATE INDEX orders_client_status_created_idx
    ON orders (client_id, status, created_at DESC, id DESC);
-- The per-client open-order count at admission.
CREATE INDEX orders_client_open_idx ON orders (client_id)
    WHERE status NOT IN ('confirmed', 'failed');
