/* api_freshness: GET /api/v1/jobs/freshness (internal key): the active tenants whose data is
 * not being refreshed (freshness.h). One query parameter, limit (1..1000, default 100: how many
 * stale tenants are listed; the counts cover all of them); an unknown or repeated one is 400. */
#include "jobsd/api.h"
#include "jobsd/freshness.h"
#include "jobsd/http.h"
#include "jobsd/util.h"

#include <string.h>

static bool only_limit(void *ctx, const char *key, const char *value)
{
    (void)value;
    struct err *e = ctx;
    if (strcmp(key, "limit") == 0)
        return true;
    err_set(e, 400, "unknown_field", "unknown query parameter \"%.64s\" (allowed: limit)", key);
    return false;
}

static MUSTCHECK char *run_freshness(PGconn *c, long long timeout_ms, void *ctx, struct err *e)
{
    return api_dump(freshness_report(c, ctx, timeout_ms, e));
}

void api_get_freshness(void *app, struct http_request *req)
{
    struct api_ctx *a = app;
    struct err e;
    err_clear(&e);
    http_request_each_query(req, only_limit, &e);
    if (err_is_set(&e)) {
        http_respond_err(req, &e, NULL);
        return;
    }
    size_t n = 0;
    const char *lim = http_request_query(req, "limit", &n);
    struct freshness_query q = {a->cfg->freshness_max_age_hours, a->cfg->jobs_timezone, NULL, 100};
    if (n > 1) {
        http_respond_error(req, 400, "invalid_field", "limit is given %zu times", n);
        return;
    }
    if (lim && !util_parse_i64(lim, 1, 1000, &q.limit)) {
        http_respond_error(req, 400, "invalid_field", "limit must be an integer from 1 to 1000");
        return;
    }
    api_read(a, req, run_freshness, &q);
}
