/* api_status: what the web app reads with a seller's JWT: GET /api/v1/jobs/status (recent
 * runs, keyset pagination) and GET /api/v1/jobs/stats. Query parameters are strict: an
 * unknown, repeated or invalid one is 400, never ignored. */
#include "jobsd/api.h"
#include "jobsd/db.h"
#include "jobsd/http.h"
#include "jobsd/job_kinds.h"
#include "jobsd/stats.h"
#include "jobsd/util.h"

#include <string.h>

struct query_check {
    const char *const *allowed;
    struct err *e;
};

static bool check_key(void *ctx, const char *key, const char *value)
{
    (void)value;
    struct query_check *q = ctx;
    for (size_t i = 0; q->allowed[i]; i++)
        if (strcmp(q->allowed[i], key) == 0)
            return true;
    err_set(q->e, 400, "unknown_field", "unknown query parameter \"%.64s\" (allowed: %s)", key,
            q->allowed[0] && q->allowed[1] ? "jobType, status, limit, before" : "window");
    return false;
}

/* Rejects unknown and repeated parameters. */
static MUSTCHECK int check_query(struct http_request *req, const char *const *allowed,
                                 struct err *e)
{
    struct query_check q = {allowed, e};
    http_request_each_query(req, check_key, &q);
    if (err_is_set(e))
        return -1;
    for (size_t i = 0; allowed[i]; i++) {
        size_t n = 0;
        (void)http_request_query(req, allowed[i], &n);
        if (n > 1)
            return err_set(e, 400, "invalid_field", "%s is given %zu times", allowed[i], n);
    }
    return 0;
}

static const char *one_of(const char *v, const char *const *values)
{
    for (size_t i = 0; v && values[i]; i++)
        if (strcmp(v, values[i]) == 0)
            return values[i];
    return NULL;
}

/* jobType: one of the registry's types. */
static const char *known_type(const char *v)
{
    const struct job_kind *k = job_kind_by_type(v);
    return k ? k->type : NULL;
}

/* "jobType must be metrics_aggregation or mercadolivre_sync", from the registry. */
static void respond_bad_type(struct http_request *req)
{
    char list[256] = "";
    size_t n = job_kinds_count(), i = 0, used = 0;
    for (const struct job_kind *const *k = job_kinds(); *k && used < sizeof list; k++, i++) {
        int w = snprintf(list + used, sizeof list - used, "%s%s",
                         i == 0 ? "" : (i + 1 == n ? " or " : ", "), (*k)->type);
        used += w > 0 ? (size_t)w : 0;
    }
    http_respond_error(req, 400, "invalid_field", "jobType must be %s", list);
}

static MUSTCHECK char *run_status(PGconn *c, long long timeout_ms, void *ctx, struct err *e)
{
    return stats_status(c, ctx, timeout_ms, e);
}

void api_get_status(void *app, struct http_request *req)
{
    static const char *const allowed[] = {"jobType", "status", "limit", "before", NULL};
    static const char *const statuses[] = {"queued", "running",   "success",
                                           "error",  "cancelled", NULL};
    struct err e;
    err_clear(&e);
    if (check_query(req, allowed, &e) != 0) {
        http_respond_err(req, &e, NULL);
        return;
    }
    struct status_query q;
    memset(&q, 0, sizeof q);
    q.tenant_id = http_request_auth(req)->tenant_id;
    const char *jt = http_request_query(req, "jobType", NULL);
    const char *st = http_request_query(req, "status", NULL);
    const char *lim = http_request_query(req, "limit", NULL);
    q.before = http_request_query(req, "before", NULL);
    q.limit = 10;
    if (jt && !(q.job_type = known_type(jt))) {
        respond_bad_type(req);
        return;
    }
    if (st && !(q.status = one_of(st, statuses))) {
        http_respond_error(req, 400, "invalid_field",
                           "status must be queued, running, success, error or cancelled");
        return;
    }
    if (lim && !util_parse_i64(lim, 1, 100, &q.limit)) {
        http_respond_error(req, 400, "invalid_field", "limit must be an integer from 1 to 100");
        return;
    }
    if (q.before && stats_cursor_check(q.before, &e) != 0) {
        http_respond_err(req, &e, NULL);
        return;
    }
    api_read(app, req, run_status, &q);
}

struct stats_args {
    const char *tenant;
    const char *window;
    const char *timezone;
};

static MUSTCHECK char *run_stats(PGconn *c, long long timeout_ms, void *ctx, struct err *e)
{
    struct stats_args *s = ctx;
    const char *types[JOB_KINDS_MAX];
    struct stats_query q = {s->tenant, s->window, s->timezone,
                            NULL,      types,     job_kinds_types(types, JOB_KINDS_MAX)};
    return api_dump(stats_compute(c, &q, timeout_ms, e));
}

void api_get_stats(void *app, struct http_request *req)
{
    struct api_ctx *a = app;
    static const char *const allowed[] = {"window", NULL};
    static const char *const windows[] = {"24h", "7d", "30d", NULL};
    struct err e;
    err_clear(&e);
    if (check_query(req, allowed, &e) != 0) {
        http_respond_err(req, &e, NULL);
        return;
    }
    const char *w = http_request_query(req, "window", NULL);
    struct stats_args s = {http_request_auth(req)->tenant_id, "7d", a->cfg->jobs_timezone};
    if (w && !(s.window = one_of(w, windows))) {
        http_respond_error(req, 400, "invalid_field", "window must be 24h, 7d or 30d");
        return;
    }
    api_read(a, req, run_stats, &s);
}
