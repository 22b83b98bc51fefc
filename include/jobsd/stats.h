/* stats: the read side for the web app: one tenant's recent jobs with keyset pagination
 * (SPEC 2.3) and statistics with data freshness (SPEC 2.4). Every query is scoped to the
 * caller's tenant and runs with DB_QUERY_TIMEOUT_MS. */
#ifndef JOBSD_STATS_H
#define JOBSD_STATS_H

#include <jansson.h>
#include <libpq-fe.h>

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
char *stats_status(PGconn *c, const struct status_query *q, long long timeout_ms, struct err *e);
/* Its statement ($1 tenant, $2 jobType, $3 status, $4/$5 cursor, $6 page size), for EXPLAIN
 * in tests. */
const char *stats_status_sql(void);

/* Is this an opaque cursor jobsd could have issued? */
int stats_cursor_check(const char *cursor, struct err *e);

/* The stats body for window "24h" | "7d" | "30d". now_rfc3339 pins the clock (tests); NULL
 * means the database's now(). New reference, or NULL with e. */
json_t *stats_compute(PGconn *c, const char *tenant_id, const char *window, const char *tz,
                      const char *now_rfc3339, long long timeout_ms, struct err *e);

#endif
