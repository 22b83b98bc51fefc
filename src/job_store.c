/* job_store: see job_store.h. Every statement is parameterised; times come from the
 * database clock (now()/clock_timestamp()), never from the instance. */
#include "jobsd/job_store.h"
#include "jobsd/db.h"
#include "jobsd/util.h"

#include <stdlib.h>
#include <string.h>

void job_claim_clear(struct job_claim *c)
{
    json_decref(c->params);
    memset(c, 0, sizeof *c);
}

static MUSTCHECK int enqueue(PGconn *c, const char *job_type, const struct job_request *req,
                             const struct job_origin *origin, const char *worker_id,
                             const char *parent_id, struct job_enqueued *out, struct err *e)
{
    memset(out, 0, sizeof *out);
    json_t *meta = json_pack("{s:O, s:s}", "request", req->params, "trigger", origin->trigger);
    if (!meta)
        util_fatal("out of memory");
    if (origin->user_agent) {
        char *ua = util_utf8_clean(origin->user_agent);
        json_object_set_new(meta, "userAgent", json_string(ua));
        free(ua);
    }
    if (origin->request_id)
        json_object_set_new(meta, "requestId", json_string(origin->request_id));
    if (parent_id)
        json_object_set_new(meta, "parentId", json_string(parent_id));
    char *meta_text = json_dumps(meta, JSON_COMPACT);
    json_decref(meta);
    if (!meta_text)
        util_fatal("out of memory");

    static const char INSERT_QUEUED[] =
        "INSERT INTO job_logs (tenant_id, job_type, status, dedupe_key, trigger, metadata, "
        " parent_id) VALUES ($1, $2, 'queued', $3, $4, $5::jsonb, $6::uuid) "
        "ON CONFLICT (dedupe_key) WHERE status IN ('queued', 'running') DO NOTHING "
        "RETURNING id, status";
    static const char INSERT_RUNNING[] =
        "INSERT INTO job_logs (tenant_id, job_type, status, dedupe_key, trigger, metadata, "
        " attempts, worker_id, heartbeat_at, started_at) "
        "VALUES ($1, $2, 'running', $3, $4, $5::jsonb, 1, $6, now(), now()) "
        "ON CONFLICT (dedupe_key) WHERE status IN ('queued', 'running') DO NOTHING "
        "RETURNING id, status";
    static const char FIND_ACTIVE[] =
        "SELECT id, status FROM job_logs WHERE dedupe_key = $1 AND status IN ('queued', 'running')";

    const char *tenant = req->tenant_id[0] ? req->tenant_id : NULL;
    /* $6 is the worker (inserted running) or the parent (queued). */
    const char *params[] = {tenant,          job_type,  req->dedupe_key,
                            origin->trigger, meta_text, worker_id ? worker_id : parent_id};
    int rc = -1;
    /* The winner may finish between our conflict and our read: then try again. */
    for (int attempt = 0; attempt < 5; attempt++) {
        PGresult *r = db_query(c, worker_id ? INSERT_RUNNING : INSERT_QUEUED, 6, params, e);
        if (!r)
            goto out;
        if (PQntuples(r) == 1) {
            snprintf(out->id, sizeof out->id, "%s", PQgetvalue(r, 0, 0));
            (void)job_status_parse(PQgetvalue(r, 0, 1), &out->status);
            PQclear(r);
            rc = 0;
            goto out;
        }
        PQclear(r);
        const char *p1[] = {req->dedupe_key};
        r = db_query(c, FIND_ACTIVE, 1, p1, e);
        if (!r)
            goto out;
        if (PQntuples(r) == 1) {
            snprintf(out->id, sizeof out->id, "%s", PQgetvalue(r, 0, 0));
            (void)job_status_parse(PQgetvalue(r, 0, 1), &out->status);
            out->deduplicated = true;
            PQclear(r);
            rc = 0;
            goto out;
        }
        PQclear(r);
    }
    err_set(e, 503, "database_unavailable", "could not queue the job: its identity kept changing");
out:
    free(meta_text);
    return rc;
}

int job_store_enqueue(PGconn *c, const char *job_type, const struct job_request *req,
                      const struct job_origin *origin, const char *worker_id,
                      struct job_enqueued *out, struct err *e)
{
    return enqueue(c, job_type, req, origin, worker_id, NULL, out, e);
}

int job_store_enqueue_child(PGconn *c, const char *job_type, const struct job_request *req,
                            const struct job_origin *origin, const char *parent_id,
                            struct job_enqueued *out, struct err *e)
{
    return enqueue(c, job_type, req, origin, NULL, parent_id, out, e);
}

/* ------------------------------------------------------------------ queue limit */

/* Is the queue full, and is there an active job with this identity? One round trip, inside
 * the enqueue's transaction: the count stops at max (the partial index job_logs_queued holds
 * exactly the queued rows), so it costs the same with 10 or 100,000 jobs queued. 0 = room,
 * 1 = full but an identical job is queued or running (out filled: the request attaches to it
 * as usual), -1 = e (503 queue_full, or the database's error). */
static MUSTCHECK int check_queue(PGconn *c, const char *dedupe_key, long long max_queued,
                                 struct job_enqueued *out, struct err *e)
{
    static const char SQL[] =
        "SELECT n.full, a.id, a.status "
        "FROM (SELECT count(*) >= $2::bigint AS full "
        "      FROM (SELECT 1 FROM job_logs WHERE status = 'queued' AND parent_id IS NULL "
        "            LIMIT $2::bigint) q) n "
        "LEFT JOIN (SELECT id::text, status FROM job_logs "
        "           WHERE dedupe_key = $1 AND status IN ('queued', 'running') LIMIT 1) a ON true";
    char max[24];
    util_fmt(max, sizeof max, "%lld", max_queued);
    const char *params[] = {dedupe_key, max};
    PGresult *r = db_query(c, SQL, 2, params, e);
    if (!r)
        return -1;
    int rc = 0;
    if (strcmp(PQgetvalue(r, 0, 0), "t") == 0) {
        if (!PQgetisnull(r, 0, 1)) {
            snprintf(out->id, sizeof out->id, "%s", PQgetvalue(r, 0, 1));
            (void)job_status_parse(PQgetvalue(r, 0, 2), &out->status);
            out->deduplicated = true;
            rc = 1;
        } else {
            rc = err_set(e, 503, "queue_full",
                         "the job queue is full (%lld jobs queued: QUEUE_MAX_QUEUED); retry later",
                         max_queued);
            e->retry_after = JOB_STORE_QUEUE_FULL_RETRY_AFTER;
        }
    }
    PQclear(r);
    return rc;
}

int job_store_enqueue_limited(PGconn *c, const char *job_type, const struct job_request *req,
                              const struct job_origin *origin, const char *worker_id,
                              long long max_queued, struct job_enqueued *out, struct err *e)
{
    memset(out, 0, sizeof *out);
    if (!worker_id && max_queued > 0) {
        int full = check_queue(c, req->dedupe_key, max_queued, out, e);
        if (full != 0)
            return full > 0 ? 0 : -1;
    }
    return job_store_enqueue(c, job_type, req, origin, worker_id, out, e);
}

/* ------------------------------------------------------------------ retention */

/* Jobs that finished (success, error, cancelled) more than $1 days ago: the partial index
 * job_logs_finished_completed (sql/0003, sql/0008) finds the oldest first. Queued and running rows
 * are never candidates. (An index on created_at would do too, but the planner then prefers it to
 * job_logs_tenant_created for a status page filtered on success or error, walking every
 * tenant's rows: the status queries never order by completed_at.) */
#define PRUNE_CANDIDATES                                                                           \
    "FROM job_logs WHERE status IN ('success', 'error', 'cancelled') "                             \
    "  AND completed_at < now() - make_interval(days => $1::int) "

long long job_store_prune_batch(PGconn *c, long long older_than_days, long long batch,
                                struct err *e)
{
    /* One statement, so one short transaction of its own: the rows another transaction holds
     * (a job being read for its answer) are skipped, nothing waits on a lock. */
    static const char SQL[] = "DELETE FROM job_logs WHERE id IN ("
                              "  SELECT id " PRUNE_CANDIDATES
                              "  ORDER BY completed_at LIMIT $2::int FOR UPDATE SKIP LOCKED)";
    char days[24], lim[24];
    util_fmt(days, sizeof days, "%lld", older_than_days);
    util_fmt(lim, sizeof lim, "%lld", batch);
    const char *params[] = {days, lim};
    PGresult *r = db_query(c, SQL, 2, params, e);
    if (!r)
        return -1;
    long long n = util_i64_or(PQcmdTuples(r), 0);
    PQclear(r);
    return n;
}

long long job_store_prune_count(PGconn *c, long long older_than_days, struct err *e)
{
    static const char SQL[] = "SELECT count(*) " PRUNE_CANDIDATES;
    char days[24];
    util_fmt(days, sizeof days, "%lld", older_than_days);
    const char *params[] = {days};
    PGresult *r = db_query(c, SQL, 1, params, e);
    if (!r)
        return -1;
    long long n = util_i64_or(PQgetvalue(r, 0, 0), 0);
    PQclear(r);
    return n;
}

/* The claim: the oldest queued job of one of $2's types, either no fleet child (CLAIM_TOP)
 * or a fleet child (CLAIM_CHILD: with $3 > 0 only while fewer than $3 children are running,
 * every instance counted; with $4 only that parent's children). */
#define CLAIM_HEAD                                                                                 \
    "UPDATE job_logs j SET status = 'running', attempts = j.attempts + 1, worker_id = $1, "        \
    " heartbeat_at = now(), started_at = now() "                                                   \
    "FROM (SELECT id FROM job_logs WHERE status = 'queued' AND job_type = ANY ($2::text[]) "
#define CLAIM_TAIL                                                                                 \
    "      ORDER BY created_at LIMIT 1 FOR UPDATE SKIP LOCKED) q "                                 \
    "WHERE j.id = q.id "                                                                           \
    "RETURNING j.id, j.job_type, coalesce(j.tenant_id::text, ''), "                                \
    " coalesce(j.metadata->'request', '{}'::jsonb)::text, j.attempts, "                            \
    " coalesce(j.metadata->>'requestId', ''), coalesce(j.trigger, ''), "                           \
    " j.metadata ? 'cancelRequested'"
static const char CLAIM_TOP[] = CLAIM_HEAD "      AND parent_id IS NULL " CLAIM_TAIL;
static const char CLAIM_CHILD[] = CLAIM_HEAD
    "      AND parent_id IS NOT NULL AND ($4::uuid IS NULL OR parent_id = $4::uuid) "
    "      AND ($3::int <= 0 OR (SELECT count(*) FROM job_logs r "
    "           WHERE r.status = 'running' AND r.parent_id IS NOT NULL) < $3::int) " CLAIM_TAIL;
/* Whether a fleet child of one of $1's types is queued (job_logs_queued: the queue is short). */
static const char CHILD_QUEUED[] =
    "SELECT EXISTS (SELECT 1 FROM job_logs WHERE status = 'queued' AND parent_id IS NOT NULL "
    "AND job_type = ANY ($1::text[]))";

/* The key of the advisory lock that serialises limited claims (any constant of our own). */
#define CLAIM_LOCK_SQL "SELECT pg_advisory_xact_lock(hashtextextended('jobsd:fleet:claim', 0))"

int job_store_claim(PGconn *c, const char *worker_id, const char *const *types, size_t ntypes,
                    struct job_claim *out, struct err *e)
{
    return job_store_claim_limited(c, worker_id, types, ntypes, 0, NULL, out, e);
}

/* A fleet child's claim; under FLEET_MAX_RUNNING the claims are serialised, so two instances
 * cannot both see the last free slot. */
static MUSTCHECK PGresult *claim_child(PGconn *c, const char *const *params, bool serialise,
                                       struct err *e)
{
    if (!serialise)
        return db_query(c, CLAIM_CHILD, 4, params, e);
    if (db_begin(c, 5000, e) != 0 || db_exec(c, CLAIM_LOCK_SQL, 0, NULL, e) != 0) {
        db_rollback(c);
        return NULL;
    }
    PGresult *r = db_query(c, CLAIM_CHILD, 4, params, e);
    if (!r || db_commit(c, e) != 0) {
        PQclear(r);
        db_rollback(c);
        return NULL;
    }
    return r;
}

/* The claimed row (or none) into out: 1, 0. Takes r. */
static int claimed(PGresult *r, struct job_claim *out)
{
    if (PQntuples(r) == 0) {
        PQclear(r);
        return 0;
    }
    snprintf(out->id, sizeof out->id, "%s", PQgetvalue(r, 0, 0));
    snprintf(out->job_type, sizeof out->job_type, "%s", PQgetvalue(r, 0, 1));
    snprintf(out->tenant_id, sizeof out->tenant_id, "%s", PQgetvalue(r, 0, 2));
    out->params = json_loads(PQgetvalue(r, 0, 3), 0, NULL);
    out->attempts = (int)util_i64_or(PQgetvalue(r, 0, 4), 0);
    snprintf(out->request_id, sizeof out->request_id, "%s", PQgetvalue(r, 0, 5));
    snprintf(out->trigger, sizeof out->trigger, "%s", PQgetvalue(r, 0, 6));
    out->cancel_requested = strcmp(PQgetvalue(r, 0, 7), "t") == 0;
    PQclear(r);
    if (!out->params)
        out->params = json_object();
    return 1;
}

/* A worker (parent_id NULL) takes a job that is no fleet child first, with one statement and
 * no lock: the fleet limit's lock is taken only when a fleet child is queued. A job queued by
 * hand therefore starts at the next free worker even behind a fleet's queued children. */
int job_store_claim_limited(PGconn *c, const char *worker_id, const char *const *types,
                            size_t ntypes, long long max_children, const char *parent_id,
                            struct job_claim *out, struct err *e)
{
    memset(out, 0, sizeof *out);
    char max[24];
    util_fmt(max, sizeof max, "%lld", max_children > 0 ? max_children : 0);
    char *types_lit = db_array_literal(types, ntypes);
    const char *params[] = {worker_id, types_lit, max, parent_id};
    int rc = 0;
    if (!parent_id) {
        PGresult *r = db_query(c, CLAIM_TOP, 2, params, e);
        rc = r ? claimed(r, out) : -1;
        if (rc == 0 && max_children > 0) {
            const char *q[] = {types_lit};
            PGresult *x = db_query(c, CHILD_QUEUED, 1, q, e);
            rc = !x ? -1 : strcmp(PQgetvalue(x, 0, 0), "t") == 0 ? 0 : 2;
            PQclear(x);
        }
    }
    if (rc == 0) {
        PGresult *r = claim_child(c, params, max_children > 0, e);
        rc = r ? claimed(r, out) : -1;
    }
    free(types_lit);
    return rc == 2 ? 0 : rc;
}

/* Success, or a partial failure (job_err set): the result is stored either way. */
static MUSTCHECK int finish_with_result(PGconn *c, const char *id, const char *worker_id,
                                        long long records, json_t *result,
                                        const struct err *job_err, long long *duration_ms,
                                        struct err *e)
{
    static const char SQL[] =
        "WITH t AS (SELECT floor(extract(epoch FROM clock_timestamp() - started_at) * 1000)::bigint"
        "           AS ms, clock_timestamp() AS at FROM job_logs WHERE id = $1) "
        "UPDATE job_logs j SET status = CASE WHEN $5::text IS NULL THEN 'success' ELSE 'error' "
        "END, "
        " completed_at = t.at, duration_ms = t.ms, records_processed = $3, error_message = $5, "
        " metadata = j.metadata - 'error' || jsonb_build_object('result', "
        "   $4::jsonb || jsonb_build_object('duration', t.ms)) "
        "   || CASE WHEN $5::text IS NULL THEN '{}'::jsonb ELSE jsonb_build_object('error', "
        "        jsonb_build_object('code', $6::text, 'httpStatus', 200, 'message', $5::text)) END "
        "FROM t WHERE j.id = $1 AND j.worker_id = $2 AND j.status = 'running' "
        "RETURNING t.ms";
    char recs[24];
    util_fmt(recs, sizeof recs, "%lld", records);
    char *text = json_dumps(result, JSON_COMPACT);
    if (!text)
        util_fatal("out of memory");
    const char *params[] = {id,
                            worker_id,
                            recs,
                            text,
                            job_err ? job_err->message : NULL,
                            job_err ? job_err->code : NULL};
    PGresult *r = db_query(c, SQL, 6, params, e);
    free(text);
    if (!r)
        return -1;
    if (PQntuples(r) != 1) {
        PQclear(r);
        return err_set(e, 503, "interrupted",
                       "job %s lost its lease while running (another instance took it over)", id);
    }
    long long ms = util_i64_or(PQgetvalue(r, 0, 0), 0);
    if (duration_ms)
        *duration_ms = ms;
    PQclear(r);
    return 0;
}

int job_store_finish_success(PGconn *c, const char *id, const char *worker_id, long long records,
                             json_t *result, long long *duration_ms, struct err *e)
{
    return finish_with_result(c, id, worker_id, records, result, NULL, duration_ms, e);
}

int job_store_finish_partial(PGconn *c, const char *id, const char *worker_id, long long records,
                             json_t *result, const struct err *job_err, long long *duration_ms,
                             struct err *e)
{
    return finish_with_result(c, id, worker_id, records, result, job_err, duration_ms, e);
}

int job_store_finish_error(PGconn *c, const char *id, const char *worker_id,
                           const struct err *job_err, struct err *e)
{
    static const char SQL[] =
        "UPDATE job_logs SET status = 'error', completed_at = clock_timestamp(), "
        " duration_ms = floor(extract(epoch FROM clock_timestamp() - started_at) * 1000)::bigint, "
        " error_message = $3, "
        " metadata = metadata || jsonb_build_object('error', jsonb_build_object("
        "   'code', $4::text, 'httpStatus', $5::int, 'message', $3::text)) "
        "WHERE id = $1 AND worker_id = $2 AND status = 'running'";
    char status[8];
    util_fmt(status, sizeof status, "%d", job_err->http_status ? job_err->http_status : 500);
    const char *params[] = {id, worker_id, job_err->message,
                            job_err->code[0] ? job_err->code : "internal_error", status};
    PGresult *r = db_query(c, SQL, 5, params, e);
    if (!r)
        return -1;
    bool mine = strcmp(PQcmdTuples(r), "1") == 0;
    PQclear(r);
    return mine ? 0 : err_set(e, 503, "interrupted", "job %s is no longer ours", id);
}

int job_store_requeue(PGconn *c, const char *id, const char *worker_id, const char *reason,
                      bool count_attempt, struct err *e)
{
    static const char SQL[] =
        "UPDATE job_logs SET status = 'queued', "
        " attempts = CASE WHEN $4::bool THEN attempts ELSE greatest(attempts - 1, 0) END, "
        " worker_id = NULL, heartbeat_at = NULL, "
        " metadata = metadata || jsonb_build_object('requeues', "
        "   coalesce(metadata->'requeues', '[]'::jsonb) || jsonb_build_array(jsonb_build_object("
        "     'at', " JOB_STORE_TS(
            "now()") ", 'workerId', worker_id::text, 'reason', $3::text)))"
                     "WHERE id = $1 AND worker_id = $2 AND status = 'running'";
    const char *params[] = {id, worker_id, reason, count_attempt ? "true" : "false"};
    return db_exec(c, SQL, 4, params, e);
}

int job_store_heartbeat(PGconn *c, const char *const *ids, const char *const *workers, size_t n,
                        bool *lost, struct err *e)
{
    if (n == 0)
        return 0;
    char *ids_lit = db_array_literal(ids, n);
    char *workers_lit = db_array_literal(workers, n);
    /* The time recorded is taken once the rows are ours (clock_timestamp() after FOR UPDATE),
     * not when the statement began: a heartbeat that waited on a lock on job_logs records when
     * it got through, not a time from before the wait that would read as a lease long
     * expired. */
    static const char SQL[] = "WITH mine AS (SELECT j.id FROM job_logs j "
                              "  JOIN unnest($1::uuid[], $2::text[]) AS t(id, w) "
                              "    ON j.id = t.id AND j.worker_id = t.w "
                              "  WHERE j.status = 'running' FOR UPDATE OF j) "
                              "UPDATE job_logs j SET heartbeat_at = clock_timestamp() "
                              "FROM mine WHERE j.id = mine.id "
                              "RETURNING j.id";
    const char *params[] = {ids_lit, workers_lit};
    PGresult *r = db_query(c, SQL, 2, params, e);
    free(ids_lit);
    free(workers_lit);
    if (!r)
        return -1;
    for (size_t i = 0; i < n; i++) {
        lost[i] = true;
        for (int j = 0; j < PQntuples(r); j++)
            if (strcmp(PQgetvalue(r, j, 0), ids[i]) == 0)
                lost[i] = false;
    }
    PQclear(r);
    return 0;
}

int job_store_expired(PGconn *c, long long lease_seconds, struct job_expired *out, struct err *e)
{
    memset(out, 0, sizeof *out);
    static const char SQL[] =
        "SELECT id::text, heartbeat_at::text FROM job_logs "
        "WHERE status = 'running' "
        "  AND heartbeat_at < clock_timestamp() - make_interval(secs => $1::int) "
        "ORDER BY heartbeat_at LIMIT 1000";
    char lease[24];
    util_fmt(lease, sizeof lease, "%lld", lease_seconds);
    const char *params[] = {lease};
    PGresult *r = db_query(c, SQL, 1, params, e);
    if (!r)
        return -1;
    size_t n = (size_t)PQntuples(r);
    if (n > 0) {
        out->ids = util_calloc(n, sizeof *out->ids);
        out->heartbeats = util_calloc(n, sizeof *out->heartbeats);
        for (size_t i = 0; i < n; i++) {
            out->ids[i] = util_strdup(PQgetvalue(r, (int)i, 0));
            out->heartbeats[i] = util_strdup(PQgetvalue(r, (int)i, 1));
        }
    }
    out->n = n;
    PQclear(r);
    return (int)n;
}

void job_store_expired_free(struct job_expired *x)
{
    for (size_t i = 0; i < x->n; i++) {
        free(x->ids[i]);
        free(x->heartbeats[i]);
    }
    free(x->ids);
    free(x->heartbeats);
    memset(x, 0, sizeof *x);
}

int job_store_reap(PGconn *c, long long lease_seconds, long long max_attempts,
                   void (*fn)(void *ctx, const struct job_reaped *r), void *ctx, struct err *e)
{
    return job_store_reap_seen(c, lease_seconds, max_attempts, NULL, fn, ctx, e);
}

int job_store_reap_seen(PGconn *c, long long lease_seconds, long long max_attempts,
                        const struct job_expired *seen,
                        void (*fn)(void *ctx, const struct job_reaped *r), void *ctx, struct err *e)
{
    static const char SQL[] =
        "WITH expired AS ("
        "  SELECT id, worker_id AS old_worker, heartbeat_at AS old_heartbeat FROM job_logs "
        /* Judged by the clock when the row is looked at (clock_timestamp()), skipping a row
         * whose heartbeat is being written (SKIP LOCKED); the caller bounds the wait for
         * locks, so a pass that waited behind a lock on job_logs gives up instead of judging
         * heartbeats that queued behind the same lock. */
        "  WHERE status = 'running' "
        "    AND heartbeat_at < clock_timestamp() - make_interval(secs => $1::int) "
        /* A database that restarted less than a lease ago kept every instance from renewing:
         * give them one lease to come back before concluding anything. */
        "    AND pg_postmaster_start_time() < now() - make_interval(secs => $1::int) "
        /* With seen: only the jobs an earlier pass saw expired whose heartbeat has not moved
         * since (a renewal that was stalled, by a lock on job_logs say, lands in between). */
        "    AND ($3::uuid[] IS NULL OR (id, heartbeat_at) IN ("
        "      SELECT s.id, s.hb FROM unnest($3::uuid[], $4::timestamptz[]) AS s(id, hb))) "
        "  FOR UPDATE SKIP LOCKED) "
        "UPDATE job_logs j SET "
        " status = CASE WHEN j.attempts >= $2::int THEN 'error' ELSE 'queued' END, "
        " worker_id = NULL, heartbeat_at = NULL, "
        " completed_at = CASE WHEN j.attempts >= $2::int THEN now() END, "
        " duration_ms = CASE WHEN j.attempts >= $2::int "
        "   THEN floor(extract(epoch FROM now() - j.started_at) * 1000)::bigint END, "
        " error_message = CASE WHEN j.attempts >= $2::int THEN "
        "   'interrupted: the instance running this job stopped renewing its lease after ' "
        "   || j.attempts || ' attempt(s)' END, "
        " metadata = j.metadata || jsonb_build_object('interruptions', "
        "   coalesce(j.metadata->'interruptions', '[]'::jsonb) || jsonb_build_array("
        "     jsonb_build_object('at', " JOB_STORE_TS(
            "now()") ", 'workerId', x.old_worker, "
                     "       'attempt', j.attempts, 'lastHeartbeatAt', " JOB_STORE_TS(
                         "x.old_heartbeat") "))) "
                                            "   || CASE WHEN j.attempts >= $2::int THEN "
                                            "jsonb_build_object('error', jsonb_build_object("
                                            "        'code', 'interrupted', 'httpStatus', 503, "
                                            "'message', "
                                            "        'interrupted: the instance running this job "
                                            "stopped renewing its lease after ' "
                                            "        || j.attempts || ' attempt(s)')) ELSE "
                                            "'{}'::jsonb END "
                                            "FROM expired x WHERE j.id = x.id "
                                            "RETURNING j.id::text, j.status, j.job_type, "
                                            "coalesce(j.tenant_id::text, ''), j.attempts, "
                                            " coalesce(x.old_worker, '')";
    char lease[24], max[24];
    util_fmt(lease, sizeof lease, "%lld", lease_seconds);
    util_fmt(max, sizeof max, "%lld", max_attempts);
    char *ids_lit = seen ? db_array_literal((const char *const *)seen->ids, seen->n) : NULL;
    char *hbs_lit = seen ? db_array_literal((const char *const *)seen->heartbeats, seen->n) : NULL;
    if (seen && (!ids_lit || !hbs_lit)) {
        free(ids_lit);
        free(hbs_lit);
        err_set(e, 500, "internal_error", "too many reaper candidates");
        return -1;
    }
    const char *params[] = {lease, max, ids_lit, hbs_lit};
    PGresult *r = db_query(c, SQL, 4, params, e);
    free(ids_lit);
    free(hbs_lit);
    if (!r)
        return -1;
    int n = PQntuples(r);
    for (int i = 0; fn && i < n; i++) {
        struct job_reaped x = {
            .id = PQgetvalue(r, i, 0),
            .job_type = PQgetvalue(r, i, 2),
            .tenant_id = PQgetvalue(r, i, 3),
            .attempts = PQgetvalue(r, i, 4),
            .lost_worker = PQgetvalue(r, i, 5),
            .failed = strcmp(PQgetvalue(r, i, 1), "error") == 0,
        };
        fn(ctx, &x);
    }
    PQclear(r);
    return n;
}

json_t *job_store_get(PGconn *c, const char *id, const char *tenant_id, long long timeout_ms,
                      struct err *e)
{
    char norm[37];
    if (!util_uuid_normalize(id, norm)) {
        err_set(e, 404, "job_not_found", "job %.64s does not exist", id);
        return NULL;
    }
    static const char SQL[] =
        "SELECT " JOB_STORE_JOB_JSON "::text, "
        " (metadata->'result')::text, (metadata->'error')::text "
        "FROM job_logs WHERE id = $1 AND ($2::uuid IS NULL OR tenant_id = $2)";
    const char *params[] = {norm, tenant_id};
    PGresult *r = db_read(c, timeout_ms, SQL, 2, params, e);
    if (!r)
        return NULL;
    if (PQntuples(r) != 1) {
        PQclear(r);
        err_set(e, 404, "job_not_found", "job %s does not exist", norm);
        return NULL;
    }
    json_t *job = json_loads(PQgetvalue(r, 0, 0), 0, NULL);
    const char *st = job ? json_string_value(json_object_get(job, "status")) : NULL;
    /* The job's answer: result when it produced one (success, or a partial failure), error when
     * it failed. */
    if (st && (strcmp(st, "success") == 0 || strcmp(st, "error") == 0) && !PQgetisnull(r, 0, 1)) {
        json_t *res = json_loads(PQgetvalue(r, 0, 1), 0, NULL);
        if (res)
            json_object_set_new(job, "result", res);
    }
    if (st && strcmp(st, "error") == 0 && !PQgetisnull(r, 0, 2)) {
        json_t *er = json_loads(PQgetvalue(r, 0, 2), 0, NULL);
        if (er)
            json_object_set_new(job, "error", er);
    }
    PQclear(r);
    if (!job)
        err_set(e, 500, "internal_error", "job %s could not be read", norm);
    return job;
}

int job_store_poll(PGconn *c, const char *const *ids, size_t n,
                   void (*fn)(void *ctx, const struct job_state *s), void *ctx, struct err *e)
{
    if (n == 0)
        return 0;
    char *lit = db_array_literal(ids, n);
    static const char SQL[] =
        "SELECT id::text, status, job_type, (metadata->'result')::text, (metadata->'error')::text "
        "FROM job_logs WHERE id = ANY ($1::uuid[])";
    const char *params[] = {lit};
    PGresult *r = db_query(c, SQL, 1, params, e);
    free(lit);
    if (!r)
        return -1;
    for (int i = 0; i < PQntuples(r); i++) {
        struct job_state s;
        s.id = PQgetvalue(r, i, 0);
        if (!job_status_parse(PQgetvalue(r, i, 1), &s.status))
            continue;
        s.job_type = PQgetvalue(r, i, 2);
        s.result = PQgetisnull(r, i, 3) ? NULL : PQgetvalue(r, i, 3);
        s.error = PQgetisnull(r, i, 4) ? NULL : PQgetvalue(r, i, 4);
        fn(ctx, &s);
    }
    PQclear(r);
    return 0;
}

int job_store_queue_counts(PGconn *c, const char *const *types, size_t ntypes,
                           void (*fn)(void *ctx, const char *job_type, const char *status,
                                      long long count),
                           void *ctx, struct err *e)
{
    static const char SQL[] =
        "SELECT t.job_type, s.status, count(j.id) "
        "FROM unnest($1::text[]) t(job_type) "
        "CROSS JOIN (VALUES ('queued'), ('running')) s(status) "
        "LEFT JOIN job_logs j ON j.job_type = t.job_type AND j.status = s.status "
        "GROUP BY 1, 2 ORDER BY 1, 2";
    char *lit = db_array_literal(types, ntypes);
    const char *params[] = {lit};
    PGresult *r = db_query(c, SQL, 1, params, e);
    free(lit);
    if (!r)
        return -1;
    for (int i = 0; i < PQntuples(r); i++)
        fn(ctx, PQgetvalue(r, i, 0), PQgetvalue(r, i, 1), util_i64_or(PQgetvalue(r, i, 2), 0));
    PQclear(r);
    return 0;
}

int job_store_cancel_requested(PGconn *c, const char *const *ids, const char *worker_id, size_t n,
                               bool *requested, struct err *e)
{
    for (size_t i = 0; i < n; i++)
        requested[i] = false;
    if (n == 0)
        return 0;
    char *lit = db_array_literal(ids, n);
    static const char SQL[] = "SELECT id::text FROM job_logs WHERE id = ANY ($1::uuid[]) "
                              "AND status = 'running' AND metadata ? 'cancelRequested' "
                              "AND ($2::text IS NULL OR worker_id = $2)";
    const char *params[] = {lit, worker_id};
    PGresult *r = db_query(c, SQL, 2, params, e);
    free(lit);
    if (!r)
        return -1;
    for (int j = 0; j < PQntuples(r); j++)
        for (size_t i = 0; i < n; i++)
            if (strcmp(PQgetvalue(r, j, 0), ids[i]) == 0)
                requested[i] = true;
    PQclear(r);
    return 0;
}

int job_store_finish_cancelled(PGconn *c, const char *id, const char *worker_id, struct err *e)
{
    // clang-format off
    static const char SQL[] =
        "WITH parent AS ("
        " UPDATE job_logs SET status = 'cancelled', completed_at = now(), worker_id = NULL, "
        "  heartbeat_at = NULL, "
        "  duration_ms = floor(extract(epoch FROM now() - started_at) * 1000)::bigint, "
        "  metadata = metadata || jsonb_build_object('cancelledAt', " JOB_STORE_TS("now()") ") "
        " WHERE id = $1::uuid AND worker_id = $2 AND status = 'running' "
        " RETURNING id AS pid, coalesce(metadata->>'cancelledBy', 'operator') AS pby) "
        "UPDATE job_logs SET " JOB_STORE_CANCEL_SET("parent.pby") " FROM parent "
        "WHERE parent_id = parent.pid AND status IN ('queued', 'running')";
    // clang-format on
    const char *params[] = {id, worker_id};
    return db_exec(c, SQL, 2, params, e);
}
