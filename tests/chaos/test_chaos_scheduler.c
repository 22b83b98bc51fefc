/* Chaos: the built-in scheduler (SCHEDULES) on three instances of one database (issue 20,
 * "a schedule firing every minute for 5 minutes → exactly 5 jobs; all instances killed for 3
 * minutes → exactly one catch-up fire"), with the documented seconds field standing in for
 * minutes so the test takes seconds: a schedule every PERIOD seconds.
 *  - Three instances ticking: every slot of a window of 5 fires exactly once (one
 *    schedule_fires row, one job_logs row with trigger "schedule", no gap, no duplicate).
 *  - kill -9 of all three for 3+ periods, then a restart of all three at once: the slots missed
 *    fire once, as one catch-up (the newest of them), then the schedule goes on.
 *  - `jobsd schedules` shows the schedule, its next fire and its last fire with its job;
 *    a schedule that does not parse stops it and check-config with exit 2 naming the
 *    schedule, and `serve` with a body its kind refuses exits 2 naming the schedule. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "chaos.h"
#include "testdb.h"
#include "testgroup.h"
#include "testproc.h"
#include "testtime.h"

#define TENANT "5c5c5c5c-0000-4000-8000-00000000000d"
#define PERIOD 3
#define NINST  3
#define SCHEDULE                                                                                   \
    "SCHEDULES=# every three seconds\n"                                                            \
    "tick */3 * * * * * rebuild-daily-metrics {\"tenantId\":\"" TENANT "\",\"daysBack\":1}"

static struct testdb db;
static struct jobsd_proc inst[NINST];

static const char *const ENV[] = {SCHEDULE, "SCHEDULE_CATCHUP_SECONDS=60", "JOB_WORKERS=1", NULL};

static void start_all(void)
{
    for (int i = 0; i < NINST; i++)
        assert_true(jobsd_start(&inst[i], db.url, ENV));
}

static int setup(void **state)
{
    (void)state;
    testdb_create(&db, "chaos_scheduler");
    chaos_seed(db.conn, TENANT, 2, "2023-01-01", "2023-01-10");
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    for (int i = 0; i < NINST; i++)
        if (inst[i].pid > 0 && jobsd_running(&inst[i]))
            (void)jobsd_stop(&inst[i], 20000);
    testdb_drop(&db);
    return 0;
}

/* Every fire queued a job (trigger "schedule", the fire's request id) or attached to an
 * identical one still queued or running (deduplicated: after the kill -9, the killed run is
 * still "running" until its lease expires); no job comes from two fires or from none; the
 * slots after `after` follow each other PERIOD apart. */
static void assert_fires_consistent(long long after)
{
    assert_int_equal(tdb_int(db.conn, "SELECT count(*) FROM schedule_fires WHERE job_log_id IS "
                                      "NULL OR error IS NOT NULL"),
                     0);
    long long own = tdb_int(db.conn, "SELECT count(*) FROM schedule_fires WHERE NOT deduplicated");
    assert_int_equal(tdb_int(db.conn, "SELECT count(*) FROM job_logs WHERE trigger = 'schedule'"),
                     own);
    assert_int_equal(tdb_int(db.conn, "SELECT count(DISTINCT job_log_id) FROM schedule_fires "
                                      "WHERE NOT deduplicated"),
                     own);
    assert_int_equal(tdb_int(db.conn,
                             "SELECT count(*) FROM schedule_fires f JOIN job_logs j ON "
                             "j.id = f.job_log_id AND j.metadata->>'requestId' = 'sched-tick-' "
                             "|| extract(epoch FROM f.slot)::bigint WHERE NOT f.deduplicated"),
                     own);
    assert_int_equal(tdb_int(db.conn,
                             "SELECT count(*) FROM (SELECT slot - lag(slot) OVER (ORDER BY slot) "
                             "AS d FROM schedule_fires WHERE slot > to_timestamp(%lld)) x "
                             "WHERE d <> make_interval(secs => %d)",
                             after, PERIOD),
                     0);
}

static void test_every_slot_once(void **state)
{
    (void)state;
    start_all();
    long long t0 = (long long)time(NULL);
    long long first = (t0 / PERIOD + 2) * PERIOD; /* a slot every instance is up for */
    long long end = first + 5 * PERIOD;
    tdb_wait(db.conn, (end - t0 + 15) * 1000,
             "SELECT count(*) FROM schedule_fires WHERE slot >= to_timestamp(%lld)", end);
    long long n = tdb_int(db.conn,
                          "SELECT count(*) FROM schedule_fires WHERE schedule = 'tick' AND slot "
                          ">= to_timestamp(%lld) AND slot < to_timestamp(%lld)",
                          first, end);
    char *by = tdb_value(db.conn, "SELECT string_agg(c::text, ' ') FROM (SELECT count(*) AS c "
                                  "FROM schedule_fires GROUP BY instance) x");
    printf("# 5 slots from %lld: %lld fires; fires by instance: %s\n", first, n, by);
    free(by);
    assert_int_equal(n, 5);
    /* five jobs: each fire queued its own */
    assert_int_equal(tdb_int(db.conn,
                             "SELECT count(DISTINCT job_log_id) FROM schedule_fires WHERE slot >= "
                             "to_timestamp(%lld) AND slot < to_timestamp(%lld) AND NOT catch_up "
                             "AND NOT deduplicated",
                             first, end),
                     5);
    assert_fires_consistent(first - PERIOD);
}

static void test_catch_up_once(void **state)
{
    (void)state;
    for (int i = 0; i < NINST; i++)
        jobsd_kill9(&inst[i]);
    long long k = tdb_int(db.conn, "SELECT extract(epoch FROM max(slot))::bigint FROM "
                                   "schedule_fires");
    /* Down for more than three periods: three slots or more are missed. */
    t_sleep_ms((3 * PERIOD + 2) * 1000LL);
    long long t0 = (long long)time(NULL);
    start_all();
    /* the catch-up, then a regular fire after it */
    tdb_wait(db.conn, 20000,
             "SELECT count(*) FROM schedule_fires f WHERE NOT catch_up AND slot > (SELECT "
             "max(slot) FROM schedule_fires WHERE catch_up AND slot > to_timestamp(%lld))",
             k);
    long long missed_newest = (t0 / PERIOD) * PERIOD;
    char *first = tdb_value(db.conn,
                            "SELECT extract(epoch FROM slot)::bigint || ' ' || catch_up FROM "
                            "schedule_fires WHERE slot > to_timestamp(%lld) ORDER BY slot LIMIT 1",
                            k);
    printf("# last slot before the kill %lld, restart at %lld: first fire after it: %s\n", k, t0,
           first);
    long long first_slot = atoll(first);
    assert_non_null(strstr(first, " true"));
    free(first);
    assert_true(first_slot >= missed_newest);
    assert_true(first_slot - k >= 3 * PERIOD); /* the older missed slots did not fire */
    assert_int_equal(tdb_int(db.conn,
                             "SELECT count(*) FROM schedule_fires WHERE catch_up AND slot > "
                             "to_timestamp(%lld)",
                             k),
                     1);
    int logged = 0;
    for (int i = 0; i < NINST; i++)
        logged += chaos_log_count(&inst[i], "schedule fired (catch-up)", "schedule=tick");
    assert_int_equal(logged, 1);
    /* and the schedule goes on, every slot once */
    assert_true(tdb_int(db.conn,
                        "SELECT count(*) FROM schedule_fires WHERE slot > "
                        "to_timestamp(%lld)",
                        first_slot) >= 1);
    assert_fires_consistent(k);
}

static void test_cli(void **state)
{
    (void)state;
    for (int i = 0; i < NINST; i++)
        assert_int_equal(jobsd_stop(&inst[i], 20000), 0);
    char url[1100];
    snprintf(url, sizeof url, "DATABASE_URL=%s", db.url);
    const char *argv[] = {"schedules", NULL};
    const char *env[] = {url, SCHEDULE, NULL};
    char *out = NULL, *err = NULL;
    assert_int_equal(jobsd_run(argv, env, &out, &err), 0);
    char *last = tdb_value(db.conn, "SELECT job_log_id FROM schedule_fires ORDER BY slot DESC "
                                    "LIMIT 1");
    char want[200];
    snprintf(want, sizeof want, "job=%s\t", last);
    printf("# %s", out);
    assert_non_null(strstr(out, "tick\t*/3 * * * * *\trebuild-daily-metrics\tnext=20"));
    assert_non_null(strstr(out, "-03:00\tlast=20"));
    assert_non_null(strstr(out, want));
    free(last);
    free(out);
    free(err);
    const char *bad[] = {url,
                         "SCHEDULES=ok 0 6 * * * rebuild-daily-metrics {}; broken 0 6 * * "
                         "rebuild-daily-metrics {}",
                         NULL};
    assert_int_equal(jobsd_run(argv, bad, &out, &err), 2);
    assert_non_null(strstr(err, "SCHEDULES line 1: schedule broken: a cron expression"));
    free(out);
    free(err);
    const char *check[] = {"check-config", NULL};
    const char *bad_check[] = {url, "INTERNAL_JOBS_KEY=" TEST_KEY, bad[1], NULL};
    assert_int_equal(jobsd_run(check, bad_check, &out, &err), 2);
    assert_non_null(strstr(err, "SCHEDULES line 1: schedule broken: a cron expression"));
    free(out);
    free(err);
    /* serve: a body its kind refuses stops start-up (exit 2), naming the schedule */
    const char *serve[] = {"serve", NULL};
    const char *refused[] = {url, "INTERNAL_JOBS_KEY=" TEST_KEY, "PORT=0",
                             "SCHEDULES=nightly 0 6 * * * rebuild-daily-metrics "
                             "{\"tenantId\":\"not-a-uuid\"}",
                             NULL};
    assert_int_equal(jobsd_run(serve, refused, &out, &err), 2);
    const char *why = "schedule nightly: its rebuild-daily-metrics body is refused";
    if (!strstr(err, why) && !strstr(out, why))
        fail_msg("serve did not name the schedule: %s%s", out, err);
    free(out);
    free(err);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_slot_once),
        cmocka_unit_test(test_catch_up_once),
        cmocka_unit_test(test_cli),
    };
    return tgroup_run("chaos_scheduler", tests, setup, teardown);
}
