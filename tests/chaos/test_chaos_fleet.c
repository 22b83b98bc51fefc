/* Chaos: kill -9 of the instance holding a fleet parent in the middle of its fan-out (issue
 * 20 item 1). Three instances, 150 active tenants, an `allTenants` rebuild; the fan-out is
 * slowed by a trigger on job_fleet_children so that the instance holding the parent is
 * killed after its first batch of children committed and before the second did. Then:
 *  - the parent's lease expires, another instance's reaper requeues it and another claims
 *    it: it enqueues only the tenants not mapped yet, and ends (success, 150 tenants);
 *  - every tenant has exactly one child job; each child succeeded, and any extra attempt of
 *    a child is one the reaper recorded (it was running on the killed instance: its
 *    transaction never committed), so every child's work committed once;
 *  - FLEET_MAX_RUNNING=2: never more than 2 children running at once over the instances
 *    (sampled all along), and it is reached. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <pthread.h>
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

#define NTENANTS 150
#define NINST    3
#define MAXRUN   2
#define BODY     "{\"allTenants\": true, \"from\": \"2024-05-01\", \"to\": \"2024-05-01\"}"

static struct testdb db;
static struct jobsd_proc inst[NINST];

static int setup(void **state)
{
    (void)state;
    testdb_create(&db, "chaos_fleet");
    const char *env[] = {"JOB_WORKERS=2", "FLEET_MAX_RUNNING=2", "PER_IP_CONNECTIONS=0", NULL};
    for (int i = 0; i < NINST; i++)
        if (!jobsd_start(&inst[i], db.url, env))
            return -1;
    tdb_execf(db.conn,
              "INSERT INTO tenants (id, name) SELECT ('5e000000-0000-4000-8000-' || "
              "lpad(g::text, 12, '0'))::uuid, 't' || g FROM generate_series(1, %d) g",
              NTENANTS);
    tdb_exec(db.conn, "INSERT INTO listings (tenant_id, external_id, status, title) "
                      "SELECT id, 'MLB1', 'active', 'l' FROM tenants");
    /* A slow fan-out (10 ms per mapped tenant: a batch of 100 takes a second) and slow
     * children (20 ms each), so the kill lands mid-fan-out and the limit is reached. */
    tdb_exec(db.conn, "CREATE FUNCTION fleet_slow() RETURNS trigger LANGUAGE plpgsql AS $$ "
                      "BEGIN PERFORM pg_sleep(0.01); RETURN NEW; END $$");
    tdb_exec(db.conn, "CREATE TRIGGER fleet_slow BEFORE INSERT ON job_fleet_children "
                      "FOR EACH ROW EXECUTE FUNCTION fleet_slow()");
    tdb_exec(db.conn, "CREATE FUNCTION metrics_slow() RETURNS trigger LANGUAGE plpgsql AS $$ "
                      "BEGIN PERFORM pg_sleep(0.02); RETURN NEW; END $$");
    tdb_exec(db.conn, "CREATE TRIGGER metrics_slow BEFORE INSERT OR UPDATE ON "
                      "listing_metrics_daily FOR EACH ROW EXECUTE FUNCTION metrics_slow()");
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    int bad = 0;
    for (int i = 0; i < NINST; i++)
        if (inst[i].pid > 0)
            bad += jobsd_stop(&inst[i], 20000) != 0;
    testdb_drop(&db);
    return bad ? -1 : 0;
}

static bool first_batch_in(void *ctx)
{
    (void)ctx;
    return tdb_int(db.conn, "SELECT count(*) FROM job_fleet_children") >= 100;
}

static bool parent_final(void *ctx)
{
    return chaos_job_final(db.conn, ctx);
}

static void test_kill9_mid_fan_out(void **state)
{
    (void)state;
    struct tdb_sampler s;
    tdb_sampler_start(&s, db.url, 3);
    struct th_response r;
    assert_true(
        th_post_job(inst[0].port, CHAOS_REBUILD, TEST_KEY, BODY, "Prefer: respond-async\r\n", &r));
    if (r.status != 202)
        fail_msg("trigger: %d %s", r.status, r.body);
    char id[40];
    snprintf(id, sizeof id, "%s", json_string_value(json_object_get(r.json, "jobLogId")));
    th_free(&r);

    assert_true(t_wait_until(first_batch_in, NULL, 30000));
    char *w = tdb_value(db.conn, "SELECT worker_id FROM job_logs WHERE id = '%s'", id);
    assert_non_null(w);
    int pid = chaos_worker_pid(w), k = -1;
    for (int i = 0; i < NINST; i++)
        if ((int)inst[i].pid == pid)
            k = i;
    assert_true(k >= 0);
    free(w);
    long long mapped = tdb_int(db.conn, "SELECT count(*) FROM job_fleet_children");
    jobsd_kill9(&inst[k]);
    print_message("killed instance %d holding the parent with %lld of %d tenants mapped\n", k,
                  mapped, NTENANTS);
    assert_true(mapped < NTENANTS);

    assert_true(t_wait_until(parent_final, id, 90000));
    tdb_sampler_stop(&s);

    char *row = tdb_value(db.conn,
                          "SELECT status || ' ' || attempts || ' ' || "
                          "(metadata->'result'->>'tenants') || ' ' || "
                          "(metadata->'result'->>'succeeded') FROM job_logs WHERE id = '%s'",
                          id);
    print_message("parent: %s; at most %lld children running at once\n", row, s.max);
    char st[16];
    int attempts = 0, tenants = 0, ok = 0;
    assert_int_equal(sscanf(row, "%15s %d %d %d", st, &attempts, &tenants, &ok), 4);
    free(row);
    assert_string_equal(st, "success");
    assert_true(attempts >= 2); /* taken over after the kill */
    assert_int_equal(tenants, NTENANTS);
    assert_int_equal(ok, NTENANTS);
    /* One child per tenant, each ended in success; every extra attempt is an interruption. */
    assert_int_equal(tdb_int(db.conn, "SELECT count(*) FROM job_fleet_children"), NTENANTS);
    assert_int_equal(tdb_int(db.conn,
                             "SELECT count(*) FROM job_logs WHERE parent_id = '%s' AND status = "
                             "'success'",
                             id),
                     NTENANTS);
    assert_int_equal(tdb_int(db.conn, "SELECT count(*) FROM job_logs WHERE tenant_id IS NOT NULL"),
                     NTENANTS);
    assert_int_equal(tdb_int(db.conn,
                             "SELECT count(*) FROM job_logs WHERE parent_id IS NOT NULL AND "
                             "attempts <> 1 + jsonb_array_length(coalesce("
                             "metadata->'interruptions', '[]'::jsonb))"),
                     0);
    assert_int_equal(tdb_int(db.conn, "SELECT count(*) FROM listing_metrics_daily"), NTENANTS);
    assert_true(s.max <= MAXRUN);
    assert_int_equal(s.max, MAXRUN);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_kill9_mid_fan_out),
    };
    return tgroup_run("chaos_fleet", tests, setup, teardown);
}
