/* Chaos: a lock on job_logs held longer than the lease while a healthy job runs (issue 19
 * item 11). Two instances with JOB_LEASE_SECONDS=2 (both renew and reap every lease); a
 * rebuild made slow (about 8 s of writes) runs on one of them; once it is writing, the test
 * holds a lock for 5 s:
 *  - a row lock on the job's row (SELECT ... FOR UPDATE): its renewal waits for it;
 *  - an ACCESS EXCLUSIVE lock on job_logs: every renewal and every reaper pass waits for it.
 * Asserted each time: the job is never reaped (no interruption in its metadata, attempts stays
 * 1, no "job interrupted" log line) and it ends success. A renewal that waited on a lock must
 * record when it got through (not the time its statement began), and a reaper must not judge
 * leases whose renewals are queued behind the lock it waited for. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "chaos.h"
#include "testdb.h"
#include "testfx.h"
#include "testgroup.h"
#include "testhttp.h"
#include "testproc.h"
#include "testtime.h"

#define TENANT  "5a5a5a5a-0000-4000-8000-000000000011"
#define HOLD_MS 5000

static struct testdb db;
static struct jobsd_proc a, b;
static unsigned long long mark;

static bool writing(void *ctx)
{
    (void)ctx;
    return tdb_int(db.conn, "SELECT count(*) FROM pg_stat_activity WHERE datname = "
                            "current_database() AND application_name = 'jobsd' AND "
                            "wait_event = 'PgSleep'") > 0;
}

static bool final(void *ctx)
{
    return chaos_job_final(db.conn, ctx);
}

static int setup(void **state)
{
    (void)state;
    mark = children_mark();
    testdb_create(&db, "chaos_stall");
    chaos_seed(db.conn, TENANT, 20, "2024-01-01", "2024-08-31");
    chaos_slow_writes(db.conn, "0.004");
    const char *env[] = {"JOB_LEASE_SECONDS=2", "JOB_WORKERS=1", NULL};
    if (!jobsd_start(&a, db.url, env) || !jobsd_start(&b, db.url, env))
        return -1;
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    bool ok = true;
    if (a.pid > 0 && jobsd_stop(&a, 20000) != 0)
        ok = false;
    if (b.pid > 0 && jobsd_stop(&b, 20000) != 0)
        ok = false;
    children_kill_since(mark);
    testdb_drop(&db);
    return ok ? 0 : -1;
}

/* Runs a rebuild of from..to; while it writes, a transaction holds a lock for HOLD_MS: on
 * the whole table, or on the job's row. */
static void stall_during_job(const char *from, const char *to, bool table)
{
    struct th_response r;
    assert_true(chaos_post_rebuild(a.port, TENANT, from, to, "Prefer: respond-async\r\n", &r));
    assert_int_equal(r.status, 202);
    char id[40];
    snprintf(id, sizeof id, "%s", json_string_value(json_object_get(r.json, "jobLogId")));
    th_free(&r);
    assert_true(t_wait_until(writing, NULL, 15000));
    assert_true(chaos_job_is(db.conn, id, "running"));

    PGconn *locker = PQconnectdb(db.url);
    assert_int_equal(PQstatus(locker), CONNECTION_OK);
    tdb_exec(locker, "BEGIN");
    if (table)
        tdb_exec(locker, "LOCK TABLE job_logs IN ACCESS EXCLUSIVE MODE");
    else
        tdb_execf(locker, "SELECT 1 FROM job_logs WHERE id = '%s' FOR UPDATE", id);
    long long t0 = t_now_ms();
    t_sleep_ms(HOLD_MS); /* the stall itself: the lock is held this long */
    tdb_exec(locker, "COMMIT");
    PQfinish(locker);
    print_message("lock held %lld ms (lease 2 s)\n", t_now_ms() - t0);

    if (!t_wait_until(final, id, 30000))
        fail_msg("job %s not finished 30 s after the lock was released", id);
    char *row = tdb_value(db.conn,
                          "SELECT status || ' attempts=' || attempts || ' interruptions=' || "
                          "coalesce(jsonb_array_length(metadata->'interruptions'), 0) || "
                          "' requeues=' || coalesce(jsonb_array_length(metadata->'requeues'), 0) "
                          "|| ' ' || coalesce(error_message, '') FROM job_logs WHERE id = '%s'",
                          id);
    char shown[512];
    snprintf(shown, sizeof shown, "%s", row);
    free(row);
    print_message("job %s: %s\n", id, shown);
    if (strncmp(shown, "success attempts=1 interruptions=0 requeues=0", 45) != 0)
        fail_msg("a healthy job was taken back during a %d ms lock on job_logs: %s", HOLD_MS,
                 shown);
    assert_int_equal(chaos_log_count(&a, "job interrupted", id), 0);
    assert_int_equal(chaos_log_count(&b, "job interrupted", id), 0);
}

static void test_row_lock_longer_than_lease(void **state)
{
    (void)state;
    stall_during_job("2024-01-01", "2024-04-09", false);
}

static void test_table_lock_longer_than_lease(void **state)
{
    (void)state;
    stall_during_job("2024-05-01", "2024-08-08", true);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_row_lock_longer_than_lease),
        cmocka_unit_test(test_table_lock_longer_than_lease),
    };
    return tgroup_run("chaos_stall", tests, setup, teardown);
}
