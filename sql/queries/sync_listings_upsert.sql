-- The sync's listings write (SPEC 1.2 step 2), one statement in its own transaction: every
-- item fetched by the multigets is upserted as accessible, and every item answered with a
-- PolicyAgent 403 is marked blocked_by_policy (a minimal row when it is new); listings that
-- disappeared from the seller's account are left as they are. A listing whose values did not
-- change is neither written nor locked (last_synced_at is the last sync that changed it).
--   $1 tenant uuid, $2 connection uuid,
--   $3 items as a jsonb array of {external_id, title, status, price, currency,
--      available_quantity, sold_quantity, permalink, category_id, listing_type_id,
--      external_updated_at} (ml_parse_multiget's "item"),
--   $4 the blocked item ids as a jsonb array of strings.
-- Returns one row: listings upserted (new or changed), listings newly marked blocked.
WITH x AS (SELECT DISTINCT ON (external_id) * FROM jsonb_to_recordset($3::jsonb) AS x(
  external_id text, title text, status text, price numeric, currency text,
  available_quantity int, sold_quantity int, permalink text, category_id text,
  listing_type_id text, external_updated_at timestamptz)),
up AS (INSERT INTO listings AS l (tenant_id, connection_id, marketplace, external_id, title,
  status, access_status, price, currency, available_quantity, sold_quantity, permalink,
  category_id, listing_type_id, external_updated_at, last_synced_at)
  SELECT $1, $2, 'mercadolivre', external_id, title, status, 'accessible',
    round(price, 2), currency, available_quantity, sold_quantity, permalink, category_id,
    listing_type_id, external_updated_at, now() FROM x
  ON CONFLICT (tenant_id, marketplace, external_id) DO UPDATE SET
    connection_id = EXCLUDED.connection_id, title = EXCLUDED.title, status = EXCLUDED.status,
    access_status = 'accessible', price = EXCLUDED.price, currency = EXCLUDED.currency,
    available_quantity = EXCLUDED.available_quantity,
    sold_quantity = EXCLUDED.sold_quantity, permalink = EXCLUDED.permalink,
    category_id = EXCLUDED.category_id, listing_type_id = EXCLUDED.listing_type_id,
    external_updated_at = EXCLUDED.external_updated_at, last_synced_at = now(),
    updated_at = now()
  WHERE (l.connection_id, l.title, l.status, l.access_status, l.price, l.currency,
         l.available_quantity, l.sold_quantity, l.permalink, l.category_id,
         l.listing_type_id, l.external_updated_at)
        IS DISTINCT FROM
        (EXCLUDED.connection_id, EXCLUDED.title, EXCLUDED.status, 'accessible', EXCLUDED.price,
         EXCLUDED.currency, EXCLUDED.available_quantity, EXCLUDED.sold_quantity,
         EXCLUDED.permalink, EXCLUDED.category_id, EXCLUDED.listing_type_id,
         EXCLUDED.external_updated_at)
  RETURNING 1),
blocked AS (INSERT INTO listings (tenant_id, connection_id, marketplace, external_id, status,
  access_status, last_synced_at)
  SELECT DISTINCT $1::uuid, $2::uuid, 'mercadolivre', b, 'unknown', 'blocked_by_policy', now()
  FROM jsonb_array_elements_text($4::jsonb) b
  ON CONFLICT (tenant_id, marketplace, external_id) DO UPDATE SET
    access_status = 'blocked_by_policy', last_synced_at = now(), updated_at = now()
  WHERE listings.access_status <> 'blocked_by_policy'
  RETURNING 1)
SELECT (SELECT count(*) FROM up), (SELECT count(*) FROM blocked)
