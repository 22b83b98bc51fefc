-- Fleet freshness for the operator (GET /api/v1/operator/fleet): every active tenant with,
-- per job type, its last success (the definition of GET /api/v1/jobs/freshness) and its
-- last job (newest created_at: status and id). Stale tenants first (oldest last success
-- first), then by id. $1 the job types (text[]), $2 the types that need an active Mercado
-- Livre connection (text[]; a tenant without one is never stale on them), $3
-- FRESHNESS_MAX_AGE_HOURS. One row: the answer as JSON text.
WITH types (job_type, ord) AS (SELECT * FROM unnest($1::text[]) WITH ORDINALITY),
tenant AS (
  SELECT t.id,
         EXISTS (SELECT 1 FROM marketplace_connections mc
                 WHERE mc.tenant_id = t.id AND mc.status = 'active') AS connected
  FROM tenants t WHERE t.status = 'active'
),
per AS MATERIALIZED (
  SELECT tn.id AS tenant_id, ty.job_type, ty.ord,
         (tn.connected OR NOT ty.job_type = ANY ($2::text[])) AS eligible,
         (SELECT max(j.completed_at) FROM job_logs j
          WHERE j.tenant_id = tn.id AND j.job_type = ty.job_type
            AND j.status = 'success') AS last_success,
         (SELECT j.id::text || ' ' || j.status FROM job_logs j
          WHERE j.tenant_id = tn.id AND j.job_type = ty.job_type
          ORDER BY j.created_at DESC, j.id DESC LIMIT 1) AS last_job
  FROM tenant tn CROSS JOIN types ty
),
judged AS (
  SELECT p.*, p.eligible AND (p.last_success IS NULL
              OR p.last_success < now() - make_interval(hours => $3::int)) AS stale
  FROM per p
),
by_tenant AS (
  SELECT tenant_id, bool_or(stale) AS stale,
         min(coalesce(last_success, '-infinity')) FILTER (WHERE stale) AS oldest,
         json_object_agg(job_type, json_build_object(
           'stale', stale,
           'lastSuccessAt', to_char(last_success AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'),
           'lastStatus', split_part(last_job, ' ', 2),
           'lastJobId', split_part(last_job, ' ', 1)) ORDER BY ord) AS types
  FROM judged GROUP BY tenant_id
)
SELECT json_build_object(
  'success', true,
  'maxAgeHours', $3::int,
  'tenants', coalesce((SELECT json_agg(json_build_object(
      'tenantId', tenant_id, 'stale', stale, 'types', types)
      ORDER BY stale DESC, oldest NULLS LAST, tenant_id) FROM by_tenant), '[]'::json)
)::text;
