-- Retention of finished jobs (JOB_RETENTION_DAYS, `jobsd prune`): the oldest finished rows
-- first, without reading the queued and running ones or the whole table.
CREATE INDEX job_logs_finished_created ON job_logs (created_at)
    WHERE status IN ('success', 'error');
