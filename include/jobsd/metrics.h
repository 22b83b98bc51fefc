/* metrics: process counters for GET /metrics (Prometheus text format 0.0.4): HTTP requests
 * by route, method and status with a duration histogram, jobs by type and outcome with a
 * duration histogram, reaper outcomes. Thread-safe; owned by the app and passed to whoever
 * counts (no global). Gauges that live elsewhere (pool, queue, Mercado Livre client) are
 * rendered by the caller with metrics_gauge/metrics_counter. */
#ifndef JOBSD_METRICS_H
#define JOBSD_METRICS_H

#include <stdbool.h>
#include <stddef.h>

#include "jobsd/buf.h"

struct metrics;

struct metrics *metrics_new(void);
void metrics_free(struct metrics *m);

/* Every label is from a closed set, so a client cannot multiply series. route: the template of
 * a route of the table ("/api/v1/jobs/{id}"; also for a 405) or "unmatched" (the caller's
 * promise). method: GET, HEAD, POST, PUT, DELETE, OPTIONS, PATCH, anything else "other".
 * status: the answer's, 0 when not in 100..599. seconds: with sub-millisecond resolution. */
void metrics_http(struct metrics *m, const char *route, const char *method, unsigned status,
                  double seconds);
void metrics_job(struct metrics *m, const char *job_type, const char *status, double seconds);
/* A running job whose lease expired: requeued, or failed after its last attempt. */
void metrics_reaped(struct metrics *m, bool failed);

/* The last freshness check (freshness.c), per job type: active tenants that type applies to,
 * those stale on it, and the newest success of that type across every tenant (seconds since
 * the epoch, < 0 when none). Replaces the previous check's; rendered as
 * jobsd_tenants_stale{job_type} and friends once a check has run. No tenant label. */
#define METRICS_FRESHNESS_MAX 16
struct metrics_freshness {
    char job_type[64];
    long long eligible, stale;
    double last_success;
};
void metrics_freshness(struct metrics *m, const struct metrics_freshness *rows, size_t n,
                       double checked_at);

/* Appends every counter and histogram. */
void metrics_render(struct metrics *m, struct buf *out);

/* Helpers for the caller's own series: "# HELP/# TYPE" once, then samples. labels may be
 * NULL or `key="value",...` (already escaped). */
void metrics_family(struct buf *out, const char *name, const char *type, const char *help);
void metrics_sample(struct buf *out, const char *name, const char *labels, double value);

#endif
