-- GET /api/stats reads one window of the caller's orders. What it measures of a confirmed order's route
-- is kept in columns (computed by Postgres from the route, whoever writes it), so the
-- stats read a narrow index instead of parsing every route's JSON. A venue added to the
-- router needs its key in best_single_out.
ALTER TABLE orders
    ADD COLUMN route_split boolean GENERATED ALWAYS AS (route->>'kind' = 'split') STORED,
    ADD COLUMN route_venues jsonb
        GENERATED ALWAYS AS (jsonb_path_query_array(route, '$.legs[*].venue')) STORED,
    ADD COLUMN route_out bigint GENERATED ALWAYS AS ((route->>'outAmount')::bigint) STORED,
    ADD COLUMN best_single_out bigint GENERATED ALWAYS AS (greatest(
        (route #>> '{considered,raydium}')::bigint, (route #>> '{considered,meteora}')::bigint
    )) STORED;
-- Counting the window's orders by status: an index-only scan.
CREATE INDEX orders_client_created_status_idx ON orders (client_id, created_at) INCLUDE (status);
-- The window's failed orders and their reasons (a few per cent of orders): index-only.
CREATE INDEX orders_failed_reason_idx ON orders (client_id, created_at) INCLUDE (failure_reason)
    WHERE status = 'failed';
-- The window's confirmed orders with all the stats read of them: an index-only scan.
CREATE INDEX orders_confirmed_stats_idx ON orders (client_id, created_at)
    INCLUDE (id, route_split, route_venues, route_out, best_single_out, amount_out, min_out)
    WHERE status = 'confirmed';
-- Submit -> confirmed latency: the `confirmed` history rows of the window (a row is never
-- older than its order), read by time rather than probed order by order.
CREATE INDEX order_status_history_confirmed_idx ON order_status_history (created_at)
    INCLUDE (order_id) WHERE status = 'confirmed';
