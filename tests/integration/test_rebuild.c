/* Integration tests of the rebuild (metrics_aggregation, SPEC 1.1) against a real PostgreSQL:
 * every run goes through the CLI (`jobsd rebuild-daily-metrics`, the same code path as HTTP),
 * every expected number is a literal computed by hand (the arithmetic is in the comments).
 * One database per program (testdb_create); each test uses its own tenant(s), so the tests
 * are independent of each other and of their order. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <ctype.h>
#include <jansson.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testdb.h"
#include "testfx.h"
#include "testproc.h"
#include "testtime.h"

static struct testdb db;
static long long next_external_id = 1000;

/* ------------------------------------------------------------------ helpers */

struct result {
    char job[40];
    long long days, upserted, unchanged, deleted, listings, duration;
    char from[16], to[16], max_date[16]; /* max_date "" when JSON null */
};

struct cli {
    int rc;
    char *out;
    char *err;
};

static void cli_free(struct cli *c)
{
    free(c->out);
    free(c->err);
    memset(c, 0, sizeof *c);
}

/* Runs `jobsd rebuild-daily-metrics ARGS...` (args NULL-terminated) with DATABASE_URL and the
 * extra NAME=value entries of env (may be NULL). */
static void cli_run(struct cli *c, const char *const *args, const char *const *env)
{
    const char *argv[24];
    size_t n = 0;
    argv[n++] = "rebuild-daily-metrics";
    for (size_t i = 0; args[i]; i++) {
        assert_true(n < 23);
        argv[n++] = args[i];
    }
    argv[n] = NULL;
    char url[600];
    snprintf(url, sizeof url, "DATABASE_URL=%s", db.url);
    const char *envp[12];
    size_t k = 0;
    envp[k++] = url;
    for (size_t i = 0; env && env[i]; i++) {
        assert_true(k < 11);
        envp[k++] = env[i];
    }
    envp[k] = NULL;
    memset(c, 0, sizeof *c);
    c->rc = jobsd_run(argv, envp, &c->out, &c->err);
}

static long long json_int_field(json_t *o, const char *key)
{
    json_t *v = json_object_get(o, key);
    if (!json_is_integer(v))
        fail_msg("field %s missing or not an integer", key);
    return (long long)json_integer_value(v);
}

static void copy_date_field(json_t *o, const char *key, char *out, size_t cap, bool null_ok)
{
    json_t *v = json_object_get(o, key);
    if (null_ok && json_is_null(v)) {
        out[0] = '\0';
        return;
    }
    if (!json_is_string(v))
        fail_msg("dateRange.%s missing or not a string", key);
    snprintf(out, cap, "%s", json_string_value(v));
}

static void lower(char *dst, const char *src, size_t cap)
{
    size_t i = 0;
    for (; src[i] && i + 1 < cap; i++)
        dst[i] = (char)tolower((unsigned char)src[i]);
    dst[i] = '\0';
}

/* Checks the job_logs row of a successful run: status 'success', trigger 'cli', attempts 1,
 * records_processed = rowsUpserted + rowsDeleted, duration_ms = duration. */
static void check_job_log(const struct result *r, const char *tenant)
{
    char want[300];
    snprintf(want, sizeof want, "metrics_aggregation|success|cli|1|%lld|%s|%lld|t|t|t",
             r->upserted + r->deleted, tenant, r->duration);
    char *got = tdb_value(db.conn,
                          "SELECT concat_ws('|', job_type, status, trigger, attempts, "
                          " records_processed, tenant_id, duration_ms, started_at IS NOT NULL, "
                          " completed_at IS NOT NULL, error_message IS NULL) "
                          "FROM job_logs WHERE id = '%s'",
                          r->job);
    if (strcmp(got, want) != 0) {
        print_error("job_logs row %s:\n got  %s\n want %s\n", r->job, got, want);
        free(got);
        fail();
    }
    free(got);
}

/* Runs a rebuild that must succeed and returns its counters. Checks that every field of the
 * 200 body is present, the dense invariant upserted + unchanged = listings x days, and the
 * job_logs row. */
static struct result rebuild_args(const char *const *args, const char *const *env)
{
    struct cli c;
    cli_run(&c, args, env);
    if (c.rc != 0) {
        print_error("jobsd rebuild-daily-metrics exited %d\nstdout: %s\nstderr: %s\n", c.rc, c.out,
                    c.err);
        cli_free(&c);
        fail();
    }
    json_error_t je;
    json_t *j = json_loads(c.out, 0, &je);
    if (!j) {
        print_error("stdout is not JSON (%s): %s\n", je.text, c.out);
        cli_free(&c);
        fail();
    }
    struct result r;
    memset(&r, 0, sizeof r);
    assert_true(json_is_true(json_object_get(j, "success")));
    assert_true(json_is_false(json_object_get(j, "deduplicated")));
    const char *id = json_string_value(json_object_get(j, "jobLogId"));
    assert_non_null(id);
    snprintf(r.job, sizeof r.job, "%s", id);
    r.duration = json_int_field(j, "duration");
    r.days = json_int_field(j, "daysProcessed");
    r.upserted = json_int_field(j, "rowsUpserted");
    r.unchanged = json_int_field(j, "rowsUnchanged");
    r.deleted = json_int_field(j, "rowsDeleted");
    r.listings = json_int_field(j, "listingsProcessed");
    json_t *range = json_object_get(j, "dateRange");
    assert_true(json_is_object(range));
    copy_date_field(range, "from", r.from, sizeof r.from, false);
    copy_date_field(range, "to", r.to, sizeof r.to, false);
    copy_date_field(range, "maxDateAfterRebuild", r.max_date, sizeof r.max_date, true);
    json_decref(j);
    cli_free(&c);
    assert_true(r.duration >= 0);
    /* SPEC 1.1: rowsUpserted + rowsUnchanged = listingsProcessed x daysProcessed. */
    assert_int_equal(r.upserted + r.unchanged, r.listings * r.days);
    char tenant[64] = "";
    for (size_t i = 0; args[i] && args[i + 1]; i++)
        if (strcmp(args[i], "--tenant") == 0)
            lower(tenant, args[i + 1], sizeof tenant);
    check_job_log(&r, tenant);
    return r;
}

static struct result rebuild(const char *tenant, const char *from, const char *to)
{
    const char *args[] = {"--tenant", tenant, "--from", from, "--to", to, NULL};
    return rebuild_args(args, NULL);
}

/* A listing of tenant; its id is copied to out (fx_listing's buffer rotates). */
static void listing(const char *tenant, const char *ext, const char *status, char out[40])
{
    snprintf(out, 40, "%s", fx_listing(db.conn, tenant, ext, status));
}

/* An order at `at` with status and one item (qty x price) of listing. */
static void order1(const char *tenant, const char *status, const char *at, const char *listing_id,
                   int qty, const char *price)
{
    const char *o = fx_order(db.conn, tenant, next_external_id++, status, at);
    char oid[40];
    snprintf(oid, sizeof oid, "%s", o);
    fx_item(db.conn, tenant, oid, listing_id, qty, price);
}

/* "visits|orders|units|gmv|conversion" of a row (NULL spelled out), or "NO ROW". */
static void expect_row(const char *listing_id, const char *date, const char *want)
{
    char *got = tdb_value(db.conn,
                          "SELECT coalesce((SELECT concat_ws('|', coalesce(visits::text, 'NULL'), "
                          " orders, units, gmv, coalesce(conversion::text, 'NULL')) "
                          " FROM listing_metrics_daily WHERE listing_id = '%s' AND date = '%s'), "
                          " 'NO ROW')",
                          listing_id, date);
    if (strcmp(got, want) != 0) {
        print_error("listing_metrics_daily %s %s:\n got  %s\n want %s\n", listing_id, date, got,
                    want);
        free(got);
        fail();
    }
    free(got);
}

static long long rows_of(const char *listing_id)
{
    return tdb_int(db.conn, "SELECT count(*) FROM listing_metrics_daily WHERE listing_id = '%s'",
                   listing_id);
}

/* The values of a tenant's rows (NULLs kept: ROW text prints NULL as empty, 0 as 0), ordered;
 * extra is appended to the WHERE clause. */
static char *snap_values(const char *tenant, const char *extra)
{
    return tdb_value(db.conn,
                     "SELECT coalesce(string_agg(ROW(listing_id, date, visits, orders, units, gmv, "
                     " conversion, impressions, clicks, ctr, source)::text, E'\\n' "
                     " ORDER BY listing_id, date), '') "
                     "FROM listing_metrics_daily WHERE tenant_id = '%s' %s",
                     tenant, extra ? extra : "");
}

/* Everything about a tenant's rows, including the physical row version (xmin), the job that
 * last wrote them and their timestamps: equal snapshots = the same row versions, not
 * rewritten. */
static char *snap_rows(const char *tenant, const char *extra)
{
    return tdb_value(db.conn,
                     "SELECT coalesce(string_agg(ROW(id, xmin::text, listing_id, date, visits, "
                     " orders, units, gmv, conversion, impressions, clicks, ctr, source, "
                     " job_log_id, created_at, updated_at)::text, E'\\n' "
                     " ORDER BY listing_id, date), '') "
                     "FROM listing_metrics_daily WHERE tenant_id = '%s' %s",
                     tenant, extra ? extra : "");
}

/* snap_rows plus xmax: also equal = never row-locked or deleted, even by a transaction that
 * rolled back (an aborted update leaves its xid in xmax). */
static char *snap_full(const char *tenant, const char *extra)
{
    return tdb_value(db.conn,
                     "SELECT coalesce(string_agg(ROW(id, xmin::text, xmax::text, listing_id, date, "
                     " visits, orders, units, gmv, conversion, impressions, clicks, ctr, source, "
                     " job_log_id, created_at, updated_at)::text, E'\\n' "
                     " ORDER BY listing_id, date), '') "
                     "FROM listing_metrics_daily WHERE tenant_id = '%s' %s",
                     tenant, extra ? extra : "");
}

static void assert_same(const char *what, char *before, char *after)
{
    if (strcmp(before, after) != 0) {
        /* the first differing line (cmocka truncates long messages) */
        const char *b = before, *a = after;
        while (*b && *a) {
            size_t lb = strcspn(b, "\n"), la = strcspn(a, "\n");
            if (lb != la || strncmp(b, a, lb) != 0) {
                print_error("%s changed; first difference:\n before %.*s\n after  %.*s\n", what,
                            (int)lb, b, (int)la, a);
                break;
            }
            b += lb + (b[lb] != '\0');
            a += la + (a[la] != '\0');
        }
        if (!*b || !*a)
            print_error("%s changed: one is a prefix of the other (%zu vs %zu chars)\n", what,
                        strlen(before), strlen(after));
        free(before);
        free(after);
        fail();
    }
    free(before);
    free(after);
}

/* ------------------------------------------------------------------ tests */

/* An order at 23:30 in São Paulo (UTC-3) is 02:30 UTC the next day: it counts for the local
 * day. Window 2024-01-01..2024-01-31, one listing, every order paid, 1 x 10.00. */
static void test_order_at_2330_local_counts_for_local_day(void **state)
{
    (void)state;
    const char *T = "00000000-0000-4000-8000-000000000001";
    fx_tenant(db.conn, T);
    char L[40];
    listing(T, "MLB1", "active", L);
    order1(T, "paid", "2024-01-15T23:30:00-03:00", L, 1, "10.00"); /* 2024-01-16 02:30Z */
    order1(T, "paid", "2024-01-16T00:30:00-03:00", L, 1, "10.00"); /* 2024-01-16 03:30Z */
    order1(T, "paid", "2024-01-20T02:30:00Z", L, 1, "10.00");      /* 2024-01-19 23:30 local */
    struct result r = rebuild(T, "2024-01-01", "2024-01-31");
    assert_int_equal(r.days, 31);
    assert_int_equal(r.listings, 1);
    /* local days: 15th = 1 order, 16th = 1 (a UTC day would give 0 and 2), 19th = 1, 20th = 0 */
    expect_row(L, "2024-01-15", "NULL|1|1|10.00|NULL");
    expect_row(L, "2024-01-16", "NULL|1|1|10.00|NULL");
    expect_row(L, "2024-01-19", "NULL|1|1|10.00|NULL");
    expect_row(L, "2024-01-20", "NULL|0|0|0.00|NULL");
    /* 3 orders in the window, none lost or doubled */
    assert_int_equal(
        tdb_int(db.conn, "SELECT sum(orders) FROM listing_metrics_daily WHERE listing_id = '%s'",
                L),
        3);
}

/* The original's order query stopped at `to` 00:00 UTC. An order at 23:59 local on `to`
 * (02:59Z the day after) counts; one at 00:00 local the day after does not; one at 23:59 local
 * the day before `from` (02:59Z on `from`) does not; one at 00:00 local on `from` does. */
static void test_order_late_on_last_day_counted(void **state)
{
    (void)state;
    const char *T = "00000000-0000-4000-8000-000000000002";
    fx_tenant(db.conn, T);
    char L[40];
    listing(T, "MLB1", "active", L);
    order1(T, "paid", "2024-01-31T23:59:00-03:00", L, 2, "7.50");  /* in: Jan 31, 2 x 7.50 */
    order1(T, "paid", "2024-02-01T00:00:00-03:00", L, 1, "99.00"); /* out: Feb 1 local */
    order1(T, "paid", "2023-12-31T23:59:00-03:00", L, 1, "99.00"); /* out: Dec 31 local */
    order1(T, "paid", "2024-01-01T00:00:00-03:00", L, 1, "3.00");  /* in: Jan 1 */
    struct result r = rebuild(T, "2024-01-01", "2024-01-31");
    assert_int_equal(r.days, 31);
    assert_int_equal(r.upserted, 31);
    /* Jan 31: 1 order, units 2, gmv 2 x 7.50 = 15.00 */
    expect_row(L, "2024-01-31", "NULL|1|2|15.00|NULL");
    /* Jan 1: only the 00:00 local order (3.00); the Dec 31 23:59 local one is not here */
    expect_row(L, "2024-01-01", "NULL|1|1|3.00|NULL");
    expect_row(L, "2024-02-01", "NO ROW");
    expect_row(L, "2023-12-31", "NO ROW");
    /* window total: 2 orders, 3 units, 18.00 */
    char *tot = tdb_value(db.conn,
                          "SELECT concat_ws('|', sum(orders), sum(units), sum(gmv)) "
                          "FROM listing_metrics_daily WHERE listing_id = '%s'",
                          L);
    assert_string_equal(tot, "2|3|18.00");
    free(tot);
}

/* Only paid, shipped and delivered orders count; cancelled, pending and refunded do not. */
static void test_order_status_filter(void **state)
{
    (void)state;
    const char *T = "00000000-0000-4000-8000-000000000003";
    fx_tenant(db.conn, T);
    char L[40];
    listing(T, "MLB1", "active", L);
    order1(T, "paid", "2024-01-10T12:00:00-03:00", L, 1, "10.00");
    order1(T, "shipped", "2024-01-10T12:00:00-03:00", L, 2, "20.00");
    order1(T, "delivered", "2024-01-10T12:00:00-03:00", L, 3, "30.00");
    order1(T, "cancelled", "2024-01-10T12:00:00-03:00", L, 100, "1000.00");
    order1(T, "pending", "2024-01-10T12:00:00-03:00", L, 100, "1000.00");
    order1(T, "refunded", "2024-01-10T12:00:00-03:00", L, 100, "1000.00");
    /* a cancelled order alone on another day: that day stays 0 */
    order1(T, "cancelled", "2024-01-11T12:00:00-03:00", L, 5, "5.00");
    rebuild(T, "2024-01-01", "2024-01-31");
    /* orders 3; units 1 + 2 + 3 = 6; gmv 1x10 + 2x20 + 3x30 = 10 + 40 + 90 = 140.00 */
    expect_row(L, "2024-01-10", "NULL|3|6|140.00|NULL");
    expect_row(L, "2024-01-11", "NULL|0|0|0.00|NULL");
}

/* README "Definitions": a partially refunded order is still a sale, its gmv less the refund
 * shared among its items by value (never below 0); a fully refunded or a pending order (which
 * is what partially_paid maps to) is not a sale. */
static void test_partial_refund_lowers_gmv(void **state)
{
    (void)state;
    const char *T = "00000000-0000-4000-8000-0000000000a1";
    fx_tenant(db.conn, T);
    char A[40], B[40];
    listing(T, "MLB1", "active", A);
    listing(T, "MLB2", "active", B);
    char o[40];
    snprintf(o, sizeof o, "%s",
             fx_order(db.conn, T, next_external_id++, "partially_refunded",
                      "2024-01-05T10:00:00-03:00"));
    fx_item(db.conn, T, o, A, 2, "10.00"); /* 20.00 of the order's 60.00 */
    fx_item(db.conn, T, o, B, 1, "40.00"); /* 40.00 */
    tdb_execf(db.conn, "UPDATE orders SET refunded_amount = 15 WHERE id = '%s'", o);
    /* A refund above the order's value leaves 0, never a negative gmv. */
    snprintf(o, sizeof o, "%s",
             fx_order(db.conn, T, next_external_id++, "partially_refunded",
                      "2024-01-06T10:00:00-03:00"));
    fx_item(db.conn, T, o, A, 1, "10.00");
    tdb_execf(db.conn, "UPDATE orders SET refunded_amount = 25 WHERE id = '%s'", o);
    order1(T, "pending", "2024-01-07T10:00:00-03:00", A, 1, "99.00");
    order1(T, "refunded", "2024-01-07T11:00:00-03:00", A, 1, "99.00");
    rebuild(T, "2024-01-01", "2024-01-31");
    /* 15.00 shared 1:2 -> A loses 5.00 (20.00 -> 15.00), B loses 10.00 (40.00 -> 30.00) */
    expect_row(A, "2024-01-05", "NULL|1|2|15.00|NULL");
    expect_row(B, "2024-01-05", "NULL|1|1|30.00|NULL");
    expect_row(A, "2024-01-06", "NULL|1|1|0.00|NULL");
    expect_row(A, "2024-01-07", "NULL|0|0|0.00|NULL");
    /* The definition lives in one place, the database's jobsd_is_sale. */
    assert_int_equal(tdb_int(db.conn,
                             "SELECT count(*) FROM unnest(ARRAY['paid', 'shipped', 'delivered', "
                             "'partially_refunded', 'pending', 'cancelled', 'refunded']) s "
                             "WHERE jobsd_is_sale(s)"),
                     4);
}

/* A day whose visits were read before it ended 48 hours ago (UTC) is provisional; once the
 * sync reads it again after that, the next rebuild makes it final (and rewrites the row);
 * an unchanged provisional day is not rewritten. */
static void test_provisional_visits_days(void **state)
{
    (void)state;
    const char *T = "00000000-0000-4000-8000-0000000000a2";
    fx_tenant(db.conn, T);
    char L[40];
    listing(T, "MLB1", "active", L);
    char *yesterday =
        tdb_value(db.conn, "SELECT to_char((now() AT TIME ZONE 'UTC')::date - 1, 'YYYY-MM-DD')");
    char *old = tdb_value(db.conn, "SELECT to_char((now() AT TIME ZONE 'UTC')::date - 10, "
                                   "'YYYY-MM-DD')");
    fx_visits(db.conn, T, L, yesterday, 5); /* read now: not final for another day or two */
    fx_visits(db.conn, T, L, old, 7);       /* read now, 10 days after: final */
    struct result r = rebuild(T, old, yesterday);
    assert_int_equal(tdb_int(db.conn,
                             "SELECT count(*) FROM listing_metrics_daily WHERE listing_id = '%s' "
                             "AND provisional",
                             L),
                     1);
    assert_int_equal(tdb_int(db.conn,
                             "SELECT count(*) FROM listing_metrics_daily WHERE listing_id = '%s' "
                             "AND date = '%s' AND provisional AND visits = 5",
                             L, yesterday),
                     1);
    r = rebuild(T, old, yesterday);
    assert_int_equal(r.upserted, 0);
    /* Read again after 48 hours: final, the same count. */
    tdb_execf(db.conn,
              "UPDATE listing_visits_daily SET fetched_at = (date + 3)::timestamp AT TIME ZONE "
              "'UTC' WHERE listing_id = '%s' AND date = '%s'",
              L, yesterday);
    r = rebuild(T, old, yesterday);
    assert_int_equal(r.upserted, 1);
    assert_int_equal(tdb_int(db.conn,
                             "SELECT count(*) FROM listing_metrics_daily WHERE listing_id = '%s' "
                             "AND provisional",
                             L),
                     0);
    free(yesterday);
    free(old);
}

/* Two items of one listing in one order: orders = 1 (distinct orders), units summed, gmv =
 * sum(qty x unit_price); an item of another listing in the same order counts for that one. */
static void test_two_items_one_order(void **state)
{
    (void)state;
    const char *T = "00000000-0000-4000-8000-000000000004";
    fx_tenant(db.conn, T);
    char A[40], B[40];
    listing(T, "MLB1", "active", A);
    listing(T, "MLB2", "active", B);
    char o[40];
    snprintf(o, sizeof o, "%s",
             fx_order(db.conn, T, next_external_id++, "paid", "2024-01-05T10:00:00-03:00"));
    fx_item(db.conn, T, o, A, 2, "10.00");  /* 20.00 */
    fx_item(db.conn, T, o, A, 3, "5.50");   /* 16.50 */
    fx_item(db.conn, T, o, B, 1, "100.00"); /* other listing */
    order1(T, "paid", "2024-01-06T10:00:00-03:00", A, 2, "10.00");
    snprintf(o, sizeof o, "%s",
             fx_order(db.conn, T, next_external_id++, "paid", "2024-01-06T11:00:00-03:00"));
    fx_item(db.conn, T, o, A, 1, "4.00");
    fx_item(db.conn, T, o, A, 1, "6.00");
    rebuild(T, "2024-01-01", "2024-01-31");
    /* Jan 5, A: orders 1; units 2 + 3 = 5; gmv 20.00 + 16.50 = 36.50 */
    expect_row(A, "2024-01-05", "NULL|1|5|36.50|NULL");
    /* Jan 5, B: orders 1, units 1, gmv 100.00 */
    expect_row(B, "2024-01-05", "NULL|1|1|100.00|NULL");
    /* Jan 6, A: 2 orders (2 x 10.00; 1 x 4.00 + 1 x 6.00); units 2 + 2 = 4; gmv 20 + 10 = 30 */
    expect_row(A, "2024-01-06", "NULL|2|4|30.00|NULL");
}

/* visits unknown (no listing_visits_daily row) -> NULL and conversion NULL; 0 -> 0 and
 * conversion NULL; > 0 -> conversion = round(orders / visits, 4). Unknown never becomes 0. */
static void test_visits_unknown_zero_positive(void **state)
{
    (void)state;
    const char *T = "00000000-0000-4000-8000-000000000005";
    fx_tenant(db.conn, T);
    char L[40];
    listing(T, "MLB1", "active", L);
    order1(T, "paid", "2024-01-01T12:00:00-03:00", L, 1, "10.00");
    order1(T, "paid", "2024-01-02T12:00:00-03:00", L, 1, "10.00");
    fx_visits(db.conn, T, L, "2024-01-02", 0);
    order1(T, "paid", "2024-01-03T12:00:00-03:00", L, 1, "10.00");
    fx_visits(db.conn, T, L, "2024-01-03", 4);
    order1(T, "paid", "2024-01-04T12:00:00-03:00", L, 1, "10.00");
    order1(T, "paid", "2024-01-04T13:00:00-03:00", L, 1, "10.00");
    fx_visits(db.conn, T, L, "2024-01-04", 3);
    fx_visits(db.conn, T, L, "2024-01-05", 7);
    struct result r = rebuild(T, "2024-01-01", "2024-01-06");
    assert_int_equal(r.days, 6);
    expect_row(L, "2024-01-01", "NULL|1|1|10.00|NULL"); /* no visits row: unknown */
    expect_row(L, "2024-01-02", "0|1|1|10.00|NULL");    /* 0 visits: no ratio */
    expect_row(L, "2024-01-03", "4|1|1|10.00|0.2500");  /* 1 / 4 = 0.25 */
    expect_row(L, "2024-01-04", "3|2|2|20.00|0.6667");  /* 2 / 3 = 0.66666.. -> 0.6667 */
    expect_row(L, "2024-01-05", "7|0|0|0.00|0.0000");   /* 0 / 7 = 0 */
    expect_row(L, "2024-01-06", "NULL|0|0|0.00|NULL");  /* nothing known */
    /* impressions, clicks and ctr are never invented */
    assert_int_equal(tdb_int(db.conn,
                             "SELECT count(*) FROM listing_metrics_daily WHERE tenant_id = '%s' "
                             "AND (impressions IS NOT NULL OR clicks IS NOT NULL OR ctr IS NOT "
                             "NULL)",
                             T),
                     0);
    /* and every row says where it came from */
    assert_int_equal(tdb_int(db.conn,
                             "SELECT count(*) FROM listing_metrics_daily WHERE tenant_id = '%s' "
                             "AND source = 'internal_job'",
                             T),
                     6);
}

/* conversion may exceed 1 (visits lag orders) and even 10,000: numeric(12,4) stores it. */
static void test_conversion_above_one_and_above_10000(void **state)
{
    (void)state;
    const char *T = "00000000-0000-4000-8000-000000000006";
    fx_tenant(db.conn, T);
    char A[40], B[40];
    listing(T, "MLB1", "active", A);
    listing(T, "MLB2", "active", B);
    for (int i = 0; i < 3; i++)
        order1(T, "paid", "2024-01-10T12:00:00-03:00", A, 1, "10.00");
    fx_visits(db.conn, T, A, "2024-01-10", 2);
    /* 10001 paid orders of B on 2024-01-11 (15:00Z = 12:00 local), one item 1 x 1.00 each */
    tdb_execf(db.conn,
              "INSERT INTO orders (tenant_id, external_id, status, ordered_at) "
              "SELECT '%s', 900000000 + g, 'paid', '2024-01-11T15:00:00Z' "
              "FROM generate_series(1, 10001) AS g",
              T);
    tdb_execf(db.conn,
              "INSERT INTO order_items (tenant_id, order_id, listing_id, quantity, unit_price) "
              "SELECT tenant_id, id, '%s', 1, 1.00 FROM orders "
              "WHERE tenant_id = '%s' AND external_id > 900000000",
              B, T);
    fx_visits(db.conn, T, B, "2024-01-11", 1);
    rebuild(T, "2024-01-10", "2024-01-11");
    /* A: 3 orders / 2 visits = 1.5 */
    expect_row(A, "2024-01-10", "2|3|3|30.00|1.5000");
    /* B: 10001 orders / 1 visit = 10001; units 10001; gmv 10001 x 1.00 */
    expect_row(B, "2024-01-11", "1|10001|10001|10001.00|10001.0000");
}

/* Dense rows: every qualifying listing gets one row for every day of the window, also days
 * before it was created; daysProcessed counts inclusively (Jan 1..31 = 31). */
static void test_dense_rows_every_day_inclusive(void **state)
{
    (void)state;
    const char *T = "00000000-0000-4000-8000-000000000007";
    fx_tenant(db.conn, T);
    char A[40], P[40], U[40], C[40];
    listing(T, "MLB1", "active", A);
    listing(T, "MLB2", "paused", P);
    listing(T, "MLB3", "unknown", U);
    listing(T, "MLB4", "closed", C);
    /* A was created on Jan 20: it still gets Jan 1..19 */
    tdb_execf(db.conn,
              "UPDATE listings SET created_at = '2024-01-20T12:00:00-03:00' WHERE id = '%s'", A);
    order1(T, "paid", "2024-01-25T12:00:00-03:00", A, 1, "10.00");
    struct result r = rebuild(T, "2024-01-01", "2024-01-31");
    /* 4 listings x 31 days = 124 rows, all new */
    assert_int_equal(r.days, 31);
    assert_int_equal(r.listings, 4);
    assert_int_equal(r.upserted, 124);
    assert_int_equal(r.unchanged, 0);
    assert_int_equal(r.deleted, 0);
    assert_int_equal(
        tdb_int(db.conn, "SELECT count(*) FROM listing_metrics_daily WHERE tenant_id = '%s'", T),
        124);
    const char *ids[] = {A, P, U, C};
    for (size_t i = 0; i < 4; i++) {
        char *span = tdb_value(db.conn,
                               "SELECT concat_ws('|', count(*), count(DISTINCT date), min(date), "
                               " max(date)) FROM listing_metrics_daily WHERE listing_id = '%s'",
                               ids[i]);
        assert_string_equal(span, "31|31|2024-01-01|2024-01-31");
        free(span);
    }
    expect_row(A, "2024-01-01", "NULL|0|0|0.00|NULL");
    expect_row(A, "2024-01-25", "NULL|1|1|10.00|NULL");
    /* one new order -> one changed row: 1 upserted + 123 unchanged = 4 x 31 */
    order1(T, "shipped", "2024-01-07T12:00:00-03:00", P, 2, "5.00");
    r = rebuild(T, "2024-01-01", "2024-01-31");
    assert_int_equal(r.upserted, 1);
    assert_int_equal(r.unchanged, 123);
    expect_row(P, "2024-01-07", "NULL|1|2|10.00|NULL");
    /* a one-day window counts 1 day */
    r = rebuild(T, "2024-02-29", "2024-02-29");
    assert_int_equal(r.days, 1);
    assert_int_equal(r.upserted, 4);
}

/* A deleted listing qualifies only with a counted order or a visits row with visits > 0 in
 * the window; then it gets a row for every day. */
static void test_deleted_listing_qualification(void **state)
{
    (void)state;
    const char *T = "00000000-0000-4000-8000-000000000008";
    fx_tenant(db.conn, T);
    char D0[40], D1[40], D2[40], D3[40], D4[40], D5[40], A[40];
    listing(T, "MLB0", "deleted", D0); /* nothing */
    listing(T, "MLB1", "deleted", D1); /* a paid order in the window */
    listing(T, "MLB2", "deleted", D2); /* only a cancelled order */
    listing(T, "MLB3", "deleted", D3); /* only a 0-visits row */
    listing(T, "MLB4", "deleted", D4); /* 5 visits one day */
    listing(T, "MLB5", "deleted", D5); /* a paid order after the window */
    listing(T, "MLB6", "active", A);
    order1(T, "paid", "2024-01-12T12:00:00-03:00", D1, 1, "10.00");
    order1(T, "cancelled", "2024-01-12T12:00:00-03:00", D2, 1, "10.00");
    fx_visits(db.conn, T, D3, "2024-01-03", 0);
    fx_visits(db.conn, T, D4, "2024-01-03", 5);
    order1(T, "paid", "2024-02-01T00:30:00-03:00", D5, 1, "10.00");
    struct result r = rebuild(T, "2024-01-01", "2024-01-31");
    /* qualifying: D1, D4, A -> 3 x 31 = 93 rows */
    assert_int_equal(r.listings, 3);
    assert_int_equal(r.upserted, 93);
    assert_int_equal(rows_of(D0), 0);
    assert_int_equal(rows_of(D1), 31);
    assert_int_equal(rows_of(D2), 0);
    assert_int_equal(rows_of(D3), 0);
    assert_int_equal(rows_of(D4), 31);
    assert_int_equal(rows_of(D5), 0);
    assert_int_equal(rows_of(A), 31);
    expect_row(D1, "2024-01-12", "NULL|1|1|10.00|NULL");
    expect_row(D1, "2024-01-01", "NULL|0|0|0.00|NULL");
    expect_row(D4, "2024-01-03", "5|0|0|0.00|0.0000");
}

/* A listing that stops qualifying loses its rows inside the window on the next rebuild;
 * its rows outside the window are untouched. records_processed = upserted + deleted. */
static void test_listing_stops_qualifying_loses_window_rows(void **state)
{
    (void)state;
    const char *T = "00000000-0000-4000-8000-000000000009";
    fx_tenant(db.conn, T);
    char A[40], B[40];
    listing(T, "MLB1", "active", A);
    listing(T, "MLB2", "active", B);
    struct result r = rebuild(T, "2024-01-01", "2024-01-31");
    assert_int_equal(r.upserted, 62); /* 2 x 31 */
    r = rebuild(T, "2024-02-01", "2024-02-03");
    assert_int_equal(r.upserted, 6); /* 2 x 3 */
    char where_outside[160];
    snprintf(where_outside, sizeof where_outside,
             "AND listing_id = '%s' AND date NOT BETWEEN '2024-01-10' AND '2024-01-20'", B);
    char *outside_before = snap_full(T, where_outside);
    tdb_execf(db.conn, "UPDATE listings SET status = 'deleted' WHERE id = '%s'", B);
    order1(T, "paid", "2024-01-15T12:00:00-03:00", A, 1, "10.00");
    r = rebuild(T, "2024-01-10", "2024-01-20");
    /* window Jan 10..20 = 11 days; B's 11 rows deleted; A: 1 changed (Jan 15), 10 unchanged */
    assert_int_equal(r.days, 11);
    assert_int_equal(r.listings, 1);
    assert_int_equal(r.deleted, 11);
    assert_int_equal(r.upserted, 1);
    assert_int_equal(r.unchanged, 10);
    /* records_processed = 1 + 11 = 12 (also checked by rebuild()) */
    assert_int_equal(
        tdb_int(db.conn, "SELECT records_processed FROM job_logs WHERE id = '%s'", r.job), 12);
    assert_int_equal(tdb_int(db.conn,
                             "SELECT count(*) FROM listing_metrics_daily WHERE listing_id = '%s' "
                             "AND date BETWEEN '2024-01-10' AND '2024-01-20'",
                             B),
                     0);
    /* outside: Jan 1..9 (9) + Jan 21..31 (11) + Feb 1..3 (3) = 23 rows, physically untouched */
    assert_int_equal(rows_of(B), 23);
    assert_same("B's rows outside the window", outside_before, snap_full(T, where_outside));
    assert_int_equal(rows_of(A), 34); /* 31 + 3 */
}

/* A rebuild of one tenant never touches another tenant's rows, even rows the other tenant's
 * own rebuild would now delete (its listing was deleted since). */
static void test_other_tenant_untouched(void **state)
{
    (void)state;
    const char *T = "00000000-0000-4000-8000-00000000000a";
    const char *O = "00000000-0000-4000-8000-00000000000b";
    fx_tenant(db.conn, T);
    fx_tenant(db.conn, O);
    char TA[40], TB[40], OA[40], OB[40];
    listing(T, "MLB1", "active", TA); /* same external ids in both tenants */
    listing(T, "MLB2", "active", TB);
    listing(O, "MLB1", "active", OA);
    listing(O, "MLB2", "active", OB);
    order1(O, "paid", "2024-01-05T12:00:00-03:00", OA, 1, "10.00");
    fx_visits(db.conn, O, OA, "2024-01-05", 3);
    fx_visits(db.conn, O, OB, "2024-01-06", 0);
    rebuild(O, "2024-01-01", "2024-01-31");
    tdb_execf(db.conn, "UPDATE listings SET status = 'deleted' WHERE id = '%s'", OB);
    char *before = snap_full(O, NULL);
    assert_int_equal(
        tdb_int(db.conn, "SELECT count(*) FROM listing_metrics_daily WHERE tenant_id = '%s'", O),
        62);
    /* T: inserts, then updates and deletes in the same window */
    order1(T, "paid", "2024-01-05T12:00:00-03:00", TA, 1, "10.00");
    struct result r = rebuild(T, "2024-01-01", "2024-01-31");
    assert_int_equal(r.upserted, 62);
    char *mid = snap_full(O, NULL);
    assert_string_equal(before, mid);
    free(mid);
    order1(T, "paid", "2024-01-06T12:00:00-03:00", TA, 1, "10.00");
    fx_visits(db.conn, T, TA, "2024-01-07", 9);
    tdb_execf(db.conn, "UPDATE listings SET status = 'deleted' WHERE id = '%s'", TB);
    r = rebuild(T, "2024-01-01", "2024-01-31");
    assert_int_equal(r.upserted, 2); /* Jan 6 (order), Jan 7 (visits) */
    assert_int_equal(r.deleted, 31); /* TB */
    assert_same("the other tenant's rows", before, snap_full(O, NULL));
}

/* A rerun with unchanged data writes nothing: rowsUpserted 0, every row unchanged, and the
 * rows were neither written (same xmin, job_log_id, updated_at) nor locked (xmax 0). */
static void test_rerun_unchanged_writes_nothing(void **state)
{
    (void)state;
    const char *T = "00000000-0000-4000-8000-00000000000c";
    fx_tenant(db.conn, T);
    char A[40], B[40], D[40];
    listing(T, "MLB1", "active", A);
    listing(T, "MLB2", "paused", B);
    listing(T, "MLB3", "deleted", D);
    order1(T, "paid", "2024-01-03T12:00:00-03:00", A, 2, "12.34");
    fx_visits(db.conn, T, A, "2024-01-03", 3); /* conversion 0.3333 */
    fx_visits(db.conn, T, A, "2024-01-04", 0); /* visits 0, conversion NULL */
    fx_visits(db.conn, T, B, "2024-01-05", 2); /* conversion 0.0000 */
    order1(T, "delivered", "2024-01-09T23:30:00-03:00", D, 1, "1.00"); /* D qualifies */
    struct result first = rebuild(T, "2024-01-01", "2024-01-31");
    assert_int_equal(first.upserted, 93); /* 3 x 31 */
    char *before = snap_full(T, NULL);
    struct result r = rebuild(T, "2024-01-01", "2024-01-31");
    assert_int_equal(r.listings, 3);
    assert_int_equal(r.upserted, 0);
    assert_int_equal(r.unchanged, 93);
    assert_int_equal(r.deleted, 0);
    assert_int_equal(
        tdb_int(db.conn, "SELECT records_processed FROM job_logs WHERE id = '%s'", r.job), 0);
    assert_same("rows of an unchanged rerun", before, snap_full(T, NULL));
    /* every row still belongs to the first run and was never row-locked since */
    assert_int_equal(tdb_int(db.conn,
                             "SELECT count(*) FROM listing_metrics_daily WHERE tenant_id = '%s' "
                             "AND job_log_id = '%s' AND xmax::text = '0'",
                             T, first.job),
                     93);
    /* a rerun over a sub-window writes nothing either (Jan 8..10 holds D's order, so D still
     * qualifies: 3 listings x 3 days) */
    r = rebuild(T, "2024-01-08", "2024-01-10");
    assert_int_equal(r.upserted, 0);
    assert_int_equal(r.unchanged, 9);
}

/* Deleting the window's rows (the runbook's rollback DELETE) and rebuilding restores every
 * value exactly, NULLs included. */
static void test_rollback_delete_then_rebuild_restores(void **state)
{
    (void)state;
    const char *T = "00000000-0000-4000-8000-00000000000d";
    fx_tenant(db.conn, T);
    char A[40], B[40];
    listing(T, "MLB1", "active", A);
    listing(T, "MLB2", "deleted", B);
    order1(T, "paid", "2024-01-02T12:00:00-03:00", A, 3, "9.99");
    order1(T, "shipped", "2024-01-02T22:00:00-03:00", A, 1, "0.01");
    fx_visits(db.conn, T, A, "2024-01-02", 7); /* 2 / 7 = 0.2857 */
    fx_visits(db.conn, T, A, "2024-01-03", 0);
    fx_visits(db.conn, T, B, "2024-01-31", 4); /* B qualifies by visits */
    struct result r = rebuild(T, "2024-01-01", "2024-01-31");
    assert_int_equal(r.upserted, 62);
    rebuild(T, "2024-02-01", "2024-02-02");
    expect_row(A, "2024-01-02", "7|2|4|29.98|0.2857"); /* units 3 + 1; gmv 29.97 + 0.01 */
    char *before = snap_values(T, NULL);
    char *feb_before = snap_full(T, "AND date >= '2024-02-01'");
    char sql[400];
    snprintf(sql, sizeof sql,
             "DELETE FROM listing_metrics_daily\n"
             "   WHERE tenant_id = '%s'\n"
             "     AND date BETWEEN '2024-01-01' AND '2024-01-31'\n"
             "     AND source = 'internal_job';",
             T);
    PGresult *res = PQexec(db.conn, sql);
    assert_int_equal(PQresultStatus(res), PGRES_COMMAND_OK);
    assert_string_equal(PQcmdTuples(res), "62");
    PQclear(res);
    r = rebuild(T, "2024-01-01", "2024-01-31");
    assert_int_equal(r.upserted, 62);
    assert_int_equal(r.unchanged, 0);
    assert_same("values after DELETE + rebuild", before, snap_values(T, NULL));
    assert_same("February rows", feb_before, snap_full(T, "AND date >= '2024-02-01'"));
}

/* A rebuild that fails midway (statement timeout after it has written rows) leaves the
 * previous rows untouched; the CLI exits 3 (transient) and job_logs says error/timeout. */
static void test_timeout_midway_leaves_previous_rows(void **state)
{
    (void)state;
    const char *T = "00000000-0000-4000-8000-00000000000e";
    fx_tenant(db.conn, T);
    char L[40];
    for (int i = 0; i < 5; i++) {
        char ext[16];
        snprintf(ext, sizeof ext, "MLB%d", i);
        listing(T, ext, "active", L);
    }
    struct result r = rebuild(T, "2024-01-01", "2024-01-31");
    assert_int_equal(r.upserted, 155); /* 5 x 31 */
    char *before = snap_rows(T, NULL);
    /* raw data changes: visits for every listing and day -> all 155 rows would change */
    tdb_execf(db.conn,
              "INSERT INTO listing_visits_daily (tenant_id, listing_id, date, visits) "
              "SELECT '%s', l.id, d::date, 10 FROM listings l, "
              " generate_series('2024-01-01'::date, '2024-01-31'::date, interval '1 day') d "
              "WHERE l.tenant_id = '%s'",
              T, T);
    /* every write to this tenant's rows takes 50 ms: 155 rows (x2 triggers on conflict)
     * cannot finish in 1 s; the sequence (not transactional) counts the rows attempted */
    tdb_exec(db.conn, "DROP TRIGGER IF EXISTS slow_metrics ON listing_metrics_daily");
    tdb_exec(db.conn, "DROP SEQUENCE IF EXISTS slow_metrics_probe");
    tdb_exec(db.conn, "CREATE SEQUENCE slow_metrics_probe");
    tdb_exec(db.conn, "CREATE OR REPLACE FUNCTION slow_metrics() RETURNS trigger "
                      "LANGUAGE plpgsql AS $$ BEGIN PERFORM nextval('slow_metrics_probe'); "
                      "PERFORM pg_sleep(0.05); RETURN NEW; END $$");
    tdb_execf(db.conn,
              "CREATE TRIGGER slow_metrics BEFORE INSERT OR UPDATE ON listing_metrics_daily "
              "FOR EACH ROW WHEN (NEW.tenant_id = '%s') EXECUTE FUNCTION slow_metrics()",
              T);
    const char *args[] = {"--tenant", T, "--from", "2024-01-01", "--to", "2024-01-31", NULL};
    const char *env[] = {"REBUILD_TIMEOUT_SECONDS=1", NULL};
    long long t0 = t_now_ms();
    struct cli c;
    cli_run(&c, args, env);
    long long elapsed = t_now_ms() - t0;
    long long probes = tdb_int(db.conn, "SELECT last_value FROM slow_metrics_probe");
    tdb_exec(db.conn, "DROP TRIGGER slow_metrics ON listing_metrics_daily");
    tdb_exec(db.conn, "DROP FUNCTION slow_metrics()");
    tdb_exec(db.conn, "DROP SEQUENCE slow_metrics_probe");
    if (c.rc != 3)
        print_error("exit %d\nstdout: %s\nstderr: %s\n", c.rc, c.out, c.err);
    assert_int_equal(c.rc, 3);
    assert_string_equal(c.out, ""); /* no 200 body */
    cli_free(&c);
    /* it had written rows: each existing row fires BEFORE INSERT then BEFORE UPDATE, so a 3rd
     * probe means the 1st row was written; and it stopped long before all 155 x 2 probes */
    assert_true(probes >= 3);
    assert_true(probes < 310);
    assert_true(elapsed >= 1000);
    char *log = tdb_value(db.conn,
                          "SELECT concat_ws('|', status, trigger, metadata->'error'->>'code', "
                          " metadata->'error'->>'httpStatus', error_message IS NOT NULL, "
                          " completed_at IS NOT NULL) "
                          "FROM job_logs WHERE tenant_id = '%s' ORDER BY created_at DESC LIMIT 1",
                          T);
    assert_string_equal(log, "error|cli|timeout|503|t|t");
    free(log);
    assert_same("rows after a failed rebuild", before, snap_rows(T, NULL));
    /* the change was real: without the trigger the same rebuild rewrites every row */
    r = rebuild(T, "2024-01-01", "2024-01-31");
    assert_int_equal(r.upserted, 155);
    expect_row(L, "2024-01-31", "10|0|0|0.00|0.0000");
}

static void check_window(const char *const *args, const char *tenant, const char *from,
                         const char *to, long long days)
{
    struct result r = rebuild_args(args, NULL);
    assert_string_equal(r.from, from);
    assert_string_equal(r.to, to);
    assert_int_equal(r.days, days);
    char *req =
        tdb_value(db.conn, "SELECT metadata->'request' FROM job_logs WHERE id = '%s'", r.job);
    json_t *got = json_loads(req, 0, NULL);
    json_t *want = json_pack("{s:s, s:s, s:s}", "tenantId", tenant, "from", from, "to", to);
    if (!json_equal(got, want)) {
        print_error("metadata.request = %s; want tenantId %s from %s to %s\n", req, tenant, from,
                    to);
        fail();
    }
    json_decref(got);
    json_decref(want);
    free(req);
    char *key = tdb_value(db.conn, "SELECT dedupe_key FROM job_logs WHERE id = '%s'", r.job);
    char want_key[200];
    snprintf(want_key, sizeof want_key, "metrics_aggregation:%s:%s:%s", tenant, from, to);
    assert_string_equal(key, want_key);
    free(key);
}

/* The window: daysBack + to, RFC 3339 timestamps converted to their date in
 * America/Sao_Paulo (UTC-3 in 2024), from + to with -03:00 offsets. */
static void test_window_resolution(void **state)
{
    (void)state;
    const char *T = "00000000-0000-4000-8000-00000000000f";
    fx_tenant(db.conn, T);
    char L[40];
    listing(T, "MLB1", "active", L);
    /* 3 days ending Mar 10: 8, 9, 10 */
    const char *a1[] = {"--tenant", T, "--days-back", "3", "--to", "2024-03-10", NULL};
    check_window(a1, T, "2024-03-08", "2024-03-10", 3);
    /* 2024-03-10T02:00Z = 2024-03-09 23:00 local */
    const char *a2[] = {"--tenant", T, "--days-back", "1", "--to", "2024-03-10T02:00:00Z", NULL};
    check_window(a2, T, "2024-03-09", "2024-03-09", 1);
    /* 2024-03-10T03:00Z = 2024-03-10 00:00 local */
    const char *a3[] = {"--tenant", T, "--days-back", "1", "--to", "2024-03-10T03:00:00Z", NULL};
    check_window(a3, T, "2024-03-10", "2024-03-10", 1);
    /* 2 days ending 2024-03-10T02:00Z (the 9th): 8, 9 */
    const char *a4[] = {"--tenant", T, "--days-back", "2", "--to", "2024-03-10T02:00:00Z", NULL};
    check_window(a4, T, "2024-03-08", "2024-03-09", 2);
    /* from 2024-02-29 22:00-03:00 (= Mar 1 01:00Z, a UTC date would say Mar 1) to
     * 2024-03-05 23:30-03:00 (= Mar 6 02:30Z): Feb 29 (leap day) + Mar 1..5 = 6 days */
    const char *a5[] = {
        "--tenant", T, "--from", "2024-02-29T22:00:00-03:00", "--to", "2024-03-05T23:30:00-03:00",
        NULL};
    check_window(a5, T, "2024-02-29", "2024-03-05", 6);
    /* a timestamp in another offset: 2024-03-05T01:30:00+02:00 = Mar 4 23:30Z = Mar 4 20:30 */
    const char *a6[] = {"--tenant", T, "--from", "2024-03-01", "--to", "2024-03-05T01:30:00+02:00",
                        NULL};
    check_window(a6, T, "2024-03-01", "2024-03-04", 4);
    /* the tenant id in upper case is stored in lower case */
    const char *a7[] = {"--tenant",    "00000000-0000-4000-8000-00000000000F",
                        "--days-back", "1",
                        "--to",        "2024-03-01",
                        NULL};
    check_window(a7, T, "2024-03-01", "2024-03-01", 1);
}

/* maxDateAfterRebuild = MAX(date) of the tenant's rows after the commit (not the window's
 * `to`, not another tenant's); null when the tenant has no rows. */
static void test_max_date_after_rebuild(void **state)
{
    (void)state;
    const char *T = "00000000-0000-4000-8000-000000000010";
    const char *O = "00000000-0000-4000-8000-000000000011";
    const char *E = "00000000-0000-4000-8000-000000000012";
    fx_tenant(db.conn, T);
    fx_tenant(db.conn, O);
    fx_tenant(db.conn, E);
    char L[40];
    listing(T, "MLB1", "active", L);
    listing(O, "MLB1", "active", L);
    struct result r = rebuild(O, "2024-03-01", "2024-03-31");
    assert_string_equal(r.max_date, "2024-03-31");
    r = rebuild(T, "2024-02-01", "2024-02-10");
    assert_string_equal(r.max_date, "2024-02-10");
    r = rebuild(T, "2024-01-01", "2024-01-31");
    assert_string_equal(r.from, "2024-01-01");
    assert_string_equal(r.to, "2024-01-31");
    assert_string_equal(r.max_date, "2024-02-10"); /* Feb rows still there; O's March not T's */
    char *m = tdb_value(
        db.conn, "SELECT max(date)::text FROM listing_metrics_daily WHERE tenant_id = '%s'", T);
    assert_string_equal(m, r.max_date);
    free(m);
    /* the job_logs result carries the same value */
    char *stored =
        tdb_value(db.conn,
                  "SELECT metadata->'result'->'dateRange'->>'maxDateAfterRebuild' FROM job_logs "
                  "WHERE id = '%s'",
                  r.job);
    assert_non_null(stored);
    assert_string_equal(stored, "2024-02-10");
    free(stored);
    /* a tenant without listings: no rows, 0 x 31, max date null */
    r = rebuild(E, "2024-01-01", "2024-01-31");
    assert_int_equal(r.listings, 0);
    assert_int_equal(r.days, 31);
    assert_int_equal(r.upserted, 0);
    assert_string_equal(r.max_date, "");
}

/* job_logs for a CLI run: status success, trigger cli, attempts 1, records_processed =
 * rowsUpserted + rowsDeleted, the resolved request and the result in metadata. */
static void test_job_log_row(void **state)
{
    (void)state;
    const char *T = "00000000-0000-4000-8000-000000000013";
    fx_tenant(db.conn, T);
    char A[40], B[40];
    listing(T, "MLB1", "active", A);
    listing(T, "MLB2", "active", B);
    struct result r = rebuild(T, "2024-01-01", "2024-01-10");
    assert_int_equal(r.upserted, 20); /* 2 x 10 */
    tdb_execf(db.conn, "UPDATE listings SET status = 'deleted' WHERE id = '%s'", B);
    order1(T, "paid", "2024-01-02T12:00:00-03:00", A, 1, "10.00");
    order1(T, "paid", "2024-01-03T12:00:00-03:00", A, 1, "10.00");
    r = rebuild(T, "2024-01-01", "2024-01-10");
    assert_int_equal(r.upserted, 2);
    assert_int_equal(r.deleted, 10);
    char *row = tdb_value(db.conn,
                          "SELECT concat_ws('|', status, trigger, attempts, records_processed, "
                          " metadata->>'trigger', metadata->'result'->>'rowsUpserted', "
                          " metadata->'result'->>'rowsDeleted', worker_id IS NOT NULL, "
                          " completed_at >= started_at) "
                          "FROM job_logs WHERE id = '%s'",
                          r.job);
    /* records_processed = 2 upserted + 10 deleted = 12 */
    assert_string_equal(row, "success|cli|1|12|cli|2|10|t|t");
    free(row);
}

/* An order's business day is its local date also on the days São Paulo changed its clocks
 * (DST began 2018-11-04 00:00 -> 01:00, UTC-2; ended 2019-02-17 00:00 -> 2019-02-16 23:00). */
static void test_dst_days(void **state)
{
    (void)state;
    const char *T = "00000000-0000-4000-8000-000000000014";
    fx_tenant(db.conn, T);
    char L[40];
    listing(T, "MLB1", "active", L);
    /* 2018-11-05T02:30Z = Nov 5 00:30 (UTC-2); a fixed UTC-3 would say Nov 4 23:30 */
    order1(T, "paid", "2018-11-05T02:30:00Z", L, 1, "10.00");
    /* 2019-02-17T02:30Z = Feb 16 23:30 (UTC-3, the repeated hour); a fixed UTC-2 would say
     * Feb 17 00:30 */
    order1(T, "paid", "2019-02-17T02:30:00Z", L, 1, "20.00");
    rebuild(T, "2018-11-04", "2018-11-05");
    expect_row(L, "2018-11-04", "NULL|0|0|0.00|NULL");
    expect_row(L, "2018-11-05", "NULL|1|1|10.00|NULL");
    rebuild(T, "2019-02-16", "2019-02-17");
    expect_row(L, "2019-02-16", "NULL|1|1|20.00|NULL");
    expect_row(L, "2019-02-17", "NULL|0|0|0.00|NULL");
}

/* ------------------------------------------------------------------ main */

static int setup(void **state)
{
    (void)state;
    testdb_create(&db, "rebuild");
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    testdb_drop(&db);
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_order_at_2330_local_counts_for_local_day),
        cmocka_unit_test(test_order_late_on_last_day_counted),
        cmocka_unit_test(test_order_status_filter),
        cmocka_unit_test(test_two_items_one_order),
        cmocka_unit_test(test_partial_refund_lowers_gmv),
        cmocka_unit_test(test_provisional_visits_days),
        cmocka_unit_test(test_visits_unknown_zero_positive),
        cmocka_unit_test(test_conversion_above_one_and_above_10000),
        cmocka_unit_test(test_dense_rows_every_day_inclusive),
        cmocka_unit_test(test_deleted_listing_qualification),
        cmocka_unit_test(test_listing_stops_qualifying_loses_window_rows),
        cmocka_unit_test(test_other_tenant_untouched),
        cmocka_unit_test(test_rerun_unchanged_writes_nothing),
        cmocka_unit_test(test_rollback_delete_then_rebuild_restores),
        cmocka_unit_test(test_timeout_midway_leaves_previous_rows),
        cmocka_unit_test(test_window_resolution),
        cmocka_unit_test(test_max_date_after_rebuild),
        cmocka_unit_test(test_job_log_row),
        cmocka_unit_test(test_dst_days),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
