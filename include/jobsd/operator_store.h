/* operator_store: the operator API's writes on job_logs (issue 21): cancel a queued job (it
 * never runs) and retry a finished one (a new job with the same request, linked by retry_of).
 * Each action is recorded in the rows' metadata: who (`internal-key` or `operator`) and when. */
#ifndef JOBSD_OPERATOR_STORE_H
#define JOBSD_OPERATOR_STORE_H

#include <jansson.h>
#include <libpq-fe.h>
#include <stdbool.h>

#include "jobsd/err.h"

#define OPERATOR_ID_LEN 37

/* Cancels job id: 0 when it was queued (it ends `cancelled` at once, cancelledAt/cancelledBy
 * in its metadata), 1 when it is running (cancelRequested is set: its instance cancels it
 * cooperatively and it ends `cancelled`, its transaction rolled back). -1 with e: 404
 * job_not_found, 409 job_finished (it ended), 503 when the database is unavailable. */
MUSTCHECK int operator_store_cancel(PGconn *c, const char *id, const char *by, long long timeout_ms,
                                    struct err *e);

/* Queues a retry of finished job id: 0 with its id in new_id. -1 with e: 404 job_not_found,
 * 409 job_active (it, or an identical job, is queued or running), 503. */
MUSTCHECK int operator_store_retry(PGconn *c, const char *id, const char *by, long long timeout_ms,
                                   char new_id[OPERATOR_ID_LEN], struct err *e);

/* Queued and running jobs now, per job type: {"queued": {type: n}, "running": {type: n}}
 * (new reference), or NULL with e. */
MUSTCHECK json_t *operator_store_queue(PGconn *c, long long timeout_ms, struct err *e);

/* The job list's filters (NULL = none); before_us/before_id the cursor (before_id NULL =
 * first page). */
struct operator_jobs_query {
    const char *job_type, *status, *tenant_id, *from, *to;
    const char *before_us, *before_id;
    long long limit;
};
/* Parses an opaque cursor "<micros>.<uuid>" into us (digits) and id; false when jobsd could
 * not have issued it. */
bool operator_cursor_parse(const char *cursor, char us[24], char id[OPERATOR_ID_LEN]);
/* The answers of GET /api/v1/operator/jobs, /jobs/{id} (404 job_not_found), /fleet and /trends, as
 * JSON text (malloc'ed), or NULL with e. */
MUSTCHECK char *operator_store_jobs(PGconn *c, const struct operator_jobs_query *q,
                                    long long timeout_ms, struct err *e);
MUSTCHECK char *operator_store_job(PGconn *c, const char *id, long long timeout_ms, struct err *e);
MUSTCHECK char *operator_store_fleet(PGconn *c, long long max_age_hours, long long timeout_ms,
                                     struct err *e);
MUSTCHECK char *operator_store_trends(PGconn *c, long long days, long long timeout_ms,
                                      struct err *e);

#endif
