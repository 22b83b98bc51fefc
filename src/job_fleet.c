/* job_fleet: see job_fleet.h. Every statement is parameterised; the kind's fleet_tenants is
 * SQL compiled into the binary. */
#include "jobsd/job_fleet.h"
#include "jobsd/db.h"
#include "jobsd/job_store.h"
#include "jobsd/log.h"
#include "jobsd/util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Children queued per transaction during the fan-out. */
#define FAN_OUT_BATCH 100
/* How long the parent sleeps when it has no child of its own to run. */
#define WAIT_POLL_MS 250
/* Tenants named in a result's failures / skippedTenants. */
#define NAMED_MAX 100

bool job_fleet_is_parent(const json_t *params)
{
    return json_is_true(json_object_get(params, "allTenants"));
}

/* ------------------------------------------------------------------ progress */

struct counts {
    long long tenants; /* -1 until the fan-out counted them */
    long long enqueued, queued, running, succeeded, failed, skipped;
    long long cancel_requested; /* 1: an operator cancelled the parent (metadata) */
};

static const char COUNTS_SQL[] =
    "SELECT coalesce((p.metadata->'fleet'->>'tenants')::bigint, -1), count(c.tenant_id), "
    " count(*) FILTER (WHERE j.status = 'queued'), count(*) FILTER (WHERE j.status = 'running'), "
    " count(*) FILTER (WHERE j.status = 'success'), "
    " count(*) FILTER (WHERE j.status IN ('error', 'cancelled') OR (c.child_id IS NOT NULL AND "
    "j.id IS NULL)), "
    " count(c.tenant_id) FILTER (WHERE c.child_id IS NULL), "
    " (p.metadata ? 'cancelRequested')::int "
    "FROM job_logs p LEFT JOIN job_fleet_children c ON c.parent_id = p.id "
    "LEFT JOIN job_logs j ON j.id = c.child_id WHERE p.id = $1 GROUP BY p.id";

static MUSTCHECK int read_counts(PGconn *c, const char *id, long long timeout_ms, struct counts *n,
                                 struct err *e)
{
    memset(n, 0, sizeof *n);
    const char *p[] = {id};
    PGresult *r = timeout_ms > 0 ? db_read(c, timeout_ms, COUNTS_SQL, 1, p, e)
                                 : db_query(c, COUNTS_SQL, 1, p, e);
    if (!r)
        return -1;
    if (PQntuples(r) == 1) {
        long long *f[] = {&n->tenants,   &n->enqueued, &n->queued,  &n->running,
                          &n->succeeded, &n->failed,   &n->skipped, &n->cancel_requested};
        for (int i = 0; i < 8; i++)
            *f[i] = util_i64_or(PQgetvalue(r, 0, i), 0);
    }
    PQclear(r);
    return 0;
}

static json_t *counts_json(const struct counts *n)
{
    long long tenants = n->tenants < 0 ? n->enqueued : n->tenants;
    json_t *o = json_pack(
        "{s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I}", "tenants", (json_int_t)tenants, "enqueued",
        (json_int_t)n->enqueued, "queued", (json_int_t)n->queued, "running", (json_int_t)n->running,
        "succeeded", (json_int_t)n->succeeded, "failed", (json_int_t)n->failed, "skipped",
        (json_int_t)n->skipped, "done", (json_int_t)(n->succeeded + n->failed + n->skipped));
    if (!o)
        util_fatal("out of memory");
    return o;
}

json_t *job_fleet_progress(PGconn *c, const char *parent_id, long long timeout_ms, struct err *e)
{
    struct counts n;
    if (read_counts(c, parent_id, timeout_ms, &n, e) != 0)
        return NULL;
    return counts_json(&n);
}

static void report(struct job_run *run, const struct counts *n, struct counts *last)
{
    if (!run->progress || memcmp(n, last, sizeof *n) == 0)
        return;
    *last = *n;
    char line[200];
    util_fmt(line, sizeof line,
             "fleet: %lld/%lld tenants done (%lld succeeded, %lld failed, %lld skipped), "
             "%lld running, %lld queued",
             n->succeeded + n->failed + n->skipped, n->tenants < 0 ? n->enqueued : n->tenants,
             n->succeeded, n->failed, n->skipped, n->running, n->queued);
    run->progress(run->progress_ctx, line);
}

/* ------------------------------------------------------------------ fan-out */

/* The parent is still ours: its row locked for the batch (a holder that lost it stops). */
static MUSTCHECK int hold_parent(PGconn *c, const struct job_run *run, struct err *e)
{
    const char *p[] = {run->id, run->worker_id};
    PGresult *r = db_query(c,
                           "SELECT metadata ? 'cancelRequested' FROM job_logs WHERE id = $1 "
                           "AND worker_id = $2 AND status = 'running' FOR UPDATE",
                           2, p, e);
    if (!r)
        return -1;
    bool mine = PQntuples(r) == 1;
    /* An operator's cancel waits for this lock (operator_store.c), then cancels the children
     * this batch queued; a batch after it queues nothing. */
    bool cancelled = mine && strcmp(PQgetvalue(r, 0, 0), "t") == 0;
    PQclear(r);
    if (cancelled)
        return err_set(e, 503, "interrupted", "cancelled by an operator while queueing");
    return mine ? 0 : err_set(e, 503, "interrupted", "job %s is no longer ours", run->id);
}

/* One tenant: its child queued (or joined) and mapped, or mapped as skipped when its request
 * is refused (4xx). A database error fails the batch. */
static MUSTCHECK int fan_out_one(const struct job_kind *kind, struct job_run *run,
                                 const struct job_fleet_hooks *h, const char *tenant, struct err *e)
{
    PGconn *c = run->conn;
    json_t *body = json_deep_copy(run->params);
    if (!body)
        util_fatal("out of memory");
    json_object_del(body, "allTenants");
    json_object_set_new(body, "tenantId", json_string(tenant));
    struct job_request req;
    memset(&req, 0, sizeof req);
    struct err why;
    err_clear(&why);
    int rc = kind->resolve(run->cfg, c, body, &req, &why);
    json_decref(body);
    struct job_enqueued enq;
    memset(&enq, 0, sizeof enq);
    if (rc == 0) {
        struct job_origin origin = {h->trigger, NULL, h->request_id[0] ? h->request_id : NULL};
        rc = job_store_enqueue_child(c, kind->type, &req, &origin, run->id, &enq, e);
    } else if (why.http_status >= 500 || db_is_broken(c)) {
        *e = why;
    } else {
        rc = 0; /* refused: skipped, with its reason */
    }
    job_request_clear(&req);
    if (rc != 0)
        return -1;
    const char *p[] = {run->id, tenant, enq.id[0] ? enq.id : NULL, enq.id[0] ? NULL : why.code,
                       enq.id[0] ? NULL : why.message};
    return db_exec(c,
                   "INSERT INTO job_fleet_children (parent_id, tenant_id, child_id, skip_code, "
                   " skip_message) VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING",
                   5, p, e);
}

/* Records how many tenants the parent runs for (the mapped ones and those still to map). */
static MUSTCHECK int record_total(PGconn *c, const struct job_run *run, long long total,
                                  struct err *e)
{
    char n[24];
    util_fmt(n, sizeof n, "%lld", total);
    const char *p[] = {run->id, run->worker_id, n};
    return db_exec(c,
                   "UPDATE job_logs SET metadata = metadata || jsonb_build_object('fleet', "
                   " jsonb_build_object('tenants', $3::bigint)) "
                   "WHERE id = $1 AND worker_id = $2 AND status = 'running'",
                   3, p, e);
}

/* The eligible tenants not mapped yet (new result), after recording the total. */
static MUSTCHECK PGresult *pending_tenants(const struct job_kind *kind, struct job_run *run,
                                           struct err *e)
{
    static const char HEAD[] = "SELECT t.id::text, (SELECT count(*) FROM job_fleet_children "
                               "WHERE parent_id = $1) FROM (";
    static const char TAIL[] = ") t(id) WHERE NOT EXISTS (SELECT 1 FROM job_fleet_children m "
                               "WHERE m.parent_id = $1 AND m.tenant_id = t.id) ORDER BY 1";
    size_t cap = sizeof HEAD + strlen(kind->fleet_tenants) + sizeof TAIL;
    char *sql = util_calloc(1, cap);
    util_fmt(sql, cap, "%s%s%s", HEAD, kind->fleet_tenants, TAIL);
    const char *p[] = {run->id};
    PGresult *r = db_query(run->conn, sql, 1, p, e);
    free(sql);
    if (!r)
        return NULL;
    long long mapped = 0;
    if (PQntuples(r) > 0)
        mapped = util_i64_or(PQgetvalue(r, 0, 1), 0);
    else {
        PGresult *m = db_query(
            run->conn, "SELECT count(*) FROM job_fleet_children WHERE parent_id = $1", 1, p, e);
        if (!m) {
            PQclear(r);
            return NULL;
        }
        mapped = util_i64_or(PQgetvalue(m, 0, 0), 0);
        PQclear(m);
    }
    if (record_total(run->conn, run, mapped + PQntuples(r), e) != 0) {
        PQclear(r);
        return NULL;
    }
    return r;
}

static MUSTCHECK int fan_out(const struct job_kind *kind, struct job_run *run,
                             const struct job_fleet_hooks *h, struct err *e)
{
    PGresult *r = pending_tenants(kind, run, e);
    if (!r)
        return -1;
    int n = PQntuples(r), rc = 0;
    for (int i = 0; i < n && rc == 0; i += FAN_OUT_BATCH) {
        if (job_run_stopping(run)) {
            rc = err_set(e, 503, "interrupted", "cancelled while queueing its children");
            break;
        }
        rc = db_begin(run->conn, run->cfg->db_query_timeout_ms, e);
        if (rc == 0)
            rc = hold_parent(run->conn, run, e);
        for (int k = i; rc == 0 && k < n && k < i + FAN_OUT_BATCH; k++)
            rc = fan_out_one(kind, run, h, PQgetvalue(r, k, 0), e);
        if (rc == 0)
            rc = db_commit(run->conn, e);
        if (rc != 0)
            db_rollback(run->conn);
    }
    PQclear(r);
    return rc;
}

/* ------------------------------------------------------------------ result */

static const char NAMED_SQL[] =
    "SELECT c.tenant_id::text, coalesce(t.name, ''), coalesce(c.child_id::text, ''), "
    " coalesce(j.metadata->'error'->>'code', CASE WHEN j.status = 'cancelled' THEN 'job_cancelled' "
    "END, "
    "  c.skip_code, 'job_not_found'), "
    " coalesce(j.error_message, CASE WHEN j.status = 'cancelled' THEN 'cancelled by an operator' "
    "END, "
    "  c.skip_message, 'the tenant''s job is gone'), "
    " c.child_id IS NULL "
    "FROM job_fleet_children c LEFT JOIN job_logs j ON j.id = c.child_id "
    "LEFT JOIN tenants t ON t.id = c.tenant_id "
    "WHERE c.parent_id = $1 AND (c.child_id IS NULL OR j.id IS NULL OR j.status IN ('error', "
    "'cancelled')) "
    "ORDER BY c.child_id IS NULL, c.tenant_id LIMIT $2::int";

/* failures[] and skippedTenants[] (at most NAMED_MAX rows in all) into result. */
static MUSTCHECK int add_named(PGconn *c, const char *id, json_t *result, struct err *e)
{
    char lim[16];
    util_fmt(lim, sizeof lim, "%d", NAMED_MAX);
    const char *p[] = {id, lim};
    PGresult *r = db_query(c, NAMED_SQL, 2, p, e);
    if (!r)
        return -1;
    json_t *failures = json_array(), *skipped = json_array();
    for (int i = 0; i < PQntuples(r); i++) {
        bool skip = strcmp(PQgetvalue(r, i, 5), "t") == 0;
        json_t *o = json_pack("{s:s, s:s, s:s, s:s}", "tenantId", PQgetvalue(r, i, 0), "tenantName",
                              PQgetvalue(r, i, 1), "code", PQgetvalue(r, i, 3), "message",
                              PQgetvalue(r, i, 4));
        if (!o)
            util_fatal("out of memory");
        if (!skip)
            json_object_set_new(o, "jobLogId", json_string(PQgetvalue(r, i, 2)));
        json_array_append_new(skip ? skipped : failures, o);
    }
    PQclear(r);
    json_object_set_new(result, "failures", failures);
    json_object_set_new(result, "skippedTenants", skipped);
    return 0;
}

/* The parent's result, recorded (success, or a partial failure when a child failed). */
static MUSTCHECK json_t *finish(struct job_run *run, const struct counts *n, struct err *e)
{
    json_t *request = json_deep_copy(run->params);
    json_object_del(request, "allTenants");
    json_t *result = json_pack(
        "{s:b, s:s, s:I, s:b, s:I, s:I, s:I, s:I, s:o}", "success", n->failed == 0, "jobLogId",
        run->id, "duration", (json_int_t)0, "allTenants", 1, "tenants",
        (json_int_t)(n->succeeded + n->failed + n->skipped), "succeeded", (json_int_t)n->succeeded,
        "failed", (json_int_t)n->failed, "skipped", (json_int_t)n->skipped, "request", request);
    if (!result)
        util_fatal("out of memory");
    if (add_named(run->conn, run->id, result, e) != 0) {
        json_decref(result);
        return NULL;
    }
    struct err partial;
    err_clear(&partial);
    if (n->failed > 0)
        err_set(&partial, 200, "tenant_jobs_failed",
                "%lld of %lld tenants' jobs failed (see failures)", n->failed,
                n->succeeded + n->failed + n->skipped);
    long long duration = 0;
    int rc = n->failed > 0 ? job_store_finish_partial(run->conn, run->id, run->worker_id,
                                                      n->succeeded, result, &partial, &duration, e)
                           : job_store_finish_success(run->conn, run->id, run->worker_id,
                                                      n->succeeded, result, &duration, e);
    if (rc != 0) {
        json_decref(result);
        return NULL;
    }
    json_object_set_new(result, "duration", json_integer(duration));
    return result;
}

/* ------------------------------------------------------------------ run */

static MUSTCHECK bool stopped(struct job_run *run, const struct job_fleet_hooks *h, struct err *e)
{
    if (job_run_stopping(run)) {
        err_set(e, 503, "interrupted", "cancelled while waiting for its tenants' jobs");
        return true;
    }
    if (h->lost && h->lost(h->ctx)) {
        err_set(e, 503, "interrupted",
                "job %s lost its lease while running (another instance took it over)", run->id);
        return true;
    }
    return false;
}

json_t *job_fleet_run(const struct job_kind *kind, struct job_run *run,
                      const struct job_fleet_hooks *hooks, struct err *e)
{
    if (!kind->fleet_tenants) {
        err_set(e, 500, "internal_error", "job %s: this kind has no fleet form", run->id);
        return NULL;
    }
    if (run->progress)
        run->progress(run->progress_ctx, "fleet: queueing one job per tenant");
    if (fan_out(kind, run, hooks, e) != 0)
        return NULL;
    struct counts n = {0}, last;
    memset(&last, 0xff, sizeof last);
    long long counted_at = 0;
    int got = 0;
    for (;;) {
        if (stopped(run, hooks, e))
            return NULL;
        /* Children back to back while there are some to run: the counts (a join over every
         * child) are read at most every WAIT_POLL_MS then, and whenever none was run. */
        if (got <= 0 || util_mono_ms() - counted_at >= WAIT_POLL_MS) {
            if (read_counts(run->conn, run->id, 0, &n, e) != 0)
                return NULL;
            counted_at = util_mono_ms();
            /* Cancelled: its queued children were cancelled with it and end on their own;
             * it must not finish as if they had failed. */
            if (n.cancel_requested) {
                err_set(e, 503, "interrupted", "cancelled by an operator");
                return NULL;
            }
            report(run, &n, &last);
            if (n.queued + n.running == 0)
                return finish(run, &n, e);
        }
        got = n.queued > 0 ? hooks->run_child(hooks->ctx, &run->conn, run->id, e) : 0;
        if (got < 0) {
            if (db_is_broken(run->conn))
                return NULL;
            log_event(LOG_WARN, LOG_JOB_TAG "fleet parent could not claim a child", "jobLogId",
                      run->id, "error", e->message, NULL);
            err_clear(e);
        }
        if (got <= 0)
            util_sleep_ms(WAIT_POLL_MS, run->cancel);
    }
}
