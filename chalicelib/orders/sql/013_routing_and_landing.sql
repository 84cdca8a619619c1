-- Routing beyond the pair and the congestion model's landing.
-- route_options: what the order asked of the router (onlyDirectRoutes, maxHops,
-- restrictIntermediateTokens) and the cap of its priority fee; NULL: the defaults.
ALTER TABLE orders ADD COLUMN route_options jsonb;
-- The transaction of the latest attempt: what it pays (base and priority fee), the
-- compute-unit limit it asked for, and the slots it took to land (NULL while unknown, and
-- for one that will not land before its blockhash expires).
ALTER TABLE orders ADD COLUMN fee_lamports bigint CHECK (fee_lamports >= 0);
ALTER TABLE orders ADD COLUMN compute_units integer CHECK (compute_units > 0);
ALTER TABLE orders ADD COLUMN landing_slots integer CHECK (landing_slots > 0);
ALTER TABLE orders ADD COLUMN route_multihop boolean
    GENERATED ALWAYS AS (route->>'kind' LIKE 'multihop%') STORED;
-- The stats read the new figures of confirmed orders from the same index-only scan.
DROP INDEX orders_confirmed_stats_idx;
CREATE INDEX orders_confirmed_stats_idx ON orders (client_id, created_at)
    INCLUDE (id, route_split, route_venues, route_out, best_single_out, amount_out, min_out,
             route_multihop, fee_lamports, landing_slots)
    WHERE status = 'confirmed';
