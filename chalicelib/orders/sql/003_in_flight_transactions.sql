-- A sent transaction lands later and a later delivery checks it: no invocation waits for it.
-- tx_lands_at is set while the order's transaction is in flight; a failed attempt clears it.
ALTER TABLE orders ADD COLUMN tx_lands_at timestamptz;
-- The minimum output recorded with `building` (what the client was shown): every attempt's
-- route keeps at least this minimum, whatever the route column later holds.
ALTER TABLE orders ADD COLUMN min_out bigint CHECK (min_out >= 0);
