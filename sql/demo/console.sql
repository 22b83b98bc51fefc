-- Rebuild requests are stored as the kind resolves them (tenantId, from, to), as a real job's are, so a retry from the console runs.
-- Demo history for the operator console (/console): two weeks of scheduled rebuilds and syncs
-- of the demo tenant with a few failures, one of them retried (the retry succeeded), a sync
-- that failed this morning and was not retried, and a second tenant ("Loja Parada") whose
-- last successful rebuild is 40 hours old: stale in the fleet view. Loaded by
-- scripts/demo.sh after seed.sql; by hand:
--
--   psql -X -v ON_ERROR_STOP=1 -q -f sql/demo/console.sql "$DATABASE_URL" >/dev/null
--
-- Idempotent: the rows it wrote before (metadata.demo = "console") are replaced; no other
-- job_logs row is touched. Only finished jobs (a queued one would run). The retry's link is
-- metadata.retryOf, and the retry_of column when the schema has it (sql/0008_operator.sql).
BEGIN;

SELECT setseed(0.21);

INSERT INTO tenants (id, name, status)
VALUES ('00000000-0000-4000-8000-000000000002', 'Loja Parada', 'active')
ON CONFLICT (id) DO UPDATE SET name = EXCLUDED.name, status = EXCLUDED.status;

DELETE FROM job_logs WHERE metadata->>'demo' = 'console';

CREATE TEMP TABLE demo_console_jobs ON COMMIT DROP AS
WITH days AS (SELECT d FROM generate_series(1, 14) AS d),
kinds (job_type, request, hour) AS (VALUES
    ('metrics_aggregation', jsonb_build_object('tenantId', '00000000-0000-4000-8000-000000000001', 'from', to_char(current_date - 1, 'YYYY-MM-DD'), 'to', to_char(current_date, 'YYYY-MM-DD')), 6),
    ('mercadolivre_sync', '{"tenantId": "00000000-0000-4000-8000-000000000001", "daysBack": 1}'::jsonb, 5))
SELECT md5('jobsd-demo:console:' || k.job_type || ':' || d)::uuid AS id,
       '00000000-0000-4000-8000-000000000001'::uuid AS tenant_id, k.job_type, k.request,
       date_trunc('day', now()) - make_interval(days => d, hours => -k.hour) AS created_at,
       (CASE WHEN k.job_type = 'metrics_aggregation' THEN 900 ELSE 2500 END
        + (random() * 1500)::int + d * 40)::bigint AS duration_ms,
       CASE WHEN (k.job_type, d) IN (('metrics_aggregation', 2), ('metrics_aggregation', 9),
                                     ('mercadolivre_sync', 5))
            THEN 'error' ELSE 'success' END AS status
FROM days CROSS JOIN kinds k;

INSERT INTO job_logs (id, tenant_id, job_type, status, trigger, attempts, created_at, started_at,
                      completed_at, duration_ms, records_processed, error_message, metadata)
SELECT id, tenant_id, job_type, status, 'schedule', 1, created_at, created_at + interval '1 second',
       created_at + interval '1 second' + make_interval(secs => duration_ms / 1000.0), duration_ms,
       CASE WHEN status = 'success' THEN 300 END,
       CASE WHEN status = 'error' THEN 'database unavailable: the connection was lost mid-run' END,
       jsonb_build_object('demo', 'console', 'request', request)
       || CASE WHEN status = 'error' THEN jsonb_build_object('error', jsonb_build_object(
              'code', 'database_unavailable', 'httpStatus', 503,
              'message', 'database unavailable: the connection was lost mid-run'))
          ELSE jsonb_build_object('result', jsonb_build_object('success', true, 'rowsUpserted', 300)) END
FROM demo_console_jobs;

-- The failed rebuild of two days ago was retried by an operator ten minutes later: success.
INSERT INTO job_logs (id, tenant_id, job_type, status, trigger, attempts, created_at, started_at,
                      completed_at, duration_ms, records_processed, metadata)
SELECT md5('jobsd-demo:console:retry')::uuid, tenant_id, job_type, 'success', 'http', 1,
       created_at + interval '10 minutes', created_at + interval '10 minutes 1 second',
       created_at + interval '10 minutes 3 seconds', 2000, 300,
       jsonb_build_object('demo', 'console', 'request', request, 'retryOf', id,
                          'result', jsonb_build_object('success', true, 'rowsUpserted', 300))
FROM demo_console_jobs WHERE job_type = 'metrics_aggregation' AND status = 'error'
  AND created_at > now() - interval '3 days';

-- This morning's sync failed and nobody retried it yet.
INSERT INTO job_logs (id, tenant_id, job_type, status, trigger, attempts, created_at, started_at,
                      completed_at, duration_ms, error_message, metadata)
VALUES (md5('jobsd-demo:console:sync-failed')::uuid, '00000000-0000-4000-8000-000000000001',
        'mercadolivre_sync', 'error', 'schedule', 3, now() - interval '3 hours',
        now() - interval '3 hours', now() - interval '3 hours' + interval '40 seconds', 40000,
        'Mercado Livre answered 503 three times',
        jsonb_build_object('demo', 'console',
            'request', jsonb_build_object('tenantId', '00000000-0000-4000-8000-000000000001', 'daysBack', 1),
            'error', jsonb_build_object('code', 'ml_unavailable', 'httpStatus', 502,
                                        'message', 'Mercado Livre answered 503 three times')));

-- Loja Parada: rebuilt 40 hours ago, failed 3 hours ago: stale.
INSERT INTO job_logs (id, tenant_id, job_type, status, trigger, attempts, created_at, started_at,
                      completed_at, duration_ms, records_processed, error_message, metadata)
VALUES (md5('jobsd-demo:console:parada-ok')::uuid, '00000000-0000-4000-8000-000000000002',
        'metrics_aggregation', 'success', 'schedule', 1, now() - interval '40 hours',
        now() - interval '40 hours', now() - interval '40 hours' + interval '1 second', 1100, 0, NULL,
        jsonb_build_object('demo', 'console',
            'request', jsonb_build_object('tenantId', '00000000-0000-4000-8000-000000000002', 'from', to_char(current_date - 1, 'YYYY-MM-DD'), 'to', to_char(current_date, 'YYYY-MM-DD')))),
       (md5('jobsd-demo:console:parada-failed')::uuid, '00000000-0000-4000-8000-000000000002',
        'metrics_aggregation', 'error', 'schedule', 1, now() - interval '3 hours',
        now() - interval '3 hours', now() - interval '3 hours' + interval '1 second', 900, NULL,
        'the rebuild timed out',
        jsonb_build_object('demo', 'console',
            'request', jsonb_build_object('tenantId', '00000000-0000-4000-8000-000000000002', 'from', to_char(current_date - 1, 'YYYY-MM-DD'), 'to', to_char(current_date, 'YYYY-MM-DD')),
            'error', jsonb_build_object('code', 'job_timeout', 'httpStatus', 504,
                                        'message', 'the rebuild timed out')));

DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM information_schema.columns
               WHERE table_name = 'job_logs' AND column_name = 'retry_of') THEN
        EXECUTE 'UPDATE job_logs SET retry_of = (metadata->>''retryOf'')::uuid '
                'WHERE metadata->>''demo'' = ''console'' AND metadata ? ''retryOf''';
    END IF;
END $$;

COMMIT;
