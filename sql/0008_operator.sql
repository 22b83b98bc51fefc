-- Operator API (issue 21): a job can end `cancelled` (an operator cancelled it: a queued one
-- never runs), and a retry is a new job linked to the one it retries (retry_of).
ALTER TABLE job_logs DROP CONSTRAINT IF EXISTS job_logs_status_check;
ALTER TABLE job_logs ADD CONSTRAINT job_logs_status_check
    CHECK (status IN ('queued', 'running', 'success', 'error', 'cancelled'));
ALTER TABLE job_logs ADD COLUMN retry_of uuid;
CREATE INDEX job_logs_retry_of ON job_logs (retry_of) WHERE retry_of IS NOT NULL;
-- No index on (created_at, id) for the operator's cross-tenant list: the planner then
-- preferred it to job_logs_tenant_created for a tenant's status page with a cursor
-- (tests/integration/test_stats.c). The list is a top-N sort of the filtered rows.
-- Retention prunes cancelled jobs like the other finished ones (job_store.c PRUNE_CANDIDATES).
DROP INDEX IF EXISTS job_logs_finished_completed;
CREATE INDEX job_logs_finished_completed ON job_logs (completed_at)
    WHERE status IN ('success', 'error', 'cancelled');
