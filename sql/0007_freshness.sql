-- Freshness (GET /api/v1/jobs/freshness, the freshness gauges and log line): each active
-- tenant's last successful run of each job type is one probe of this index (the newest
-- completed_at of that tenant, type and status), so the fleet-wide check reads about one
-- index entry per tenant and type whatever the size of job_logs.
CREATE INDEX job_logs_tenant_type_success ON job_logs (tenant_id, job_type, completed_at DESC)
    WHERE status = 'success';
