/* Chaos: kill -9 of jobsd at random moments during rebuilds (SECURITY.md target 4), ROUNDS
 * times in a row on one database, the killed process replaced by a new one each time; then
 * SYNC_ROUNDS times during Mercado Livre syncs (against tests/fake_ml, slowed down).
 *
 * The rebuild's writes are made slow (a trigger sleeps 1 ms per row written, about 1.3 s per
 * rebuild) so that the kill lands while rows are being written, and every window starts out
 * full of "stale" rows, so a partial rebuild would show. Each round queues two rebuilds of
 * the tenant (one runs, one waits for the tenant's lock), kills jobsd after a random delay,
 * and starts a new one. Asserted, every time the window is looked at (right after the kill,
 * on every poll during the recovery, and at the end):
 *  - each window is either exactly as before (untouched) or exactly the complete result
 *    (computed independently from the inputs), never anything else;
 *  - every accepted job ends `success` (the window complete), or `error` with code
 *    `interrupted` after JOB_MAX_ATTEMPTS claims (the window untouched); none stays `queued`
 *    or `running`.
 * During syncs: every order stored has its items (an order and its items are written
 * together), every killed sync is run again to the end (success), and a last clean sync
 * changes nothing (what the recovered runs wrote is complete).
 * JOBSD_CHAOS_SEED fixes the random delays (the seed used is printed). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "chaos.h"
#include "testdb.h"
#include "testfake.h"
#include "testfx.h"
#include "testhttp.h"
#include "testproc.h"
#include "testtime.h"

#define TENANT        "9c9c9c9c-0000-4000-8000-000000000009"
#define SYNC_TENANT   "9c9c9c9c-0000-4000-8000-0000000000f1"
#define SELLER        5500000091LL
#define CLIENT_ID     "4400112233449191"
#define CLIENT_SECRET "kill9-client-secret"
#define SYNC_ROUNDS   3
#define ROUNDS        6
#define LISTINGS      20
#define WIN_DAYS      15
#define FIRST_DAY     "2024-01-01"

static struct testdb db;
static unsigned seed;

struct window {
    char from[11], to[11];
    char *pre, *complete;
    char id[40];
};

static struct window windows[ROUNDS * 2];

static int setup(void **state)
{
    (void)state;
    testdb_create(&db, "chaos_kill9");
    char last[11];
    chaos_day(db.conn, FIRST_DAY, ROUNDS * 2 * WIN_DAYS - 1, last);
    chaos_seed(db.conn, TENANT, LISTINGS, FIRST_DAY, last);
    chaos_prefill_stale(db.conn, TENANT, FIRST_DAY, last);
    for (int w = 0; w < ROUNDS * 2; w++) {
        chaos_day(db.conn, FIRST_DAY, w * WIN_DAYS, windows[w].from);
        chaos_day(db.conn, FIRST_DAY, w * WIN_DAYS + WIN_DAYS - 1, windows[w].to);
        windows[w].pre = chaos_window_digest(db.conn, TENANT, windows[w].from, windows[w].to);
        windows[w].complete =
            chaos_expected_digest(db.conn, TENANT, windows[w].from, windows[w].to);
        assert_string_not_equal(windows[w].pre, windows[w].complete);
    }
    chaos_slow_writes(db.conn, "0.001");
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    for (int w = 0; w < ROUNDS * 2; w++) {
        free(windows[w].pre);
        free(windows[w].complete);
    }
    testdb_drop(&db);
    return 0;
}

/* The window is untouched or complete; returns which (0 untouched, 1 complete). */
static int check_window(const struct window *w, const char *when)
{
    char *now = chaos_window_digest(db.conn, TENANT, w->from, w->to);
    int which = strcmp(now, w->pre) == 0 ? 0 : strcmp(now, w->complete) == 0 ? 1 : -1;
    if (which < 0)
        fail_msg("window %s..%s %s is partial: %s (untouched %s, complete %s)", w->from, w->to,
                 when, now, w->pre, w->complete);
    free(now);
    return which;
}

struct recovery {
    struct window *w[2];
};

/* Polled while jobs recover: every look at the windows must find them whole. */
static bool recovered(void *ctx)
{
    struct recovery *r = ctx;
    bool done = true;
    for (int i = 0; i < 2; i++) {
        check_window(r->w[i], "during the recovery");
        done = done && chaos_job_final(db.conn, r->w[i]->id);
    }
    return done;
}

static bool job_running(void *ctx)
{
    return chaos_job_is(db.conn, ctx, "running");
}

static void test_kill9_during_rebuilds(void **state)
{
    (void)state;
    const char *s = getenv("JOBSD_CHAOS_SEED");
    seed = s && *s ? (unsigned)strtoul(s, NULL, 10) : (unsigned)time(NULL) ^ (unsigned)getpid();
    print_message("JOBSD_CHAOS_SEED=%u\n", seed);
    srand(seed);
    struct jobsd_proc p;
    assert_true(jobsd_start(&p, db.url, NULL));
    int mid_write = 0, running_at_kill = 0;
    for (int round = 0; round < ROUNDS; round++) {
        struct window *a = &windows[round * 2], *b = &windows[round * 2 + 1];
        struct window *both[2] = {a, b};
        for (int i = 0; i < 2; i++) {
            struct th_response r;
            assert_true(chaos_post_rebuild(p.port, TENANT, both[i]->from, both[i]->to,
                                           "Prefer: respond-async\r\n", &r));
            assert_int_equal(r.status, 202);
            snprintf(both[i]->id, sizeof both[i]->id, "%s",
                     json_string_value(json_object_get(r.json, "jobLogId")));
            th_free(&r);
        }
        assert_true(t_wait_until(job_running, a->id, 10000));
        /* A random moment of the first rebuild (about 1.3 s of writes). */
        long long delay = rand() % 1500;
        t_sleep_ms(delay);
        mid_write += tdb_int(db.conn, "SELECT count(*) FROM pg_stat_activity WHERE datname = "
                                      "current_database() AND application_name = 'jobsd' AND "
                                      "wait_event = 'PgSleep'") > 0;
        jobsd_kill9(&p);
        for (int i = 0; i < 2; i++) {
            running_at_kill += chaos_job_is(db.conn, both[i]->id, "running");
            check_window(both[i], "right after kill -9");
        }
        print_message("round %d: killed %lld ms into the rebuild\n", round + 1, delay);
        assert_true(jobsd_start(&p, db.url, NULL));
        struct recovery rec = {{a, b}};
        if (!t_wait_until(recovered, &rec, 60000))
            fail_msg("round %d: jobs %s / %s not finished 60 s after the restart", round + 1, a->id,
                     b->id);
        for (int i = 0; i < 2; i++) {
            struct window *w = both[i];
            int which = check_window(w, "at the end");
            char *st = chaos_job_status(db.conn, w->id);
            if (strcmp(st, "success") == 0) {
                if (which != 1)
                    fail_msg("job %s succeeded but its window is untouched", w->id);
            } else {
                assert_string_equal(st, "error");
                assert_int_equal(which, 0);
                assert_int_equal(
                    tdb_int(db.conn,
                            "SELECT count(*) FROM job_logs WHERE id = '%s' AND attempts >= 3 "
                            "AND metadata->'error'->>'code' = 'interrupted'",
                            w->id),
                    1);
            }
            free(st);
        }
    }
    assert_int_equal(jobsd_stop(&p, 20000), 0);
    print_message("%d kills during the statement's writes, %d jobs running at a kill\n", mid_write,
                  running_at_kill);
    /* Most kills hit a rebuild in the middle of its writes (the delays are random). */
    assert_true(running_at_kill >= ROUNDS);
    assert_true(mid_write >= ROUNDS / 2);
    /* Every accepted job ended; none is left queued or running. (The syncs' jobs are the
     * other test's.) */
    assert_int_equal(
        tdb_int(db.conn, "SELECT count(*) FROM job_logs WHERE job_type = 'metrics_aggregation'"),
        ROUNDS * 2);
    assert_int_equal(tdb_int(db.conn, "SELECT count(*) FROM job_logs WHERE status NOT IN "
                                      "('success', 'error')"),
                     0);
}

/* ---------------------------------------------------------------- during syncs */

static struct fake_ml fake;
static char world_path[512];

static int sync_setup(void **state)
{
    (void)state;
    snprintf(world_path, sizeof world_path, "%s/jobsd-kill9-world-%d.json",
             getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp", (int)getpid());
    json_t *world = json_pack(
        "{s:i, s:[{s:s, s:s}], s:[{s:I, s:s, s:s, s:s, s:i, s:s, s:{s:i, s:s, s:I}, "
        "s:{s:i, s:i, s:i, s:{s:i}}, s:{s:i, s:i}}]}",
        "seed", 9, "clients", "client_id", CLIENT_ID, "client_secret", CLIENT_SECRET, "sellers",
        "user_id", (json_int_t)SELLER, "nickname", "KILL9", "client_id", CLIENT_ID, "access_token",
        "APP_USR-kill9-access", "access_token_expires_in", 21600, "refresh_token",
        "TG-kill9-refresh", "generate_items", "count", 40, "prefix", "MLB", "start",
        (json_int_t)9100000001LL, "generate_orders", "count", 150, "days", 5, "items_per_order_max",
        3, "status_mix", "paid", 100, "generate_visits", "days", 7, "max", 20);
    if (!world || json_dump_file(world, world_path, 0) != 0)
        return -1;
    json_decref(world);
    /* Every Mercado Livre call takes 150 ms more: a sync lasts about 2.5 s. */
    const char *args[] = {"--latency-ms", "150", NULL};
    if (!fake_ml_start(&fake, world_path, args))
        return -1;
    fx_tenant(db.conn, SYNC_TENANT);
    tdb_execf(db.conn,
              "INSERT INTO marketplace_connections (tenant_id, provider, seller_id, access_token, "
              "refresh_token, expires_at, status) VALUES ('" SYNC_TENANT "', 'mercadolivre', "
              "%lld, 'APP_USR-kill9-access', 'TG-kill9-refresh', now() + interval '6 hours', "
              "'active')",
              SELLER);
    return 0;
}

static int sync_teardown(void **state)
{
    (void)state;
    fake_ml_stop(&fake);
    unlink(world_path);
    return 0;
}

static bool start_sync_jobsd(struct jobsd_proc *p)
{
    char base[128];
    snprintf(base, sizeof base, "ML_API_BASE_URL=%s", fake.url);
    const char *env[] = {base,
                         "ML_MAX_RPS=200",
                         "ML_CONCURRENCY=4",
                         "ML_HTTP_TIMEOUT_MS=10000",
                         "ML_CLIENT_ID=" CLIENT_ID,
                         "ML_CLIENT_SECRET=" CLIENT_SECRET,
                         NULL};
    return jobsd_start(p, db.url, env);
}

/* An order is written with its items: none is ever stored without them. */
static void check_orders_whole(const char *when)
{
    long long bare =
        tdb_int(db.conn, "SELECT count(*) FROM orders o WHERE o.tenant_id = '" SYNC_TENANT
                         "' AND NOT EXISTS (SELECT 1 FROM order_items i WHERE "
                         "i.order_id = o.id)");
    if (bare != 0)
        fail_msg("%lld orders without their items %s", bare, when);
}

static bool sync_recovered(void *ctx)
{
    check_orders_whole("during the recovery");
    return chaos_job_final(db.conn, ctx);
}

static char *sync_counts(void)
{
    return tdb_value(db.conn,
                     "SELECT (SELECT count(*) FROM listings WHERE tenant_id = '" SYNC_TENANT
                     "') || ' listings, ' || (SELECT count(*) FROM orders WHERE tenant_id = "
                     "'" SYNC_TENANT "') || ' orders, ' || (SELECT count(*) FROM order_items "
                     "WHERE tenant_id = '" SYNC_TENANT "') || ' items, ' || (SELECT count(*) "
                     "FROM listing_visits_daily WHERE tenant_id = '" SYNC_TENANT "') || ' visits'");
}

static void test_kill9_during_syncs(void **state)
{
    (void)state;
    srand(seed + 1);
    struct jobsd_proc p;
    assert_true(start_sync_jobsd(&p));
    int running_at_kill = 0;
    for (int round = 0; round < SYNC_ROUNDS; round++) {
        struct th_response r;
        assert_true(th_post_job(p.port, "/api/v1/jobs/sync-mercadolivre", TEST_KEY,
                                "{\"tenantId\": \"" SYNC_TENANT "\"}", "Prefer: respond-async\r\n",
                                &r));
        assert_int_equal(r.status, 202);
        char id[40];
        snprintf(id, sizeof id, "%s", json_string_value(json_object_get(r.json, "jobLogId")));
        th_free(&r);
        assert_true(t_wait_until(job_running, id, 10000));
        long long delay = 100 + rand() % 1400;
        t_sleep_ms(delay);
        jobsd_kill9(&p);
        running_at_kill += chaos_job_is(db.conn, id, "running");
        check_orders_whole("right after kill -9");
        print_message("sync round %d: killed %lld ms into the sync\n", round + 1, delay);
        assert_true(start_sync_jobsd(&p));
        if (!t_wait_until(sync_recovered, id, 90000))
            fail_msg("sync %s not finished 90 s after the restart", id);
        char *st = chaos_job_status(db.conn, id);
        if (strcmp(st, "success") != 0)
            fail_msg("sync %s ended %s", id, st);
        free(st);
    }
    assert_int_equal(running_at_kill, SYNC_ROUNDS);
    /* What the recovered runs wrote is complete: a clean sync finds nothing new. */
    char *before = sync_counts();
    struct th_response r;
    assert_true(th_post_job(p.port, "/api/v1/jobs/sync-mercadolivre", TEST_KEY,
                            "{\"tenantId\": \"" SYNC_TENANT "\"}", NULL, &r));
    assert_int_equal(r.status, 200);
    assert_true(json_is_true(json_object_get(r.json, "success")));
    th_free(&r);
    char *after = sync_counts();
    print_message("after the killed syncs: %s\n", before);
    assert_string_equal(after, before);
    assert_true(strstr(before, " 150 orders") != NULL);
    free(before);
    free(after);
    check_orders_whole("at the end");
    assert_int_equal(jobsd_stop(&p, 20000), 0);
    assert_int_equal(tdb_int(db.conn, "SELECT count(*) FROM job_logs WHERE status NOT IN "
                                      "('success', 'error')"),
                     0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_kill9_during_rebuilds),
        cmocka_unit_test_setup_teardown(test_kill9_during_syncs, sync_setup, sync_teardown),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
