-- The first statement of the sync's orders write (SPEC 1.2 step 3), in the same transaction
-- as sync_orders_upsert.sql and before it: a listing that an order item names but the sync
-- does not know yet gets a minimal row (status unknown), so the item can point at it and no
-- sale is lost. Existing listings are not touched.
--   $1 tenant uuid, $2 connection uuid,
--   $3 the orders as a jsonb array, each with items[].listing_external_id
--      (ml_parse_orders' shape; the same parameter as sync_orders_upsert.sql).
INSERT INTO listings (tenant_id, connection_id, marketplace, external_id, status)
SELECT DISTINCT $1::uuid, $2::uuid, 'mercadolivre', i->>'listing_external_id', 'unknown'
FROM jsonb_array_elements($3::jsonb) o, jsonb_array_elements(o->'items') i
ON CONFLICT (tenant_id, marketplace, external_id) DO NOTHING
