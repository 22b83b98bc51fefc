/* operator_store: cancel and retry (see operator_store.h). Each is one statement: the
 * status test and the write are atomic, so a job claimed between the operator's look and
 * the click is never half-cancelled. */
#include "jobsd/operator_store.h"
#include "jobsd/db.h"
#include "jobsd/embedded.h"
#include "jobsd/job_kinds.h"
#include "jobsd/job_store.h"
#include "jobsd/util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Why an action found no row in the state it needs: not found, active, finished. */
static MUSTCHECK int explain(PGconn *c, const char *id, long long timeout_ms, bool for_cancel,
                             struct err *e)
{
    const char *params[] = {id};
    PGresult *r =
        db_read(c, timeout_ms, "SELECT status FROM job_logs WHERE id = $1::uuid", 1, params, e);
    if (!r)
        return -1;
    if (PQntuples(r) == 0) {
        PQclear(r);
        return err_set(e, 404, "job_not_found", "no job %s", id);
    }
    char status[16];
    snprintf(status, sizeof status, "%s", PQgetvalue(r, 0, 0));
    PQclear(r);
    bool active = strcmp(status, "queued") == 0 || strcmp(status, "running") == 0;
    if (active && !for_cancel)
        return err_set(e, 409, "job_active", "job %s is %s: retry it once it has ended", id,
                       status);
    if (active)
        return err_set(e, 409, "job_active", "job %s changed state (%s): try again", id, status);
    if (for_cancel)
        return err_set(e, 409, "job_finished", "job %s already ended (%s)", id, status);
    return err_set(e, 409, "job_active", "an identical job is already queued or running");
}

int operator_store_cancel(PGconn *c, const char *id, const char *by, long long timeout_ms,
                          struct err *e)
{
    char uuid[37];
    if (!util_uuid_normalize(id, uuid))
        return err_set(e, 404, "job_not_found", "no job %.40s", id);
    /* A queued job ends cancelled at once; a running one is marked (cancelRequested): the
     * lease thread of the instance running it stops it (job_lease.c). A fleet parent's
     * children go with it, in the same statement. */
    // clang-format off
    static const char SQL[] =
        "WITH target AS ("
        " UPDATE job_logs SET " JOB_STORE_CANCEL_SET("$2::text")
        " WHERE id = $1::uuid AND status IN ('queued', 'running') "
        " RETURNING id AS tid, status AS tstatus), "
        "kids AS ("
        " UPDATE job_logs SET " JOB_STORE_CANCEL_SET("$2::text") " FROM target "
        " WHERE parent_id = target.tid AND status IN ('queued', 'running') RETURNING 1) "
        "SELECT tstatus, (SELECT count(*) FROM kids) FROM target";
    // clang-format on
    /* The job's row is locked first, in a statement of its own: a fleet parent queueing a
     * batch of children holds it until the batch commits, and the cancel's own snapshot,
     * taken after, then sees every child of that batch (the parent queues no batch after). */
    const char *params[] = {uuid, by};
    struct db_stmt st[] = {{"SELECT 1 FROM job_logs WHERE id = $1::uuid FOR UPDATE", 1, params},
                           {SQL, 2, params}};
    PGresult *res[2] = {NULL, NULL};
    if (db_tx_send(c, timeout_ms, st, 2, e) != 0 || db_tx_wait(c, 2, res, e) != 0)
        return -1;
    PQclear(res[0]);
    PGresult *r = res[1];
    if (!r)
        return err_set(e, 500, "internal_error", "the cancel returned no result");
    int rc = PQntuples(r) == 1 ? (strcmp(PQgetvalue(r, 0, 0), "running") == 0 ? 1 : 0) : -2;
    PQclear(r);
    return rc != -2 ? rc : explain(c, uuid, timeout_ms, true, e);
}

int operator_store_retry(PGconn *c, const char *id, const char *by, long long timeout_ms,
                         char new_id[OPERATOR_ID_LEN], struct err *e)
{
    char uuid[37];
    if (!util_uuid_normalize(id, uuid))
        return err_set(e, 404, "job_not_found", "no job %.40s", id);
    /* The same request (metadata.request, what the kind resolved), the same identity
     * (dedupe_key: single flight still holds), a new row. */
    static const char SQL[] =
        "INSERT INTO job_logs (tenant_id, job_type, dedupe_key, trigger, metadata, retry_of) "
        "SELECT tenant_id, job_type, dedupe_key, 'retry', "
        " jsonb_build_object('request', metadata->'request', 'trigger', 'retry', "
        "  'retryOf', id::text, 'retriedBy', $2::text, 'retriedAt', "
        "  " JOB_STORE_TS(
            "now()") "), id "
                     "FROM job_logs WHERE id = $1::uuid AND status NOT IN ('queued', 'running') "
                     "ON CONFLICT (dedupe_key) WHERE status IN ('queued', 'running') DO NOTHING "
                     "RETURNING id::text";
    const char *params[] = {uuid, by};
    PGresult *r = db_read(c, timeout_ms, SQL, 2, params, e);
    if (!r)
        return -1;
    int n = PQntuples(r);
    if (n == 1)
        snprintf(new_id, OPERATOR_ID_LEN, "%s", PQgetvalue(r, 0, 0));
    PQclear(r);
    return n == 1 ? 0 : explain(c, uuid, timeout_ms, false, e);
}

json_t *operator_store_queue(PGconn *c, long long timeout_ms, struct err *e)
{
    static const char SQL[] = "SELECT job_type, status, count(*) FROM job_logs "
                              "WHERE status IN ('queued', 'running') GROUP BY 1, 2";
    PGresult *r = db_read(c, timeout_ms, SQL, 0, NULL, e);
    if (!r)
        return NULL;
    json_t *queued = json_object(), *running = json_object();
    for (const struct job_kind *const *k = job_kinds(); *k; k++) {
        json_object_set_new(queued, (*k)->type, json_integer(0));
        json_object_set_new(running, (*k)->type, json_integer(0));
    }
    for (int i = 0; i < PQntuples(r); i++) {
        json_t *into = strcmp(PQgetvalue(r, i, 1), "queued") == 0 ? queued : running;
        json_object_set_new(into, PQgetvalue(r, i, 0),
                            json_integer(util_i64_or(PQgetvalue(r, i, 2), 0)));
    }
    PQclear(r);
    return json_pack("{s:b, s:o, s:o}", "success", 1, "queued", queued, "running", running);
}

static const char *query_sql(const char *name)
{
    const struct embedded_file *f = embedded_find(name);
    if (!f)
        util_fatal("embedded query missing");
    return f->data;
}

/* A one-row, one-column answer (JSON text built by PostgreSQL), copied; NULL with e (404
 * job_not_found when no row). */
static MUSTCHECK char *one_text(PGconn *c, long long timeout_ms, const char *sql, int n,
                                const char *const *params, struct err *e)
{
    PGresult *r = db_read(c, timeout_ms, sql, n, params, e);
    if (!r)
        return NULL;
    char *text = NULL;
    if (PQntuples(r) == 1 && !PQgetisnull(r, 0, 0))
        text = util_strdup(PQgetvalue(r, 0, 0));
    else
        err_set(e, 404, "job_not_found", "no such job");
    PQclear(r);
    return text;
}

bool operator_cursor_parse(const char *cursor, char us[24], char id[OPERATOR_ID_LEN])
{
    const char *dot = cursor ? strchr(cursor, '.') : NULL;
    size_t n = dot ? (size_t)(dot - cursor) : 0;
    if (n == 0 || n > 19)
        return false;
    for (size_t i = 0; i < n; i++)
        if (cursor[i] < '0' || cursor[i] > '9')
            return false;
    memcpy(us, cursor, n);
    us[n] = '\0';
    return util_uuid_normalize(dot + 1, id);
}

char *operator_store_jobs(PGconn *c, const struct operator_jobs_query *q, long long timeout_ms,
                          struct err *e)
{
    char limit[24];
    util_fmt(limit, sizeof limit, "%lld", q->limit);
    const char *params[] = {q->job_type, q->status,    q->tenant_id, q->from,
                            q->to,       q->before_us, q->before_id, limit};
    return one_text(c, timeout_ms, query_sql("operator_jobs.sql"), 8, params, e);
}

char *operator_store_job(PGconn *c, const char *id, long long timeout_ms, struct err *e)
{
    char uuid[37];
    if (!util_uuid_normalize(id, uuid)) {
        err_set(e, 404, "job_not_found", "no job %.40s", id);
        return NULL;
    }
    const char *params[] = {uuid};
    return one_text(c, timeout_ms, query_sql("operator_job.sql"), 1, params, e);
}

char *operator_store_trends(PGconn *c, long long days, long long timeout_ms, struct err *e)
{
    const char *types[JOB_KINDS_MAX];
    size_t n = job_kinds_types(types, JOB_KINDS_MAX);
    char *lit = db_array_literal(types, n);
    char d[24];
    util_fmt(d, sizeof d, "%lld", days);
    const char *params[] = {d, lit};
    char *text = one_text(c, timeout_ms, query_sql("operator_trends.sql"), 2, params, e);
    free(lit);
    return text;
}

char *operator_store_fleet(PGconn *c, long long max_age_hours, long long timeout_ms, struct err *e)
{
    const char *types[JOB_KINDS_MAX];
    size_t n = job_kinds_types(types, JOB_KINDS_MAX);
    char *type_list = db_array_literal(types, n);
    /* As freshness.c: a tenant without an active connection cannot be synced. */
    const char *ml_types[JOB_KINDS_MAX];
    char *conn_list = db_array_literal(ml_types, job_kinds_ml_types(ml_types, JOB_KINDS_MAX));
    char hours[24];
    util_fmt(hours, sizeof hours, "%lld", max_age_hours);
    const char *params[] = {type_list, conn_list, hours};
    char *text = one_text(c, timeout_ms, query_sql("operator_fleet.sql"), 3, params, e);
    free(type_list);
    free(conn_list);
    return text;
}
