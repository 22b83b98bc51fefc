-- One job for the operator (GET /api/v1/operator/jobs/{id}), any tenant: the list's fields,
-- its request, result or error, interruptions, the retries made of it and its timeline
-- (queued, started, interrupted, cancel_requested, finished/failed/cancelled, retried), oldest
-- event first.
-- $1 the id. No row when it does not exist. One row: the job as JSON text.
WITH j AS (
    SELECT * FROM job_logs WHERE id = $1::uuid
), retries AS (
    SELECT r.id, r.created_at FROM job_logs r, j WHERE r.retry_of = j.id
), events AS (
    SELECT created_at AS at, 'queued' AS event FROM j
    UNION ALL SELECT started_at, 'started' FROM j WHERE started_at IS NOT NULL
    UNION ALL SELECT (i->>'at')::timestamptz, 'interrupted'
        FROM j, jsonb_array_elements(coalesce(j.metadata->'interruptions', '[]'::jsonb)) i
    UNION ALL SELECT (metadata->>'cancelRequestedAt')::timestamptz, 'cancel_requested'
        FROM j WHERE metadata ? 'cancelRequestedAt'
    UNION ALL SELECT completed_at, CASE status WHEN 'success' THEN 'finished'
                                               WHEN 'error' THEN 'failed'
                                               ELSE 'cancelled' END
        FROM j WHERE completed_at IS NOT NULL AND status IN ('success', 'error', 'cancelled')
    UNION ALL SELECT created_at, 'retried' FROM retries
)
SELECT json_build_object(
    'success', true,
    'job', json_build_object(
        'id', j.id, 'jobType', j.job_type, 'tenantId', j.tenant_id, 'status', j.status,
        'trigger', j.trigger, 'attempts', j.attempts,
        'createdAt', to_char(j.created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'),
        'startedAt', to_char(j.started_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'),
        'completedAt', to_char(j.completed_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'),
        'durationMs', j.duration_ms, 'errorMessage', j.error_message,
        'parentId', j.parent_id, 'retryOf', j.retry_of,
        'request', coalesce(j.metadata->'request', '{}'::jsonb),
        'result', j.metadata->'result',
        'error', CASE WHEN j.metadata ? 'error' THEN jsonb_build_object(
            'code', j.metadata->'error'->'code', 'httpStatus', j.metadata->'error'->'httpStatus',
            'message', j.metadata->'error'->'message') END,
        'interruptions', coalesce(j.metadata->'interruptions', '[]'::jsonb),
        'retriedBy', coalesce((SELECT json_agg(r.id ORDER BY r.created_at) FROM retries r),
                              '[]'::json),
        'timeline', coalesce((SELECT json_agg(json_build_object(
            'at', to_char(e.at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'),
            'event', e.event) ORDER BY e.at, e.event) FROM events e), '[]'::json))
)::text
FROM j;
