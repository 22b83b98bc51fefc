/* api_jobs: triggering a job (POST /api/v1/jobs/<name>, one handler for every kind: the
 * route carries its kind) and reading one (GET /api/v1/jobs/{id}). A trigger submits the body
 * (job_exec_submit: validated, resolved and queued, or attached to the identical job already
 * queued or running), then either answers 202 at once or parks the request until the job
 * ends, on any instance, or the wait runs out (SPEC 1.3). */
#include "jobsd/api.h"
#include "jobsd/db.h"
#include "jobsd/http.h"
#include "jobsd/job_exec.h"
#include "jobsd/job_fleet.h"
#include "jobsd/job_kinds.h"
#include "jobsd/job_runner.h"
#include "jobsd/job_store.h"
#include "jobsd/job_wait.h"
#include "jobsd/log.h"
#include "jobsd/util.h"

#include <stdlib.h>
#include <string.h>

struct wait_ctx {
    struct http_request *req;
    const struct job_kind *kind;
    char id[JOB_ID_LEN];
    bool deduplicated;
    char applied[64]; /* Preference-Applied, "" when none */
    bool async;       /* respond-async was asked */
};

static bool collect_prefer(void *ctx, const char *value)
{
    http_prefer_parse(ctx, value);
    return true;
}

static void respond_accepted(struct http_request *req, const char *id, enum job_status status,
                             bool deduplicated, const char *applied)
{
    char location[80];
    util_fmt(location, sizeof location, "/api/v1/jobs/%s", id);
    http_add_header(req, "Location", location);
    if (applied && applied[0])
        http_add_header(req, "Preference-Applied", applied);
    const char *st = status == JOB_RUNNING ? "running" : "queued";
    http_respond_json(req, 202,
                      json_pack("{s:b, s:s, s:s, s:b, s:s}", "success", 1, "jobLogId", id, "status",
                                st, "deduplicated", deduplicated, "statusUrl", location));
}

/* The final answer of a finished job, as its first caller got it. */
static void respond_finished(struct http_request *req, const struct job_kind *kind,
                             const struct job_state *s, bool deduplicated, const char *applied)
{
    if (applied && applied[0])
        http_add_header(req, "Preference-Applied", applied);
    if (s->status == JOB_CANCELLED) {
        /* Final, and not for the caller to retry: a 409 like the other conflicts. */
        struct err c;
        err_clear(&c);
        err_set(&c, 409, "job_cancelled", "job %s was cancelled by an operator", s->id);
        http_respond_err(req, &c, s->id);
        return;
    }
    /* A job that produced a body answers with it (also a partial failure: success false). */
    if (s->status == JOB_SUCCESS || s->result) {
        json_t *res = s->result ? json_loads(s->result, 0, NULL) : NULL;
        if (!res)
            res = json_pack("{s:b, s:s}", "success", 1, "jobLogId", s->id);
        json_object_set_new(res, "deduplicated", json_boolean(deduplicated));
        json_t *ordered = kind ? kind->present(res) : json_incref(res);
        json_decref(res);
        http_respond_json(req, 200, ordered);
        return;
    }
    struct err e;
    err_clear(&e);
    json_t *er = s->error ? json_loads(s->error, 0, NULL) : NULL;
    long long status = er ? (long long)json_integer_value(json_object_get(er, "httpStatus")) : 0;
    const char *code = er ? json_string_value(json_object_get(er, "code")) : NULL;
    const char *msg = er ? json_string_value(json_object_get(er, "message")) : NULL;
    err_set(&e, status >= 400 && status <= 599 ? (int)status : 500, code ? code : "internal_error",
            "%s", msg ? msg : "the job failed");
    json_decref(er);
    http_respond_err(req, &e, s->id);
}

static void on_wait_over(void *ctx, const struct job_state *s, bool timed_out)
{
    struct wait_ctx *w = ctx;
    if (timed_out || !job_status_finished(s->status)) {
        char applied[96];
        snprintf(applied, sizeof applied, "%s%s%s", w->async ? "respond-async" : "",
                 w->async && w->applied[0] ? ", " : "", w->applied);
        respond_accepted(w->req, w->id, s->status, w->deduplicated, applied);
    } else {
        respond_finished(w->req, w->kind, s, w->deduplicated, w->applied);
    }
    free(w);
}

static void log_rejected(const struct job_kind *kind, struct http_request *req, const struct err *e)
{
    char status[8];
    util_fmt(status, sizeof status, "%d", e->http_status);
    /* A full queue is load, not a fault: a warning per refused request. */
    bool fault = e->http_status >= 500 && strcmp(e->code, "queue_full") != 0;
    log_event(fault ? LOG_ERROR : LOG_WARN, LOG_JOB_TAG "job request rejected", "job", kind->name,
              "status", status, "code", e->code, "error", e->message, "requestId",
              http_request_id(req), NULL);
}

/* After the job is queued: 202 at once, or park the request until it ends (or the wait runs
 * out) as the Prefer header asks (SPEC 1.3). */
static void answer_or_wait(struct api_ctx *a, struct http_request *req, const struct job_kind *kind,
                           const struct job_enqueued *enq)
{
    struct http_prefer p = {false, false, 0};
    http_request_each_header(req, "Prefer", collect_prefer, &p);
    long long wait = a->cfg->sync_wait_seconds;
    char applied[64] = "";
    if (p.has_wait) {
        wait = p.wait < wait ? p.wait : wait;
        util_fmt(applied, sizeof applied, "wait=%lld", wait);
    } else if (p.respond_async) {
        wait = 0;
    }
    if (wait <= 0) {
        char both[96];
        snprintf(both, sizeof both, "%s%s%s", p.respond_async ? "respond-async" : "",
                 p.respond_async && applied[0] ? ", " : "", applied);
        respond_accepted(req, enq->id, enq->status, enq->deduplicated, both);
        return;
    }
    struct wait_ctx *w = util_calloc(1, sizeof *w);
    w->req = req;
    w->kind = kind;
    snprintf(w->id, sizeof w->id, "%s", enq->id);
    w->deduplicated = enq->deduplicated;
    w->async = p.respond_async;
    snprintf(w->applied, sizeof w->applied, "%s", applied);
    http_suspend(req);
    job_waiters_add(a->waiters, enq->id, enq->status, util_mono_ms() + wait * 1000, on_wait_over,
                    w);
}

void api_post_job(void *app, struct http_request *req)
{
    struct api_ctx *a = app;
    const struct job_kind *kind = http_request_route(req)->data;
    struct err e;
    err_clear(&e);
    struct job_submission sub;
    memset(&sub, 0, sizeof sub);
    const char *ua = http_request_user_agent(req);
    char ua_short[256];
    snprintf(ua_short, sizeof ua_short, "%s", ua ? ua : "");
    struct job_origin origin = {"http", ua ? ua_short : NULL, http_request_id(req)};
    PGconn *c = db_pool_acquire(a->pool, a->cfg->db_query_timeout_ms, &e);
    int rc =
        c ? job_exec_submit(c, a->cfg, kind, http_request_json(req), &origin, NULL, &sub, &e) : -1;
    if (c)
        db_pool_release(a->pool, c);
    if (rc != 0) {
        log_rejected(kind, req, &e);
        http_respond_err(req, &e, NULL);
        return;
    }
    const char *from = json_string_value(json_object_get(sub.req.params, "from"));
    const char *to = json_string_value(json_object_get(sub.req.params, "to"));
    log_event(LOG_INFO,
              sub.enq.deduplicated ? LOG_JOB_TAG "job request attached to a running job"
                                   : LOG_JOB_TAG "job triggered",
              "job", kind->name, "jobLogId", sub.enq.id, "tenantId", sub.req.tenant_id, "from",
              from, "to", to, "deduplicated", sub.enq.deduplicated ? "true" : "false", "requestId",
              http_request_id(req), NULL);
    if (!sub.enq.deduplicated)
        job_runner_wake(a->runner);
    answer_or_wait(a, req, kind, &sub.enq);
    job_submission_clear(&sub);
}

struct get_job {
    const char *id;
    const char *tenant; /* NULL for the internal key */
};

static MUSTCHECK char *read_job(PGconn *c, long long timeout_ms, void *ctx, struct err *e)
{
    struct get_job *g = ctx;
    json_t *job = job_store_get(c, g->id, g->tenant, timeout_ms, e);
    const struct job_kind *kind =
        job_kind_by_type(json_string_value(json_object_get(job, "jobType")));
    json_t *result = json_object_get(job, "result");
    if (kind && result)
        json_object_set_new(job, "result", kind->present(result));
    /* A fleet parent still queued or running: its children's progress, live (whoever holds
     * the parent). A finished one has its counts in its result (its children may since have
     * been pruned by retention). */
    json_t *request = json_object_get(json_object_get(job, "metadata"), "request");
    const char *st = json_string_value(json_object_get(job, "status"));
    if (job && job_fleet_is_parent(request) && st &&
        (strcmp(st, "queued") == 0 || strcmp(st, "running") == 0)) {
        json_t *progress =
            job_fleet_progress(c, json_string_value(json_object_get(job, "id")), timeout_ms, e);
        if (!progress) {
            json_decref(job);
            return NULL;
        }
        json_object_set_new(job, "progress", progress);
    }
    return api_dump(job);
}

void api_get_job(void *app, struct http_request *req)
{
    const struct http_auth *auth = http_request_auth(req);
    struct get_job g = {http_request_param(req),
                        auth->kind == HTTP_AUTH_JWT ? auth->tenant_id : NULL};
    api_read(app, req, read_job, &g);
}
