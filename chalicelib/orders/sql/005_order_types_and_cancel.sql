-- Limit and sniper orders, client order ids, and the new terminal statuses (cancelled, expired).
ALTER TABLE orders ADD COLUMN client_order_id text;
ALTER TABLE orders ADD COLUMN limit_price numeric CHECK (limit_price > 0);
ALTER TABLE orders ADD COLUMN expires_at timestamptz;
ALTER TABLE orders ADD COLUMN max_price numeric CHECK (max_price > 0);

-- A client's order id names one of its orders; another client's same id is another order.
CREATE UNIQUE INDEX orders_client_order_id_idx ON orders (client_id, client_order_id);

-- The partial indexes of open orders name every terminal status.
DROP INDEX orders_open_idx;
CREATE INDEX orders_open_idx ON orders (updated_at)
    WHERE status NOT IN ('confirmed', 'failed', 'cancelled', 'expired');
DROP INDEX orders_client_open_idx;
CREATE INDEX orders_client_open_idx ON orders (client_id)
    WHERE status NOT IN ('confirmed', 'failed', 'cancelled', 'expired');

-- Waiting limit orders by pair and trigger price: the check job reads, per pair whose price
-- moved, only the orders whose limit the new price meets (limit_price <= price).
CREATE INDEX orders_waiting_limit_idx ON orders (mint_in, mint_out, limit_price)
    WHERE status = 'open';
-- And those whose time ran out.
CREATE INDEX orders_waiting_expiry_idx ON orders (expires_at) WHERE status = 'open';
-- Sniper orders of a new token take their turns in arrival order: the head of the line.
CREATE INDEX orders_sniper_line_idx ON orders (mint_out, created_at)
    WHERE type = 'sniper' AND status IN ('pending', 'open', 'routing', 'building', 'submitted');
