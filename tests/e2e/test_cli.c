/* End-to-end tests of the command line (SPEC section 5): help, version, check-config,
 * migrate, healthcheck, and rebuild-daily-metrics with its exit codes (0 done, 1 failed,
 * 2 usage/configuration, 3 transient or duplicate). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <jansson.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testsupport.h"

#define TENANT "c11c11c1-0000-4000-8000-000000000001"

static struct testdb db;
static char dburl[600];

static int setup(void **state)
{
    (void)state;
    testdb_create(&db, "cli");
    snprintf(dburl, sizeof dburl, "DATABASE_URL=%s", db.url);
    fx_tenant(db.conn, TENANT);
    const char *l = fx_listing(db.conn, TENANT, "MLB9", "active");
    const char *o = fx_order(db.conn, TENANT, 1, "paid", "2024-01-10 12:00:00-03");
    fx_item(db.conn, TENANT, o, l, 2, "10.50");
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    testdb_drop(&db);
    return 0;
}

static int run(const char *const *argv, const char *const *env, char **out, char **err)
{
    return jobsd_run(argv, env, out, err);
}

static void test_help_and_version(void **state)
{
    (void)state;
    char *out, *err;
    const char *a1[] = {"--help", NULL};
    assert_int_equal(run(a1, NULL, &out, &err), 0);
    assert_non_null(strstr(out, "rebuild-daily-metrics"));
    assert_non_null(strstr(out, "healthcheck"));
    free(out);
    free(err);
    const char *a2[] = {"rebuild-daily-metrics", "--help", NULL};
    assert_int_equal(run(a2, NULL, &out, &err), 0);
    assert_non_null(strstr(out, "--days-back"));
    free(out);
    free(err);
    const char *a3[] = {"version", NULL};
    assert_int_equal(run(a3, NULL, &out, &err), 0);
    assert_non_null(strstr(out, "jobsd 0."));
    assert_non_null(strstr(out, "libmicrohttpd"));
    free(out);
    free(err);
    const char *a4[] = {"frobnicate", NULL};
    assert_int_equal(run(a4, NULL, &out, &err), 2);
    assert_non_null(strstr(err, "unknown command"));
    free(out);
    free(err);
}

static void test_check_config(void **state)
{
    (void)state;
    char *out, *err;
    const char *argv[] = {"check-config", NULL};
    const char *good[] = {dburl, "INTERNAL_JOBS_KEY=" TEST_KEY, NULL};
    assert_int_equal(run(argv, good, &out, &err), 0);
    assert_non_null(strstr(out, "INTERNAL_JOBS_KEY=<redacted>"));
    assert_null(strstr(out, TEST_KEY));
    assert_non_null(strstr(out, "JOBS_TIMEZONE=America/Sao_Paulo"));
    free(out);
    free(err);
    const char *bad[] = {"INTERNAL_JOBS_KEY=too-short-key", "PORT=http", NULL};
    assert_int_equal(run(argv, bad, &out, &err), 2);
    assert_non_null(strstr(err, "DATABASE_URL: is required"));
    assert_non_null(strstr(err, "INTERNAL_JOBS_KEY: must be at least 32 bytes"));
    assert_non_null(strstr(err, "PORT:"));
    assert_null(strstr(err, "too-short-key"));
    free(out);
    free(err);
    /* serve refuses to start with the same problems. */
    const char *serve[] = {"serve", NULL};
    assert_int_equal(run(serve, bad, &out, &err), 2);
    assert_non_null(strstr(err, "INTERNAL_JOBS_KEY"));
    free(out);
    free(err);
}

static void test_migrate_status(void **state)
{
    (void)state;
    char *out, *err;
    const char *argv[] = {"migrate", "--status", NULL};
    const char *env[] = {dburl, NULL};
    assert_int_equal(run(argv, env, &out, &err), 0);
    assert_non_null(strstr(out, "0001_init.sql"));
    assert_non_null(strstr(out, "applied"));
    free(out);
    free(err);
    const char *apply[] = {"migrate", NULL};
    assert_int_equal(run(apply, env, &out, &err), 0);
    assert_non_null(strstr(out, "0 migration(s) applied"));
    free(out);
    free(err);
    /* Unreachable database: transient. */
    const char *down[] = {"DATABASE_URL=postgresql://postgres@127.0.0.1:1/x?connect_timeout=2",
                          NULL};
    assert_int_equal(run(apply, down, &out, &err), 3);
    assert_non_null(strstr(err, "database unavailable"));
    free(out);
    free(err);
}

static void test_rebuild(void **state)
{
    (void)state;
    char *out, *err;
    const char *env[] = {dburl, "JOBS_TIMEZONE=America/Sao_Paulo", NULL};
    const char *argv[] = {"rebuild-daily-metrics",
                          "--tenant",
                          TENANT,
                          "--from",
                          "2024-01-01",
                          "--to",
                          "2024-01-31",
                          NULL};
    assert_int_equal(run(argv, env, &out, &err), 0);
    json_t *j = json_loads(out, 0, NULL);
    assert_non_null(j);
    assert_true(json_is_true(json_object_get(j, "success")));
    assert_int_equal(json_integer_value(json_object_get(j, "daysProcessed")), 31);
    assert_int_equal(json_integer_value(json_object_get(j, "listingsProcessed")), 1);
    assert_int_equal(json_integer_value(json_object_get(j, "rowsUpserted")), 31);
    assert_true(json_is_false(json_object_get(j, "deduplicated")));
    const char *id = json_string_value(json_object_get(j, "jobLogId"));
    assert_int_equal(tdb_int(db.conn,
                             "SELECT count(*) FROM job_logs WHERE id = '%s' AND trigger = 'cli' "
                             "AND status = 'success' AND attempts = 1 AND records_processed = 31",
                             id),
                     1);
    assert_int_equal(
        tdb_int(db.conn, "SELECT units FROM listing_metrics_daily WHERE date = '2024-01-10'"), 2);
    json_decref(j);
    free(out);
    /* Not a terminal: no progress lines. */
    assert_null(strstr(err, "computing"));
    free(err);
}

static void test_rebuild_errors(void **state)
{
    (void)state;
    char *out, *err;
    const char *env[] = {dburl, NULL};
    const char *no_tenant[] = {"rebuild-daily-metrics", "--from", "2024-01-01", NULL};
    assert_int_equal(run(no_tenant, env, &out, &err), 2);
    assert_non_null(strstr(err, "--tenant"));
    free(out);
    free(err);
    const char *bad_days[] = {"rebuild-daily-metrics", "--tenant", TENANT,
                              "--days-back",           "x",        NULL};
    assert_int_equal(run(bad_days, env, &out, &err), 2);
    assert_non_null(strstr(err, "--days-back"));
    free(out);
    free(err);
    const char *unknown[] = {"rebuild-daily-metrics", "--tenant",
                             "c11c11c1-0000-4000-8000-0000000000ff", NULL};
    assert_int_equal(run(unknown, env, &out, &err), 2);
    assert_non_null(strstr(err, "does not exist"));
    free(out);
    free(err);
    const char *bad_date[] = {"rebuild-daily-metrics",
                              "--tenant",
                              TENANT,
                              "--from",
                              "2024-02-30",
                              "--to",
                              "2024-03-01",
                              NULL};
    assert_int_equal(run(bad_date, env, &out, &err), 2);
    assert_non_null(strstr(err, "from"));
    free(out);
    free(err);
    const char *bad_tz[] = {dburl, "JOBS_TIMEZONE=Mars/Olympus_Mons", NULL};
    const char *ok[] = {"rebuild-daily-metrics", "--tenant", TENANT, NULL};
    assert_int_equal(run(ok, bad_tz, &out, &err), 2);
    assert_non_null(strstr(err, "JOBS_TIMEZONE"));
    free(out);
    free(err);
    const char *down[] = {"DATABASE_URL=postgresql://postgres@127.0.0.1:1/x?connect_timeout=2",
                          NULL};
    assert_int_equal(run(ok, down, &out, &err), 3);
    free(out);
    free(err);
}

static void test_duplicate_running(void **state)
{
    (void)state;
    /* A job with the same identity already running: exit 3 and name it. */
    tdb_exec(db.conn, "INSERT INTO job_logs (id, tenant_id, job_type, status, dedupe_key, "
                      "worker_id, heartbeat_at, attempts) VALUES "
                      "('d0d0d0d0-0000-4000-8000-000000000001', '" TENANT
                      "', 'metrics_aggregation', 'running', 'metrics_aggregation:" TENANT
                      ":2024-02-01:2024-02-10', 'other:1:w1', now(), 1)");
    char *out, *err;
    const char *env[] = {dburl, NULL};
    const char *argv[] = {"rebuild-daily-metrics",
                          "--tenant",
                          TENANT,
                          "--days-back",
                          "10",
                          "--to",
                          "2024-02-10",
                          NULL};
    assert_int_equal(run(argv, env, &out, &err), 3);
    assert_non_null(strstr(err, "d0d0d0d0-0000-4000-8000-000000000001"));
    free(out);
    free(err);
    tdb_exec(db.conn, "UPDATE job_logs SET status = 'error' WHERE id = "
                      "'d0d0d0d0-0000-4000-8000-000000000001'");
}

static void test_healthcheck(void **state)
{
    (void)state;
    struct jobsd_proc p;
    assert_true(jobsd_start(&p, db.url, NULL));
    char port[32];
    snprintf(port, sizeof port, "PORT=%u", p.port);
    const char *env[] = {port, NULL};
    const char *argv[] = {"healthcheck", NULL};
    char *out, *err;
    assert_int_equal(run(argv, env, &out, &err), 0);
    free(out);
    free(err);
    assert_int_equal(jobsd_stop(&p, 20000), 0);
    assert_int_equal(run(argv, env, &out, &err), 1);
    free(out);
    free(err);
}

/* The keys of the text log line whose message is msg, in order ("jobLogId tenantId ..."),
 * or "" when no line has it. */
static void keys_of(const char *log, const char *msg, char *out, size_t cap)
{
    out[0] = '\0';
    char needle[160];
    snprintf(needle, sizeof needle, " %s ", msg);
    const char *p = log ? strstr(log, needle) : NULL;
    if (!p)
        return;
    p += strlen(needle);
    const char *end = strchr(p, '\n');
    if (!end)
        end = p + strlen(p);
    while (p < end) {
        const char *eq = memchr(p, '=', (size_t)(end - p));
        const char *sp = memchr(p, ' ', (size_t)(end - p));
        if (!eq || (sp && sp < eq))
            break;
        snprintf(out + strlen(out), cap - strlen(out), "%.*s ", (int)(eq - p), p);
        p = sp ? sp + 1 : end;
    }
}

static char *slurp(const char *path)
{
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    char *buf = calloc(1, 1 << 20);
    assert_non_null(buf);
    size_t n = fread(buf, 1, (1 << 20) - 1, f);
    buf[n] = '\0';
    fclose(f);
    return buf;
}

/* The same job run by the CLI and by a server's worker writes the same lines: started and
 * finished carry the same fields in the same order (SPEC 6), only the values differ. */
static void test_cli_log_lines_equal_workers(void **state)
{
    (void)state;
    char *out, *err;
    const char *env[] = {dburl, "JOBS_TIMEZONE=America/Sao_Paulo", NULL};
    const char *argv[] = {"rebuild-daily-metrics",
                          "--tenant",
                          TENANT,
                          "--from",
                          "2024-02-01",
                          "--to",
                          "2024-02-29",
                          NULL};
    assert_int_equal(run(argv, env, &out, &err), 0);
    free(out);

    struct jobsd_proc p;
    assert_true(jobsd_start(&p, db.url, NULL));
    struct th_response r;
    assert_true(th_post_job(p.port, "/api/v1/jobs/rebuild-daily-metrics", TEST_KEY,
                            "{\"tenantId\": \"" TENANT
                            "\", \"from\": \"2024-03-01\", \"to\": \"2024-03-31\"}",
                            NULL, &r));
    assert_int_equal(r.status, 200);
    th_free(&r);
    assert_int_equal(jobsd_stop(&p, 20000), 0);
    char *serve_log = slurp(p.log_path);

    char kc[512], kw[512];
    keys_of(err, "[INTERNAL-JOB] rebuild-daily-metrics started", kc, sizeof kc);
    keys_of(serve_log, "[INTERNAL-JOB] rebuild-daily-metrics started", kw, sizeof kw);
    assert_string_equal(kc, "job jobLogId tenantId attempt workerId trigger requestId ");
    assert_string_equal(kc, kw);
    assert_non_null(strstr(err, "trigger=cli"));
    keys_of(err, "[INTERNAL-JOB] rebuild-daily-metrics finished", kc, sizeof kc);
    keys_of(serve_log, "[INTERNAL-JOB] rebuild-daily-metrics finished", kw, sizeof kw);
    /* SPEC 6's counters, in both */
    assert_string_equal(kc, "jobLogId tenantId daysProcessed rowsUpserted rowsUnchanged "
                            "rowsDeleted listingsProcessed durationMs requestId job ");
    assert_string_equal(kc, kw);
    free(serve_log);
    free(err);
}

struct cli_call {
    const char *const *argv;
    const char *const *env;
    char *out, *err;
    int rc;
};

static void *cli_thread(void *arg)
{
    struct cli_call *c = arg;
    c->rc = run(c->argv, c->env, &c->out, &c->err);
    return NULL;
}

/* The CLI's job, running and waiting for the tenant's rebuild lock: the CLI's pid (its
 * worker id is "host:pid:cli"). */
static bool cli_job_waiting(void *ctx)
{
    long long *pid = ctx;
    char *w = tdb_value(db.conn, "SELECT coalesce(max(worker_id), '') FROM job_logs "
                                 "WHERE status = 'running' AND trigger = 'cli' AND EXISTS ("
                                 "SELECT 1 FROM pg_locks WHERE locktype = 'advisory' "
                                 "AND NOT granted)");
    const char *colon = strchr(w, ':');
    const char *last = strrchr(w, ':');
    *pid = 0;
    if (colon && last > colon) {
        char digits[24];
        snprintf(digits, sizeof digits, "%.*s", (int)(last - colon - 1), colon + 1);
        *pid = strtoll(digits, NULL, 10);
    }
    free(w);
    return *pid > 0;
}

/* SIGINT while the job runs (here: waiting for the tenant's rebuild lock) cancels its
 * statement: exit 3, the job recorded as failed (interrupted), the window untouched. */
static void test_rebuild_interrupted_by_a_signal(void **state)
{
    (void)state;
    long long before =
        tdb_int(db.conn, "SELECT count(*) FROM listing_metrics_daily WHERE date >= '2024-04-01'");
    PGconn *locker = PQconnectdb(db.url);
    assert_int_equal(PQstatus(locker), CONNECTION_OK);
    tdb_exec(locker, "SELECT pg_advisory_lock(hashtextextended('jobsd:metrics:" TENANT "', 0))");
    const char *env[] = {dburl, "JOBS_TIMEZONE=America/Sao_Paulo", NULL};
    const char *argv[] = {"rebuild-daily-metrics",
                          "--tenant",
                          TENANT,
                          "--from",
                          "2024-04-01",
                          "--to",
                          "2024-04-30",
                          NULL};
    struct cli_call c = {argv, env, NULL, NULL, -1};
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, cli_thread, &c), 0);
    long long pid = 0;
    assert_true(t_wait_until(cli_job_waiting, &pid, 30000));
    assert_int_equal(kill((pid_t)pid, SIGINT), 0);
    pthread_join(t, NULL);
    tdb_exec(locker, "SELECT pg_advisory_unlock_all()");
    PQfinish(locker);
    assert_int_equal(c.rc, 3);
    assert_non_null(strstr(c.err, "interrupted"));
    assert_non_null(strstr(c.err, "[INTERNAL-JOB] rebuild-daily-metrics failed"));
    assert_int_equal(tdb_int(db.conn,
                             "SELECT count(*) FROM job_logs WHERE trigger = 'cli' AND "
                             "status = 'error' AND metadata->'error'->>'code' = 'interrupted' "
                             "AND metadata->'request'->>'from' = '2024-04-01'"),
                     1);
    assert_int_equal(
        tdb_int(db.conn, "SELECT count(*) FROM listing_metrics_daily WHERE date >= '2024-04-01'"),
        before);
    free(c.out);
    free(c.err);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_help_and_version),
        cmocka_unit_test(test_check_config),
        cmocka_unit_test(test_migrate_status),
        cmocka_unit_test(test_rebuild),
        cmocka_unit_test(test_rebuild_errors),
        cmocka_unit_test(test_duplicate_running),
        cmocka_unit_test(test_healthcheck),
        cmocka_unit_test(test_cli_log_lines_equal_workers),
        cmocka_unit_test(test_rebuild_interrupted_by_a_signal),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
