-- The engine-wide admission ceiling counts the orders in flight: those the queue and the
-- workers carry now. An order waiting in `open` (a limit order below its price, a sniper
-- before its listing) costs neither and counts only against its client's limit. The reaper
-- reads the same set, stalest first: by updated_at it need not step over waiting orders.
CREATE INDEX orders_in_flight_idx ON orders (updated_at)
    WHERE status IN ('pending', 'routing', 'building', 'submitted');
-- The index the reaper read before (every order not yet terminal, by updated_at) has no reader
-- left: the per-client count has its own, the start-up requeue reads by created_at. Every
-- status write changes updated_at, so it was one more index entry to write each time.
DROP INDEX orders_open_idx;
