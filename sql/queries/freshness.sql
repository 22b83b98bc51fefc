-- Freshness of every active tenant (GET /api/v1/jobs/freshness, the freshness check of
-- every serving instance). One row, one json value.
-- $1 the job types (text[], from the kind registry, in that order),
-- $2 the types a tenant needs an active Mercado Livre connection for (text[]): a tenant
--    without one is not eligible for them, so it is never stale on them,
-- $3 FRESHNESS_MAX_AGE_HOURS, $4 JOBS_TIMEZONE, $5 "now" for tests (NULL: now()),
-- $6 how many stale tenants to list (0: only the counts).
-- The definitions are those of GET /api/v1/jobs/stats (job_stats.sql): lastSuccessAt is the
-- newest completed_at of the tenant's successful jobs of that type; maxDate, status and
-- lagDays are its "freshness" (newest listing_metrics_daily date, judged by today in
-- JOBS_TIMEZONE). A tenant is stale on a type it is eligible for when that type's last
-- success is older than $3 hours, or when it has none.
-- Cost: two index probes per tenant and type (job_logs_tenant_type_success,
-- listing_metrics_daily_tenant_date); see bench/README.md.
WITH clock AS (SELECT coalesce($5::timestamptz, now()) AS now),
types (job_type, ord) AS (SELECT * FROM unnest($1::text[]) WITH ORDINALITY),
tenant AS (
  SELECT t.id, t.name,
         EXISTS (SELECT 1 FROM marketplace_connections mc
                 WHERE mc.tenant_id = t.id AND mc.status = 'active') AS connected
  FROM tenants t WHERE t.status = 'active'
),
per AS MATERIALIZED (
  SELECT tn.id AS tenant_id, ty.job_type, ty.ord,
         (tn.connected OR NOT ty.job_type = ANY ($2::text[])) AS eligible,
         (SELECT max(j.completed_at) FROM job_logs j
          WHERE j.tenant_id = tn.id AND j.job_type = ty.job_type
            AND j.status = 'success') AS last_success
  FROM tenant tn CROSS JOIN types ty
),
judged AS (
  SELECT p.*, p.eligible AND (p.last_success IS NULL
              OR p.last_success < (SELECT now FROM clock) - make_interval(hours => $3::int))
              AS stale
  FROM per p
),
stale_tenant AS (
  SELECT tenant_id,
         min(coalesce(last_success, '-infinity')) FILTER (WHERE stale) AS oldest,
         json_agg(job_type ORDER BY ord) FILTER (WHERE stale) AS stale_types,
         json_object_agg(job_type, to_char(last_success AT TIME ZONE 'UTC',
                                           'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"') ORDER BY ord)
           AS last_success
  FROM judged GROUP BY tenant_id HAVING bool_or(stale)
),
listed AS (
  SELECT s.* FROM stale_tenant s
  ORDER BY s.oldest, s.tenant_id LIMIT $6::int
),
shown AS MATERIALIZED (
  SELECT l.*, tn.name,
         (SELECT max(m.date) FROM listing_metrics_daily m WHERE m.tenant_id = l.tenant_id)
           AS max_date,
         (SELECT (clock.now AT TIME ZONE $4::text)::date FROM clock) AS today
  FROM listed l JOIN tenant tn ON tn.id = l.tenant_id
)
SELECT json_build_object(
  'checkedAt', (SELECT to_char(now AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"') FROM clock),
  'maxAgeHours', $3::int,
  'activeTenants', (SELECT count(*) FROM tenant),
  'staleTenants', (SELECT count(*) FROM stale_tenant),
  'jobTypes', (SELECT json_agg(json_build_object(
      'jobType', job_type, 'eligibleTenants', eligible, 'staleTenants', stale,
      'lastSuccessAt', to_char(last_success AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'))
      ORDER BY ord)
    FROM (SELECT ty.job_type, ty.ord,
                 count(*) FILTER (WHERE j.eligible) AS eligible,
                 count(*) FILTER (WHERE j.stale) AS stale,
                 max(j.last_success) AS last_success
          FROM types ty LEFT JOIN judged j ON j.job_type = ty.job_type
          GROUP BY ty.job_type, ty.ord) t),
  'tenants', coalesce((SELECT json_agg(json_build_object(
      'tenantId', s.tenant_id, 'name', s.name,
      'staleJobTypes', s.stale_types, 'lastSuccessAt', s.last_success,
      'freshness', json_build_object(
          'maxDate', to_char(s.max_date, 'YYYY-MM-DD'),
          'status', CASE WHEN s.max_date IS NULL THEN 'SEM_DADOS'
                         WHEN s.max_date >= s.today - 1 THEN 'OK'
                         ELSE 'DESATUALIZADO' END,
          'lagDays', s.today - s.max_date))
      ORDER BY s.oldest, s.tenant_id) FROM shown s), '[]'::json))::text
