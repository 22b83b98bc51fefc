-- GET /api/v1/jobs/stats (SPEC 2.4): one row, one json value; the C side adds "window".
-- $1 tenant id, $2 window as an interval ('24 hours', '7 days', '30 days'),
-- $3 JOBS_TIMEZONE (freshness is judged by that zone's today), $4 "now" for tests (NULL: now()),
-- $5 the job types to report (text[], from the kind registry), every one shown, in that order.
-- json_build_object keeps key order; timestamps are UTC with milliseconds, as in 2.3.
WITH clock AS (SELECT coalesce($4::timestamptz, now()) AS now),
w AS (
  SELECT j.* FROM job_logs j, clock
  WHERE j.tenant_id = $1 AND j.created_at >= clock.now - $2::interval
),
types (job_type, ord) AS (SELECT * FROM unnest($5::text[]) WITH ORDINALITY),
per_type AS (
  SELECT t.job_type, t.ord, count(w.id) AS total,
         count(*) FILTER (WHERE w.status = 'success') AS success,
         count(*) FILTER (WHERE w.status = 'error') AS error,
         count(*) FILTER (WHERE w.status = 'running') AS running,
         count(*) FILTER (WHERE w.status = 'queued') AS queued,
         round(avg(w.duration_ms) FILTER (WHERE w.status IN ('success', 'error'))) AS avg_ms,
         round(percentile_cont(0.95) WITHIN GROUP (ORDER BY w.duration_ms)
               FILTER (WHERE w.status IN ('success', 'error'))) AS p95_ms,
         max(w.created_at) AS last_run,
         max(w.completed_at) FILTER (WHERE w.status = 'success') AS last_success,
         max(w.completed_at) FILTER (WHERE w.status = 'error') AS last_error
  FROM types t LEFT JOIN w ON w.job_type = t.job_type
  GROUP BY t.job_type, t.ord
),
fresh AS (
  SELECT max(m.date) AS max_date,
         (SELECT (clock.now AT TIME ZONE $3::text)::date FROM clock) AS today
  FROM listing_metrics_daily m WHERE m.tenant_id = $1
)
SELECT json_build_object(
  'stats', (SELECT json_agg(json_build_object(
      'jobType', job_type, 'totalRuns', total, 'success', success, 'error', error,
      'running', running, 'queued', queued,
      'successRate', CASE WHEN success + error > 0
                          THEN round(success::numeric / (success + error), 4) END,
      'avgDurationMs', avg_ms, 'p95DurationMs', p95_ms,
      'lastRunAt', to_char(last_run AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'),
      'lastSuccessAt', to_char(last_success AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'),
      'lastErrorAt', to_char(last_error AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'))
      ORDER BY ord) FROM per_type),
  'recentErrors', coalesce((
      SELECT json_agg(json_build_object(
          'id', id, 'jobType', job_type,
          'createdAt', to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'),
          'errorMessage', error_message) ORDER BY created_at DESC, id DESC)
      FROM (SELECT * FROM w WHERE status = 'error'
            ORDER BY created_at DESC, id DESC LIMIT 10) e), '[]'::json),
  'freshness', (SELECT json_build_object(
      'maxDate', to_char(max_date, 'YYYY-MM-DD'),
      'status', CASE WHEN max_date IS NULL THEN 'SEM_DADOS'
                     WHEN max_date >= today - 1 THEN 'OK'
                     ELSE 'DESATUALIZADO' END,
      'lagDays', today - max_date) FROM fresh))::text
