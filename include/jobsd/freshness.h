/* freshness: is every active tenant's data being refreshed? For each active tenant and job
 * type, the last successful run (and the newest metrics date, as GET /api/v1/jobs/stats
 * shows it); a tenant is stale on a type when that last success is older than
 * FRESHNESS_MAX_AGE_HOURS or missing (the sync type only counts tenants with an active
 * Mercado Livre connection). The report is GET /api/v1/jobs/freshness's body; every serving
 * instance also checks every FRESHNESS_CHECK_SECONDS, logs "[INTERNAL-JOB] freshness" with
 * the counts and hands them to the metrics (jobsd_tenants_stale{job_type}). One statement,
 * sql/queries/freshness.sql: two index probes per tenant and type. */
#ifndef JOBSD_FRESHNESS_H
#define JOBSD_FRESHNESS_H

#include <jansson.h>
#include <libpq-fe.h>
#include <stddef.h>

#include "jobsd/err.h"

struct freshness_query {
    long long max_age_hours; /* FRESHNESS_MAX_AGE_HOURS */
    const char *tz;          /* JOBS_TIMEZONE (the metrics date's "today", as in stats) */
    const char *now_rfc3339; /* pins the clock (tests); NULL = the database's now() */
    long long limit;         /* stale tenants listed, oldest success first (0: counts only) */
};

/* The report {checkedAt, maxAgeHours, activeTenants, staleTenants, jobTypes: [...],
 * tenants: [...]} for every kind of the registry. New reference, or NULL with e. */
MUSTCHECK json_t *freshness_report(PGconn *c, const struct freshness_query *q, long long timeout_ms,
                                   struct err *e);
/* Its statement, for EXPLAIN in tests and the bench. */
const char *freshness_sql(void);

struct config;
struct db_pool;
struct metrics;
struct freshness;
/* The serving instance's check: at start-up, then every FRESHNESS_CHECK_SECONDS (0: never,
 * NULL returned): the log line, and the gauges in m. The statement runs with
 * DB_QUERY_TIMEOUT_MS, so stopping waits at most that long for a check in progress. */
struct freshness *freshness_start(const struct config *cfg, struct db_pool *pool,
                                  struct metrics *m);
/* Stops it (a check in progress finishes first). NULL is fine. */
void freshness_stop(struct freshness *f);

#endif
