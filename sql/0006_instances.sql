-- The instances of the fleet (issue 20 item 4): Mercado Livre limits the application, not
-- the process, so every `jobsd serve` registers here and renews its row every
-- INSTANCE_HEARTBEAT_SECONDS (src/instance.c). An instance is live while its heartbeat is
-- younger than INSTANCE_DEAD_SECONDS (the database clock, clock_timestamp()); the others
-- delete an older row. Each live instance with workers takes floor(ML_MAX_RPS / live) and
-- floor(ML_CONCURRENCY / live), at least 1.
--   applied_count: the live count whose share this instance applies now; 0 while it waits
--                  for the others to shrink (a newcomer, or one back after a lapse).
--   rps_share, concurrency_share: what it applies (0 while waiting), for operators.
CREATE TABLE jobsd_instances (
    id                 text PRIMARY KEY,
    started_at         timestamptz NOT NULL DEFAULT clock_timestamp(),
    heartbeat_at       timestamptz NOT NULL DEFAULT clock_timestamp(),
    workers            integer NOT NULL CHECK (workers >= 0),
    applied_count      integer NOT NULL DEFAULT 0 CHECK (applied_count >= 0),
    rps_share          integer NOT NULL DEFAULT 0 CHECK (rps_share >= 0),
    concurrency_share  integer NOT NULL DEFAULT 0 CHECK (concurrency_share >= 0),
    version            text NOT NULL
);
