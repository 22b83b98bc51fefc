/* chaos: what the chaos tests share (tests/chaos/test_chaos_*.c, linked with chaos.c): a
 * tenant with dense inputs, a "stale" window to rebuild, digests of a window (what it holds
 * now, and what a complete rebuild must leave), a trigger that makes the rebuild's writes slow
 * and interruptible, job_logs polling, and reading jobsd's log. Failures of its SQL abort the
 * program (testdb). */
#ifndef JOBSD_CHAOS_H
#define JOBSD_CHAOS_H

#include <libpq-fe.h>
#include <stdbool.h>

#include "testhttp.h"
#include "testproc.h"

#define CHAOS_REBUILD "/api/v1/jobs/rebuild-daily-metrics"

/* The tenant with nlistings active listings and visits on every day from..to (a
 * deterministic pattern with zeros, so conversion is NULL on some days and 0 on others). */
void chaos_seed(PGconn *c, const char *tenant, int nlistings, const char *from, const char *to);

/* Rows that a rebuild must replace: every listing and day of from..to, with values no
 * rebuild computes (source 'stale'). */
void chaos_prefill_stale(PGconn *c, const char *tenant, const char *from, const char *to);

/* A BEFORE row trigger on listing_metrics_daily that sleeps `seconds` (SQL text, "0.002") per
 * row written: a rebuild's statement then takes rows x seconds (x2 for an upsert over an
 * existing row) and can be interrupted half-way through its writes. chaos_fast_writes drops
 * it. */
void chaos_slow_writes(PGconn *c, const char *seconds);
void chaos_fast_writes(PGconn *c);

/* What a window holds now: "count:md5" over every row (new: caller frees). */
char *chaos_window_digest(PGconn *c, const char *tenant, const char *from, const char *to);

/* What a complete rebuild of the window must leave, in chaos_window_digest's form, computed
 * from the inputs independently of the rebuild statement (no orders: visits as stored or
 * NULL, 0 orders, conversion 0.0000 when there were visits, NULL otherwise; every active
 * listing on every day). New: caller frees. */
char *chaos_expected_digest(PGconn *c, const char *tenant, const char *from, const char *to);

/* A job's status, "" when there is no such row (new: caller frees). */
char *chaos_job_status(PGconn *c, const char *id);
/* Is the job in this status? */
bool chaos_job_is(PGconn *c, const char *id, const char *status);
/* Has the job ended (success or error)? */
bool chaos_job_final(PGconn *c, const char *id);

/* The pid in a worker id (host:pid:thread), or 0. */
int chaos_worker_pid(const char *worker_id);

/* POST a rebuild of tenant from..to with TEST_KEY; extra headers may be NULL. As th_post_job:
 * false when no response came (r then needs no th_free). */
bool chaos_post_rebuild(unsigned port, const char *tenant, const char *from, const char *to,
                        const char *extra, struct th_response *r);

/* Lines of a jobsd log that contain both needles (b may be NULL). */
int chaos_log_count(const struct jobsd_proc *p, const char *a, const char *b);

/* A day as YYYY-MM-DD, `offset` days after base (a date), computed by PostgreSQL. */
void chaos_day(PGconn *c, const char *base, int offset, char out[11]);

#endif
