/* End-to-end tests of the numbers sellers see (issue 18): against the fake Mercado Livre API
 * behaving like the documented one (tests/fake_ml/README.md cites the source of each rule), a
 * sync, then the rebuild of the day it changed, must give the corrected row. Each test fails
 * on the sync before issue 18 (a cancelled order counted forever, a late payment never seen, a
 * partial refund dropping the whole sale, a partial answer erasing the buyer, listings
 * blocked by an expired token, an order lost to moving pages, a long scroll id ending the
 * listings scan, an unchanged account rewritten). Every world refuses a visits `ending` after
 * today: jobsd sends no undocumented value (TRUTH_ACCEPT_FUTURE_ENDING=1 lets the worlds accept
 * one, to run these tests against a jobsd that sends it and see each fail on its own
 * assertion). */
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

static struct testdb db;
static unsigned long long mark;

/* One test's world: a seller on its own fake, its tenant, a jobsd pointed at them. */
struct world {
    struct tsync_seller seller;
    struct fake_ml fake;
    struct jobsd_proc jobsd;
    const char *path;
};

/* Explicit dates of the worlds are January 2024; the fake moves them so that 2024-02-01 is
 * today (UTC): 2024-01-30 is two days ago. */
static const char *const REBASE[] = {"--rebase", "2024-02-01", NULL};

static void start_world(struct world *w, const char *tenant, long long user, json_t *extra,
                        json_t *top, const char *concurrency)
{
    memset(w, 0, sizeof *w);
    char access[64], refresh[64];
    snprintf(access, sizeof access, "APP_USR-truth-%lld", user);
    snprintf(refresh, sizeof refresh, "TG-truth-%lld", user);
    static char tokens[2][64];
    snprintf(tokens[0], sizeof tokens[0], "%s", access);
    snprintf(tokens[1], sizeof tokens[1], "%s", refresh);
    w->seller = (struct tsync_seller){tenant, user, tokens[0], tokens[1], 21600, extra};
    json_t *t = top ? top : json_object();
    const char *accept = getenv("TRUTH_ACCEPT_FUTURE_ENDING");
    bool strict = !accept || strcmp(accept, "1") != 0;
    json_object_set_new(t, "visits_future_ending", json_string(strict ? "error" : "accept"));
    w->path = tsync_world(&w->seller, 1, "truth", t);
    json_decref(t);
    json_decref(extra);
    assert_true(fake_ml_start(&w->fake, w->path, REBASE));
    tsync_connect(db.conn, &w->seller, tokens[0], tokens[1], "now() + interval '6 hours'");
    assert_true(tsync_start_jobsd(&w->jobsd, db.url, &w->fake, "200", concurrency, true, NULL));
}

static void stop_world(struct world *w)
{
    /* No visits request asked for a day after today (the world refuses it with a 400). */
    const char *accept = getenv("TRUTH_ACCEPT_FUTURE_ENDING");
    if (!accept || strcmp(accept, "1") != 0)
        assert_int_equal(fake_ml_stat(&w->fake, "visits_future_endings"), 0);
    assert_int_equal(jobsd_stop(&w->jobsd, 30000), 0);
    fake_ml_stop(&w->fake);
    unlink(w->path);
}

/* A sync with body extra (", \"daysBack\": 5"): the answer (caller th_free). */
static void sync_ok(struct world *w, const char *extra, struct th_response *r)
{
    assert_int_equal(tsync_run(&w->jobsd, w->seller.tenant, extra, r), 200);
    if (!json_is_true(json_object_get(r->json, "success")))
        fail_msg("sync did not succeed: %s", r->body);
}

/* The day n days before today (UTC), as YYYY-MM-DD (static buffer, 2 slots). */
static const char *day_before(int n)
{
    static char out[2][16];
    static unsigned slot;
    char *d = out[slot++ % 2];
    char *v = tdb_value(db.conn,
                        "SELECT to_char((now() AT TIME ZONE 'UTC')::date - %d, "
                        "'YYYY-MM-DD')",
                        n);
    snprintf(d, 16, "%s", v);
    free(v);
    return d;
}

/* Rebuilds one day of the tenant through the API; then "visits|orders|units|gmv|conversion"
 * of the listing's row (NULL spelled out). Caller frees. */
static char *rebuild_row(struct world *w, const char *day, const char *listing)
{
    char body[256];
    snprintf(body, sizeof body, "{\"tenantId\": \"%s\", \"from\": \"%s\", \"to\": \"%s\"}",
             w->seller.tenant, day, day);
    struct th_response r;
    assert_true(
        th_post_job(w->jobsd.port, "/api/v1/jobs/rebuild-daily-metrics", TEST_KEY, body, NULL, &r));
    assert_int_equal(r.status, 200);
    th_free(&r);
    return tdb_value(db.conn,
                     "SELECT coalesce((SELECT concat_ws('|', coalesce(m.visits::text, 'NULL'), "
                     " m.orders, m.units, m.gmv, coalesce(m.conversion::text, 'NULL')) "
                     " FROM listing_metrics_daily m JOIN listings l ON l.id = m.listing_id "
                     " WHERE l.tenant_id = '%s' AND l.external_id = '%s' AND m.date = '%s'), "
                     " 'NO ROW')",
                     w->seller.tenant, listing, day);
}

static void expect_row(struct world *w, const char *day, const char *listing, const char *want)
{
    char *got = rebuild_row(w, day, listing);
    if (strcmp(got, want) != 0) {
        print_error("%s on %s: got %s, want %s\n", listing, day, got, want);
        free(got);
        fail();
    }
    free(got);
}

/* POST /__fake/sellers/{user}/orders/{id}/{action} with body. */
static void order_action(struct world *w, long long id, const char *action, const char *body)
{
    char path[160];
    snprintf(path, sizeof path, "/__fake/sellers/%lld/orders/%lld/%s", w->seller.user_id, id,
             action);
    json_decref(fake_ml_post(&w->fake, path, body ? body : "{}"));
}

static json_t *item(const char *id, double price)
{
    return json_pack("{s:s, s:f}", "id", id, "price", price);
}

/* An order with one item line (qty x price), in January 2024 (rebased), paid unless said. */
static json_t *order(long long id, const char *status, const char *created, const char *item_id,
                     int qty, double price)
{
    return json_pack("{s:I, s:s, s:s, s:[{s:{s:s}, s:i, s:f}]}", "id", (json_int_t)id, "status",
                     status, "date_created", created, "order_items", "item", "id", item_id,
                     "quantity", qty, "unit_price", price);
}

/* ---------------------------------------------------------------- order changes */

/* An order cancelled after the first sync stops counting: the seller's search no longer
 * shows it, so the sync asks for the window's cancelled orders (or reads it by id). */
static void test_cancelled_after_first_sync_stops_counting(void **state)
{
    (void)state;
    json_t *extra = json_pack(
        "{s:[o], s:[o, o], s:{s:{s:i}}}", "items", item("MLB9100000001", 50), "orders",
        order(9100000001001LL, "paid", "2024-01-30T12:00:00.000-03:00", "MLB9100000001", 2, 50),
        order(9100000001002LL, "paid", "2024-01-30T13:00:00.000-03:00", "MLB9100000001", 1, 10),
        "visits", "MLB9100000001", "2024-01-30", 10);
    struct world w;
    start_world(&w, "7e000000-0000-4000-8000-000000000001", 9100000001LL, extra, NULL, "4");
    struct th_response r;
    sync_ok(&w, ", \"daysBack\": 5", &r);
    th_free(&r);
    const char *d = day_before(2);
    expect_row(&w, d, "MLB9100000001", "10|2|3|110.00|0.2000");
    order_action(&w, 9100000001001LL, "cancel", NULL);
    sync_ok(&w, ", \"daysBack\": 5", &r);
    th_free(&r);
    assert_int_equal(tdb_int(db.conn,
                             "SELECT count(*) FROM orders WHERE external_id = 9100000001001 AND "
                             "status = 'cancelled' AND external_status = 'cancelled'"),
                     1);
    /* orders, units, GMV and conversion of its day drop */
    expect_row(&w, d, "MLB9100000001", "10|1|1|10.00|0.1000");
    stop_world(&w);
}

/* A boleto: created ten days ago, paid today. A daysBack 2 sync does not search that far back
 * by creation date; the updated pass (since the previous complete sync) finds it. */
static void test_boleto_paid_later_counts(void **state)
{
    (void)state;
    json_t *extra = json_pack("{s:[o], s:[o]}", "items", item("MLB9100000002", 30), "orders",
                              order(9100000002001LL, "payment_required",
                                    "2024-01-22T15:00:00.000-03:00", "MLB9100000002", 1, 30));
    struct world w;
    start_world(&w, "7e000000-0000-4000-8000-000000000002", 9100000002LL, extra, NULL, "4");
    struct th_response r;
    sync_ok(&w, ", \"daysBack\": 30", &r);
    th_free(&r);
    const char *d = day_before(10);
    expect_row(&w, d, "MLB9100000002", "0|0|0|0.00|NULL"); /* pending: not a sale */
    order_action(&w, 9100000002001LL, "pay", NULL);
    sync_ok(&w, ", \"daysBack\": 2", &r);
    th_free(&r);
    expect_row(&w, d, "MLB9100000002", "0|1|1|30.00|NULL");
    stop_world(&w);
}

/* A partial refund keeps the sale and lowers its GMV by the refund. */
static void test_partial_refund_lowers_gmv(void **state)
{
    (void)state;
    json_t *o =
        order(9100000003001LL, "paid", "2024-01-29T10:00:00.000-03:00", "MLB9100000003", 1, 100);
    json_object_set_new(o, "payments",
                        json_pack("[{s:I, s:s, s:f, s:f, s:s}]", "id", (json_int_t)910000003001LL,
                                  "status", "approved", "transaction_amount", 100.0,
                                  "total_paid_amount", 100.0, "date_approved",
                                  "2024-01-29T10:05:00.000-03:00"));
    json_t *extra = json_pack("{s:[o], s:[o]}", "items", item("MLB9100000003", 100), "orders", o);
    struct world w;
    start_world(&w, "7e000000-0000-4000-8000-000000000003", 9100000003LL, extra, NULL, "4");
    struct th_response r;
    sync_ok(&w, ", \"daysBack\": 5", &r);
    th_free(&r);
    const char *d = day_before(3);
    expect_row(&w, d, "MLB9100000003", "0|1|1|100.00|NULL");
    order_action(&w, 9100000003001LL, "partial-refund", "{\"amount\": 25}");
    sync_ok(&w, ", \"daysBack\": 5", &r);
    th_free(&r);
    assert_int_equal(tdb_int(db.conn, "SELECT count(*) FROM orders WHERE external_id = "
                                      "9100000003001 AND status = 'partially_refunded' AND "
                                      "refunded_amount = 25"),
                     1);
    expect_row(&w, d, "MLB9100000003", "0|1|1|75.00|NULL");
    stop_world(&w);
}

/* A 206 answer that leaves out the buyer and the shipping erases neither the stored buyer
 * nor a delivered status, while the rest of the order is still written. */
static void test_partial_answer_keeps_buyer(void **state)
{
    (void)state;
    json_t *o =
        order(9100000004001LL, "paid", "2024-01-30T09:00:00.000-03:00", "MLB9100000004", 1, 40);
    json_object_set_new(o, "buyer", json_pack("{s:I}", "id", (json_int_t)777000111LL));
    json_object_set_new(o, "shipping",
                        json_pack("{s:I, s:s}", "id", (json_int_t)44001LL, "status", "delivered"));
    json_t *extra = json_pack("{s:[o], s:[o]}", "items", item("MLB9100000004", 40), "orders", o);
    struct world w;
    start_world(&w, "7e000000-0000-4000-8000-000000000004", 9100000004LL, extra, NULL, "4");
    struct th_response r;
    sync_ok(&w, ", \"daysBack\": 5, \"include\": [\"orders\"]", &r);
    th_free(&r);
    const char *q = "SELECT concat_ws('|', coalesce(buyer_id::text, 'NULL'), status, paid_amount) "
                    "FROM orders WHERE external_id = 9100000004001";
    char *v = tdb_value(db.conn, "%s", q);
    assert_string_equal(v, "777000111|delivered|40.00");
    free(v);
    /* The order changes (its paid amount), and the next answers are partial. */
    json_decref(fake_ml_post(&w.fake, "/__fake/sellers/9100000004/orders",
                             "[{\"id\": 9100000004001, \"paid_amount\": 39.5}]"));
    json_decref(fake_ml_post(&w.fake, "/__fake/faults",
                             "[{\"endpoint\": \"orders_search\", \"mode\": \"partial\"}]"));
    sync_ok(&w, ", \"daysBack\": 5, \"include\": [\"orders\"]", &r);
    th_free(&r);
    assert_true(fake_ml_stat(&w.fake, "partial_answers") >= 1);
    v = tdb_value(db.conn, "%s", q);
    assert_string_equal(v, "777000111|delivered|39.50");
    free(v);
    stop_world(&w);
}

/* ---------------------------------------------------------------- paging and listings */

/* An order whose date_closed is set while jobsd pages (a seller's search sorts by
 * date_closed) moves to the end and shifts the pages after it: jobsd sees the range short of
 * paging.total and reads it again; no order is lost. */
static void test_order_moving_during_paging_loses_none(void **state)
{
    (void)state;
    json_t *orders = json_array();
    for (int i = 0; i < 120; i++) {
        char created[40];
        snprintf(created, sizeof created, "2024-01-29T%02d:%02d:00.000-03:00", 8 + i / 60, i % 60);
        json_array_append_new(orders,
                              order(9100000006000LL + i, i == 9 ? "payment_required" : "paid",
                                    created, "MLB9100000006", 1, 10));
    }
    json_t *extra = json_pack("{s:[o], s:o}", "items", item("MLB9100000006", 10), "orders", orders);
    struct world w;
    /* One request at a time: page 3 is asked after the hook moved the order. */
    start_world(&w, "7e000000-0000-4000-8000-000000000006", 9100000006LL, extra, NULL, "1");
    order_action(&w, 9100000006009LL, "pay", "{\"on_page\": 2}");
    struct th_response r;
    sync_ok(&w, ", \"daysBack\": 5, \"include\": [\"orders\"]", &r);
    assert_int_equal(fake_ml_stat(&w.fake, "hooks_applied"), 1);
    assert_int_equal(tdb_int(db.conn, "SELECT count(*) FROM orders WHERE external_id BETWEEN "
                                      "9100000006000 AND 9100000006119"),
                     120);
    assert_true(tsync_stat(&r, "orders", "repaged") >= 1);
    th_free(&r);
    assert_int_equal(tdb_int(db.conn, "SELECT count(*) FROM orders WHERE external_id = "
                                      "9100000006009 AND status = 'paid'"),
                     1);
    stop_world(&w);
}

/* A 300-character scroll id (production's are long, and longer ones exist) pages the scan to
 * its end. */
static void test_long_scroll_id_pages_to_the_end(void **state)
{
    (void)state;
    json_t *extra = json_pack("{s:{s:i, s:s, s:I}}", "generate_items", "count", 250, "prefix",
                              "MLB", "start", (json_int_t)9100070001LL);
    json_t *top = json_pack("{s:i}", "scroll_id_length", 300);
    struct world w;
    start_world(&w, "7e000000-0000-4000-8000-000000000007", 9100000007LL, extra, top, "4");
    struct th_response r;
    sync_ok(&w, ", \"daysBack\": 5, \"include\": [\"listings\"]", &r);
    assert_int_equal(tsync_stat(&r, "listings", "discovered"), 250);
    th_free(&r);
    assert_true(fake_ml_stat(&w.fake, "scan_pages") >= 3);
    assert_int_equal(fake_ml_stat(&w.fake, "scroll_errors"), 0);
    stop_world(&w);
}

/* ---------------------------------------------------------------- visits */

struct bg_sync {
    struct world *w;
    const char *extra;
    struct th_response r;
};

static void *bg_sync(void *arg)
{
    struct bg_sync *b = arg;
    tsync_run(&b->w->jobsd, b->w->seller.tenant, b->extra, &b->r);
    return NULL;
}

static bool visits_started(void *ctx)
{
    return fake_ml_stat(ctx, "requests.visits") >= 8;
}

/* The access token expires in the middle of the visits pass: the visits API answers 403
 * PolicyAgent for an expired token too. jobsd refreshes once, asks again, and marks no
 * listing blocked. */
static void test_token_expiring_mid_visits_blocks_nothing(void **state)
{
    (void)state;
    json_t *extra =
        json_pack("{s:{s:i, s:s, s:I}, s:{s:i, s:i}}", "generate_items", "count", 40, "prefix",
                  "MLB", "start", (json_int_t)9100080001LL, "generate_visits", "days", 5, "max", 9);
    struct world w;
    start_world(&w, "7e000000-0000-4000-8000-000000000008", 9100000008LL, extra, NULL, "2");
    struct th_response r;
    sync_ok(&w, ", \"daysBack\": 3", &r);
    th_free(&r);
    json_decref(fake_ml_post(&w.fake, "/__fake/config", "{\"latency_ms\": 60}"));
    json_decref(fake_ml_post(&w.fake, "/__fake/reset-stats", NULL));
    struct bg_sync b = {&w, ", \"daysBack\": 3, \"include\": [\"visits\"]", {0}};
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, bg_sync, &b), 0);
    assert_true(t_wait_until(visits_started, &w.fake, 30000));
    char path[96];
    snprintf(path, sizeof path, "/__fake/sellers/%lld/expire-access-token", w.seller.user_id);
    json_decref(fake_ml_post(&w.fake, path, NULL));
    pthread_join(t, NULL);
    assert_int_equal(b.r.status, 200);
    assert_true(json_is_true(json_object_get(b.r.json, "success")));
    assert_int_equal(tsync_stat(&b.r, "visits", "listings"), 40);
    th_free(&b.r);
    assert_true(fake_ml_stat(&w.fake, "visits_forbidden") >= 1);
    assert_int_equal(fake_ml_stat(&w.fake, "refreshes"), 1);
    assert_int_equal(tdb_int(db.conn,
                             "SELECT count(*) FROM listings WHERE tenant_id = '%s' AND "
                             "access_status = 'blocked_by_policy'",
                             w.seller.tenant),
                     0);
    stop_world(&w);
}

/* An application without the visits permission: every visits request is refused, also with a
 * fresh token: an authorisation error of the connection, reported; no listing is marked. */
static void test_visits_permission_missing_marks_nothing(void **state)
{
    (void)state;
    json_t *extra = json_pack("{s:{s:i, s:s, s:I}, s:b}", "generate_items", "count", 5, "prefix",
                              "MLB", "start", (json_int_t)9100090001LL, "visits_permission", 0);
    struct world w;
    start_world(&w, "7e000000-0000-4000-8000-000000000009", 9100000009LL, extra, NULL, "2");
    struct th_response r;
    assert_int_equal(tsync_run(&w.jobsd, w.seller.tenant, ", \"daysBack\": 3", &r), 200);
    assert_true(json_is_false(json_object_get(r.json, "success")));
    assert_non_null(strstr(r.body, "reauth_required"));
    assert_non_null(strstr(r.body, "visits permission"));
    th_free(&r);
    assert_int_equal(fake_ml_stat(&w.fake, "refreshes"), 1);
    assert_int_equal(tdb_int(db.conn,
                             "SELECT count(*) FROM listings WHERE tenant_id = '%s' AND "
                             "access_status = 'blocked_by_policy'",
                             w.seller.tenant),
                     0);
    stop_world(&w);
}

/* One listing refused while the others succeed with the same fresh token: that one, and only
 * that one, is blocked by a policy. */
static void test_visits_policy_block_of_one_listing(void **state)
{
    (void)state;
    json_t *extra = json_pack("{s:[o, o, o]}", "items", item("MLB9100000101", 10),
                              item("MLB9100000102", 10), item("MLB9100000103", 10));
    struct world w;
    start_world(&w, "7e000000-0000-4000-8000-000000000010", 9100000010LL, extra, NULL, "2");
    struct th_response r;
    sync_ok(&w, ", \"daysBack\": 3, \"include\": [\"listings\"]", &r);
    th_free(&r);
    /* Blocked after the listings were read: only its visits are refused now. */
    json_decref(fake_ml_post(&w.fake, "/__fake/sellers/9100000010/items",
                             "[{\"id\": \"MLB9100000102\", \"policy_blocked\": true}]"));
    sync_ok(&w, ", \"daysBack\": 3, \"include\": [\"visits\"]", &r);
    assert_int_equal(tsync_stat(&r, "visits", "listings"), 2);
    th_free(&r);
    assert_int_equal(fake_ml_stat(&w.fake, "refreshes"), 1);
    char *v = tdb_value(db.conn,
                        "SELECT string_agg(external_id, ',' ORDER BY external_id) FROM listings "
                        "WHERE tenant_id = '%s' AND access_status = 'blocked_by_policy'",
                        w.seller.tenant);
    assert_string_equal(v, "MLB9100000102");
    free(v);
    stop_world(&w);
}

/* ---------------------------------------------------------------- an unchanged account */

/* Rows of the sync's tables whose xmin is at least xid: what a sync wrote. */
static long long rows_written_since(long long xid)
{
    return tdb_int(db.conn,
                   "SELECT (SELECT count(*) FROM listings WHERE xmin::text::bigint >= %lld) + "
                   "(SELECT count(*) FROM orders WHERE xmin::text::bigint >= %lld) + "
                   "(SELECT count(*) FROM order_items WHERE xmin::text::bigint >= %lld) + "
                   "(SELECT count(*) FROM listing_visits_daily WHERE xmin::text::bigint >= %lld)",
                   xid, xid, xid, xid);
}

/* A sync of an account where nothing changed writes nothing and costs at most one more search
 * (the updated pass) than the first. */
static void test_unchanged_account_writes_nothing(void **state)
{
    (void)state;
    json_t *extra = json_pack("{s:{s:i, s:s, s:I}, s:{s:i, s:i, s:i, s:{s:i, s:i}}, s:{s:i, s:i}}",
                              "generate_items", "count", 30, "prefix", "MLB", "start",
                              (json_int_t)9100110001LL, "generate_orders", "count", 300, "days", 5,
                              "items_per_order_max", 2, "status_mix", "paid", 90, "cancelled", 10,
                              "generate_visits", "days", 6, "max", 20);
    struct world w;
    start_world(&w, "7e000000-0000-4000-8000-000000000011", 9100000011LL, extra, NULL, "4");
    json_decref(fake_ml_post(&w.fake, "/__fake/reset-stats", NULL));
    struct th_response r;
    sync_ok(&w, ", \"daysBack\": 5", &r);
    th_free(&r);
    long long first_total = fake_ml_stat(&w.fake, "requests_total");
    long long first_orders = fake_ml_stat(&w.fake, "requests.orders_search");
    json_decref(fake_ml_post(&w.fake, "/__fake/reset-stats", NULL));
    long long xid = tdb_int(db.conn, "SELECT txid_current() %% 4294967296");
    sync_ok(&w, ", \"daysBack\": 5", &r);
    assert_int_equal(tsync_stat(&r, "orders", "upserted"), 0);
    assert_int_equal(tsync_stat(&r, "orders", "reread"), 0);
    assert_int_equal(tsync_stat(&r, "listings", "upserted"), 0);
    th_free(&r);
    assert_int_equal(rows_written_since(xid), 0);
    long long again_total = fake_ml_stat(&w.fake, "requests_total");
    long long again_orders = fake_ml_stat(&w.fake, "requests.orders_search");
    print_message(
        "unchanged account: %lld requests (orders searches %lld), first sync %lld (%lld)\n",
        again_total, again_orders, first_total, first_orders);
    assert_true(again_orders <= first_orders + 1);
    assert_true(again_total <= first_total + 1);
    stop_world(&w);
}

/* ---------------------------------------------------------------- main */

static int setup(void **state)
{
    (void)state;
    testdb_create(&db, "truth");
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    testdb_drop(&db);
    return 0;
}

static int mark_children(void **state)
{
    (void)state;
    mark = children_mark();
    return 0;
}

static int end_children(void **state)
{
    (void)state;
    children_kill_since(mark);
    return 0;
}

#define T(f) cmocka_unit_test_setup_teardown(f, mark_children, end_children)

int main(void)
{
    const struct CMUnitTest tests[] = {
        T(test_cancelled_after_first_sync_stops_counting),
        T(test_boleto_paid_later_counts),
        T(test_partial_refund_lowers_gmv),
        T(test_partial_answer_keeps_buyer),
        T(test_order_moving_during_paging_loses_none),
        T(test_long_scroll_id_pages_to_the_end),
        T(test_token_expiring_mid_visits_blocks_nothing),
        T(test_visits_permission_missing_marks_nothing),
        T(test_visits_policy_block_of_one_listing),
        T(test_unchanged_account_writes_nothing),
    };
    return tgroup_run("sync_truth", tests, setup, teardown);
}
