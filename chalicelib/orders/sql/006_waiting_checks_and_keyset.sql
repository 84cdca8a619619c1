-- The check job pages through a pair's triggered orders in index order: the id in the
-- waiting-limit index makes (limit_price, id) a keyset, so each page starts where the last
-- ended and every page reads only its own rows.
DROP INDEX orders_waiting_limit_idx;
CREATE INDEX orders_waiting_limit_idx ON orders (mint_in, mint_out, limit_price, id)
    WHERE status = 'open';

-- How often a waiting order was checked and let go (its limit unmet, its pool not trading, a
-- venue timing out): it keys the seeded faults of its next check, so a check that met a
-- transient fault does not meet the very same fault again and again.
ALTER TABLE orders ADD COLUMN waiting_checks integer NOT NULL DEFAULT 0;
