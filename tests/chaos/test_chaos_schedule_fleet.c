/* Chaos: the built-in scheduler and the fleet trigger together (issue 20: "3 instances, a
 * schedule firing every minute for 5 minutes → exactly 5 parent jobs"). Three instances tick
 * a schedule whose body is {"allTenants": true} (the one compose and systemd ship), with the
 * documented seconds field standing in for minutes: every slot of a window of 5 fires exactly
 * once, each fire is its own parent job (tenant_id NULL, trigger "schedule"), and each parent
 * ends success with exactly one child per tenant, run once. */
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
#include "testproc.h"
#include "testtime.h"

#define PERIOD   5
#define NINST    3
#define NTENANTS 3
#define SCHEDULE                                                                                   \
    "SCHEDULES=fleet */5 * * * * * rebuild-daily-metrics {\"allTenants\":true,\"daysBack\":1}"

static const char *const TENANTS[NTENANTS] = {
    "5d5d5d5d-0000-4000-8000-000000000001",
    "5d5d5d5d-0000-4000-8000-000000000002",
    "5d5d5d5d-0000-4000-8000-000000000003",
};

static struct testdb db;
static struct jobsd_proc inst[NINST];

static int setup(void **state)
{
    (void)state;
    testdb_create(&db, "chaos_schedule_fleet");
    for (int i = 0; i < NTENANTS; i++)
        chaos_seed(db.conn, TENANTS[i], 2, "2023-01-01", "2023-01-10");
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

static void test_five_slots_five_parents(void **state)
{
    (void)state;
    const char *env[] = {SCHEDULE, "SCHEDULE_CATCHUP_SECONDS=0", "JOB_WORKERS=2", NULL};
    for (int i = 0; i < NINST; i++)
        assert_true(jobsd_start(&inst[i], db.url, env));
    long long t0 = (long long)time(NULL);
    long long first = (t0 / PERIOD + 2) * PERIOD; /* a slot every instance is up for */
    long long end = first + 5 * PERIOD;
    char range[160];
    snprintf(range, sizeof range, "f.slot >= to_timestamp(%lld) AND f.slot < to_timestamp(%lld)",
             first, end);
    /* The five slots fired and their parents ended. */
    tdb_wait(db.conn, (end - t0 + 30) * 1000,
             "SELECT (count(*) = 5)::int FROM schedule_fires f JOIN job_logs j ON "
             "j.id = f.job_log_id WHERE %s AND j.status IN ('success', 'error')",
             range);
    assert_int_equal(tdb_int(db.conn, "SELECT count(*) FROM schedule_fires f WHERE %s", range), 5);
    /* Five parents: one per fire, none deduplicated into another. */
    assert_int_equal(tdb_int(db.conn,
                             "SELECT count(DISTINCT j.id) FROM schedule_fires f JOIN job_logs j "
                             "ON j.id = f.job_log_id WHERE %s AND NOT f.deduplicated AND "
                             "j.tenant_id IS NULL AND j.parent_id IS NULL AND j.trigger = "
                             "'schedule' AND (j.metadata->'request'->>'allTenants')::boolean "
                             "AND j.status = 'success'",
                             range),
                     5);
    /* Each parent: one child per tenant, each run once, each a success. */
    assert_int_equal(tdb_int(db.conn,
                             "SELECT count(*) FROM schedule_fires f JOIN job_logs c ON "
                             "c.parent_id = f.job_log_id WHERE %s AND c.status = 'success' AND "
                             "c.attempts = 1",
                             range),
                     5 * NTENANTS);
    assert_int_equal(tdb_int(db.conn,
                             "SELECT count(*) FROM (SELECT f.job_log_id, c.tenant_id FROM "
                             "schedule_fires f JOIN job_logs c ON c.parent_id = f.job_log_id "
                             "WHERE %s GROUP BY 1, 2 HAVING count(*) > 1) x",
                             range),
                     0);
    char *by = tdb_value(db.conn, "SELECT string_agg(c::text, ' ') FROM (SELECT count(*) AS c "
                                  "FROM schedule_fires GROUP BY instance) x");
    printf("# 5 slots from %lld: 5 parents, %d children; fires by instance: %s\n", first,
           5 * NTENANTS, by);
    free(by);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_five_slots_five_parents),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
