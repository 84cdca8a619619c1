-- The engine-wide admission ceiling counts the orders in flight: those the queue and the
-- workers carry now. An order waiting in `open` (a limit order below its price, a sniper
-- before its listing) costs neither and counts only against its client's limit.
CREATE INDEX orders_in_flight_idx ON orders (id)
    WHERE status IN ('pending', 'routing', 'building', 'submitted');
