-- Parent orders (TWAP, DCA): a row of their own in orders, with their schedule; each slice's
-- child is an ordinary market order naming its parent and its slice. UNIQUE (parent, slice):
-- a redelivered "place slice k" can never place k twice (the insert does nothing then).
ALTER TABLE orders ADD COLUMN parent_order_id uuid REFERENCES orders (id);
ALTER TABLE orders ADD COLUMN slice_index integer CHECK (slice_index >= 0);
ALTER TABLE orders ADD CONSTRAINT orders_parent_slice_key UNIQUE (parent_order_id, slice_index);
ALTER TABLE orders ADD CONSTRAINT orders_child_has_slice
    CHECK ((parent_order_id IS NULL) = (slice_index IS NULL));
-- The parent's schedule: slices (or cycles), the interval, the per-slice amount (DCA; a
-- TWAP's is amount_in / slices, the remainder in the last), the next slice to place and when
-- (the slice job moves both with the slice's history row), and a DCA's price band (oracle
-- price, tokenOut per tokenIn, UI units).
ALTER TABLE orders ADD COLUMN slices integer CHECK (slices BETWEEN 1 AND 1000);
ALTER TABLE orders ADD COLUMN interval_s integer CHECK (interval_s >= 1);
ALTER TABLE orders ADD COLUMN slice_amount bigint CHECK (slice_amount > 0);
ALTER TABLE orders ADD COLUMN next_slice integer NOT NULL DEFAULT 0;
ALTER TABLE orders ADD COLUMN next_slice_at timestamptz;
ALTER TABLE orders ADD COLUMN band_min numeric CHECK (band_min > 0);
ALTER TABLE orders ADD COLUMN band_max numeric CHECK (band_max > 0);
-- A parent's children, in slice order (its answer lists them; its settling counts them).
CREATE INDEX orders_children_idx ON orders (parent_order_id, slice_index)
    WHERE parent_order_id IS NOT NULL;
-- The reaper's look at parents whose next slice is overdue (its message was lost).
CREATE INDEX orders_working_idx ON orders (next_slice_at) WHERE status = 'working';

-- `completed` is terminal: the partial index of a client's live orders names it too, as the queries do.
DROP INDEX orders_client_open_idx;
CREATE INDEX orders_client_open_idx ON orders (client_id)
    WHERE status NOT IN ('confirmed', 'failed', 'cancelled', 'expired', 'completed');
