-- What a sale is, written once (README "Definitions"), and what the sync needs to see every
-- change Mercado Livre makes to an order (issue 18).

-- A partially refunded order stays a sale, minus what was refunded (refunded_amount, from
-- the payments' transaction_amount_refunded). partially_paid is not a sale (the payment is
-- insufficient): it maps to pending.
ALTER TABLE orders DROP CONSTRAINT orders_status_check;
ALTER TABLE orders ADD CONSTRAINT orders_status_check
    CHECK (status IN ('pending', 'paid', 'shipped', 'delivered', 'cancelled', 'refunded',
                      'partially_refunded'));
ALTER TABLE orders ADD COLUMN refunded_amount numeric(14,2) NOT NULL DEFAULT 0
    CHECK (refunded_amount >= 0);

-- The one definition of a counted order: the rebuild (and anything else that counts sales)
-- calls it. An SQL function the planner inlines.
CREATE FUNCTION jobsd_is_sale(status text) RETURNS boolean
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    RETURN status IN ('paid', 'shipped', 'delivered', 'partially_refunded');

-- Mercado Livre publishes a day's visits within 48 hours: a row of listing_metrics_daily
-- whose visits were read before the day ended 48 hours ago is provisional (its visits, and
-- so its conversion, can still grow). The sync reads those days again until they are final.
ALTER TABLE listing_metrics_daily ADD COLUMN provisional boolean NOT NULL DEFAULT false;

-- Per connection: orders changed since this instant were all seen by a complete orders pass
-- (the start of the last one that finished without an error). The next sync asks for orders
-- updated since then (with an overlap), so a payment, cancellation or refund of an order
-- created long before the sync's window is still seen.
ALTER TABLE marketplace_connections ADD COLUMN orders_synced_at timestamptz;
