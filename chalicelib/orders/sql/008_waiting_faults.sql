-- How many checks in a row of a waiting order met a venue's fault: its next check waits
-- twice as long each time (to WAITING_RETRY_MAX_DELAY_S), so a venue that is down is not
-- asked every second for every waiting order. A check without a fault starts it over.
ALTER TABLE orders ADD COLUMN waiting_faults integer NOT NULL DEFAULT 0;
