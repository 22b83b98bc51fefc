-- Fleet jobs (issue 20 item 1): one trigger for every tenant. A fleet parent is an ordinary
-- job_logs row (tenant_id NULL, metadata.request.allTenants true) with a lease like any job;
-- its children are ordinary per-tenant jobs. job_fleet_children maps each tenant of the
-- parent to its child, once (the primary key makes the fan-out idempotent: a parent taken
-- over after its instance died enqueues only the tenants not mapped yet). A tenant whose
-- child could not be queued is mapped with child_id NULL and the reason (skipped).
ALTER TABLE job_logs ADD COLUMN parent_id uuid;

CREATE TABLE job_fleet_children (
    parent_id     uuid NOT NULL REFERENCES job_logs (id) ON DELETE CASCADE,
    tenant_id     uuid NOT NULL,
    child_id      uuid,
    skip_code     text,
    skip_message  text,
    PRIMARY KEY (parent_id, tenant_id)
);

-- The children a fleet parent created (the fleet-wide running limit counts the running ones).
CREATE INDEX job_logs_parent ON job_logs (parent_id) WHERE parent_id IS NOT NULL;
-- QUEUE_MAX_QUEUED counts queued jobs that are not fleet children.
CREATE INDEX job_logs_queued_top ON job_logs (created_at)
    WHERE status = 'queued' AND parent_id IS NULL;
