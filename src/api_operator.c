/* api_operator: the operator API (issue 21), for the internal key or an operator JWT
 * ("role": "operator", GUARD_OPERATOR): queue depth now, and the two actions on a job,
 * POST /api/v1/jobs/{id}/retry and /cancel (operator_store.h). The actor recorded in the
 * job's metadata is "internal-key" or "operator". */
#include "jobsd/api.h"
#include "jobsd/db.h"
#include "jobsd/http.h"
#include "jobsd/job_kinds.h"
#include "jobsd/job_runner.h"
#include "jobsd/log.h"
#include "jobsd/operator_store.h"
#include "jobsd/util.h"

#include <string.h>

static const char *actor(const struct http_request *req)
{
    return http_request_auth(req)->kind == HTTP_AUTH_JWT ? "operator" : "internal-key";
}

static MUSTCHECK char *read_queue(PGconn *c, long long timeout_ms, void *ctx, struct err *e)
{
    (void)ctx;
    return api_dump(operator_store_queue(c, timeout_ms, e));
}

void api_get_operator_queue(void *app, struct http_request *req)
{
    api_read(app, req, read_queue, NULL);
}

enum action { ACTION_RETRY, ACTION_CANCEL };

static void act(struct api_ctx *a, struct http_request *req, enum action what)
{
    struct err e;
    err_clear(&e);
    const char *id = http_request_param(req);
    char new_id[OPERATOR_ID_LEN] = "";
    PGconn *c = db_pool_acquire(a->pool, a->cfg->db_query_timeout_ms, &e);
    int rc = -1;
    if (c) {
        rc = what == ACTION_RETRY
                 ? operator_store_retry(c, id, actor(req), a->cfg->db_query_timeout_ms, new_id, &e)
                 : operator_store_cancel(c, id, actor(req), a->cfg->db_query_timeout_ms, &e);
        db_pool_release(a->pool, c);
    }
    if (rc < 0) {
        http_respond_err(req, &e, NULL);
        return;
    }
    log_event(
        LOG_INFO, what == ACTION_RETRY ? LOG_JOB_TAG "job retried" : LOG_JOB_TAG "job cancelled",
        "jobLogId", what == ACTION_RETRY ? new_id : id, "retryOf", what == ACTION_RETRY ? id : NULL,
        "by", actor(req), "requestId", http_request_id(req), NULL);
    if (what == ACTION_RETRY) {
        job_runner_wake(a->runner);
        http_respond_json(req, 202,
                          json_pack("{s:b, s:s, s:s, s:s}", "success", 1, "jobLogId", new_id,
                                    "retryOf", id, "status", "queued"));
        return;
    }
    http_respond_json(req, rc == 1 ? 202 : 200,
                      json_pack("{s:b, s:s, s:s}", "success", 1, "jobLogId", id, "status",
                                rc == 1 ? "cancelling" : "cancelled"));
}

void api_post_retry(void *app, struct http_request *req)
{
    act(app, req, ACTION_RETRY);
}

void api_post_cancel(void *app, struct http_request *req)
{
    act(app, req, ACTION_CANCEL);
}

struct allowed {
    const char *const *keys;
    struct err *e;
};

static bool allowed_key(void *ctx, const char *key, const char *value)
{
    (void)value;
    struct allowed *a = ctx;
    for (size_t i = 0; a->keys[i]; i++)
        if (strcmp(a->keys[i], key) == 0)
            return true;
    err_set(a->e, 400, "unknown_field", "unknown query parameter \"%.64s\"", key);
    return false;
}

/* Unknown and repeated query parameters are 400 (as on every jobsd route). */
static MUSTCHECK int strict_query(struct http_request *req, const char *const *keys, struct err *e)
{
    struct allowed a = {keys, e};
    http_request_each_query(req, allowed_key, &a);
    if (err_is_set(e))
        return -1;
    for (size_t i = 0; keys[i]; i++) {
        size_t n = 0;
        (void)http_request_query(req, keys[i], &n);
        if (n > 1)
            return err_set(e, 400, "invalid_field", "%s is given %zu times", keys[i], n);
    }
    return 0;
}

static bool is_status(const char *s)
{
    static const char *const all[] = {"queued", "running", "success", "error", "cancelled"};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
        if (strcmp(s, all[i]) == 0)
            return true;
    return false;
}

struct jobs_args {
    struct operator_jobs_query q;
    char tenant[37], us[24], id[OPERATOR_ID_LEN];
};

static MUSTCHECK int parse_jobs(struct http_request *req, struct jobs_args *a, struct err *e)
{
    static const char *const keys[] = {"jobType", "status", "tenantId", "from",
                                       "to",      "limit",  "before",   NULL};
    if (strict_query(req, keys, e) != 0)
        return -1;
    struct operator_jobs_query *q = &a->q;
    q->job_type = http_request_query(req, "jobType", NULL);
    q->status = http_request_query(req, "status", NULL);
    q->from = http_request_query(req, "from", NULL);
    q->to = http_request_query(req, "to", NULL);
    const char *tenant = http_request_query(req, "tenantId", NULL);
    const char *lim = http_request_query(req, "limit", NULL);
    const char *before = http_request_query(req, "before", NULL);
    q->limit = 50;
    if (q->job_type && !job_kind_by_type(q->job_type))
        return err_set(e, 400, "invalid_field", "jobType is not a job type");
    if (q->status && !is_status(q->status))
        return err_set(e, 400, "invalid_field",
                       "status must be queued, running, success, error or cancelled");
    if (tenant && !util_uuid_normalize(tenant, a->tenant))
        return err_set(e, 400, "invalid_field", "tenantId must be a UUID");
    q->tenant_id = tenant ? a->tenant : NULL;
    if ((q->from && !util_is_date(q->from)) || (q->to && !util_is_date(q->to)))
        return err_set(e, 400, "invalid_field", "from and to must be dates (YYYY-MM-DD)");
    if (lim && !util_parse_i64(lim, 1, 100, &q->limit))
        return err_set(e, 400, "invalid_field", "limit must be an integer from 1 to 100");
    if (before && !operator_cursor_parse(before, a->us, a->id))
        return err_set(e, 400, "invalid_field", "before is not a cursor jobsd issued");
    q->before_us = before ? a->us : NULL;
    q->before_id = before ? a->id : NULL;
    return 0;
}

static MUSTCHECK char *read_jobs(PGconn *c, long long timeout_ms, void *ctx, struct err *e)
{
    return operator_store_jobs(c, &((struct jobs_args *)ctx)->q, timeout_ms, e);
}

void api_get_operator_jobs(void *app, struct http_request *req)
{
    struct err e;
    err_clear(&e);
    struct jobs_args a;
    memset(&a, 0, sizeof a);
    if (parse_jobs(req, &a, &e) != 0) {
        http_respond_err(req, &e, NULL);
        return;
    }
    api_read(app, req, read_jobs, &a);
}

static MUSTCHECK char *read_job(PGconn *c, long long timeout_ms, void *ctx, struct err *e)
{
    return operator_store_job(c, *(const char **)ctx, timeout_ms, e);
}

void api_get_operator_job(void *app, struct http_request *req)
{
    const char *id = http_request_param(req);
    api_read(app, req, read_job, &id);
}

static MUSTCHECK char *read_trends(PGconn *c, long long timeout_ms, void *ctx, struct err *e)
{
    return operator_store_trends(c, *(long long *)ctx, timeout_ms, e);
}

void api_get_operator_trends(void *app, struct http_request *req)
{
    static const char *const keys[] = {"days", NULL};
    struct err e;
    err_clear(&e);
    long long days = 30;
    const char *d = NULL;
    if (strict_query(req, keys, &e) == 0 && (d = http_request_query(req, "days", NULL)) &&
        !util_parse_i64(d, 1, 90, &days))
        err_set(&e, 400, "invalid_field", "days must be an integer from 1 to 90");
    if (err_is_set(&e)) {
        http_respond_err(req, &e, NULL);
        return;
    }
    api_read(app, req, read_trends, &days);
}

static MUSTCHECK char *read_fleet(PGconn *c, long long timeout_ms, void *ctx, struct err *e)
{
    return operator_store_fleet(c, *(long long *)ctx, timeout_ms, e);
}

void api_get_operator_fleet(void *app, struct http_request *req)
{
    static const char *const keys[] = {NULL};
    struct api_ctx *a = app;
    struct err e;
    err_clear(&e);
    if (strict_query(req, keys, &e) != 0) {
        http_respond_err(req, &e, NULL);
        return;
    }
    long long hours = a->cfg->freshness_max_age_hours;
    api_read(app, req, read_fleet, &hours);
}
