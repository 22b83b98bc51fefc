-- Retention of finished jobs (JOB_RETENTION_DAYS, `jobsd prune`): the rows that finished
-- longest ago first, without reading the queued and running ones or the whole table. On
-- completed_at, which no status query orders by: an index on created_at restricted to
-- finished rows would be preferred to job_logs_tenant_created for a status page filtered
-- on success or error, and walk every tenant's rows.
CREATE INDEX job_logs_finished_completed ON job_logs (completed_at)
    WHERE status IN ('success', 'error');
