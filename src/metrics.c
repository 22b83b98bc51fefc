/* metrics: see metrics.h. Series are few and every label comes from a closed set (the route
 * table, eight method names, the statuses jobsd answers, the job kinds): fixed arrays and
 * linear lookups (a hash compared first) under one mutex are simpler and faster than anything
 * cleverer. */
#include "jobsd/metrics.h"
#include "jobsd/util.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A route answers its own method with about ten statuses, HEAD with a few, and 405 to the
 * seven other methods: some 25 series per route, 33 routes at most with "unmatched". */
#define MAX_SERIES  1024
#define MAX_HISTS   48
#define MAX_BUCKETS 20

/* From 100 µs: /healthz answers in a fraction of a millisecond. */
static const double HTTP_BUCKETS[] = {0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005,
                                      0.01,   0.025,   0.05,   0.1,   0.25,   0.5,
                                      1,      2.5,     5,      10,    30,     100};
static const double JOB_BUCKETS[] = {0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800};
#define NHTTP (sizeof HTTP_BUCKETS / sizeof HTTP_BUCKETS[0])
#define NJOB  (sizeof JOB_BUCKETS / sizeof JOB_BUCKETS[0])
_Static_assert(NHTTP <= MAX_BUCKETS && NJOB <= MAX_BUCKETS, "raise MAX_BUCKETS");

/* The method label's values: anything else a client sends is "other". */
static const char *const METHODS[] = {"GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS", "PATCH"};

struct counter {
    unsigned long long hash;
    char labels[192];
    unsigned long long value;
};

struct hist {
    unsigned long long hash;
    char labels[160];
    unsigned long long buckets[MAX_BUCKETS];
    unsigned long long count;
    double sum;
};

struct metrics {
    pthread_mutex_t lock;
    struct counter http[MAX_SERIES];
    size_t nhttp;
    struct hist http_hist[MAX_HISTS];
    size_t nhttp_hist;
    struct counter jobs[MAX_HISTS];
    size_t njobs;
    struct hist job_hist[MAX_HISTS];
    size_t njob_hist;
    unsigned long long reaped_requeued, reaped_failed;
    unsigned long long dropped; /* observations whose series did not fit */
    struct metrics_freshness fresh[METRICS_FRESHNESS_MAX];
    size_t nfresh;
    double fresh_checked_at; /* 0: no check yet */
};

struct metrics *metrics_new(void)
{
    struct metrics *m = util_calloc(1, sizeof *m);
    pthread_mutex_init(&m->lock, NULL);
    return m;
}

void metrics_free(struct metrics *m)
{
    if (!m)
        return;
    pthread_mutex_destroy(&m->lock);
    free(m);
}

/* Label values come from our own route table and method names; anything else is dropped to
 * keep the output well-formed. */
static void clean(const char *in, char *out, size_t cap)
{
    size_t o = 0;
    for (; in && *in && o + 1 < cap; in++) {
        char c = *in;
        if (c == '"' || c == '\\' || c == '\n' || (unsigned char)c < 0x20)
            continue;
        out[o++] = c;
    }
    out[o] = '\0';
}

/* FNV-1a: compared before the labels themselves. */
static unsigned long long label_hash(const char *s)
{
    unsigned long long h = 14695981039346656037ULL;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ULL;
    return h;
}

static const char *method_label(const char *method)
{
    for (size_t i = 0; method && i < sizeof METHODS / sizeof METHODS[0]; i++)
        if (strcmp(method, METHODS[i]) == 0)
            return METHODS[i];
    return "other";
}

static struct counter *find_counter(struct metrics *m, struct counter *arr, size_t *n, size_t cap,
                                    const char *labels)
{
    unsigned long long h = label_hash(labels);
    for (size_t i = 0; i < *n; i++)
        if (arr[i].hash == h && strcmp(arr[i].labels, labels) == 0)
            return &arr[i];
    if (*n >= cap) {
        m->dropped++;
        return NULL;
    }
    struct counter *c = &arr[(*n)++];
    c->hash = h;
    snprintf(c->labels, sizeof c->labels, "%s", labels);
    return c;
}

static struct hist *find_hist(struct metrics *m, struct hist *arr, size_t *n, size_t cap,
                              const char *labels)
{
    unsigned long long h = label_hash(labels);
    for (size_t i = 0; i < *n; i++)
        if (arr[i].hash == h && strcmp(arr[i].labels, labels) == 0)
            return &arr[i];
    if (*n >= cap) {
        m->dropped++;
        return NULL;
    }
    struct hist *x = &arr[(*n)++];
    x->hash = h;
    snprintf(x->labels, sizeof x->labels, "%s", labels);
    return x;
}

static void observe(struct hist *h, const double *bounds, size_t nb, double v)
{
    if (!h)
        return;
    for (size_t i = 0; i < nb; i++)
        if (v <= bounds[i])
            h->buckets[i]++;
    h->count++;
    h->sum += v;
}

void metrics_http(struct metrics *m, const char *route, const char *method, unsigned status,
                  double seconds)
{
    if (!m)
        return;
    char r[96], labels[192], hlabels[160];
    clean(route, r, sizeof r);
    /* A status outside 100..599 is not HTTP: one value for all of them. */
    if (status < 100 || status > 599)
        status = 0;
    snprintf(labels, sizeof labels, "route=\"%s\",method=\"%s\",status=\"%u\"", r,
             method_label(method), status);
    snprintf(hlabels, sizeof hlabels, "route=\"%s\"", r);
    pthread_mutex_lock(&m->lock);
    struct counter *c = find_counter(m, m->http, &m->nhttp, MAX_SERIES, labels);
    if (c)
        c->value++;
    observe(find_hist(m, m->http_hist, &m->nhttp_hist, MAX_HISTS, hlabels), HTTP_BUCKETS, NHTTP,
            seconds);
    pthread_mutex_unlock(&m->lock);
}

void metrics_job(struct metrics *m, const char *job_type, const char *status, double seconds)
{
    if (!m)
        return;
    char t[64], st[24], labels[192], hlabels[160];
    clean(job_type, t, sizeof t);
    clean(status, st, sizeof st);
    snprintf(labels, sizeof labels, "job_type=\"%s\",status=\"%s\"", t, st);
    snprintf(hlabels, sizeof hlabels, "job_type=\"%s\"", t);
    pthread_mutex_lock(&m->lock);
    struct counter *c = find_counter(m, m->jobs, &m->njobs, MAX_HISTS, labels);
    if (c)
        c->value++;
    observe(find_hist(m, m->job_hist, &m->njob_hist, MAX_HISTS, hlabels), JOB_BUCKETS, NJOB,
            seconds);
    pthread_mutex_unlock(&m->lock);
}

void metrics_reaped(struct metrics *m, bool failed)
{
    if (!m)
        return;
    pthread_mutex_lock(&m->lock);
    if (failed)
        m->reaped_failed++;
    else
        m->reaped_requeued++;
    pthread_mutex_unlock(&m->lock);
}

void metrics_freshness(struct metrics *m, const struct metrics_freshness *rows, size_t n,
                       double checked_at)
{
    if (!m)
        return;
    pthread_mutex_lock(&m->lock);
    m->nfresh = 0;
    for (size_t i = 0; i < n && i < METRICS_FRESHNESS_MAX; i++) {
        m->fresh[i] = rows[i];
        clean(rows[i].job_type, m->fresh[i].job_type, sizeof m->fresh[i].job_type);
        m->nfresh++;
    }
    m->fresh_checked_at = checked_at;
    pthread_mutex_unlock(&m->lock);
}

static void put(struct buf *out, const char *s)
{
    if (!buf_append_str(out, s))
        util_fatal("metrics output too large");
}

void metrics_family(struct buf *out, const char *name, const char *type, const char *help)
{
    char line[512];
    util_fmt(line, sizeof line, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
    put(out, line);
}

void metrics_sample(struct buf *out, const char *name, const char *labels, double value)
{
    char line[512];
    if (labels && *labels)
        util_fmt(line, sizeof line, "%s{%s} %.17g\n", name, labels, value);
    else
        util_fmt(line, sizeof line, "%s %.17g\n", name, value);
    put(out, line);
}

static void render_hist(struct buf *out, const char *name, const struct hist *h,
                        const double *bounds, size_t nb)
{
    char labels[256], bucket[64];
    for (size_t i = 0; i < nb; i++) {
        util_fmt(bucket, sizeof bucket, "%g", bounds[i]);
        util_fmt(labels, sizeof labels, "%s,le=\"%s\"", h->labels, bucket);
        char n[128];
        util_fmt(n, sizeof n, "%s_bucket", name);
        metrics_sample(out, n, labels, (double)h->buckets[i]);
    }
    util_fmt(labels, sizeof labels, "%s,le=\"+Inf\"", h->labels);
    char n[128];
    util_fmt(n, sizeof n, "%s_bucket", name);
    metrics_sample(out, n, labels, (double)h->count);
    util_fmt(n, sizeof n, "%s_sum", name);
    metrics_sample(out, n, h->labels, h->sum);
    util_fmt(n, sizeof n, "%s_count", name);
    metrics_sample(out, n, h->labels, (double)h->count);
}

/* The last freshness check's gauges (the lock held); nothing before the first check. */
static void render_freshness(const struct metrics *m, struct buf *out)
{
    if (m->fresh_checked_at <= 0)
        return;
    char labels[96];
    metrics_family(out, "jobsd_tenants_stale", "gauge",
                   "Active tenants whose last success of the job type is older than "
                   "FRESHNESS_MAX_AGE_HOURS or missing (last freshness check).");
    for (size_t i = 0; i < m->nfresh; i++) {
        util_fmt(labels, sizeof labels, "job_type=\"%s\"", m->fresh[i].job_type);
        metrics_sample(out, "jobsd_tenants_stale", labels, (double)m->fresh[i].stale);
    }
    metrics_family(out, "jobsd_tenants_eligible", "gauge",
                   "Active tenants the job type applies to (last freshness check).");
    for (size_t i = 0; i < m->nfresh; i++) {
        util_fmt(labels, sizeof labels, "job_type=\"%s\"", m->fresh[i].job_type);
        metrics_sample(out, "jobsd_tenants_eligible", labels, (double)m->fresh[i].eligible);
    }
    metrics_family(out, "jobsd_job_last_success_timestamp_seconds", "gauge",
                   "Newest successful job of the type, any tenant (absent when none).");
    for (size_t i = 0; i < m->nfresh; i++) {
        if (m->fresh[i].last_success < 0)
            continue;
        util_fmt(labels, sizeof labels, "job_type=\"%s\"", m->fresh[i].job_type);
        metrics_sample(out, "jobsd_job_last_success_timestamp_seconds", labels,
                       m->fresh[i].last_success);
    }
    metrics_family(out, "jobsd_freshness_checked_timestamp_seconds", "gauge",
                   "When this instance last checked freshness.");
    metrics_sample(out, "jobsd_freshness_checked_timestamp_seconds", NULL, m->fresh_checked_at);
}

void metrics_render(struct metrics *m, struct buf *out)
{
    pthread_mutex_lock(&m->lock);
    metrics_family(out, "jobsd_http_requests_total", "counter",
                   "HTTP requests by route pattern, method and status.");
    for (size_t i = 0; i < m->nhttp; i++)
        metrics_sample(out, "jobsd_http_requests_total", m->http[i].labels,
                       (double)m->http[i].value);
    metrics_family(out, "jobsd_http_request_duration_seconds", "histogram",
                   "Time from a request's headers to its answer being handed to the socket.");
    for (size_t i = 0; i < m->nhttp_hist; i++)
        render_hist(out, "jobsd_http_request_duration_seconds", &m->http_hist[i], HTTP_BUCKETS,
                    NHTTP);
    metrics_family(out, "jobsd_jobs_total", "counter",
                   "Jobs run by this instance, by type and final status.");
    for (size_t i = 0; i < m->njobs; i++)
        metrics_sample(out, "jobsd_jobs_total", m->jobs[i].labels, (double)m->jobs[i].value);
    metrics_family(out, "jobsd_job_duration_seconds", "histogram",
                   "Duration of the jobs this instance ran.");
    for (size_t i = 0; i < m->njob_hist; i++)
        render_hist(out, "jobsd_job_duration_seconds", &m->job_hist[i], JOB_BUCKETS, NJOB);
    metrics_family(out, "jobsd_reaper_jobs_total", "counter",
                   "Jobs whose lease expired, requeued or failed by this instance's reaper.");
    metrics_sample(out, "jobsd_reaper_jobs_total", "outcome=\"requeued\"",
                   (double)m->reaped_requeued);
    metrics_sample(out, "jobsd_reaper_jobs_total", "outcome=\"failed\"", (double)m->reaped_failed);
    metrics_family(out, "jobsd_metrics_dropped_total", "counter",
                   "Observations not counted because their series table was full (a bug: every "
                   "label is from a closed set).");
    metrics_sample(out, "jobsd_metrics_dropped_total", NULL, (double)m->dropped);
    render_freshness(m, out);
    pthread_mutex_unlock(&m->lock);
}
