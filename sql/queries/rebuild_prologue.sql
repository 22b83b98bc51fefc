-- Settings of the rebuild transaction, run right after BEGIN by jobsd and by
-- bench/rebuild.sh alike (transaction-scoped: safe behind PgBouncer / RDS Proxy).
-- Hash aggregation of a year-long window stays in memory:
SET LOCAL work_mem = '64MB';
-- The planner's row estimates for the dense grid are large, which would make it JIT-compile
-- the statement on every run (about a second of compile time for a statement that runs in a
-- few seconds); the plan is all hashing and sorting, which JIT does not speed up.
SET LOCAL jit = off;
