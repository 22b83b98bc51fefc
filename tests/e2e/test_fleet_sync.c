/* E2E: `{"allTenants": true}` on POST /api/v1/jobs/sync-mercadolivre (issue 20 item 1),
 * against the fake Mercado Livre API. Four tenants: two with an active connection (each its
 * own seller on the fake), one whose only connection needs reauthorisation and one without a
 * connection: the fleet is the two eligible ones. The parent answers 200 with its counted
 * result (2 tenants, 2 succeeded), each eligible tenant got exactly one sync child (with the
 * parent's daysBack and include), the two others none, and the fake served both sellers. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "testdb.h"
#include "testfake.h"
#include "testfx.h"
#include "testgroup.h"
#include "testhttp.h"
#include "testproc.h"
#include "testsync.h"

#define REAUTH "5f5f5f5f-0000-4000-8000-000000000003"
#define NOCONN "5f5f5f5f-0000-4000-8000-000000000004"

static struct testdb db;

static int setup(void **state)
{
    (void)state;
    testdb_create(&db, "fleet_sync");
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    testdb_drop(&db);
    return 0;
}

static void test_sync_all_tenants(void **state)
{
    (void)state;
    struct tsync_seller two[2] = {
        {"5f5f5f5f-0000-4000-8000-000000000001", 5500000011LL, "APP_USR-f1", "TG-f1", 21600, NULL},
        {"5f5f5f5f-0000-4000-8000-000000000002", 5500000012LL, "APP_USR-f2", "TG-f2", 21600, NULL},
    };
    for (int i = 0; i < 2; i++)
        two[i].extra = json_pack("{s:{s:i, s:s, s:I}}", "generate_items", "count", 5, "prefix",
                                 "MLB", "start", (json_int_t)(7000000001LL + i * 1000));
    const char *world = tsync_world(two, 2, "fleet", NULL);
    for (int i = 0; i < 2; i++)
        json_decref(two[i].extra);
    struct fake_ml f;
    assert_true(fake_ml_start(&f, world, NULL));
    for (int i = 0; i < 2; i++)
        tsync_connect(db.conn, &two[i], two[i].access, two[i].refresh,
                      "now() + interval '6 hours'");
    fx_tenant(db.conn, REAUTH);
    tdb_exec(db.conn, "INSERT INTO marketplace_connections (tenant_id, seller_id, status) "
                      "VALUES ('" REAUTH "', 5500000013, 'reauth_required')");
    fx_tenant(db.conn, NOCONN);
    struct jobsd_proc p;
    assert_true(tsync_start_jobsd(&p, db.url, &f, "50", "4", true, NULL));

    struct th_response r;
    assert_true(th_post_job(p.port, TSYNC_PATH, TEST_KEY,
                            "{\"allTenants\": true, \"daysBack\": 3, \"include\": [\"listings\"]}",
                            NULL, &r));
    if (r.status != 200)
        fail_msg("%d %s", r.status, r.body);
    assert_true(json_is_true(json_object_get(r.json, "success")));
    assert_true(json_is_true(json_object_get(r.json, "allTenants")));
    assert_int_equal(json_integer_value(json_object_get(r.json, "tenants")), 2);
    assert_int_equal(json_integer_value(json_object_get(r.json, "succeeded")), 2);
    assert_int_equal(json_integer_value(json_object_get(r.json, "failed")), 0);
    const char *id = json_string_value(json_object_get(r.json, "jobLogId"));
    assert_non_null(id);
    for (int i = 0; i < 2; i++)
        assert_int_equal(tdb_int(db.conn,
                                 "SELECT count(*) FROM job_logs WHERE parent_id = '%s' AND "
                                 "tenant_id = '%s' AND status = 'success' AND "
                                 "metadata->'request'->>'daysBack' = '3' AND "
                                 "metadata->'request'->'include' = '[\"listings\"]'",
                                 id, two[i].tenant),
                         1);
    assert_int_equal(tdb_int(db.conn, "SELECT count(*) FROM job_logs WHERE tenant_id IN ('" REAUTH
                                      "', '" NOCONN "')"),
                     0);
    assert_int_equal(tdb_int(db.conn, "SELECT count(*) FROM listings"), 10);
    th_free(&r);
    assert_int_equal(jobsd_stop(&p, 30000), 0);
    fake_ml_stop(&f);
    unlink(world);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sync_all_tenants),
    };
    return tgroup_run("fleet_sync", tests, setup, teardown);
}
