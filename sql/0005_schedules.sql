-- The built-in scheduler (SCHEDULES, src/scheduler.c): one row per schedule and slot. Every
-- instance ticks; the first to insert a slot's row fires it, in the transaction that queues
-- its job (INSERT ... ON CONFLICT DO NOTHING on the primary key), so a slot fires exactly once
-- across instances, and the newest row of a schedule is its last fire (`jobsd schedules`, the
-- catch-up at start-up). Rows older than 30 days are deleted by the scheduler.
CREATE TABLE schedule_fires (
    schedule      text NOT NULL,
    slot          timestamptz NOT NULL,
    fired_at      timestamptz NOT NULL DEFAULT now(),
    instance      text NOT NULL,
    catch_up      boolean NOT NULL DEFAULT false,
    -- The job queued (or the identical job it attached to): no foreign key, job retention
    -- deletes job_logs rows on its own schedule.
    job_log_id    uuid,
    deduplicated  boolean NOT NULL DEFAULT false,
    -- Set when the body no longer resolved (e.g. its tenant is gone): the slot is spent.
    error         text,
    PRIMARY KEY (schedule, slot)
);
CREATE INDEX schedule_fires_fired_at ON schedule_fires (fired_at);
