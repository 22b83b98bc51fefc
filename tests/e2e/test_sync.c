/* End-to-end tests of the Mercado Livre sync (SPEC 1.2) against the fake API (tests/fake_ml):
 * a real jobsd, a real PostgreSQL, the fake's counters as the witness of how the client
 * behaves (in flight, requests per second, limits, expired tokens). */
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

#include "testdb.h"
#include "testfake.h"
#include "testgroup.h"
#include "testhttp.h"
#include "testproc.h"
#include "testsync.h"
#include "testtime.h"

#define PATH          TSYNC_PATH
#define CLIENT_ID     TSYNC_CLIENT_ID
#define CLIENT_SECRET TSYNC_CLIENT_SECRET

static struct testdb db;

static int setup(void **state)
{
    (void)state;
    testdb_create(&db, "sync");
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    testdb_drop(&db);
    return 0;
}

/* How far over ML_MAX_RPS the fake's count of one second may go. jobsd stamps a request when
 * it starts it, the fake when its handler runs; on a loaded machine (ASan, the chaos tests in
 * parallel) the delay between the two varies by tens of milliseconds, which moves a request or
 * two across the fake's one-second window although jobsd's own window held. 2 % + 1 absorbs
 * that and still fails a limiter that bursts (a token bucket lets through up to 2x). */
static long long rate_slack(long long rps)
{
    return rps / 50 + 1;
}

/* The limits the fake saw: never broken, whatever the test. */
static void assert_client_discipline(const struct fake_ml *f, long long rps, long long conc)
{
    long long in_flight = fake_ml_stat(f, "max_in_flight");
    long long per_second = fake_ml_stat(f, "max_per_second");
    if (in_flight > conc || per_second > rps + rate_slack(rps))
        fail_msg("in flight %lld (limit %lld), per second %lld (limit %lld + %lld of timing "
                 "slack)",
                 in_flight, conc, per_second, rps, rate_slack(rps));
    long long limit = fake_ml_stat(f, "max_orders_limit");
    assert_true(limit <= 51);
    assert_true(fake_ml_stat(f, "max_multiget_ids") <= 20);
    assert_int_equal(fake_ml_stat(f, "expired_token_requests"), 0);
}

/* ---------------------------------------------------------------- a big seller */

static void test_big_seller(void **state)
{
    (void)state;
    struct tsync_seller s = {"5a5a5a5a-0000-4000-8000-000000000001",
                             5500000001LL,
                             "APP_USR-big-access-1",
                             "TG-big-refresh-1",
                             21600,
                             NULL};
    s.extra = json_pack(
        "{s:{s:i, s:s, s:I, s:i, s:i}, s:{s:i, s:i, s:i, s:{s:i, s:i}, s:i}, s:{s:i, s:i}}",
        "generate_items", "count", 1200, "prefix", "MLB", "start", (json_int_t)7000000001LL,
        "policy_blocked_every", 100, "missing_every", 150, "generate_orders", "count", 10500,
        "days", 3, "items_per_order_max", 2, "status_mix", "paid", 90, "cancelled", 10,
        "unknown_item_every", 500, "generate_visits", "days", 10, "max", 30);
    const char *world = tsync_world(&s, 1, "big", NULL);
    json_decref(s.extra);
    struct fake_ml f;
    assert_true(fake_ml_start(&f, world, NULL));
    tsync_connect(db.conn, &s, s.access, s.refresh, "now() + interval '6 hours'");
    struct jobsd_proc p;
    assert_true(tsync_start_jobsd(&p, db.url, &f, "400", "6", true, NULL));
    struct th_response r;
    assert_int_equal(tsync_run(&p, s.tenant, ", \"daysBack\": 10", &r), 200);
    assert_true(json_is_true(json_object_get(r.json, "success")));
    /* More than 1,000 items: found through scan mode. 404 elements skipped, PolicyAgent
     * elements kept as blocked listings. */
    assert_int_equal(tsync_stat(&r, "listings", "discovered"), 1200);
    assert_int_equal(tsync_stat(&r, "listings", "blocked"), 12);
    /* Every 100th item is policy-blocked and every 150th missing; 300, 600, 900 and 1200 are
     * both, and the block wins: 12 blocked, 4 missing. */
    long long missing = 4;
    assert_int_equal(tsync_stat(&r, "listings", "upserted"), 1200 - 12 - missing);
    assert_int_equal(tdb_int(db.conn,
                             "SELECT count(*) FROM listings WHERE tenant_id = '%s' AND "
                             "access_status = 'blocked_by_policy'",
                             s.tenant),
                     12);
    /* More than 10,000 orders in the window: the range was split; every order a seller's
     * search shows arrived (the API leaves the cancelled ones out: about one in ten here, and
     * none of them was ever stored as a sale, so none is missing). */
    long long cancelled =
        tsync_fake_orders_total(&f, s.user_id, s.access, "&order.status=cancelled");
    assert_true(cancelled > 500 && cancelled < 1600);
    long long shown = 10500 - cancelled;
    assert_int_equal(tsync_fake_orders_total(&f, s.user_id, s.access, ""), shown);
    assert_int_equal(tsync_stat(&r, "orders", "upserted"), shown);
    assert_int_equal(tsync_stat(&r, "orders", "reread"), 0);
    assert_int_equal(
        tdb_int(db.conn, "SELECT count(*) FROM orders WHERE tenant_id = '%s'", s.tenant), shown);
    /* Items of unknown listings are kept, attached to a minimal listing row. */
    assert_int_equal(tdb_int(db.conn,
                             "SELECT count(*) FROM order_items WHERE tenant_id = '%s' AND "
                             "listing_id IS NULL",
                             s.tenant),
                     0);
    assert_true(tdb_int(db.conn,
                        "SELECT count(*) FROM listings WHERE tenant_id = '%s' AND status = "
                        "'unknown' AND access_status = 'accessible'",
                        s.tenant) >= 1);
    /* Visits: one row per listing-day returned, zeros included. */
    assert_true(tsync_stat(&r, "visits", "days") >= (1200 - 12 - missing) * 10);
    assert_int_equal(tdb_int(db.conn,
                             "SELECT count(*) FROM listing_visits_daily WHERE tenant_id = '%s'",
                             s.tenant),
                     tsync_stat(&r, "visits", "days"));
    assert_int_equal(json_integer_value(json_object_get(r.json, "recordsProcessed")),
                     tsync_stat(&r, "listings", "upserted") + shown +
                         tsync_stat(&r, "visits", "days"));
    assert_client_discipline(&f, 400, 6);
    /* The job's log line and row. */
    assert_true(jobsd_log_contains(&p, "[INTERNAL-JOB] sync-mercadolivre finished jobLogId="));
    assert_int_equal(tdb_int(db.conn,
                             "SELECT count(*) FROM job_logs WHERE job_type = 'mercadolivre_sync' "
                             "AND status = 'success' AND tenant_id = '%s'",
                             s.tenant),
                     1);
    th_free(&r);
    assert_int_equal(jobsd_stop(&p, 30000), 0);
    fake_ml_stop(&f);
    unlink(world);
}

/* ---------------------------------------------------------------- faults and tokens */

static struct fake_ml small_fake;
static struct jobsd_proc small_jobsd;
static struct tsync_seller small = {"5b5b5b5b-0000-4000-8000-000000000002",
                                    5500000002LL,
                                    "APP_USR-small-access-1",
                                    "TG-small-refresh-1",
                                    21600,
                                    NULL};
static const char *small_world;

static int small_setup(void **state)
{
    (void)state;
    small.extra = json_pack("{s:{s:i, s:s, s:I, s:i, s:i}, s:{s:i, s:i, s:i, s:{s:i}}, "
                            "s:{s:i, s:i}}",
                            "generate_items", "count", 40, "prefix", "MLB", "start",
                            (json_int_t)8000000001LL, "policy_blocked_every", 20, "missing_every",
                            13, "generate_orders", "count", 120, "days", 5, "items_per_order_max",
                            3, "status_mix", "paid", 100, "generate_visits", "days", 7, "max", 20);
    small_world = tsync_world(&small, 1, "small", NULL);
    json_decref(small.extra);
    small.extra = NULL;
    if (!fake_ml_start(&small_fake, small_world, NULL))
        return -1;
    tsync_connect(db.conn, &small, small.access, small.refresh, "now() + interval '6 hours'");
    return tsync_start_jobsd(&small_jobsd, db.url, &small_fake, "200", "4", true, NULL) ? 0 : -1;
}

static int small_teardown(void **state)
{
    (void)state;
    int rc = jobsd_stop(&small_jobsd, 30000);
    fake_ml_stop(&small_fake);
    unlink(small_world);
    return rc == 0 ? 0 : -1;
}

static void test_retries_429_and_5xx(void **state)
{
    (void)state;
    json_decref(fake_ml_post(&small_fake, "/__fake/reset-stats", NULL));
    json_decref(fake_ml_post(
        &small_fake, "/__fake/faults",
        "[{\"endpoint\": \"items_multiget\", \"status\": 429, \"retry_after\": 1, \"count\": 2},"
        " {\"endpoint\": \"orders_search\", \"status\": 429, \"count\": 2},"
        " {\"endpoint\": \"visits\", \"status\": 503, \"count\": 3},"
        " {\"endpoint\": \"items_search\", \"status\": 500, \"count\": 1}]"));
    struct th_response r;
    long long t0 = t_now_ms();
    assert_int_equal(tsync_run(&small_jobsd, small.tenant, NULL, &r), 200);
    assert_true(json_is_true(json_object_get(r.json, "success")));
    assert_int_equal(json_array_size(json_object_get(
                         json_array_get(json_object_get(r.json, "connections"), 0), "errors")),
                     0);
    /* Retry-After: 1 was honoured (at least a second of waiting). */
    assert_true(t_now_ms() - t0 >= 1000);
    assert_int_equal(fake_ml_stat(&small_fake, "faults_served"), 8);
    assert_client_discipline(&small_fake, 200, 4);
    th_free(&r);
    assert_int_equal(fake_ml_delete(&small_fake, "/__fake/faults"), 200);
}

static void test_unavailable_is_503(void **state)
{
    (void)state;
    /* Mercado Livre down for everything: 503 ml_unavailable with Retry-After. */
    json_decref(fake_ml_post(&small_fake, "/__fake/faults",
                             "[{\"endpoint\": \"any\", \"status\": 503, \"count\": 100000}]"));
    struct th_response r;
    assert_int_equal(tsync_run(&small_jobsd, small.tenant, NULL, &r), 503);
    assert_string_equal(th_error_code(&r), "ml_unavailable");
    char *ra = th_header(&r, "Retry-After");
    assert_non_null(ra);
    free(ra);
    th_free(&r);
    assert_int_equal(fake_ml_delete(&small_fake, "/__fake/faults"), 200);
    /* The connection is still active: transient errors never mark it. */
    assert_int_equal(tdb_int(db.conn,
                             "SELECT count(*) FROM marketplace_connections WHERE tenant_id = '%s' "
                             "AND status = 'active'",
                             small.tenant),
                     1);
}

static char *db_token(const char *col, const char *tenant)
{
    return tdb_value(db.conn, "SELECT %s FROM marketplace_connections WHERE tenant_id = '%s'", col,
                     tenant);
}

static void test_token_endpoint_down_keeps_connection(void **state)
{
    (void)state;
    /* The token must be refreshed and /oauth/token answers 429 then 503 for good: a transient
     * failure (503 + Retry-After), the connection stays active with its refresh token, and no
     * call is made with the expired access token. */
    tdb_execf(db.conn,
              "UPDATE marketplace_connections SET expires_at = now() - interval '1 minute' "
              "WHERE tenant_id = '%s'",
              small.tenant);
    char *old_refresh = db_token("refresh_token", small.tenant);
    json_decref(fake_ml_post(&small_fake, "/__fake/reset-stats", NULL));
    json_decref(fake_ml_post(&small_fake, "/__fake/faults",
                             "[{\"endpoint\": \"oauth_token\", \"status\": 429, \"count\": 1},"
                             " {\"endpoint\": \"oauth_token\", \"status\": 503, "
                             "\"count\": 100000}]"));
    struct th_response r;
    assert_int_equal(tsync_run(&small_jobsd, small.tenant, NULL, &r), 503);
    char *ra = th_header(&r, "Retry-After");
    assert_non_null(ra);
    free(ra);
    th_free(&r);
    assert_true(fake_ml_stat(&small_fake, "faults_served") >= 2);
    assert_int_equal(fake_ml_stat(&small_fake, "expired_token_requests"), 0);
    assert_int_equal(fake_ml_delete(&small_fake, "/__fake/faults"), 200);
    assert_int_equal(tdb_int(db.conn,
                             "SELECT count(*) FROM marketplace_connections WHERE tenant_id = '%s' "
                             "AND status = 'active'",
                             small.tenant),
                     1);
    char *now_refresh = db_token("refresh_token", small.tenant);
    assert_string_equal(now_refresh, old_refresh);
    free(now_refresh);
    free(old_refresh);
    /* Back up: the same stored refresh token works. */
    assert_int_equal(tsync_run(&small_jobsd, small.tenant, ", \"include\": [\"orders\"]", &r), 200);
    th_free(&r);
    assert_int_equal(fake_ml_stat(&small_fake, "invalid_grants"), 0);
}

static char *fake_token(const struct fake_ml *f, long long user, const char *key)
{
    char path[128];
    snprintf(path, sizeof path, "/__fake/sellers/%lld/tokens", user);
    json_t *t = fake_ml_get(f, path);
    assert_non_null(t);
    char *v = strdup(json_string_value(json_object_get(t, key)));
    json_decref(t);
    return v;
}

static void test_expired_token_refreshed_before_calls(void **state)
{
    (void)state;
    /* The stored token expires within 5 minutes: refresh first, never call with it. */
    tdb_execf(db.conn,
              "UPDATE marketplace_connections SET expires_at = now() + interval '1 minute' "
              "WHERE tenant_id = '%s'",
              small.tenant);
    char *old_refresh = db_token("refresh_token", small.tenant);
    json_decref(fake_ml_post(&small_fake, "/__fake/reset-stats", NULL));
    struct th_response r;
    assert_int_equal(tsync_run(&small_jobsd, small.tenant, ", \"include\": [\"orders\"]", &r), 200);
    assert_true(json_is_true(json_object_get(
        json_array_get(json_object_get(r.json, "connections"), 0), "tokenRefreshed")));
    th_free(&r);
    assert_int_equal(fake_ml_stat(&small_fake, "refreshes"), 1);
    assert_int_equal(fake_ml_stat(&small_fake, "invalid_token_requests"), 0);
    /* The rotated pair is what jobsd stored. */
    char *fa = fake_token(&small_fake, small.user_id, "access_token");
    char *fr = fake_token(&small_fake, small.user_id, "refresh_token");
    char *da = db_token("access_token", small.tenant);
    char *dr = db_token("refresh_token", small.tenant);
    assert_string_equal(fa, da);
    assert_string_equal(fr, dr);
    assert_string_not_equal(dr, old_refresh);
    assert_true(tdb_int(db.conn,
                        "SELECT count(*) FROM marketplace_connections WHERE tenant_id = '%s' AND "
                        "expires_at > now() + interval '5 hours'",
                        small.tenant) == 1);
    /* ...and reused on the next run: expire it again, the stored (rotated) refresh token
     * works. */
    tdb_execf(db.conn,
              "UPDATE marketplace_connections SET expires_at = now() - interval '1 minute' "
              "WHERE tenant_id = '%s'",
              small.tenant);
    assert_int_equal(tsync_run(&small_jobsd, small.tenant, ", \"include\": [\"orders\"]", &r), 200);
    th_free(&r);
    assert_int_equal(fake_ml_stat(&small_fake, "refreshes"), 2);
    assert_int_equal(fake_ml_stat(&small_fake, "invalid_grants"), 0);
    assert_client_discipline(&small_fake, 200, 4);
    free(fa);
    free(fr);
    free(da);
    free(dr);
    free(old_refresh);
}

/* A sync whose token needs refreshing, with the statement that stores the rotated pair failing
 * `fails` times with query_canceled (a trigger; an operator's cancel, a shutdown past its
 * grace or Ctrl-C PQcancel the job's statement the same way): the pair is still stored, and
 * the log says how. */
static void store_fails(int fails, const char *how)
{
    tdb_execf(db.conn,
              "CREATE SEQUENCE store_fault_seq; "
              "CREATE FUNCTION store_fault() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
              "IF NEW.refresh_token IS DISTINCT FROM OLD.refresh_token "
              "AND nextval('store_fault_seq') <= %d THEN RAISE EXCEPTION "
              "'canceling statement due to user request' USING ERRCODE = 'query_canceled'; "
              "END IF; RETURN NEW; END $$; "
              "CREATE TRIGGER store_fault BEFORE UPDATE ON marketplace_connections "
              "FOR EACH ROW EXECUTE FUNCTION store_fault()",
              fails);
    tdb_execf(db.conn,
              "UPDATE marketplace_connections SET expires_at = now() - interval '1 minute' "
              "WHERE tenant_id = '%s'",
              small.tenant);
    json_decref(fake_ml_post(&small_fake, "/__fake/reset-stats", NULL));
    struct th_response r;
    assert_int_equal(tsync_run(&small_jobsd, small.tenant, ", \"include\": [\"orders\"]", &r), 200);
    assert_true(json_is_true(json_object_get(r.json, "success")));
    th_free(&r);
    assert_int_equal(fake_ml_stat(&small_fake, "refreshes"), 1);
    assert_int_equal(tdb_int(db.conn, "SELECT last_value FROM store_fault_seq"), fails + 1);
    char *fr = fake_token(&small_fake, small.user_id, "refresh_token");
    char *dr = db_token("refresh_token", small.tenant);
    assert_string_equal(fr, dr);
    if (!jobsd_log_contains(&small_jobsd, how))
        fail_msg("the log does not say \"%s\"", how);
    tdb_exec(db.conn, "DROP TRIGGER store_fault ON marketplace_connections; "
                      "DROP FUNCTION store_fault(); DROP SEQUENCE store_fault_seq");
    free(fr);
    free(dr);
}

/* The old refresh token is already spent when the store fails: once, the store is undone to
 * its savepoint and run again under the row's lock; twice, the transaction is given up and
 * the pair is stored on a connection of its own. Either way the connection keeps working. */
static void test_cancelled_token_store_is_stored_again(void **state)
{
    (void)state;
    store_fails(1, "(it kept the row's lock)");
    store_fails(2, "(on a connection of its own)");
}

static void test_401_forces_one_refresh(void **state)
{
    (void)state;
    /* The token looks valid to jobsd but the API expired it: 401, one refresh, one retry. */
    char path[128];
    snprintf(path, sizeof path, "/__fake/sellers/%lld/expire-access-token", small.user_id);
    json_decref(fake_ml_post(&small_fake, path, NULL));
    json_decref(fake_ml_post(&small_fake, "/__fake/reset-stats", NULL));
    struct th_response r;
    assert_int_equal(tsync_run(&small_jobsd, small.tenant, ", \"include\": [\"listings\"]", &r),
                     200);
    assert_true(json_is_true(json_object_get(r.json, "success")));
    assert_true(json_is_true(json_object_get(
        json_array_get(json_object_get(r.json, "connections"), 0), "tokenRefreshed")));
    th_free(&r);
    assert_int_equal(fake_ml_stat(&small_fake, "refreshes"), 1);
    char *fa = fake_token(&small_fake, small.user_id, "access_token");
    char *da = db_token("access_token", small.tenant);
    assert_string_equal(fa, da);
    free(fa);
    free(da);
}

static void test_dead_refresh_token_needs_reauth(void **state)
{
    (void)state;
    /* A refresh token that was already used (rotated away): invalid_grant → 422, the
     * connection marked reauth_required, and later syncs answer 422 without calling. */
    tdb_execf(db.conn,
              "UPDATE marketplace_connections SET refresh_token = 'TG-small-refresh-1', "
              "expires_at = now() - interval '1 hour' WHERE tenant_id = '%s'",
              small.tenant);
    struct th_response r;
    assert_int_equal(tsync_run(&small_jobsd, small.tenant, NULL, &r), 422);
    assert_string_equal(th_error_code(&r), "reauth_required");
    assert_non_null(json_object_get(r.json, "jobLogId"));
    th_free(&r);
    assert_int_equal(tdb_int(db.conn,
                             "SELECT count(*) FROM marketplace_connections WHERE tenant_id = '%s' "
                             "AND status = 'reauth_required' AND last_error_code = "
                             "'invalid_grant' AND last_error_at IS NOT NULL",
                             small.tenant),
                     1);
    json_decref(fake_ml_post(&small_fake, "/__fake/reset-stats", NULL));
    assert_int_equal(tsync_run(&small_jobsd, small.tenant, NULL, &r), 422);
    assert_string_equal(th_error_code(&r), "reauth_required");
    th_free(&r);
    assert_int_equal(fake_ml_stat(&small_fake, "requests_total"), 0);
    /* Reconnect (what the product's OAuth flow would store) for the next tests. */
    char *fa = fake_token(&small_fake, small.user_id, "access_token");
    char *fr = fake_token(&small_fake, small.user_id, "refresh_token");
    tdb_execf(db.conn,
              "UPDATE marketplace_connections SET access_token = '%s', refresh_token = '%s', "
              "expires_at = now() + interval '5 hours', status = 'active' WHERE tenant_id = '%s'",
              fa, fr, small.tenant);
    free(fa);
    free(fr);
}

static void test_validation_and_no_connection(void **state)
{
    (void)state;
    struct th_response r;
    assert_int_equal(tsync_run(&small_jobsd, small.tenant, ", \"include\": [\"orderz\"]", &r), 400);
    th_free(&r);
    assert_int_equal(tsync_run(&small_jobsd, small.tenant, ", \"daysBack\": 366", &r), 400);
    th_free(&r);
    assert_int_equal(tsync_run(&small_jobsd, "5b5b5b5b-0000-4000-8000-0000000000ff", NULL, &r),
                     404);
    assert_string_equal(th_error_code(&r), "tenant_not_found");
    th_free(&r);
    tdb_exec(db.conn, "INSERT INTO tenants (id) VALUES ('5b5b5b5b-0000-4000-8000-0000000000fe')");
    assert_int_equal(tsync_run(&small_jobsd, "5b5b5b5b-0000-4000-8000-0000000000fe", NULL, &r),
                     422);
    assert_string_equal(th_error_code(&r), "no_active_connection");
    th_free(&r);
}

/* ---------------------------------------------------------------- re-sync */

static void test_resync_reflects_changes_and_keeps_visits(void **state)
{
    (void)state;
    struct th_response r;
    assert_int_equal(tsync_run(&small_jobsd, small.tenant, NULL, &r), 200);
    th_free(&r);
    /* An order changes status and one of its items is corrected. */
    char *ext = tdb_value(db.conn,
                          "SELECT o.external_id FROM orders o JOIN order_items i ON i.order_id = "
                          "o.id WHERE o.tenant_id = '%s' AND o.status = 'paid' GROUP BY "
                          "o.external_id HAVING count(*) = 1 LIMIT 1",
                          small.tenant);
    char *item = tdb_value(db.conn,
                           "SELECT i.listing_external_id FROM order_items i JOIN orders o ON "
                           "o.id = i.order_id WHERE o.external_id = %s",
                           ext);
    char *created =
        tdb_value(db.conn,
                  "SELECT to_char(ordered_at AT TIME ZONE 'UTC', "
                  "'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"') FROM orders WHERE external_id = %s",
                  ext);
    char body[1024];
    snprintf(body, sizeof body,
             "[{\"id\": %s, \"status\": \"cancelled\", \"date_created\": "
             "\"%s\", \"total_amount\": 10, \"paid_amount\": 0, \"currency_id\": \"BRL\", "
             "\"buyer\": {\"id\": 1}, \"seller\": {\"id\": %lld}, \"order_items\": [{\"item\": "
             "{\"id\": \"%s\", \"title\": \"x\"}, \"quantity\": 7, \"unit_price\": 1.25}]}]",
             ext, created, small.user_id, item);
    char path[128];
    snprintf(path, sizeof path, "/__fake/sellers/%lld/orders", small.user_id);
    json_decref(fake_ml_post(&small_fake, path, body));
    free(created);
    /* Visits: remember the stored values, then make every visits call fail. */
    long long before = tdb_int(db.conn,
                               "SELECT coalesce(sum(visits), -1) FROM listing_visits_daily "
                               "WHERE tenant_id = '%s'",
                               small.tenant);
    long long rows_before = tdb_int(
        db.conn, "SELECT count(*) FROM listing_visits_daily WHERE tenant_id = '%s'", small.tenant);
    assert_true(rows_before > 0);
    json_decref(fake_ml_post(&small_fake, "/__fake/faults",
                             "[{\"endpoint\": \"visits\", \"status\": 500, \"count\": 100000}]"));
    assert_int_equal(tsync_run(&small_jobsd, small.tenant, NULL, &r), 200);
    /* Partial: the body says so and names the failures; the job is recorded as error. */
    assert_true(json_is_false(json_object_get(r.json, "success")));
    json_t *errors =
        json_object_get(json_array_get(json_object_get(r.json, "connections"), 0), "errors");
    assert_true(json_array_size(errors) >= 1);
    const char *jid = json_string_value(json_object_get(r.json, "jobLogId"));
    assert_int_equal(tdb_int(db.conn,
                             "SELECT count(*) FROM job_logs WHERE id = '%s' AND status = "
                             "'error' AND metadata ? 'result'",
                             jid),
                     1);
    th_free(&r);
    assert_int_equal(fake_ml_delete(&small_fake, "/__fake/faults"), 200);
    /* Known visits were not overwritten by NULL or 0. */
    assert_int_equal(tdb_int(db.conn,
                             "SELECT coalesce(sum(visits), -1) FROM listing_visits_daily WHERE "
                             "tenant_id = '%s'",
                             small.tenant),
                     before);
    assert_int_equal(tdb_int(db.conn,
                             "SELECT count(*) FROM listing_visits_daily WHERE tenant_id = '%s'",
                             small.tenant),
                     rows_before);
    /* The order change and the item correction are in. */
    assert_int_equal(tdb_int(db.conn,
                             "SELECT count(*) FROM orders WHERE external_id = %s AND status = "
                             "'cancelled' AND external_status = 'cancelled'",
                             ext),
                     1);
    assert_int_equal(tdb_int(db.conn,
                             "SELECT sum(quantity) FROM order_items i JOIN orders o ON o.id = "
                             "i.order_id WHERE o.external_id = %s",
                             ext),
                     7);
    free(ext);
    free(item);
}

/* ---------------------------------------------------------------- concurrency */

struct caller {
    unsigned port;
    const char *tenant;
    struct th_response r;
};

static void *call(void *arg)
{
    struct caller *c = arg;
    char body[128];
    snprintf(body, sizeof body, "{\"tenantId\": \"%s\"}", c->tenant);
    assert_true(th_post_job(c->port, PATH, TEST_KEY, body, NULL, &c->r));
    return NULL;
}

static void test_concurrent_syncs_one_run_one_refresh(void **state)
{
    (void)state;
    /* Two instances, the same tenant at once, a token that needs refreshing: one job, one
     * refresh. */
    struct jobsd_proc other;
    assert_true(tsync_start_jobsd(&other, db.url, &small_fake, "200", "4", true, NULL));
    tdb_execf(db.conn,
              "UPDATE marketplace_connections SET expires_at = now() - interval '1 minute' "
              "WHERE tenant_id = '%s'",
              small.tenant);
    json_decref(fake_ml_post(&small_fake, "/__fake/reset-stats", NULL));
    long long jobs_before =
        tdb_int(db.conn, "SELECT count(*) FROM job_logs WHERE job_type = 'mercadolivre_sync'");
    struct caller a = {small_jobsd.port, small.tenant, {0}};
    struct caller b = {other.port, small.tenant, {0}};
    pthread_t ta, tb;
    pthread_create(&ta, NULL, call, &a);
    pthread_create(&tb, NULL, call, &b);
    pthread_join(ta, NULL);
    pthread_join(tb, NULL);
    assert_int_equal(a.r.status, 200);
    assert_int_equal(b.r.status, 200);
    assert_string_equal(json_string_value(json_object_get(a.r.json, "jobLogId")),
                        json_string_value(json_object_get(b.r.json, "jobLogId")));
    th_free(&a.r);
    th_free(&b.r);
    assert_int_equal(
        tdb_int(db.conn, "SELECT count(*) FROM job_logs WHERE job_type = 'mercadolivre_sync'"),
        jobs_before + 1);
    assert_int_equal(fake_ml_stat(&small_fake, "refreshes"), 1);
    assert_int_equal(fake_ml_stat(&small_fake, "invalid_grants"), 0);
    assert_int_equal(jobsd_stop(&other, 30000), 0);
}

/* Jobs wait in job_logs for any instance's runner: while the group's instance runs, it can
 * take a job queued through another one. A test of another instance's configuration stops it
 * first and starts it again after. */
static void pause_group_instance(void)
{
    assert_int_equal(jobsd_stop(&small_jobsd, 30000), 0);
}

static void resume_group_instance(void)
{
    assert_true(tsync_start_jobsd(&small_jobsd, db.url, &small_fake, "200", "4", true, NULL));
    children_keep(small_jobsd.pid);
}

static void test_missing_client_credentials(void **state)
{
    (void)state;
    pause_group_instance();
    struct jobsd_proc p;
    assert_true(tsync_start_jobsd(&p, db.url, &small_fake, "200", "4", false, NULL));
    tdb_execf(db.conn,
              "UPDATE marketplace_connections SET expires_at = now() - interval '1 minute' "
              "WHERE tenant_id = '%s'",
              small.tenant);
    struct th_response r;
    assert_int_equal(tsync_run(&p, small.tenant, NULL, &r), 422);
    assert_string_equal(th_error_code(&r), "ml_not_configured");
    th_free(&r);
    /* Not the seller's fault: the connection stays active. */
    assert_int_equal(tdb_int(db.conn,
                             "SELECT count(*) FROM marketplace_connections WHERE tenant_id = '%s' "
                             "AND status = 'active'",
                             small.tenant),
                     1);
    assert_int_equal(jobsd_stop(&p, 30000), 0);
    tdb_execf(db.conn,
              "UPDATE marketplace_connections SET expires_at = now() + interval '5 hours' WHERE "
              "tenant_id = '%s'",
              small.tenant);
    resume_group_instance();
}

static void test_tokens_encrypted_at_rest(void **state)
{
    (void)state;
    /* With TOKEN_ENCRYPTION_KEY, a refresh stores the rotated pair sealed (AES-256-GCM), and
     * the next run reads it back. */
    pause_group_instance();
    char base[128];
    snprintf(base, sizeof base, "ML_API_BASE_URL=%s", small_fake.url);
    const char *env[] = {base,
                         "ML_CLIENT_ID=" CLIENT_ID,
                         "ML_CLIENT_SECRET=" CLIENT_SECRET,
                         "SYNC_WAIT_SECONDS=300",
                         "TOKEN_ENCRYPTION_KEY=AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=",
                         NULL};
    struct jobsd_proc p;
    assert_true(jobsd_start(&p, db.url, env));
    for (int round = 0; round < 2; round++) {
        tdb_execf(db.conn,
                  "UPDATE marketplace_connections SET expires_at = now() - interval '1 minute' "
                  "WHERE tenant_id = '%s'",
                  small.tenant);
        struct th_response r;
        assert_int_equal(tsync_run(&p, small.tenant, ", \"include\": [\"orders\"]", &r), 200);
        th_free(&r);
        char *da = db_token("access_token", small.tenant);
        char *dr = db_token("refresh_token", small.tenant);
        char *fa = fake_token(&small_fake, small.user_id, "access_token");
        assert_int_equal(strncmp(da, "enc:v1:", 7), 0);
        assert_int_equal(strncmp(dr, "enc:v1:", 7), 0);
        assert_null(strstr(da, fa));
        free(da);
        free(dr);
        free(fa);
    }
    assert_int_equal(jobsd_stop(&p, 30000), 0);
    /* Leave plaintext tokens for the other tests (what the product's OAuth flow writes). */
    char *fa = fake_token(&small_fake, small.user_id, "access_token");
    char *fr = fake_token(&small_fake, small.user_id, "refresh_token");
    tdb_execf(db.conn,
              "UPDATE marketplace_connections SET access_token = '%s', refresh_token = '%s', "
              "expires_at = now() + interval '5 hours' WHERE tenant_id = '%s'",
              fa, fr, small.tenant);
    free(fa);
    free(fr);
    resume_group_instance();
}

/* ---------------------------------------------------------------- the command line */

static void test_cli_sync(void **state)
{
    (void)state;
    /* SPEC 5: `jobsd sync-mercadolivre` runs the same job as HTTP, trigger `cli`, prints the
     * 200 body; exit 0 done, 2 usage or a 4xx of the request. */
    char dburl[600], base[128];
    snprintf(dburl, sizeof dburl, "DATABASE_URL=%s", db.url);
    snprintf(base, sizeof base, "ML_API_BASE_URL=%s", small_fake.url);
    const char *env[] = {
        dburl, base, "ML_MAX_RPS=200", "ML_CLIENT_ID=" CLIENT_ID, "ML_CLIENT_SECRET=" CLIENT_SECRET,
        NULL};
    const char *argv[] = {"sync-mercadolivre", "--tenant", small.tenant, "--days-back", "5",
                          "--include",         "orders",   NULL};
    char *out, *err;
    assert_int_equal(jobsd_run(argv, env, &out, &err), 0);
    json_t *j = json_loads(out, 0, NULL);
    assert_non_null(j);
    assert_true(json_is_true(json_object_get(j, "success")));
    assert_true(json_is_false(json_object_get(j, "deduplicated")));
    const char *id = json_string_value(json_object_get(j, "jobLogId"));
    assert_non_null(id);
    assert_int_equal(tdb_int(db.conn,
                             "SELECT count(*) FROM job_logs WHERE id = '%s' AND trigger = 'cli' "
                             "AND job_type = 'mercadolivre_sync' AND status = 'success' AND "
                             "tenant_id = '%s'",
                             id, small.tenant),
                     1);
    json_t *c = json_array_get(json_object_get(j, "connections"), 0);
    assert_true(json_integer_value(json_object_get(json_object_get(c, "orders"), "fetched")) > 0);
    json_decref(j);
    free(out);
    free(err);

    const char *bad[] = {"sync-mercadolivre", "--tenant", small.tenant, "--days-back", "0", NULL};
    assert_int_equal(jobsd_run(bad, env, &out, &err), 2);
    if (!strstr(err, "days-back"))
        fail_msg("the error does not name --days-back: %s", err);
    free(out);
    free(err);
    const char *nobody[] = {"sync-mercadolivre", "--tenant", "5b5b5b5b-0000-4000-8000-0000000000ff",
                            NULL};
    assert_int_equal(jobsd_run(nobody, env, &out, &err), 2);
    if (!strstr(err, "does not exist"))
        fail_msg("the error does not say the tenant does not exist: %s", err);
    free(out);
    free(err);
}

/* ---------------------------------------------------------------- the default rate */

static void test_default_rate_across_two_tenants(void **state)
{
    (void)state;
    /* ML_MAX_RPS=5 (the default) holds for the process, across two concurrent syncs of two
     * tenants. */
    struct tsync_seller two[2] = {
        {"5c5c5c5c-0000-4000-8000-000000000003", 5500000003LL, "APP_USR-r1", "TG-r1", 21600, NULL},
        {"5d5d5d5d-0000-4000-8000-000000000004", 5500000004LL, "APP_USR-r2", "TG-r2", 21600, NULL},
    };
    for (int i = 0; i < 2; i++)
        two[i].extra = json_pack("{s:{s:i, s:s, s:I}, s:{s:i, s:i}, s:{s:i, s:i}}",
                                 "generate_items", "count", 12, "prefix", "MLB", "start",
                                 (json_int_t)(9000000001LL + i * 1000), "generate_orders", "count",
                                 20, "days", 2, "generate_visits", "days", 3, "max", 5);
    const char *world = tsync_world(two, 2, "rate", NULL);
    for (int i = 0; i < 2; i++)
        json_decref(two[i].extra);
    struct fake_ml f;
    assert_true(fake_ml_start(&f, world, NULL));
    tsync_connect(db.conn, &two[0], two[0].access, two[0].refresh, "now() + interval '6 hours'");
    tsync_connect(db.conn, &two[1], two[1].access, two[1].refresh, "now() + interval '6 hours'");
    struct jobsd_proc p;
    char base[128];
    snprintf(base, sizeof base, "ML_API_BASE_URL=%s", f.url);
    const char *env[] = {base, "SYNC_WAIT_SECONDS=300", "JOB_WORKERS=2", NULL};
    assert_true(jobsd_start(&p, db.url, env));
    struct caller a = {p.port, two[0].tenant, {0}};
    struct caller b = {p.port, two[1].tenant, {0}};
    pthread_t ta, tb;
    pthread_create(&ta, NULL, call, &a);
    pthread_create(&tb, NULL, call, &b);
    pthread_join(ta, NULL);
    pthread_join(tb, NULL);
    assert_int_equal(a.r.status, 200);
    assert_int_equal(b.r.status, 200);
    th_free(&a.r);
    th_free(&b.r);
    long long total = fake_ml_stat(&f, "requests_total");
    assert_true(total >= 30);
    long long per_second = fake_ml_stat(&f, "max_per_second");
    if (per_second > 5 + rate_slack(5))
        fail_msg("the fake saw %lld requests in one second (ML_MAX_RPS=5)", per_second);
    assert_client_discipline(&f, 5, 4);
    assert_int_equal(jobsd_stop(&p, 30000), 0);
    fake_ml_stop(&f);
    unlink(world);
}

/* What a failed test started dies with it (see children_kill_since). */
static unsigned long long test_mark;

static int mark_children(void **state)
{
    (void)state;
    test_mark = children_mark();
    return 0;
}

static int end_children(void **state)
{
    (void)state;
    children_kill_since(test_mark);
    return 0;
}

/* The same, and the group's instance running again when a test failed while it was paused. */
static int end_small_children(void **state)
{
    end_children(state);
    if (small_jobsd.pid <= 0 &&
        !tsync_start_jobsd(&small_jobsd, db.url, &small_fake, "200", "4", true, NULL))
        return -1;
    children_keep(small_jobsd.pid);
    return 0;
}

#define ISOLATED(f)       cmocka_unit_test_setup_teardown(f, mark_children, end_children)
#define ISOLATED_SMALL(f) cmocka_unit_test_setup_teardown(f, mark_children, end_small_children)

int main(void)
{
    const struct CMUnitTest big[] = {ISOLATED(test_big_seller)};
    const struct CMUnitTest small_tests[] = {
        ISOLATED_SMALL(test_retries_429_and_5xx),
        ISOLATED_SMALL(test_unavailable_is_503),
        ISOLATED_SMALL(test_token_endpoint_down_keeps_connection),
        ISOLATED_SMALL(test_expired_token_refreshed_before_calls),
        ISOLATED_SMALL(test_cancelled_token_store_is_stored_again),
        ISOLATED_SMALL(test_401_forces_one_refresh),
        ISOLATED_SMALL(test_dead_refresh_token_needs_reauth),
        ISOLATED_SMALL(test_validation_and_no_connection),
        ISOLATED_SMALL(test_resync_reflects_changes_and_keeps_visits),
        ISOLATED_SMALL(test_concurrent_syncs_one_run_one_refresh),
        ISOLATED_SMALL(test_missing_client_credentials),
        ISOLATED_SMALL(test_tokens_encrypted_at_rest),
        ISOLATED_SMALL(test_cli_sync),
    };
    const struct CMUnitTest rate[] = {ISOLATED(test_default_rate_across_two_tenants)};
    if (setup(NULL) != 0)
        return 1;
    int failed = cmocka_run_group_tests_name("sync_big_seller", big, NULL, NULL);
    failed += tgroup_run("sync_faults_tokens", small_tests, small_setup, small_teardown);
    failed += cmocka_run_group_tests_name("sync_rate", rate, NULL, NULL);
    teardown(NULL);
    return failed;
}
