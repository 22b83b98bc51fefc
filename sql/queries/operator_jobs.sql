-- The operator's cross-tenant job list (GET /api/v1/operator/jobs), newest first, keyset
-- paged on (created_at, id) (a top-N sort: see migration 0008). $1 jobType, $2 status,
-- $3 tenantId, $4 from (date, inclusive), $5 to (date, inclusive), $6/$7 the cursor
-- (created_at in microseconds since the epoch, id), $8 the page size. NULL = no filter.
-- One row: the whole answer as JSON text, nextCursor "<micros>.<id>" when more rows follow.
WITH page AS (
    SELECT j.*
    FROM job_logs j
    WHERE ($1::text IS NULL OR j.job_type = $1::text)
      AND ($2::text IS NULL OR j.status = $2::text)
      AND ($3::uuid IS NULL OR j.tenant_id = $3::uuid)
      AND ($4::date IS NULL OR j.created_at >= $4::date::timestamp AT TIME ZONE 'UTC')
      AND ($5::date IS NULL OR j.created_at < ($5::date + 1)::timestamp AT TIME ZONE 'UTC')
      AND ($6::bigint IS NULL
           OR (j.created_at, j.id) < ('epoch'::timestamptz + $6::bigint * interval '1 microsecond',
                                      $7::uuid))
    ORDER BY j.created_at DESC, j.id DESC
    LIMIT $8::int + 1
), shown AS (
    SELECT * FROM page ORDER BY created_at DESC, id DESC LIMIT $8::int
)
SELECT json_build_object(
    'success', true,
    'jobs', coalesce((
        SELECT json_agg(json_build_object(
            'id', s.id, 'jobType', s.job_type, 'tenantId', s.tenant_id, 'status', s.status,
            'trigger', s.trigger, 'attempts', s.attempts,
            'createdAt', to_char(s.created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'),
            'startedAt', to_char(s.started_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'),
            'completedAt', to_char(s.completed_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'),
            'durationMs', s.duration_ms, 'errorMessage', s.error_message,
            'parentId', s.parent_id, 'retryOf', s.retry_of)
            ORDER BY s.created_at DESC, s.id DESC)
        FROM shown s), '[]'::json),
    'nextCursor', CASE WHEN (SELECT count(*) FROM page) > $8::int THEN (
        SELECT floor(extract(epoch FROM l.created_at) * 1000000)::bigint || '.' || l.id
        FROM shown l ORDER BY l.created_at, l.id LIMIT 1) END
)::text;
