-- Whether a client ever subscribed to the order's statuses. A status write returns it, so
-- the worker looks for subscribers in Redis only for a watched order. A subscribe sets it
-- (committed) before it records the subscription and catches up: a write that saw it unset
-- committed before the subscribe's catch-up read, which then finds that status.
ALTER TABLE orders ADD COLUMN watched boolean NOT NULL DEFAULT false;
-- Orders live at the upgrade may have subscribers already.
UPDATE orders SET watched = true
 WHERE status NOT IN ('confirmed', 'failed', 'cancelled', 'expired');
