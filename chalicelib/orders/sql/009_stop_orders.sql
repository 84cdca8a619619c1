-- Stop orders: they wait in `open` until the oracle price crosses triggerPrice (falls to it,
-- `below`, or rises to it, `above`); the check job records the trigger, then the order executes
-- as a market order, or as a limit order with its limitPrice.
ALTER TABLE orders ADD COLUMN trigger_price numeric CHECK (trigger_price > 0);
ALTER TABLE orders ADD COLUMN trigger_direction text CHECK (trigger_direction IN ('below', 'above'));
ALTER TABLE orders ADD COLUMN triggered_at timestamptz;
-- The check job reads, per pair, only the stops the oracle price has crossed: a range read
-- per direction (trigger_price >= price below, <= price above), not a scan of the stops open.
CREATE INDEX orders_waiting_stop_idx ON orders (mint_in, mint_out, trigger_direction, trigger_price, id)
    WHERE status = 'open' AND triggered_at IS NULL AND trigger_price IS NOT NULL;
