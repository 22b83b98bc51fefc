/* api_metrics: GET /metrics (Prometheus text format 0.0.4, internal key). The process's
 * counters, plus gauges read at scrape time: the database pool, the queued and the running
 * jobs of every registered kind (from job_logs, all instances) and the Mercado Livre client. */
#include "jobsd/api.h"
#include "jobsd/buf.h"
#include "jobsd/db.h"
#include "jobsd/http.h"
#include "jobsd/job_kinds.h"
#include "jobsd/job_runner.h"
#include "jobsd/job_store.h"
#include "jobsd/metrics.h"
#include "jobsd/ml_client.h"
#include "jobsd/util.h"

#include <stdlib.h>
#include <string.h>

/* The queue's counts by type and status, collected first: each family's samples must follow
 * its own header. */
struct queue_counts {
    char type[JOB_KINDS_MAX * 2][64];
    bool running[JOB_KINDS_MAX * 2];
    long long count[JOB_KINDS_MAX * 2];
    size_t n;
};

static void queue_sample(void *ctx, const char *job_type, const char *status, long long count)
{
    struct queue_counts *q = ctx;
    if (q->n >= sizeof q->count / sizeof q->count[0])
        return;
    util_fmt(q->type[q->n], sizeof q->type[q->n], "%s", job_type);
    q->running[q->n] = strcmp(status, "running") == 0;
    q->count[q->n] = count;
    q->n++;
}

static void queue_family(struct buf *out, const struct queue_counts *q, bool running)
{
    const char *name = running ? "jobsd_jobs_running" : "jobsd_jobs_in_queue";
    metrics_family(out, name, "gauge",
                   running ? "Jobs running in job_logs (every instance), by type."
                           : "Jobs queued (waiting for a worker) in job_logs (every instance), "
                             "by type.");
    for (size_t i = 0; i < q->n; i++) {
        if (q->running[i] != running)
            continue;
        char labels[128];
        /* in_queue keeps status="queued" so the queries written before the split still
         * select it. */
        util_fmt(labels, sizeof labels,
                 running ? "job_type=\"%s\"" : "job_type=\"%s\",status=\"queued\"", q->type[i]);
        metrics_sample(out, name, labels, (double)q->count[i]);
    }
}

static void queue_gauges(struct api_ctx *a, struct buf *out)
{
    struct err e;
    err_clear(&e);
    const char *types[JOB_KINDS_MAX];
    size_t ntypes = job_kinds_types(types, JOB_KINDS_MAX);
    struct queue_counts *q = util_calloc(1, sizeof *q);
    PGconn *c = db_pool_acquire(a->pool, a->cfg->db_query_timeout_ms, &e);
    bool ok = c && db_begin(c, a->cfg->db_query_timeout_ms, &e) == 0 &&
              job_store_queue_counts(c, types, ntypes, queue_sample, q, &e) == 0;
    if (c) {
        db_rollback(c);
        db_pool_release(a->pool, c);
    }
    queue_family(out, q, false);
    queue_family(out, q, true);
    free(q);
    metrics_family(out, "jobsd_database_up", "gauge",
                   "1 when the last scrape could query the database.");
    metrics_sample(out, "jobsd_database_up", NULL, ok ? 1 : 0);
}

void api_metrics(void *app, struct http_request *req)
{
    struct api_ctx *a = app;
    struct buf out;
    buf_init(&out, (size_t)4 << 20);
    metrics_render(a->metrics, &out);

    size_t in_use = 0, idle = 0;
    unsigned long long waits = 0;
    db_pool_stats(a->pool, &in_use, &idle, &waits);
    metrics_family(&out, "jobsd_db_pool_connections", "gauge",
                   "Database pool connections by state.");
    metrics_sample(&out, "jobsd_db_pool_connections", "state=\"in_use\"", (double)in_use);
    metrics_sample(&out, "jobsd_db_pool_connections", "state=\"idle\"", (double)idle);
    metrics_family(&out, "jobsd_db_pool_waits_total", "counter",
                   "Times a caller had to wait for a free pool connection.");
    metrics_sample(&out, "jobsd_db_pool_waits_total", NULL, (double)waits);

    metrics_family(&out, "jobsd_jobs_running_here", "gauge",
                   "Jobs running in this instance's workers.");
    metrics_sample(&out, "jobsd_jobs_running_here", NULL, (double)job_runner_busy(a->runner));
    queue_gauges(a, &out);

    if (a->ml) {
        struct ml_client_stats st;
        ml_client_stats(a->ml, &st);
        metrics_family(&out, "jobsd_ml_requests_total", "counter",
                       "Mercado Livre API requests by outcome.");
        metrics_sample(&out, "jobsd_ml_requests_total", "outcome=\"2xx\"", (double)st.status_2xx);
        metrics_sample(&out, "jobsd_ml_requests_total", "outcome=\"4xx\"", (double)st.status_4xx);
        metrics_sample(&out, "jobsd_ml_requests_total", "outcome=\"429\"", (double)st.status_429);
        metrics_sample(&out, "jobsd_ml_requests_total", "outcome=\"5xx\"", (double)st.status_5xx);
        metrics_sample(&out, "jobsd_ml_requests_total", "outcome=\"transport_error\"",
                       (double)st.transport_errors);
        metrics_family(&out, "jobsd_ml_retries_total", "counter",
                       "Mercado Livre requests retried (429, 5xx, network errors, 401 refresh).");
        metrics_sample(&out, "jobsd_ml_retries_total", NULL, (double)st.retries);
    }
    char *text = buf_take(&out);
    http_respond_text(req, 200, "text/plain; version=0.0.4; charset=utf-8", text);
    free(text);
}
