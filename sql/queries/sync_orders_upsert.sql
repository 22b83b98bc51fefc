-- The sync's orders write (SPEC 1.2 step 3), after sync_orders_listings.sql in the same
-- transaction: the orders are upserted and each one's order_items are replaced (deleted and
-- inserted again), so status changes and item corrections are reflected; an item points at
-- its listing by external id.
--   $1 tenant uuid, $2 connection uuid,
--   $3 the orders as a jsonb array of {external_id, status, external_status, total_amount,
--      paid_amount, currency, buyer_id, ordered_at, closed_at, paid_at, external_updated_at,
--      items: [{listing_external_id, variation_id, title, quantity, unit_price,
--      full_unit_price}]} (ml_parse_orders).
-- Returns one row: orders upserted, order_items inserted, order_items deleted.
WITH src AS (SELECT DISTINCT ON (external_id) * FROM jsonb_to_recordset($3::jsonb) AS x(
  external_id bigint, status text, external_status text, total_amount numeric,
  paid_amount numeric, currency text, buyer_id bigint, ordered_at timestamptz,
  closed_at timestamptz, paid_at timestamptz, external_updated_at timestamptz,
  items jsonb)),
up AS (INSERT INTO orders (tenant_id, connection_id, marketplace, external_id, status,
  external_status, total_amount, paid_amount, currency, buyer_id, ordered_at, closed_at,
  paid_at, external_updated_at)
  SELECT $1, $2, 'mercadolivre', external_id, status, external_status,
    round(total_amount, 2), round(paid_amount, 2), currency, buyer_id, ordered_at,
    closed_at, paid_at, external_updated_at FROM src
  ON CONFLICT (tenant_id, marketplace, external_id) DO UPDATE SET
    connection_id = EXCLUDED.connection_id, status = EXCLUDED.status,
    external_status = EXCLUDED.external_status, total_amount = EXCLUDED.total_amount,
    paid_amount = EXCLUDED.paid_amount, currency = EXCLUDED.currency,
    buyer_id = EXCLUDED.buyer_id, ordered_at = EXCLUDED.ordered_at,
    closed_at = EXCLUDED.closed_at, paid_at = EXCLUDED.paid_at,
    external_updated_at = EXCLUDED.external_updated_at, updated_at = now()
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
