-- The sync's visits write (SPEC 1.2 step 4): one row per listing and UTC day the API
-- returned, zeros included; a day written before is replaced when its count changed, or when
-- it was read while provisional (before the day ended 48 hours ago: Mercado Livre's delay)
-- and is final now, so the rebuild knows it is. An unchanged final day is neither written
-- nor locked. Only listings whose fetch succeeded have rows here: a failed fetch writes
-- nothing.
--   $1 tenant uuid,
--   $2 the rows as a jsonb array of {listing_id (uuid), date (YYYY-MM-DD), visits}.
WITH x AS (SELECT * FROM jsonb_to_recordset($2::jsonb) AS x(listing_id uuid, date date,
  visits int))
INSERT INTO listing_visits_daily AS v (tenant_id, listing_id, date, visits, fetched_at)
SELECT $1, listing_id, date, visits, now() FROM x
ON CONFLICT (tenant_id, listing_id, date) DO UPDATE SET visits = EXCLUDED.visits,
  fetched_at = EXCLUDED.fetched_at
WHERE v.visits IS DISTINCT FROM EXCLUDED.visits
   OR (v.fetched_at < ((v.date + 3)::timestamp AT TIME ZONE 'UTC')
       AND EXCLUDED.fetched_at >= ((v.date + 3)::timestamp AT TIME ZONE 'UTC'))
