/* Integration tests of migrations and job_store (the job_logs queue) on a real PostgreSQL:
 * single flight across concurrent writers, claiming with SKIP LOCKED, leases, the reaper,
 * requeues, finishing only while the lease is held. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "jobsd/db.h"
#include "jobsd/job_store.h"
#include "jobsd/migrate.h"
#include "testdb.h"
#include "testfx.h"
#include "testtime.h"

#define TENANT "7a1d3b52-8d4e-4f00-9c11-000000000001"
/* The store knows job types as strings only: this program links no job kind. */
#define TYPE "metrics_aggregation"
static const char *const TYPES[] = {TYPE};

static struct testdb db;

static int setup(void **state)
{
    (void)state;
    testdb_create(&db, "jobstore");
    fx_tenant(db.conn, TENANT);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    testdb_drop(&db);
    return 0;
}

static PGconn *conn(void)
{
    struct err e;
    err_clear(&e);
    PGconn *c = db_connect(db.url, &e);
    if (!c)
        fail_msg("connect: %s", e.message);
    return c;
}

static void request(struct job_request *r, const char *key)
{
    memset(r, 0, sizeof *r);
    snprintf(r->tenant_id, sizeof r->tenant_id, "%s", TENANT);
    snprintf(r->dedupe_key, sizeof r->dedupe_key, "%s", key);
    r->params =
        json_pack("{s:s, s:s, s:s}", "tenantId", TENANT, "from", "2024-01-01", "to", "2024-01-31");
}

static const struct job_origin ORIGIN = {"http", "test-agent", "req-1"};

static void test_migrations(void **state)
{
    (void)state;
    struct err e;
    err_clear(&e);
    /* Already applied by testdb_create: re-running applies nothing and stays current, up to
     * this binary's newest version (numbers may have gaps: 0007 before 0004..0006). */
    assert_int_equal(migrate_apply(db.conn, NULL, &e), 0);
    assert_true(migrate_is_current(db.conn, &e));
    assert_int_equal(tdb_int(db.conn, "SELECT max(version) FROM schema_migrations"),
                     migrate_latest_version());
    /* A changed checksum stops start-up and fails readiness. */
    char *sum = tdb_value(db.conn, "SELECT checksum FROM schema_migrations WHERE version = 1");
    tdb_exec(db.conn, "UPDATE schema_migrations SET checksum = 'x' WHERE version = 1");
    assert_false(migrate_is_current(db.conn, &e));
    assert_int_equal(migrate_apply(db.conn, NULL, &e), -1);
    assert_non_null(strstr(e.message, "0001_init.sql"));
    tdb_execf(db.conn, "UPDATE schema_migrations SET checksum = '%s' WHERE version = 1", sum);
    free(sum);
    /* A newer migration applied by a newer binary is fine. */
    tdb_exec(db.conn, "INSERT INTO schema_migrations (version, name, checksum) "
                      "VALUES (9999, '9999_future.sql', 'abc')");
    err_clear(&e);
    assert_true(migrate_is_current(db.conn, &e));
    tdb_exec(db.conn, "DELETE FROM schema_migrations WHERE version = 9999");
}

static void test_dedupe(void **state)
{
    (void)state;
    PGconn *c = conn();
    struct err e;
    err_clear(&e);
    struct job_request r;
    request(&r, "metrics_aggregation:" TENANT ":2024-01-01:2024-01-31");
    struct job_enqueued a, b;
    assert_int_equal(job_store_enqueue(c, TYPE, &r, &ORIGIN, NULL, &a, &e), 0);
    assert_false(a.deduplicated);
    assert_int_equal(a.status, JOB_QUEUED);
    assert_int_equal(job_store_enqueue(c, TYPE, &r, &ORIGIN, NULL, &b, &e), 0);
    assert_true(b.deduplicated);
    assert_string_equal(a.id, b.id);
    /* The CLI's insert-as-running conflicts too, and reports the running job. */
    struct job_enqueued cli;
    assert_int_equal(job_store_enqueue(c, TYPE, &r, &ORIGIN, "host:1:cli", &cli, &e), 0);
    assert_true(cli.deduplicated);
    assert_string_equal(cli.id, a.id);
    /* metadata holds the resolved request and the origin. */
    assert_int_equal(tdb_int(db.conn,
                             "SELECT count(*) FROM job_logs WHERE id = '%s' AND "
                             "metadata->'request'->>'from' = '2024-01-01' AND "
                             "metadata->>'trigger' = 'http' AND metadata->>'userAgent' = "
                             "'test-agent' AND metadata->>'requestId' = 'req-1' AND attempts = 0",
                             a.id),
                     1);
    /* Once it finished, the same identity makes a new job. */
    tdb_execf(db.conn, "UPDATE job_logs SET status = 'success' WHERE id = '%s'", a.id);
    struct job_enqueued d;
    assert_int_equal(job_store_enqueue(c, TYPE, &r, &ORIGIN, NULL, &d, &e), 0);
    assert_false(d.deduplicated);
    assert_string_not_equal(d.id, a.id);
    tdb_execf(db.conn, "UPDATE job_logs SET status = 'success' WHERE id = '%s'", d.id);
    job_request_clear(&r);
    PQfinish(c);
}

struct racer {
    pthread_barrier_t *barrier;
    struct job_enqueued out;
    int rc;
};

static void *race(void *arg)
{
    struct racer *x = arg;
    PGconn *c = conn();
    struct job_request r;
    request(&r, "metrics_aggregation:" TENANT ":2024-02-01:2024-02-29");
    struct err e;
    err_clear(&e);
    pthread_barrier_wait(x->barrier);
    x->rc = job_store_enqueue(c, TYPE, &r, &ORIGIN, NULL, &x->out, &e);
    job_request_clear(&r);
    PQfinish(c);
    return NULL;
}

static void test_concurrent_single_flight(void **state)
{
    (void)state;
    enum { N = 16 };
    pthread_barrier_t barrier;
    pthread_barrier_init(&barrier, NULL, N);
    struct racer racers[N];
    pthread_t threads[N];
    memset(racers, 0, sizeof racers);
    for (int i = 0; i < N; i++) {
        racers[i].barrier = &barrier;
        pthread_create(&threads[i], NULL, race, &racers[i]);
    }
    int fresh = 0;
    for (int i = 0; i < N; i++) {
        pthread_join(threads[i], NULL);
        assert_int_equal(racers[i].rc, 0);
        fresh += racers[i].out.deduplicated ? 0 : 1;
        assert_string_equal(racers[i].out.id, racers[0].out.id);
    }
    pthread_barrier_destroy(&barrier);
    assert_int_equal(fresh, 1);
    assert_int_equal(tdb_int(db.conn, "SELECT count(*) FROM job_logs WHERE dedupe_key = "
                                      "'metrics_aggregation:" TENANT ":2024-02-01:2024-02-29'"),
                     1);
    tdb_exec(db.conn, "UPDATE job_logs SET status = 'success' WHERE status = 'queued'");
}

static void test_claim_lease_finish(void **state)
{
    (void)state;
    PGconn *a = conn(), *b = conn();
    struct err e;
    err_clear(&e);
    struct job_request r1, r2;
    request(&r1, "k:claim:1");
    request(&r2, "k:claim:2");
    struct job_enqueued j1, j2;
    assert_int_equal(job_store_enqueue(a, TYPE, &r1, &ORIGIN, NULL, &j1, &e), 0);
    assert_int_equal(job_store_enqueue(a, TYPE, &r2, &ORIGIN, NULL, &j2, &e), 0);
    /* Two claimers inside open transactions get different jobs (SKIP LOCKED). */
    tdb_exec(a, "BEGIN");
    tdb_exec(b, "BEGIN");
    struct job_claim ca, cb, cc;
    assert_int_equal(job_store_claim(a, "host:1:w1", TYPES, 1, &ca, &e), 1);
    assert_int_equal(job_store_claim(b, "host:1:w2", TYPES, 1, &cb, &e), 1);
    assert_string_not_equal(ca.id, cb.id);
    tdb_exec(a, "COMMIT");
    tdb_exec(b, "COMMIT");
    assert_int_equal(job_store_claim(a, "host:1:w1", TYPES, 1, &cc, &e), 0);
    assert_int_equal(ca.attempts, 1);
    assert_string_equal(ca.job_type, TYPE);
    assert_string_equal(ca.tenant_id, TENANT);
    assert_string_equal(ca.trigger, "http");
    assert_string_equal(json_string_value(json_object_get(ca.params, "from")), "2024-01-01");
    assert_string_equal(ca.request_id, "req-1");
    assert_int_equal(tdb_int(db.conn,
                             "SELECT count(*) FROM job_logs WHERE id = '%s' AND status = "
                             "'running' AND worker_id = 'host:1:w1' AND heartbeat_at IS NOT NULL "
                             "AND started_at IS NOT NULL",
                             ca.id),
                     1);
    /* Heartbeat renews ours, reports a job that is not ours as lost. */
    const char *ids[] = {ca.id, cb.id};
    const char *workers[] = {"host:1:w1", "host:1:wrong"};
    bool lost[2];
    assert_int_equal(job_store_heartbeat(a, ids, workers, 2, lost, &e), 0);
    assert_false(lost[0]);
    assert_true(lost[1]);
    /* Only the owner can finish. */
    json_t *res = json_pack("{s:b, s:s}", "success", 1, "jobLogId", ca.id);
    long long ms = -1;
    assert_int_equal(job_store_finish_success(a, ca.id, "host:1:other", 5, res, &ms, &e), -1);
    assert_string_equal(e.code, "interrupted");
    assert_int_equal(job_store_finish_success(a, ca.id, "host:1:w1", 5, res, &ms, &e), 0);
    assert_true(ms >= 0);
    json_decref(res);
    assert_int_equal(tdb_int(db.conn,
                             "SELECT count(*) FROM job_logs WHERE id = '%s' AND status = "
                             "'success' AND records_processed = 5 AND completed_at IS NOT NULL "
                             "AND (metadata->'result'->>'duration')::bigint = duration_ms",
                             ca.id),
                     1);
    /* A failure is recorded with metadata.error. */
    struct err jerr;
    err_set(&jerr, 503, "timeout", "took too long");
    assert_int_equal(job_store_finish_error(a, cb.id, "host:1:w2", &jerr, &e), 0);
    assert_int_equal(tdb_int(db.conn,
                             "SELECT count(*) FROM job_logs WHERE id = '%s' AND status = 'error' "
                             "AND error_message = 'took too long' AND metadata->'error'->>'code' "
                             "= 'timeout' AND (metadata->'error'->>'httpStatus')::int = 503",
                             cb.id),
                     1);
    /* GET view: result on success, error on failure, 404 for others. */
    json_t *job = job_store_get(a, ca.id, NULL, 0, &e);
    assert_non_null(job);
    assert_non_null(json_object_get(job, "result"));
    assert_null(json_object_get(job, "error"));
    const char *created = json_string_value(json_object_get(job, "createdAt"));
    assert_non_null(created);
    assert_int_equal(strlen(created), 24);
    assert_int_equal(created[23], 'Z');
    json_decref(job);
    job = job_store_get(a, cb.id, NULL, 0, &e);
    assert_non_null(json_object_get(job, "error"));
    json_decref(job);
    assert_null(job_store_get(a, ca.id, "7a1d3b52-8d4e-4f00-9c11-00000000ffff", 0, &e));
    assert_int_equal(e.http_status, 404);
    assert_null(job_store_get(a, "not-a-uuid", NULL, 0, &e));
    assert_string_equal(e.code, "job_not_found");
    job_claim_clear(&ca);
    job_claim_clear(&cb);
    job_request_clear(&r1);
    job_request_clear(&r2);
    PQfinish(a);
    PQfinish(b);
}

static bool server_up_a_lease(void *ctx)
{
    (void)ctx;
    return tdb_int(db.conn,
                   "SELECT (pg_postmaster_start_time() < now() - interval '3 seconds')::int") == 1;
}

struct reaped {
    int calls;
    bool failed;
    char id[37], job_type[64], lost_worker[64];
};

static void on_reaped(void *ctx, const struct job_reaped *r)
{
    struct reaped *x = ctx;
    x->calls++;
    x->failed = r->failed;
    snprintf(x->id, sizeof x->id, "%s", r->id);
    snprintf(x->job_type, sizeof x->job_type, "%s", r->job_type);
    snprintf(x->lost_worker, sizeof x->lost_worker, "%s", r->lost_worker);
}

static void test_reaper_and_requeue(void **state)
{
    (void)state;
    /* The reaper waits one lease after a database (re)start: wait for that to pass. */
    assert_true(t_wait_until(server_up_a_lease, NULL, 10000));
    PGconn *c = conn();
    struct err e;
    err_clear(&e);
    struct job_request r;
    request(&r, "k:reap:1");
    struct job_enqueued j;
    assert_int_equal(job_store_enqueue(c, TYPE, &r, &ORIGIN, NULL, &j, &e), 0);
    struct job_claim cl;
    assert_int_equal(job_store_claim(c, "dead:1:w1", TYPES, 1, &cl, &e), 1);
    /* A fresh lease is not reaped. */
    assert_int_equal(job_store_reap(c, 3, 3, NULL, NULL, &e), 0);
    /* An expired one is requeued, with the interruption recorded. */
    tdb_execf(db.conn,
              "UPDATE job_logs SET heartbeat_at = now() - interval '10 seconds' WHERE "
              "id = '%s'",
              cl.id);
    assert_int_equal(job_store_reap(c, 3, 3, NULL, NULL, &e), 1);
    assert_int_equal(tdb_int(db.conn,
                             "SELECT count(*) FROM job_logs WHERE id = '%s' AND status = 'queued' "
                             "AND worker_id IS NULL AND jsonb_array_length(metadata->"
                             "'interruptions') = 1 AND metadata->'interruptions'->0->>'workerId' "
                             "= 'dead:1:w1'",
                             cl.id),
                     1);
    /* Claimed again twice more and expired: after max attempts it fails as interrupted. */
    for (int i = 2; i <= 3; i++) {
        job_claim_clear(&cl);
        assert_int_equal(job_store_claim(c, "dead:1:w1", TYPES, 1, &cl, &e), 1);
        assert_int_equal(cl.attempts, i);
        tdb_execf(db.conn,
                  "UPDATE job_logs SET heartbeat_at = now() - interval '10 seconds' "
                  "WHERE id = '%s'",
                  cl.id);
        struct reaped seen = {0};
        assert_int_equal(job_store_reap(c, 3, 3, on_reaped, &seen, &e), 1);
        assert_int_equal(seen.calls, 1);
        assert_string_equal(seen.id, cl.id);
        assert_string_equal(seen.job_type, TYPE);
        assert_string_equal(seen.lost_worker, "dead:1:w1");
        assert_int_equal(seen.failed, i == 3);
    }
    assert_int_equal(tdb_int(db.conn,
                             "SELECT count(*) FROM job_logs WHERE id = '%s' AND status = 'error' "
                             "AND metadata->'error'->>'code' = 'interrupted' AND completed_at IS "
                             "NOT NULL AND error_message LIKE 'interrupted%%'",
                             cl.id),
                     1);
    /* A requeue at shutdown does not count the attempt. */
    struct job_request r2;
    request(&r2, "k:requeue:1");
    assert_int_equal(job_store_enqueue(c, TYPE, &r2, &ORIGIN, NULL, &j, &e), 0);
    job_claim_clear(&cl);
    assert_int_equal(job_store_claim(c, "me:1:w1", TYPES, 1, &cl, &e), 1);
    assert_int_equal(job_store_requeue(c, cl.id, "me:1:w1", "shutdown", false, &e), 0);
    assert_int_equal(tdb_int(db.conn,
                             "SELECT count(*) FROM job_logs WHERE id = '%s' AND status = 'queued' "
                             "AND attempts = 0 AND metadata->'requeues'->0->>'reason' = 'shutdown'",
                             cl.id),
                     1);
    tdb_execf(db.conn, "UPDATE job_logs SET status = 'success' WHERE id = '%s'", cl.id);
    job_claim_clear(&cl);
    job_request_clear(&r);
    job_request_clear(&r2);
    PQfinish(c);
}

static void count_cb(void *ctx, const char *job_type, const char *status, long long count)
{
    char *out = ctx;
    char line[128];
    snprintf(line, sizeof line, "%s/%s=%lld;", job_type, status, count);
    strncat(out, line, 1023 - strlen(out));
}

/* A worker claims only the types it was given; the queue gauge counts every given type,
 * zeros included. */
/* Two looks: a job seen expired whose heartbeat moved before the second look (a renewal that
 * was stalled behind a lock on job_logs and got through) is not taken back; one whose
 * heartbeat did not move is. */
static void test_reaper_second_look(void **state)
{
    (void)state;
    assert_true(t_wait_until(server_up_a_lease, NULL, 10000));
    tdb_exec(db.conn, "DELETE FROM job_logs WHERE status IN ('queued', 'running')");
    PGconn *c = conn();
    struct err e;
    err_clear(&e);
    struct job_request r1, r2;
    request(&r1, "k:look:1");
    request(&r2, "k:look:2");
    struct job_enqueued j;
    assert_int_equal(job_store_enqueue(c, TYPE, &r1, &ORIGIN, NULL, &j, &e), 0);
    assert_int_equal(job_store_enqueue(c, TYPE, &r2, &ORIGIN, NULL, &j, &e), 0);
    struct job_claim a, b;
    assert_int_equal(job_store_claim(c, "live:1:w1", TYPES, 1, &a, &e), 1);
    assert_int_equal(job_store_claim(c, "dead:1:w1", TYPES, 1, &b, &e), 1);
    tdb_execf(db.conn,
              "UPDATE job_logs SET heartbeat_at = now() - interval '10 seconds' "
              "WHERE id IN ('%s', '%s')",
              a.id, b.id);
    struct job_expired seen;
    assert_int_equal(job_store_expired(c, 3, &seen, &e), 2);
    /* The live worker's renewal lands between the looks. */
    const char *ids[] = {a.id}, *workers[] = {"live:1:w1"};
    bool lost[1];
    assert_int_equal(job_store_heartbeat(c, ids, workers, 1, lost, &e), 0);
    assert_false(lost[0]);
    struct reaped got = {0};
    assert_int_equal(job_store_reap_seen(c, 3, 3, &seen, on_reaped, &got, &e), 1);
    assert_string_equal(got.id, b.id);
    assert_int_equal(tdb_int(db.conn,
                             "SELECT count(*) FROM job_logs WHERE id = '%s' AND status = "
                             "'running' AND worker_id = 'live:1:w1'",
                             a.id),
                     1);
    /* Seen again with its old heartbeat, the renewed job is still not taken back. */
    assert_int_equal(job_store_reap_seen(c, 3, 3, &seen, NULL, NULL, &e), 0);
    job_store_expired_free(&seen);
    assert_int_equal(seen.n, 0);
    job_claim_clear(&a);
    job_claim_clear(&b);
    job_request_clear(&r1);
    job_request_clear(&r2);
    tdb_exec(db.conn, "DELETE FROM job_logs WHERE status IN ('queued', 'running')");
    PQfinish(c);
}

static void test_claim_types_and_queue_counts(void **state)
{
    (void)state;
    PGconn *c = conn();
    struct err e;
    err_clear(&e);
    tdb_exec(c, "DELETE FROM job_logs");
    struct job_request r;
    request(&r, "other:1");
    struct job_enqueued j;
    assert_int_equal(job_store_enqueue(c, "some_other_type", &r, &ORIGIN, NULL, &j, &e), 0);
    struct job_claim cl;
    assert_int_equal(job_store_claim(c, "me:1:w1", TYPES, 1, &cl, &e), 0);
    const char *both[] = {TYPE, "some_other_type"};
    char out[1024] = "";
    assert_int_equal(job_store_queue_counts(c, both, 2, count_cb, out, &e), 0);
    assert_string_equal(out, "metrics_aggregation/queued=0;metrics_aggregation/running=0;"
                             "some_other_type/queued=1;some_other_type/running=0;");
    assert_int_equal(job_store_claim(c, "me:1:w1", both + 1, 1, &cl, &e), 1);
    assert_string_equal(cl.id, j.id);
    assert_string_equal(cl.job_type, "some_other_type");
    job_claim_clear(&cl);
    out[0] = '\0';
    assert_int_equal(job_store_queue_counts(c, both, 2, count_cb, out, &e), 0);
    assert_non_null(strstr(out, "some_other_type/running=1;"));
    job_request_clear(&r);
    PQfinish(c);
}

/* A worker's claim (FLEET_MAX_RUNNING > 0) takes a job that is no fleet child first, without
 * the fleet limit's advisory lock: held by another session, it blocks nothing then; a fleet
 * child queued earlier waits, and is claimed (under the lock) once the lock is free. */
static void test_claim_top_first_without_the_fleet_lock(void **state)
{
    (void)state;
    PGconn *c = conn(), *holder = conn();
    struct err e;
    err_clear(&e);
    tdb_exec(c, "DELETE FROM job_logs");
    struct job_request parent, child, top;
    request(&parent, "fleet:parent");
    request(&child, "fleet:child");
    request(&top, "by:hand");
    struct job_enqueued jp, jc, jt;
    assert_int_equal(job_store_enqueue(c, TYPE, &parent, &ORIGIN, NULL, &jp, &e), 0);
    tdb_execf(c, "UPDATE job_logs SET status = 'running' WHERE id = '%s'", jp.id);
    assert_int_equal(job_store_enqueue_child(c, TYPE, &child, &ORIGIN, jp.id, &jc, &e), 0);
    assert_int_equal(job_store_enqueue(c, TYPE, &top, &ORIGIN, NULL, &jt, &e), 0);
    tdb_exec(holder, "SELECT pg_advisory_lock(hashtextextended('jobsd:fleet:claim', 0))");
    struct job_claim cl;
    long long t0 = t_now_ms();
    assert_int_equal(job_store_claim_limited(c, "me:1:w1", TYPES, 1, 4, NULL, &cl, &e), 1);
    long long took = t_now_ms() - t0;
    assert_string_equal(cl.id, jt.id); /* queued last, claimed first */
    if (took > 1000)
        fail_msg("the claim of a job that is no fleet child waited %lld ms for the fleet lock",
                 took);
    job_claim_clear(&cl);
    tdb_exec(holder, "SELECT pg_advisory_unlock_all()");
    assert_int_equal(job_store_claim_limited(c, "me:1:w1", TYPES, 1, 4, NULL, &cl, &e), 1);
    assert_string_equal(cl.id, jc.id);
    job_claim_clear(&cl);
    assert_int_equal(job_store_claim_limited(c, "me:1:w1", TYPES, 1, 4, NULL, &cl, &e), 0);
    job_request_clear(&parent);
    job_request_clear(&child);
    job_request_clear(&top);
    PQfinish(holder);
    PQfinish(c);
}

static void test_array_literal(void **state)
{
    (void)state;
    const char *items[] = {"a", "b\"c", "d\\e", "f,g"};
    char *s = db_array_literal(items, 4);
    assert_string_equal(s, "{\"a\",\"b\\\"c\",\"d\\\\e\",\"f,g\"}");
    free(s);
    PGconn *c = conn();
    const char *p[] = {NULL};
    s = db_array_literal(items, 4);
    p[0] = s;
    PGresult *r = PQexecParams(c, "SELECT ($1::text[])[2] || '|' || ($1::text[])[4]", 1, NULL, p,
                               NULL, NULL, 0);
    assert_int_equal(PQresultStatus(r), PGRES_TUPLES_OK);
    assert_string_equal(PQgetvalue(r, 0, 0), "b\"c|f,g");
    PQclear(r);
    free(s);
    PQfinish(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_migrations),
        cmocka_unit_test(test_dedupe),
        cmocka_unit_test(test_concurrent_single_flight),
        cmocka_unit_test(test_claim_lease_finish),
        cmocka_unit_test(test_reaper_and_requeue),
        cmocka_unit_test(test_reaper_second_look),
        cmocka_unit_test(test_claim_types_and_queue_counts),
        cmocka_unit_test(test_claim_top_first_without_the_fleet_lock),
        cmocka_unit_test(test_array_literal),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
