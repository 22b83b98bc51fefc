/* Chaos: Mercado Livre's limit is per application, across instances (issue 20 item 4).
 * Three jobsd instances with ML_MAX_RPS=30 on one database sync many sellers against the
 * fake (which counts the highest number of requests that started in any sliding second):
 *  - three instances: never more than 30 in a second, and while jobs are queued (all three
 *    busy) at least 80 % of 30;
 *  - kill -9 of one: the two others' shares grow back to 15 within a few heartbeats, the
 *    dead row is removed, and a new load still gets >= 80 % of 30 without passing 30;
 *  - a third instance joining during that load: the others shrink before it takes its share
 *    (30 is never passed) and it runs jobs;
 *  - an instance cut off from its row (the test holds it FOR UPDATE) during a load: it stops
 *    calling Mercado Livre before the two others count it out and grow to 15, so 30 is never
 *    passed; released, it comes back as a newcomer;
 *  - `jobsd sync-mercadolivre` on the command line during a load: it registers as a fourth
 *    instance, the others shrink to 7 before its first request (30 is never passed), and it
 *    leaves when it ends;
 *  - a stopped instance deletes its row: the others grow at their next heartbeat.
 * Heartbeat 1 s, dead after 4 s. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "chaos.h"
#include "testdb.h"
#include "testfake.h"
#include "testgroup.h"
#include "testhttp.h"
#include "testproc.h"
#include "testsync.h"
#include "testtime.h"

#define NINST   3
#define SELLERS 24
#define ITEMS   16
#define RPS     30

static struct testdb db;
static struct fake_ml fake;
static const char *world;
static struct tsync_seller sellers[SELLERS];
static char tenants[SELLERS][40], acc[SELLERS][32], refresh[SELLERS][32];
static struct jobsd_proc inst[NINST];

static bool start_instance(int i)
{
    const char *env[] = {"JOB_WORKERS=2", "INSTANCE_HEARTBEAT_SECONDS=1", "INSTANCE_DEAD_SECONDS=4",
                         "PER_IP_CONNECTIONS=0", NULL};
    return tsync_start_jobsd(&inst[i], db.url, &fake, "30", "12", true, env);
}

static int setup(void **state)
{
    (void)state;
    testdb_create(&db, "chaos_rate");
    for (int i = 0; i < SELLERS; i++) {
        snprintf(tenants[i], sizeof tenants[i], "7a7a7a7a-0000-4000-8000-%012d", i + 1);
        snprintf(acc[i], sizeof acc[i], "APP_USR-rate-%d", i);
        snprintf(refresh[i], sizeof refresh[i], "TG-rate-%d", i);
        sellers[i] =
            (struct tsync_seller){tenants[i], 7700000001LL + i, acc[i], refresh[i], 21600, NULL};
        sellers[i].extra = json_pack("{s:{s:i, s:s, s:I}, s:{s:i, s:i}, s:{s:i, s:i}}",
                                     "generate_items", "count", ITEMS, "prefix", "MLB", "start",
                                     (json_int_t)(8100000001LL + i * 1000LL), "generate_orders",
                                     "count", 6, "days", 2, "generate_visits", "days", 3, "max", 5);
    }
    world = tsync_world(sellers, SELLERS, "rate", NULL);
    for (int i = 0; i < SELLERS; i++) {
        json_decref(sellers[i].extra);
        sellers[i].extra = NULL;
    }
    if (!fake_ml_start(&fake, world, NULL))
        return -1;
    for (int i = 0; i < SELLERS; i++)
        tsync_connect(db.conn, &sellers[i], acc[i], refresh[i], "now() + interval '6 hours'");
    for (int i = 0; i < NINST; i++)
        if (!start_instance(i))
            return -1;
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    for (int i = 0; i < NINST; i++)
        if (jobsd_running(&inst[i]))
            jobsd_stop(&inst[i], 30000);
    fake_ml_stop(&fake);
    unlink(world);
    testdb_drop(&db);
    return 0;
}

/* ---------------------------------------------------------------- helpers */

struct shares {
    long long live, applied, rps;
};

/* `live` rows, each applying that count with this rps share. */
static bool shares_are(void *ctx)
{
    struct shares *s = ctx;
    return tdb_int(db.conn,
                   "SELECT count(*) FROM jobsd_instances WHERE applied_count = %lld AND "
                   "rps_share = %lld",
                   s->applied, s->rps) == s->live &&
           tdb_int(db.conn, "SELECT count(*) FROM jobsd_instances") == s->live;
}

static bool all_final(void *ctx)
{
    (void)ctx;
    return tdb_int(db.conn,
                   "SELECT count(*) FROM job_logs WHERE status IN ('queued', 'running')") == 0;
}

static bool running_at_least(void *ctx)
{
    long long want = *(long long *)ctx;
    return tdb_int(db.conn, "SELECT count(*) FROM job_logs WHERE status = 'running'") >= want;
}

/* Queues a sync of the first n sellers on instance i (202 at once). */
static void queue_load_of(int i, int n)
{
    tdb_exec(db.conn, "DELETE FROM job_logs");
    for (int s = 0; s < n; s++) {
        char body[160];
        snprintf(body, sizeof body, "{\"tenantId\": \"%s\", \"daysBack\": 2}", tenants[s]);
        struct th_response r;
        assert_true(
            th_post_job(inst[i].port, TSYNC_PATH, TEST_KEY, body, "Prefer: respond-async\r\n", &r));
        assert_int_equal(r.status, 202);
        th_free(&r);
    }
}

/* Queues a sync of every seller on instance i. */
static void queue_load(int i)
{
    queue_load_of(i, SELLERS);
}

/* Requests per second the fake saw between the first request and `until_ms` (epoch ms; 0 =
 * the last request), from its request log. */
static double fake_rate(long long until_ms, long long *n_out)
{
    json_t *st = fake_ml_get(&fake, "/__fake/stats");
    assert_non_null(st);
    json_t *log = json_object_get(st, "log");
    long long first = -1, last = -1, n = 0;
    size_t i;
    json_t *e;
    json_array_foreach(log, i, e)
    {
        long long t = (long long)json_integer_value(json_object_get(e, "t_ms"));
        if (first < 0 || t < first)
            first = t;
    }
    json_array_foreach(log, i, e)
    {
        long long t = (long long)json_integer_value(json_object_get(e, "t_ms"));
        if (until_ms > 0 && t > until_ms)
            continue;
        n++;
        if (t > last)
            last = t;
    }
    json_decref(st);
    *n_out = n;
    return last > first ? (double)(n - 1) * 1000.0 / (double)(last - first) : 0.0;
}

/* After a load: every job succeeded and the fake never saw more than RPS requests start in
 * one second (`phase` names the case in the messages). */
static void check_never_above(const char *phase)
{
    long long per_second = fake_ml_stat(&fake, "max_per_second");
    print_message("%s: max in one second %lld (limit %d)\n", phase, per_second, RPS);
    if (per_second > RPS)
        fail_msg("%s: the fake saw %lld requests in one second (ML_MAX_RPS=%d for the fleet)",
                 phase, per_second, RPS);
    assert_int_equal(tdb_int(db.conn, "SELECT count(*) FROM job_logs WHERE status <> 'success'"),
                     0);
}

/* The load's witness: check_never_above, and the rate while jobs were still queued (every
 * instance busy: from the first request to the last claim) at least 80 % of RPS. */
static void check_load(const char *phase)
{
    long long last_claim = tdb_int(
        db.conn, "SELECT (extract(epoch FROM max(started_at)) * 1000)::bigint FROM job_logs");
    long long n_busy = 0, n_all = 0;
    double busy = fake_rate(last_claim, &n_busy);
    double all = fake_rate(0, &n_all);
    print_message("%s: %.1f req/s while queued (%lld requests), %.1f req/s overall (%lld "
                  "requests)\n",
                  phase, busy, n_busy, all, n_all);
    check_never_above(phase);
    /* ML_CONCURRENCY=12 for the fleet: 4 each. */
    assert_true(fake_ml_stat(&fake, "max_in_flight") <= 12);
    if (busy < 0.8 * RPS)
        fail_msg("%s: %.1f requests per second while every instance was busy (< 80 %% of %d)",
                 phase, busy, RPS);
}

/* ---------------------------------------------------------------- tests */

static void test_three_instances_share_the_rate(void **state)
{
    (void)state;
    struct shares three = {NINST, NINST, RPS / NINST};
    if (!t_wait_until(shares_are, &three, 15000))
        print_message("the instances did not register three shares of %d\n", RPS / NINST);
    json_decref(fake_ml_post(&fake, "/__fake/reset-stats", "{}"));
    long long t0 = t_now_ms();
    queue_load(0);
    assert_true(t_wait_until(all_final, NULL, 180000));
    print_message("%d syncs on 3 instances: %lld ms\n", SELLERS, t_now_ms() - t0);
    check_load("3 instances");
    assert_true(shares_are(&three));
    /* Every instance ran some of them. */
    assert_int_equal(tdb_int(db.conn, "SELECT count(DISTINCT split_part(worker_id, ':', 2)) "
                                      "FROM job_logs"),
                     NINST);
}

static void test_kill_and_join_rebalance(void **state)
{
    (void)state;
    struct shares three = {NINST, NINST, RPS / NINST};
    assert_true(t_wait_until(shares_are, &three, 15000));
    /* kill -9: the dead row expires (4 s) and the others grow back at their next heartbeat. */
    long long t0 = t_now_ms();
    jobsd_kill9(&inst[2]);
    struct shares two = {2, 2, RPS / 2};
    assert_true(t_wait_until(shares_are, &two, 10000));
    long long grew = t_now_ms() - t0;
    print_message("shares grew back to %d within %lld ms of the kill -9\n", RPS / 2, grew);
    assert_true(grew < 8000); /* dead after 4 s, then at most a heartbeat or two */

    /* Two instances, 15 each: the load still gets >= 80 % of 30. A third instance joins
     * while it runs: the others shrink before it starts, and it runs jobs. */
    json_decref(fake_ml_post(&fake, "/__fake/reset-stats", "{}"));
    queue_load(0);
    long long four = 4;
    assert_true(t_wait_until(running_at_least, &four, 10000));
    t_sleep_ms(3000);
    assert_true(start_instance(2));
    assert_true(t_wait_until(shares_are, &three, 10000));
    assert_true(t_wait_until(all_final, NULL, 180000));
    check_never_above("2 instances, then 3");
    assert_true(tdb_int(db.conn,
                        "SELECT count(*) FROM job_logs WHERE split_part(worker_id, ':', 2) = '%d'",
                        (int)inst[2].pid) > 0);
    /* The newcomer said it waited, then took its share. */
    assert_true(jobsd_log_contains(&inst[2], "waiting for the others to make room"));
    assert_true(jobsd_log_contains(&inst[2], "rpsShare=10"));
}

struct grown {
    long long n, applied, rps;
};

/* n rows apply `applied` with this share (other rows may exist). */
static bool rows_apply(void *ctx)
{
    struct grown *g = ctx;
    return tdb_int(db.conn,
                   "SELECT count(*) FROM jobsd_instances WHERE applied_count = %lld AND "
                   "rps_share = %lld",
                   g->applied, g->rps) == g->n;
}

static void test_cut_off_instance_stops_before_the_others_grow(void **state)
{
    (void)state;
    struct shares three = {NINST, NINST, RPS / NINST};
    assert_true(t_wait_until(shares_are, &three, 15000));
    json_decref(fake_ml_post(&fake, "/__fake/reset-stats", "{}"));
    queue_load(0);
    long long six = 6;
    assert_true(t_wait_until(running_at_least, &six, 10000));
    /* Instance 2 cannot renew its row any more (its heartbeats time out on the row lock);
     * the others can, and count it out after 4 s. */
    PGconn *locker = PQconnectdb(db.url);
    assert_int_equal(PQstatus(locker), CONNECTION_OK);
    tdb_exec(locker, "BEGIN");
    char sql[160];
    snprintf(sql, sizeof sql,
             "SELECT 1 FROM jobsd_instances WHERE split_part(id, ':', 2) = '%d' FOR UPDATE",
             (int)inst[2].pid);
    tdb_exec(locker, sql);
    struct grown two = {2, 2, RPS / 2};
    assert_true(t_wait_until(rows_apply, &two, 10000));
    t_sleep_ms(3000); /* the two others at 15 each, instance 2 still running its jobs */
    long long running = tdb_int(db.conn, "SELECT count(*) FROM job_logs WHERE status = 'running'");
    tdb_exec(locker, "COMMIT");
    PQfinish(locker);
    print_message("instance cut off: the others grew to %d; %lld jobs still running\n", RPS / 2,
                  running);
    assert_true(running > 0);
    assert_true(t_wait_until(shares_are, &three, 10000));
    assert_true(t_wait_until(all_final, NULL, 180000));
    check_never_above("an instance cut off and back");
    assert_true(jobsd_log_contains(&inst[2], "fleet heartbeat lapsed"));
}

/* `jobsd sync-mercadolivre` on the command line while the three instances are busy: it
 * registers as a fourth instance, the others shrink before its first request, and it leaves
 * when it ends (30 is never passed). */
struct cli {
    pthread_t th;
    int rc;
    char *out, *err;
};

static void *run_cli(void *arg)
{
    struct cli *c = arg;
    char dburl[600], base[128];
    snprintf(dburl, sizeof dburl, "DATABASE_URL=%s", db.url);
    snprintf(base, sizeof base, "ML_API_BASE_URL=%s", fake.url);
    const char *env[] = {dburl,
                         base,
                         "ML_MAX_RPS=30",
                         "ML_CONCURRENCY=12",
                         "ML_CLIENT_ID=" TSYNC_CLIENT_ID,
                         "ML_CLIENT_SECRET=" TSYNC_CLIENT_SECRET,
                         "INSTANCE_HEARTBEAT_SECONDS=1",
                         "INSTANCE_DEAD_SECONDS=4",
                         NULL};
    const char *argv[] = {"sync-mercadolivre", "--tenant", tenants[SELLERS - 1],
                          "--days-back",       "2",        NULL};
    c->rc = jobsd_run(argv, env, &c->out, &c->err);
    return NULL;
}

static bool instances_are(void *ctx)
{
    return tdb_int(db.conn, "SELECT count(*) FROM jobsd_instances") == *(long long *)ctx;
}

static void test_cli_takes_its_share(void **state)
{
    (void)state;
    struct shares three = {NINST, NINST, RPS / NINST};
    assert_true(t_wait_until(shares_are, &three, 15000));
    json_decref(fake_ml_post(&fake, "/__fake/reset-stats", "{}"));
    queue_load_of(0, SELLERS - 1);
    long long busy = 2 * NINST;
    assert_true(t_wait_until(running_at_least, &busy, 10000));
    struct cli c = {0};
    assert_int_equal(pthread_create(&c.th, NULL, run_cli, &c), 0);
    long long four = NINST + 1;
    bool registered = t_wait_until(instances_are, &four, 10000);
    struct shares quarter = {NINST + 1, NINST + 1, RPS / (NINST + 1)};
    bool shrank = registered && t_wait_until(shares_are, &quarter, 10000);
    assert_int_equal(pthread_join(c.th, NULL), 0);
    if (c.rc != 0)
        fail_msg("the CLI sync exited %d: %s", c.rc, c.err ? c.err : "");
    assert_true(t_wait_until(all_final, NULL, 180000));
    if (!registered)
        fail_msg("the CLI sync never registered in jobsd_instances");
    if (!shrank)
        fail_msg("the instances never applied a share of four");
    check_never_above("3 instances and a CLI sync");
    assert_int_equal(tdb_int(db.conn, "SELECT count(*) FROM job_logs WHERE trigger = 'cli'"), 1);
    /* It left: the three grow back. */
    assert_true(t_wait_until(shares_are, &three, 10000));
    free(c.out);
    free(c.err);
}

static void test_graceful_stop_gives_back_the_share(void **state)
{
    (void)state;
    struct shares three = {NINST, NINST, RPS / NINST};
    assert_true(t_wait_until(shares_are, &three, 15000));
    assert_int_equal(jobsd_stop(&inst[1], 30000), 0);
    /* Its row is deleted at once: the others grow at their next heartbeat, not 4 s later. */
    assert_int_equal(tdb_int(db.conn, "SELECT count(*) FROM jobsd_instances"), 2);
    struct shares two = {2, 2, RPS / 2};
    assert_true(t_wait_until(shares_are, &two, 3000));
    assert_true(start_instance(1));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_three_instances_share_the_rate),
        cmocka_unit_test(test_kill_and_join_rebalance),
        cmocka_unit_test(test_cut_off_instance_stops_before_the_others_grow),
        cmocka_unit_test(test_cli_takes_its_share),
        cmocka_unit_test(test_graceful_stop_gives_back_the_share),
    };
    return tgroup_run("chaos_rate", tests, setup, teardown);
}
