/* Integration tests of scheduler_fire and scheduler_last_fire on a real PostgreSQL (the claim
 * of a slot with its job; tests/chaos/test_chaos_scheduler.c runs the tick thread on three
 * instances):
 *  - eight connections firing the same slot at once: one fires (one fire row, one job with
 *    trigger "schedule"), seven are told it was fired already;
 *  - a body refused when it fires (its tenant is gone: 404) spends the slot with the error and
 *    queues nothing; firing it again is "already fired";
 *  - a transient refusal (503 queue_full) spends nothing: the slot fires once the queue has
 *    room;
 *  - the last fire is the newest slot, with its job. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <jansson.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jobsd/config.h"
#include "jobsd/db.h"
#include "jobsd/scheduler.h"
#include "testdb.h"
#include "testfx.h"

#define TENANT "7e7e7e7e-0000-4000-8000-000000000001"
#define NOBODY "7e7e7e7e-0000-4000-8000-00000000dead"
#define NRACE  8

static struct testdb db;
static struct config cfg;

static const char *env_of(void *ctx, const char *name)
{
    return strcmp(name, "DATABASE_URL") == 0 ? ctx : NULL;
}

static int setup(void **state)
{
    (void)state;
    testdb_create(&db, "scheduler");
    fx_tenant(db.conn, TENANT);
    return config_load(&cfg, CONFIG_JOB, env_of, db.url, stderr) != 0 ? -1 : 0;
}

static int teardown(void **state)
{
    (void)state;
    config_free(&cfg);
    testdb_drop(&db);
    return 0;
}

/* A schedule of one line, parsed as SCHEDULES would be. */
static void one(struct schedule_set *set, const char *line)
{
    memset(set, 0, sizeof *set);
    struct err e;
    err_clear(&e);
    if (scheduler_parse(line, "SCHEDULES", set, &e) != 0)
        fail_msg("%s: %s", line, e.message);
    assert_int_equal(set->n, 1);
}

struct racer {
    const struct schedule *sched;
    pthread_barrier_t *go;
    int rc;
    char job[JOB_ID_LEN];
};

static void *race(void *arg)
{
    struct racer *r = arg;
    struct err e;
    err_clear(&e);
    PGconn *c = db_connect(db.url, &e);
    pthread_barrier_wait(r->go);
    r->rc = c ? scheduler_fire(c, &cfg, r->sched, 1800000000, false, "racer", r->job, &e) : -2;
    PQfinish(c);
    return NULL;
}

static void test_race(void **state)
{
    (void)state;
    struct schedule_set set;
    one(&set, "race 0 6 * * * rebuild-daily-metrics {\"tenantId\": \"" TENANT "\"}");
    pthread_barrier_t go;
    pthread_barrier_init(&go, NULL, NRACE);
    struct racer r[NRACE];
    pthread_t t[NRACE];
    for (int i = 0; i < NRACE; i++) {
        r[i] = (struct racer){.sched = &set.items[0], .go = &go};
        assert_int_equal(pthread_create(&t[i], NULL, race, &r[i]), 0);
    }
    int fired = 0, already = 0;
    const char *job = NULL;
    for (int i = 0; i < NRACE; i++) {
        pthread_join(t[i], NULL);
        fired += r[i].rc == 1;
        already += r[i].rc == 0;
        if (r[i].rc == 1)
            job = r[i].job;
    }
    pthread_barrier_destroy(&go);
    assert_int_equal(fired, 1);
    assert_int_equal(already, NRACE - 1);
    assert_int_equal(tdb_int(db.conn, "SELECT count(*) FROM schedule_fires WHERE schedule = "
                                      "'race'"),
                     1);
    assert_int_equal(tdb_int(db.conn,
                             "SELECT count(*) FROM job_logs WHERE trigger = 'schedule' AND id = "
                             "'%s' AND metadata->>'requestId' = 'sched-race-1800000000' AND "
                             "tenant_id = '" TENANT "'",
                             job),
                     1);
    assert_int_equal(tdb_int(db.conn, "SELECT count(*) FROM job_logs WHERE trigger = 'schedule'"),
                     1);
    int64_t slot = 0;
    char last[JOB_ID_LEN];
    struct err e;
    err_clear(&e);
    assert_int_equal(scheduler_last_fire(db.conn, "race", &slot, last, &e), 1);
    assert_int_equal(slot, 1800000000);
    assert_string_equal(last, job);
    assert_int_equal(scheduler_last_fire(db.conn, "never", &slot, last, &e), 0);
    tdb_exec(db.conn, "DELETE FROM job_logs");
    scheduler_clear(&set);
}

static void test_refused_body_spends_the_slot(void **state)
{
    (void)state;
    struct schedule_set set;
    one(&set, "gone 0 6 * * * rebuild-daily-metrics {\"tenantId\": \"" NOBODY "\"}");
    char job[JOB_ID_LEN] = "";
    struct err e;
    err_clear(&e);
    assert_int_equal(scheduler_fire(db.conn, &cfg, &set.items[0], 1800000000, true, "t", job, &e),
                     -1);
    assert_int_equal(e.http_status, 404);
    assert_int_equal(tdb_int(db.conn, "SELECT count(*) FROM schedule_fires WHERE schedule = "
                                      "'gone' AND job_log_id IS NULL AND catch_up AND error LIKE "
                                      "'%%" NOBODY "%%'"),
                     1);
    assert_int_equal(tdb_int(db.conn, "SELECT count(*) FROM job_logs"), 0);
    err_clear(&e);
    assert_int_equal(scheduler_fire(db.conn, &cfg, &set.items[0], 1800000000, false, "t", job, &e),
                     0);
    scheduler_clear(&set);
}

static void test_transient_refusal_spends_nothing(void **state)
{
    (void)state;
    struct schedule_set set;
    one(&set, "busy 0 6 * * * rebuild-daily-metrics {\"tenantId\": \"" TENANT "\"}");
    tdb_exec(db.conn, "INSERT INTO job_logs (job_type, status, dedupe_key) VALUES "
                      "('metrics_aggregation', 'queued', 'someone-else')");
    long long saved = cfg.queue_max_queued;
    cfg.queue_max_queued = 1;
    char job[JOB_ID_LEN] = "";
    struct err e;
    err_clear(&e);
    assert_int_equal(scheduler_fire(db.conn, &cfg, &set.items[0], 1800000000, false, "t", job, &e),
                     -1);
    assert_string_equal(e.code, "queue_full");
    assert_int_equal(tdb_int(db.conn, "SELECT count(*) FROM schedule_fires WHERE schedule = "
                                      "'busy'"),
                     0);
    cfg.queue_max_queued = saved;
    err_clear(&e);
    assert_int_equal(scheduler_fire(db.conn, &cfg, &set.items[0], 1800000000, false, "t", job, &e),
                     1);
    assert_int_equal(tdb_int(db.conn,
                             "SELECT count(*) FROM schedule_fires WHERE schedule = 'busy' AND "
                             "job_log_id = '%s' AND error IS NULL",
                             job),
                     1);
    scheduler_clear(&set);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_race),
        cmocka_unit_test(test_refused_body_spends_the_slot),
        cmocka_unit_test(test_transient_refusal_spends_nothing),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
