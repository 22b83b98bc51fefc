-- The sync's visits step (SPEC 1.2 step 4) marks the listings whose visits the API refused
-- with a 403 blocked_by_policy (visits are fetched for accessible listings only; the listings
-- step makes a listing accessible again when its details can be read).
--   $1 tenant uuid, $2 the listings' ids as a jsonb array of uuid strings.
UPDATE listings SET access_status = 'blocked_by_policy', updated_at = now()
WHERE tenant_id = $1 AND id IN (SELECT b::uuid FROM jsonb_array_elements_text($2::jsonb) b)
