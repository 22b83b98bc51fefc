/* freshness: see freshness.h. The report is built by PostgreSQL (sql/queries/freshness.sql);
 * the periodic check reads only its counts. */
#include "jobsd/freshness.h"
#include "jobsd/config.h"
#include "jobsd/db.h"
#include "jobsd/embedded.h"
#include "jobsd/job_kinds.h"
#include "jobsd/log.h"
#include "jobsd/metrics.h"
#include "jobsd/util.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

const char *freshness_sql(void)
{
    const struct embedded_file *f = embedded_find("freshness.sql");
    if (!f)
        util_fatal("freshness query missing from the binary");
    return f->data;
}

json_t *freshness_report(PGconn *c, const struct freshness_query *q, long long timeout_ms,
                         struct err *e)
{
    const char *types[JOB_KINDS_MAX];
    size_t ntypes = job_kinds_types(types, JOB_KINDS_MAX);
    char *type_list = db_array_literal(types, ntypes);
    /* A tenant without an active Mercado Livre connection cannot be synced: never stale on
     * the kinds that call it (the fleet trigger skips it too). */
    const char *ml_types[JOB_KINDS_MAX];
    char *conn_list = db_array_literal(ml_types, job_kinds_ml_types(ml_types, JOB_KINDS_MAX));
    char hours[24], limit[24];
    util_fmt(hours, sizeof hours, "%lld", q->max_age_hours);
    util_fmt(limit, sizeof limit, "%lld", q->limit);
    const char *params[] = {type_list, conn_list, hours, q->tz, q->now_rfc3339, limit};
    PGresult *r = db_read(c, timeout_ms, freshness_sql(), 6, params, e);
    free(type_list);
    free(conn_list);
    if (!r)
        return NULL;
    json_t *body = PQntuples(r) == 1 ? json_loads(PQgetvalue(r, 0, 0), 0, NULL) : NULL;
    PQclear(r);
    if (!body)
        err_set(e, 500, "internal_error", "freshness could not be read");
    return body;
}

/* "YYYY-MM-DDTHH:MM:SS.mmmZ" (the report's timestamps) as seconds since the epoch; -1 when
 * it is not one. */
static double epoch_of(const char *s)
{
    long long f[7];
    static const size_t at[7] = {0, 5, 8, 11, 14, 17, 20}, len[7] = {4, 2, 2, 2, 2, 2, 3};
    if (!s || strlen(s) != 24)
        return -1;
    for (size_t i = 0; i < 7; i++)
        if (!util_parse_i64n(s + at[i], len[i], 0, 9999, &f[i]))
            return -1;
    struct tm tm;
    memset(&tm, 0, sizeof tm);
    tm.tm_year = (int)f[0] - 1900;
    tm.tm_mon = (int)f[1] - 1;
    tm.tm_mday = (int)f[2];
    tm.tm_hour = (int)f[3];
    tm.tm_min = (int)f[4];
    tm.tm_sec = (int)f[5];
    return (double)timegm(&tm) + (double)f[6] / 1000.0;
}

/* The report's per-type counts into the gauges; the log line's "staleByType" into by_type. */
static void publish(struct metrics *m, json_t *report, char *by_type, size_t cap)
{
    struct metrics_freshness rows[METRICS_FRESHNESS_MAX];
    size_t n = 0, used = 0;
    json_t *t;
    size_t i;
    by_type[0] = '\0';
    json_array_foreach(json_object_get(report, "jobTypes"), i, t)
    {
        if (n >= METRICS_FRESHNESS_MAX)
            break;
        const char *type = json_string_value(json_object_get(t, "jobType"));
        util_fmt(rows[n].job_type, sizeof rows[n].job_type, "%s", type ? type : "");
        rows[n].eligible = (long long)json_integer_value(json_object_get(t, "eligibleTenants"));
        rows[n].stale = (long long)json_integer_value(json_object_get(t, "staleTenants"));
        rows[n].last_success = epoch_of(json_string_value(json_object_get(t, "lastSuccessAt")));
        if (used < cap)
            util_fmt(by_type + used, cap - used, "%s%s:%lld", n ? "," : "", rows[n].job_type,
                     rows[n].stale);
        used = strlen(by_type);
        n++;
    }
    metrics_freshness(m, rows, n, (double)util_now_ms() / 1000.0);
}

struct freshness {
    struct db_pool *pool;
    struct metrics *metrics;
    long long interval_s, timeout_ms;
    struct freshness_query q;
    char tz[80];
    pthread_t thread;
    pthread_mutex_t lock;
    pthread_cond_t cond;
    bool stopping;
};

/* One check: "[INTERNAL-JOB] freshness staleTenants=N ..." (warn when N > 0, the CloudWatch
 * metric filter's match), the gauges. */
static void check_once(struct freshness *f)
{
    struct err e;
    err_clear(&e);
    PGconn *c = db_pool_acquire(f->pool, f->timeout_ms, &e);
    json_t *report = c ? freshness_report(c, &f->q, f->timeout_ms, &e) : NULL;
    if (c)
        db_pool_release(f->pool, c);
    if (!report) {
        log_event(LOG_WARN, LOG_JOB_TAG "freshness check failed", "error", e.message, NULL);
        return;
    }
    char by_type[512], stale[24], active[24], hours[24];
    publish(f->metrics, report, by_type, sizeof by_type);
    long long n = (long long)json_integer_value(json_object_get(report, "staleTenants"));
    util_fmt(stale, sizeof stale, "%lld", n);
    util_fmt(active, sizeof active, "%lld",
             (long long)json_integer_value(json_object_get(report, "activeTenants")));
    util_fmt(hours, sizeof hours, "%lld", f->q.max_age_hours);
    log_event(n > 0 ? LOG_WARN : LOG_INFO, LOG_JOB_TAG "freshness", "staleTenants", stale,
              "activeTenants", active, "staleByType", by_type, "maxAgeHours", hours, NULL);
    json_decref(report);
}

static void *run(void *arg)
{
    struct freshness *f = arg;
    for (;;) {
        check_once(f);
        pthread_mutex_lock(&f->lock);
        if (!f->stopping)
            util_cond_wait_ms(&f->cond, &f->lock, f->interval_s * 1000);
        bool stop = f->stopping;
        pthread_mutex_unlock(&f->lock);
        if (stop)
            break;
    }
    return NULL;
}

struct freshness *freshness_start(const struct config *cfg, struct db_pool *pool, struct metrics *m)
{
    if (cfg->freshness_check_seconds <= 0)
        return NULL;
    struct freshness *f = util_calloc(1, sizeof *f);
    f->pool = pool;
    f->metrics = m;
    f->interval_s = cfg->freshness_check_seconds;
    f->timeout_ms = cfg->db_query_timeout_ms;
    util_fmt(f->tz, sizeof f->tz, "%s", cfg->jobs_timezone);
    f->q = (struct freshness_query){cfg->freshness_max_age_hours, f->tz, NULL, 0};
    pthread_mutex_init(&f->lock, NULL);
    util_cond_init(&f->cond);
    if (pthread_create(&f->thread, NULL, run, f) != 0)
        util_fatal("cannot start the freshness thread");
    return f;
}

void freshness_stop(struct freshness *f)
{
    if (!f)
        return;
    pthread_mutex_lock(&f->lock);
    f->stopping = true;
    pthread_cond_broadcast(&f->cond);
    pthread_mutex_unlock(&f->lock);
    pthread_join(f->thread, NULL);
    pthread_mutex_destroy(&f->lock);
    pthread_cond_destroy(&f->cond);
    free(f);
}
