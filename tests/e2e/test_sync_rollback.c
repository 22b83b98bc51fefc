/* End-to-end test of issue 19 item 15: a sync that ends at no_active_connection or
 * reauth_required (no connection, a connection already marked, a refresh token the API
 * refuses) rolls back only a transaction it has open. A ROLLBACK outside one made PostgreSQL
 * answer "WARNING: there is no transaction in progress" (and log it in the server's log);
 * jobsd logs every notice it receives at LOG_LEVEL=debug, so its log is the witness. */
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
#include "testhttp.h"
#include "testproc.h"
#include "testsync.h"

static struct testdb db;

static struct tsync_seller seller = {"5b5b5b5b-0000-4000-8000-0000000000a1",
                                     5500000101LL,
                                     "APP_USR-rollback-access-1",
                                     "TG-rollback-refresh-1",
                                     21600,
                                     NULL};

#define NO_CONNECTION "5b5b5b5b-0000-4000-8000-0000000000a2"
#define MARKED        "5b5b5b5b-0000-4000-8000-0000000000a3"

static void expect(const struct jobsd_proc *p, const char *tenant, const char *code)
{
    struct th_response r;
    assert_int_equal(tsync_run(p, tenant, NULL, &r), 422);
    assert_string_equal(th_error_code(&r), code);
    th_free(&r);
}

static void test_no_rollback_warning(void **state)
{
    (void)state;
    const char *world = tsync_world(&seller, 1, "rollback", NULL);
    struct fake_ml f;
    assert_true(fake_ml_start(&f, world, NULL));
    /* A tenant without a connection; one whose only connection is already marked; one whose
     * access token expired and whose refresh token the API refuses (invalid_grant). */
    tdb_exec(db.conn, "INSERT INTO tenants (id) VALUES ('" NO_CONNECTION "'), ('" MARKED "')");
    struct tsync_seller marked = seller;
    marked.tenant = MARKED;
    marked.user_id = 5500000103LL;
    tsync_connect(db.conn, &marked, "APP_USR-x", "TG-x", "now() + interval '1 hour'");
    tdb_exec(db.conn, "UPDATE marketplace_connections SET status = 'reauth_required' "
                      "WHERE tenant_id = '" MARKED "'");
    tsync_connect(db.conn, &seller, "APP_USR-stale", "TG-refused-by-the-api",
                  "now() - interval '1 hour'");
    static const char *const env[] = {"LOG_LEVEL=debug", NULL};
    struct jobsd_proc p;
    assert_true(tsync_start_jobsd(&p, db.url, &f, "50", "2", true, env));
    expect(&p, NO_CONNECTION, "no_active_connection");
    expect(&p, MARKED, "reauth_required");
    expect(&p, seller.tenant, "reauth_required");
    expect(&p, seller.tenant, "reauth_required"); /* now marked: refused before any call */
    /* The notice processor is wired (a debug line per notice), and no notice said that. */
    assert_int_equal(jobsd_stop(&p, 30000), 0);
    bool warned = jobsd_log_contains(&p, "no transaction in progress");
    fake_ml_stop(&f);
    unlink(world);
    if (warned)
        fail_msg("jobsd's log (%s) shows PostgreSQL's \"there is no transaction in progress\"",
                 p.log_path);
}

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_no_rollback_warning)};
    testdb_create(&db, "syncrb");
    int failed = cmocka_run_group_tests_name("sync_rollback", tests, NULL, NULL);
    testdb_drop(&db);
    return failed;
}
