-- Operator trends (GET /api/v1/operator/trends): per job type and UTC day of the last $1
-- days (today included), the runs that ended by outcome and the p50/p95 duration of the
-- successful ones (percentile_cont, whole milliseconds). Every day of every type of $2 is
-- listed, zeros included. One row: the answer as JSON text.
WITH days AS (
    SELECT d::date AS day
    FROM generate_series((now() AT TIME ZONE 'UTC')::date - ($1::int - 1),
                         (now() AT TIME ZONE 'UTC')::date, interval '1 day') d
), types AS (
    SELECT unnest($2::text[]) AS job_type
), runs AS (
    SELECT job_type, (completed_at AT TIME ZONE 'UTC')::date AS day, status, duration_ms
    FROM job_logs
    WHERE completed_at >= ((now() AT TIME ZONE 'UTC')::date - ($1::int - 1))::timestamp
                          AT TIME ZONE 'UTC'
      AND status IN ('success', 'error', 'cancelled')
), per_day AS (
    SELECT t.job_type, d.day,
           count(r.status) FILTER (WHERE r.status = 'success') AS success,
           count(r.status) FILTER (WHERE r.status = 'error') AS error,
           count(r.status) FILTER (WHERE r.status = 'cancelled') AS cancelled,
           round(percentile_cont(0.5) WITHIN GROUP (ORDER BY r.duration_ms)
                 FILTER (WHERE r.status = 'success'))::bigint AS p50,
           round(percentile_cont(0.95) WITHIN GROUP (ORDER BY r.duration_ms)
                 FILTER (WHERE r.status = 'success'))::bigint AS p95
    FROM types t CROSS JOIN days d
    LEFT JOIN runs r ON r.job_type = t.job_type AND r.day = d.day
    GROUP BY t.job_type, d.day
)
SELECT json_build_object(
    'success', true,
    'from', to_char((SELECT min(day) FROM days), 'YYYY-MM-DD'),
    'to', to_char((SELECT max(day) FROM days), 'YYYY-MM-DD'),
    'types', coalesce((
        SELECT json_object_agg(job_type, entries)
        FROM (SELECT job_type, json_agg(json_build_object(
                  'date', to_char(day, 'YYYY-MM-DD'), 'success', success, 'error', error,
                  'cancelled', cancelled, 'p50Ms', p50, 'p95Ms', p95) ORDER BY day) AS entries
              FROM per_day GROUP BY job_type) x), '{}'::json)
)::text;
