-- One-cancels-the-other: the two orders of a pair name each other. The first to start
-- executing cancels the other in the same transaction (both rows locked, in id order).
ALTER TABLE orders ADD COLUMN linked_order_id uuid;
