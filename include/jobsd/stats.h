/* stats: the read side for the web app: one tenant's recent jobs with keyset pagination
 * (SPEC 2.3) and statistics with data freshness (SPEC 2.4). Every query is scoped to the
 * caller's tenant and runs with DB_QUERY_TIMEOUT_MS. */
#ifndef JOBSD_STATS_H
#define JOBSD_STATS_H

#include <jansson.h>
#include <libpq-fe.h>
#include <stddef.h>

#include "jobsd/err.h"

struct status_query {
    const char *tenant_id; /* lower-case UUID */
    const char *job_type;  /* NULL = any */
    const char *status;    /* NULL = any */
    long long limit;       /* 1..100 */
    const char *before;    /* opaque cursor of a previous page, NULL = first page */
};

/* The body {"jobs": [...], "nextCursor": "..." | null} as compact JSON text (caller frees), or
 * NULL with e (400 for a bad cursor). Reads run with db_read(timeout_ms). */
MUSTCHECK char *stats_status(PGconn *c, const struct status_query *q, long long timeout_ms,
                             struct err *e);
/* Its statement ($1 tenant, $2 jobType, $3 status, $4/$5 cursor, $6 page size), for EXPLAIN
 * in tests. */
const char *stats_status_sql(void);

/* Is this an opaque cursor jobsd could have issued? */
MUSTCHECK int stats_cursor_check(const char *cursor, struct err *e);

/* The query of stats_compute. */
struct stats_query {
    const char *tenant_id;
    const char *window;       /* "24h" | "7d" | "30d" */
    const char *tz;           /* JOBS_TIMEZONE */
    const char *now_rfc3339;  /* pins the clock (tests); NULL = the database's now() */
    const char *const *types; /* the job types to report, every one shown, in this order */
    size_t ntypes;
};
/* The stats body. New reference, or NULL with e. */
MUSTCHECK json_t *stats_compute(PGconn *c, const struct stats_query *q, long long timeout_ms,
                                struct err *e);

#endif
