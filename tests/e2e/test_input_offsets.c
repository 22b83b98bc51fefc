/* End-to-end tests of issue 19 item 4 against a real jobsd: a UTC offset PostgreSQL refuses
 * (+16:00..+23:59, -16:00..-23:59; RFC 3339 allows them) in a rebuild's from or to, or in a
 * status page's before cursor, is a 400 naming the field, not a 500 carrying PostgreSQL's
 * "time zone displacement out of range"; and no 500 carries a database's text: it goes to
 * the log with the request id, the client gets a generic message. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "jobsd/jwt.h"
#include "jobsd/util.h"
#include "testdb.h"
#include "testfx.h"
#include "testhttp.h"
#include "testproc.h"
#include "testtime.h"

#define SECRET  "e2e-offsets-secret-0123456789abcdef-01234"
#define TENANT  "aaaaaaaa-1111-4000-8000-0000000000c1"
#define REBUILD "/api/v1/jobs/rebuild-daily-metrics"

static struct testdb db;
static struct jobsd_proc proc;
static char token[2048];

static int setup(void **state)
{
    (void)state;
    testdb_create(&db, "offsets");
    fx_tenant(db.conn, TENANT);
    tdb_exec(db.conn,
             "INSERT INTO job_logs (tenant_id, job_type, status, created_at) SELECT '" TENANT
             "', 'metrics_aggregation', 'success', now() - g * interval '1 minute' FROM "
             "generate_series(1, 3) g");
    const char *env[] = {"JWT_SECRET=" SECRET, NULL};
    if (!jobsd_start(&proc, db.url, env))
        return -1;
    long long now = (long long)time(NULL);
    return jwt_sign((const unsigned char *)SECRET, strlen(SECRET), TENANT, "user-1", now, now + 600,
                    NULL, NULL, token, sizeof token) > 0
               ? 0
               : -1;
}

static int teardown(void **state)
{
    (void)state;
    int rc = jobsd_stop(&proc, 20000);
    testdb_drop(&db);
    return rc == 0 ? 0 : -1;
}

static const char *message(const struct th_response *r)
{
    const char *m =
        json_string_value(json_object_get(json_object_get(r->json, "error"), "message"));
    return m ? m : "";
}

/* POST a rebuild (answered at once); the status. */
static int rebuild(const char *from, const char *to, struct th_response *r)
{
    char body[256];
    snprintf(body, sizeof body, "{\"tenantId\": \"%s\", \"from\": \"%s\", \"to\": \"%s\"}", TENANT,
             from, to);
    assert_true(th_post_job(proc.port, REBUILD, TEST_KEY, body, "Prefer: respond-async\r\n", r));
    return r->status;
}

static void expect_400(const struct th_response *r, const char *field)
{
    if (r->status != 400 || strcmp(th_error_code(r), "invalid_field") != 0 ||
        strncmp(message(r), field, strlen(field)) != 0)
        fail_msg("want 400 invalid_field naming %s, got %d: %s", field, r->status, r->body);
}

static void test_rebuild_offsets(void **state)
{
    (void)state;
    struct th_response r;
    const char *refused[] = {"+16:00", "-16:00", "+23:59", "-23:59", "+19:30"};
    for (size_t i = 0; i < sizeof refused / sizeof refused[0]; i++) {
        char ts[64];
        snprintf(ts, sizeof ts, "2024-01-10T06:00:00%s", refused[i]);
        rebuild(ts, "2024-01-12", &r);
        expect_400(&r, "from");
        th_free(&r);
        rebuild("2024-01-08", ts, &r);
        expect_400(&r, "to");
        th_free(&r);
    }
    /* The edges PostgreSQL accepts are accepted. */
    int st = rebuild("2024-01-10T06:00:00+15:59", "2024-01-12T06:00:00-15:59", &r);
    if (st != 202 && st != 200)
        fail_msg("+15:59/-15:59: got %d: %s", st, r.body);
    th_free(&r);
}

static int status_page(const char *cursor_text, struct th_response *r)
{
    char enc[256], path[400], h[2200];
    util_base64url_encode((const unsigned char *)cursor_text, strlen(cursor_text), enc, sizeof enc);
    snprintf(path, sizeof path, "/api/v1/jobs/status?limit=1&before=%s", enc);
    snprintf(h, sizeof h, "Authorization: Bearer %s\r\n", token);
    assert_true(th_request(proc.port, "GET", path, h, NULL, r));
    return r->status;
}

static void test_cursor_offsets(void **state)
{
    (void)state;
    struct th_response r;
    const char *refused[] = {"+16:00", "-16:00", "+23:59", "-23:59"};
    for (size_t i = 0; i < sizeof refused / sizeof refused[0]; i++) {
        char cur[128];
        snprintf(cur, sizeof cur, "2030-01-01T00:00:00.000000%s|%s", refused[i],
                 "aaaaaaaa-1111-4000-8000-0000000000ff");
        status_page(cur, &r);
        expect_400(&r, "before");
        th_free(&r);
    }
    assert_int_equal(status_page("2030-01-01T00:00:00.000000+15:59|"
                                 "aaaaaaaa-1111-4000-8000-0000000000ff",
                                 &r),
                     200);
    assert_int_equal(json_array_size(json_object_get(r.json, "jobs")), 1);
    th_free(&r);
}

static const char *g_wanted;

static bool logged(void *ctx)
{
    (void)ctx;
    return jobsd_log_contains(&proc, g_wanted);
}

/* A 500: the generic message to the client, the database's words in the log with the
 * request id. */
static void expect_generic_500(const struct th_response *r, const char *secret)
{
    if (r->status != 500 || strcmp(th_error_code(r), "internal_error") != 0)
        fail_msg("want 500 internal_error, got %d: %s", r->status, r->body);
    if (strstr(r->body, secret) || strstr(r->body, "P0001") || strstr(r->body, "database"))
        fail_msg("the 500 carries the database's text: %s", r->body);
    const char *rid = json_string_value(json_object_get(r->json, "requestId"));
    assert_non_null(rid);
    g_wanted = secret;
    if (!t_wait_until(logged, NULL, 5000) || !jobsd_log_contains(&proc, rid))
        fail_msg("the log (%s) lacks the database's text or the request id %s", proc.log_path, rid);
}

static void test_500_never_carries_database_text(void **state)
{
    (void)state;
    /* An INSERT into job_logs and a read of listing_metrics_daily fail with a text the client
     * must not see. */
    tdb_exec(db.conn, "CREATE FUNCTION boom_insert() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
                      "RAISE EXCEPTION 'db-secret-on-insert'; END $$; "
                      "CREATE TRIGGER boom BEFORE INSERT ON job_logs FOR EACH ROW EXECUTE "
                      "FUNCTION boom_insert()");
    tdb_exec(db.conn, "CREATE FUNCTION boom_read() RETURNS bool LANGUAGE plpgsql AS $$ BEGIN "
                      "RAISE EXCEPTION 'db-secret-on-read'; END $$; "
                      "INSERT INTO listing_metrics_daily (tenant_id, listing_id, date) VALUES "
                      "('" TENANT "', gen_random_uuid(), current_date); "
                      "ALTER TABLE listing_metrics_daily RENAME TO lmd_saved; "
                      "CREATE VIEW listing_metrics_daily AS SELECT * FROM lmd_saved WHERE "
                      "boom_read()");
    struct th_response r;
    rebuild("2024-02-01", "2024-02-02", &r);
    expect_generic_500(&r, "db-secret-on-insert");
    th_free(&r);
    char h[2200];
    snprintf(h, sizeof h, "Authorization: Bearer %s\r\n", token);
    assert_true(th_request(proc.port, "GET", "/api/v1/jobs/stats", h, NULL, &r));
    expect_generic_500(&r, "db-secret-on-read");
    th_free(&r);
    tdb_exec(db.conn, "DROP TRIGGER boom ON job_logs; DROP VIEW listing_metrics_daily; "
                      "ALTER TABLE lmd_saved RENAME TO listing_metrics_daily");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rebuild_offsets),
        cmocka_unit_test(test_cursor_offsets),
        cmocka_unit_test(test_500_never_carries_database_text),
    };
    return cmocka_run_group_tests_name("input_offsets", tests, setup, teardown);
}
