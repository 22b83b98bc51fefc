-- The sync's orders write (SPEC 1.2 step 3), after sync_orders_listings.sql in the same
-- transaction: an order that is new or whose stored values differ is upserted and its
-- order_items are replaced (deleted and inserted again), so status changes, refunds and item
-- corrections are reflected; an order that did not change is neither written nor locked, and
-- neither are its items (a sync of an unchanged account writes nothing). An item points at
-- its listing by external id.
-- A partial answer (HTTP 206) may leave out the buyer or the shipping: what it does not say
-- is unknown, never erased: the stored buyer is kept, and so is a stored shipped/delivered
-- that the answer cannot confirm (without the shipping, a paid order maps to paid).
--   $1 tenant uuid, $2 connection uuid,
--   $3 the orders as a jsonb array of {external_id, status, external_status, total_amount,
--      paid_amount, refunded_amount, currency, buyer_id, buyer_known, shipping_known,
--      ordered_at, closed_at, paid_at, external_updated_at,
--      items: [{listing_external_id, variation_id, title, quantity, unit_price,
--      full_unit_price}]} (ml_parse_orders).
-- Returns one row: orders upserted (new or changed), order_items inserted, order_items
-- deleted.
WITH x AS (SELECT DISTINCT ON (external_id) * FROM jsonb_to_recordset($3::jsonb) AS x(
  external_id bigint, status text, external_status text, total_amount numeric,
  paid_amount numeric, refunded_amount numeric, currency text, buyer_id bigint,
  buyer_known boolean, shipping_known boolean, ordered_at timestamptz, closed_at timestamptz,
  paid_at timestamptz, external_updated_at timestamptz, items jsonb)),
src AS (SELECT x.external_id,
    CASE WHEN NOT coalesce(x.shipping_known, true) AND x.status = 'paid'
              AND cur.status IN ('shipped', 'delivered')
         THEN cur.status ELSE x.status END AS status,
    x.external_status, round(x.total_amount, 2) AS total_amount,
    round(x.paid_amount, 2) AS paid_amount,
    round(coalesce(x.refunded_amount, 0), 2) AS refunded_amount, x.currency,
    CASE WHEN coalesce(x.buyer_known, true) THEN x.buyer_id
         ELSE coalesce(x.buyer_id, cur.buyer_id) END AS buyer_id,
    x.ordered_at, x.closed_at, x.paid_at, x.external_updated_at, x.items
  FROM x LEFT JOIN orders cur ON cur.tenant_id = $1 AND cur.marketplace = 'mercadolivre'
    AND cur.external_id = x.external_id),
up AS (INSERT INTO orders AS o (tenant_id, connection_id, marketplace, external_id, status,
  external_status, total_amount, paid_amount, refunded_amount, currency, buyer_id,
  ordered_at, closed_at, paid_at, external_updated_at)
  SELECT $1, $2, 'mercadolivre', external_id, status, external_status, total_amount,
    paid_amount, refunded_amount, currency, buyer_id, ordered_at, closed_at, paid_at,
    external_updated_at FROM src
  ON CONFLICT (tenant_id, marketplace, external_id) DO UPDATE SET
    connection_id = EXCLUDED.connection_id, status = EXCLUDED.status,
    external_status = EXCLUDED.external_status, total_amount = EXCLUDED.total_amount,
    paid_amount = EXCLUDED.paid_amount, refunded_amount = EXCLUDED.refunded_amount,
    currency = EXCLUDED.currency, buyer_id = EXCLUDED.buyer_id,
    ordered_at = EXCLUDED.ordered_at, closed_at = EXCLUDED.closed_at,
    paid_at = EXCLUDED.paid_at, external_updated_at = EXCLUDED.external_updated_at,
    updated_at = now()
  WHERE (o.connection_id, o.status, o.external_status, o.total_amount, o.paid_amount,
         o.refunded_amount, o.currency, o.buyer_id, o.ordered_at, o.closed_at, o.paid_at,
         o.external_updated_at)
        IS DISTINCT FROM
        (EXCLUDED.connection_id, EXCLUDED.status, EXCLUDED.external_status,
         EXCLUDED.total_amount, EXCLUDED.paid_amount, EXCLUDED.refunded_amount,
         EXCLUDED.currency, EXCLUDED.buyer_id, EXCLUDED.ordered_at, EXCLUDED.closed_at,
         EXCLUDED.paid_at, EXCLUDED.external_updated_at)
  RETURNING id, external_id),
del AS (DELETE FROM order_items oi USING up WHERE oi.tenant_id = $1 AND oi.order_id = up.id
  RETURNING 1),
ins AS (INSERT INTO order_items (tenant_id, order_id, listing_id, listing_external_id,
  variation_id, title, quantity, unit_price, full_unit_price)
  SELECT $1, up.id, l.id, it.listing_external_id, it.variation_id, it.title, it.quantity,
    round(it.unit_price, 2), round(it.full_unit_price, 2)
  FROM src JOIN up ON up.external_id = src.external_id
  CROSS JOIN LATERAL jsonb_to_recordset(src.items) AS it(listing_external_id text,
    variation_id bigint, title text, quantity int, unit_price numeric,
    full_unit_price numeric)
  LEFT JOIN listings l ON l.tenant_id = $1 AND l.marketplace = 'mercadolivre'
    AND l.external_id = it.listing_external_id
  RETURNING 1)
SELECT (SELECT count(*) FROM up), (SELECT count(*) FROM ins), (SELECT count(*) FROM del)
