/* api_operator: the operator API (issue 21), for the internal key or an operator JWT
 * ("role": "operator", GUARD_OPERATOR): queue depth now, and the two actions on a job,
 * POST /api/v1/jobs/{id}/retry and /cancel (operator_store.h). The actor recorded in the
 * job's metadata is "internal-key" or "operator". */
#include "jobsd/api.h"
#include "jobsd/db.h"
#include "jobsd/http.h"
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
    if (rc != 0) {
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
    http_respond_json(
        req, 200,
        json_pack("{s:b, s:s, s:s}", "success", 1, "jobLogId", id, "status", "cancelled"));
}

void api_post_retry(void *app, struct http_request *req)
{
    act(app, req, ACTION_RETRY);
}

void api_post_cancel(void *app, struct http_request *req)
{
    act(app, req, ACTION_CANCEL);
}
