-- Exact-output market orders (swapMode ExactOut): the output wanted, exactly. Their
-- amount_in is the most they may spend (the quote's maxIn, or the route's at submit) until
-- they confirm, then what they spent.
ALTER TABLE orders ADD COLUMN swap_mode text NOT NULL DEFAULT 'ExactIn'
    CHECK (swap_mode IN ('ExactIn', 'ExactOut'));
ALTER TABLE orders ADD COLUMN amount_out_wanted bigint CHECK (amount_out_wanted > 0);
ALTER TABLE orders ADD CONSTRAINT orders_exact_out_wants
    CHECK ((swap_mode = 'ExactOut') = (amount_out_wanted IS NOT NULL));
