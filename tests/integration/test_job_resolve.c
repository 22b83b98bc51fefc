/* Integration tests of the body rules that need the database: a kind's resolve (what
 * POST /api/v1/jobs/<kind> and the CLI run before queueing a job) called directly on a real
 * PostgreSQL, inside a transaction that is rolled back, with jobsd's default configuration
 * (config_load: JOBS_TIMEZONE America/Sao_Paulo, REBUILD_MAX_RANGE_DAYS 366).
 *  - rebuild (SPEC 1.1, after the checks of rebuild_parse, whose table is
 *    tests/unit/test_rebuild_parse.c): a window that would start before year 1, from after
 *    to, a window longer than REBUILD_MAX_RANGE_DAYS, `to` more than one day after today in
 *    JOBS_TIMEZONE, the unknown tenant (404) — in that order — and the window an accepted
 *    body resolves to (RFC 3339 timestamps converted to their date in the zone);
 *  - sync (SPEC 1.2, after sync_parse: tests/unit/test_sync_parse.c): the unknown tenant, and
 *    the request an accepted body resolves to.
 * One row per body: the status, the code and a substring the message must name, or for an
 * accepted body the resolved request and its single-flight identity. Dates relative to today
 * are written {today+N} (in bodies, messages and results) and computed by PostgreSQL in
 * JOBS_TIMEZONE. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jobsd/config.h"
#include "jobsd/db.h"
#include "jobsd/job.h"
#include "jobsd/job_rebuild.h"
#include "jobsd/job_sync_ml.h"
#include "testdb.h"
#include "testfx.h"

/* A tenant that exists (created in setup), the same in upper case, and one that does not. */
#define TENANT    "3f1c2a5e-8b7d-4c6e-9a1b-2c3d4e5f6a7b"
#define TENANT_UC "3F1C2A5E-8B7D-4C6E-9A1B-2C3D4E5F6A7B"
#define NOBODY    "00000000-0000-4000-8000-00000000abcd"
#define NOBODY_UC "00000000-0000-4000-8000-00000000ABCD"
#define T         "\"tenantId\": \"" TENANT "\""
#define N         "\"tenantId\": \"" NOBODY "\""

static struct testdb db;
static struct config cfg;

struct resolve_case {
    const struct job_kind *kind;
    const char *body;
    int status;          /* 0 = accepted */
    const char *code;    /* refused: error.code */
    const char *mention; /* refused: a substring the message must contain (the field) */
    const char *params;  /* accepted: the resolved request, as JSON */
    const char *dedupe;  /* accepted: its single-flight identity */
};

#define REBUILD &job_rebuild_kind
#define SYNC    &job_sync_ml_kind
#define WINDOW(from, to)                                                                           \
    "{\"tenantId\": \"" TENANT "\", \"from\": \"" from "\", \"to\": \"" to "\"}",                  \
        "metrics_aggregation:" TENANT ":" from ":" to

static const struct resolve_case CASES[] = {
    /* ---- rebuild: accepted windows, resolved in JOBS_TIMEZONE */
    /* nothing = daysBack 2 ending today: yesterday and today */
    {REBUILD, "{" T "}", 0, NULL, NULL, WINDOW("{today-1}", "{today}")},
    {REBUILD, "{\"tenantId\": \"" TENANT_UC "\", \"daysBack\": 3, \"to\": \"2024-03-10\"}", 0, NULL,
     NULL, WINDOW("2024-03-08", "2024-03-10")},
    /* 03:00-03:00 is 03:00 local on the 31st */
    {REBUILD, "{" T ", \"to\": \"2024-01-31T03:00:00-03:00\", \"daysBack\": 2}", 0, NULL, NULL,
     WINDOW("2024-01-30", "2024-01-31")},
    /* 02:00Z is 23:00 local the day before */
    {REBUILD, "{" T ", \"to\": \"2024-01-31T02:00:00Z\", \"daysBack\": 2}", 0, NULL, NULL,
     WINDOW("2024-01-29", "2024-01-30")},
    /* exactly REBUILD_MAX_RANGE_DAYS (366) days, as dates, as daysBack, and with a timestamp
     * whose date in the zone (2024-01-01) makes it 366 days where its UTC date would make 367 */
    {REBUILD, "{" T ", \"from\": \"2023-01-01\", \"to\": \"2024-01-01\"}", 0, NULL, NULL,
     WINDOW("2023-01-01", "2024-01-01")},
    {REBUILD, "{" T ", \"daysBack\": 366, \"to\": \"2024-12-31\"}", 0, NULL, NULL,
     WINDOW("2024-01-01", "2024-12-31")},
    {REBUILD, "{" T ", \"from\": \"2023-01-01\", \"to\": \"2024-01-02T02:00:00Z\"}", 0, NULL, NULL,
     WINDOW("2023-01-01", "2024-01-01")},
    /* leap day */
    {REBUILD, "{" T ", \"from\": \"2024-02-29\", \"to\": \"2024-03-01\"}", 0, NULL, NULL,
     WINDOW("2024-02-29", "2024-03-01")},
    /* tomorrow is fine */
    {REBUILD, "{" T ", \"to\": \"{today+1}\", \"daysBack\": 1}", 0, NULL, NULL,
     WINDOW("{today+1}", "{today+1}")},

    /* ---- rebuild: the window rules, each naming the field */
    /* from after to */
    {REBUILD, "{" T ", \"from\": \"2024-02-01\", \"to\": \"2024-01-31\"}", 400, "invalid_field",
     "from (2024-02-01) is after to (2024-01-31)", NULL, NULL},
    /* 367 days */
    {REBUILD, "{" T ", \"from\": \"2023-01-01\", \"to\": \"2024-01-02\"}", 400, "invalid_field",
     "from..to (2023-01-01..2024-01-02) spans 367 days; the maximum is 366 "
     "(REBUILD_MAX_RANGE_DAYS)",
     NULL, NULL},
    /* to more than one day after today (in JOBS_TIMEZONE) */
    {REBUILD, "{" T ", \"to\": \"{today+2}\", \"daysBack\": 1}", 400, "invalid_field",
     "to ({today+2}) is more than one day after today", NULL, NULL},
    {REBUILD, "{" T ", \"from\": \"{today+2}\", \"to\": \"{today+2}\"}", 400, "invalid_field",
     "to ({today+2}) is more than one day after today ({today} in America/Sao_Paulo)", NULL, NULL},
    /* a window that resolves to dates before 0001-01-01 (year 1 BC) is not a window of real
     * dates (the resolved from would print "0001-12-31", after to); the message names the
     * field that reaches back there */
    {REBUILD, "{" N ", \"to\": \"0001-01-01\", \"daysBack\": 2}", 400, "invalid_field",
     "daysBack: the window would start before 0001-01-01", NULL, NULL},
    {REBUILD, "{" N ", \"to\": \"0001-01-01T00:00:00+05:00\", \"daysBack\": 1}", 400,
     "invalid_field", "daysBack: the window would start before 0001-01-01", NULL, NULL},
    {REBUILD, "{" T ", \"from\": \"0001-01-01T00:00:00+05:00\", \"to\": \"0001-01-01\"}", 400,
     "invalid_field", "from: the window would start before 0001-01-01", NULL, NULL},

    /* ---- rebuild: the unknown tenant (the id in any case; the message names it in lower
     * case) once every other rule passed */
    {REBUILD, "{" N "}", 404, "tenant_not_found", "tenantId " NOBODY " does not exist", NULL, NULL},
    {REBUILD, "{\"tenantId\": \"" NOBODY_UC "\"}", 404, "tenant_not_found",
     "tenantId " NOBODY " does not exist", NULL, NULL},
    {REBUILD, "{" N ", \"from\": \"2023-01-01\", \"to\": \"2024-01-01\"}", 404, "tenant_not_found",
     NOBODY, NULL, NULL},
    {REBUILD, "{" N ", \"daysBack\": 366}", 404, "tenant_not_found", NOBODY, NULL, NULL},
    {REBUILD, "{" N ", \"from\": \"2023-01-01\", \"to\": \"2024-01-02T02:00:00Z\"}", 404,
     "tenant_not_found", NOBODY, NULL, NULL},
    {REBUILD, "{" N ", \"to\": \"{today+1}\", \"daysBack\": 1}", 404, "tenant_not_found", NOBODY,
     NULL, NULL},
    {REBUILD, "{" N ", \"to\": \"2024-01-31T03:00:00-03:00\", \"daysBack\": 2}", 404,
     "tenant_not_found", NOBODY, NULL, NULL},
    {REBUILD, "{" N ", \"from\": \"2024-02-29\", \"to\": \"2024-03-01\"}", 404, "tenant_not_found",
     NOBODY, NULL, NULL},

    /* ---- rebuild: when several rules are broken, the first in SPEC order is reported */
    /* from after to over a date too far ahead */
    {REBUILD, "{" T ", \"from\": \"{today+5}\", \"to\": \"{today+2}\"}", 400, "invalid_field",
     "from ({today+5}) is after to ({today+2})", NULL, NULL},
    /* too long a window over a date too far ahead */
    {REBUILD, "{" T ", \"from\": \"2020-01-01\", \"to\": \"{today+5}\"}", 400, "invalid_field",
     "the maximum is 366 (REBUILD_MAX_RANGE_DAYS)", NULL, NULL},
    /* every 400 over the unknown tenant: the body checks, then each window rule */
    {REBUILD, "{" N ", \"from\": \"2024-01-01\"}", 400, "invalid_field", "from requires to", NULL,
     NULL},
    {REBUILD, "{" N ", \"daysBack\": 0}", 400, "invalid_field",
     "daysBack must be an integer from 1 to 366", NULL, NULL},
    {REBUILD, "{" N ", \"from\": \"2024-02-01\", \"to\": \"2024-01-31\"}", 400, "invalid_field",
     "from (2024-02-01) is after to (2024-01-31)", NULL, NULL},
    {REBUILD, "{" N ", \"from\": \"2023-01-01\", \"to\": \"2024-01-02\"}", 400, "invalid_field",
     "spans 367 days; the maximum is 366", NULL, NULL},
    {REBUILD, "{" N ", \"to\": \"{today+2}\", \"daysBack\": 1}", 400, "invalid_field",
     "to ({today+2}) is more than one day after today", NULL, NULL},

    /* ---- sync: accepted (defaults: 30 days, every part, in a fixed order) */
    {SYNC, "{" T "}", 0, NULL, NULL,
     "{\"tenantId\": \"" TENANT "\", \"daysBack\": 30, \"include\": [\"listings\", \"orders\", "
     "\"visits\"]}",
     "mercadolivre_sync:" TENANT},
    {SYNC,
     "{\"tenantId\": \"" TENANT_UC "\", \"daysBack\": 7, \"include\": [\"visits\", "
     "\"orders\"]}",
     0, NULL, NULL,
     "{\"tenantId\": \"" TENANT "\", \"daysBack\": 7, \"include\": [\"orders\", \"visits\"]}",
     "mercadolivre_sync:" TENANT},

    /* ---- sync: the unknown tenant, after every body check */
    {SYNC, "{" N "}", 404, "tenant_not_found", "tenantId " NOBODY " does not exist", NULL, NULL},
    {SYNC, "{\"tenantId\": \"" NOBODY_UC "\", \"daysBack\": 365}", 404, "tenant_not_found",
     "tenantId " NOBODY " does not exist", NULL, NULL},
    {SYNC, "{" N ", \"daysBack\": 366}", 400, "invalid_field",
     "daysBack must be an integer from 1 to 365", NULL, NULL},
    {SYNC, "{" N ", \"include\": []}", 400, "invalid_field", "include must not be empty", NULL,
     NULL},
    {SYNC, "{" N ", \"from\": \"2024-01-01\"}", 400, "unknown_field", "unknown field \"from\"",
     NULL, NULL},
};

/* ------------------------------------------------------------------ helpers */

/* Copies tmpl into out with every {today+N} / {today-N} / {today} replaced by that date in
 * JOBS_TIMEZONE (YYYY-MM-DD). */
static void expand(const char *tmpl, char *out, size_t cap)
{
    size_t len = 0;
    for (const char *p = tmpl; *p;) {
        if (strncmp(p, "{today", 6) == 0) {
            char *end;
            long offset = strtol(p + 6, &end, 10);
            if (*end != '}')
                fail_msg("bad date token in %s", tmpl);
            char *d = tdb_value(db.conn,
                                "SELECT to_char((now() AT TIME ZONE '%s')::date + %ld, "
                                "'YYYY-MM-DD')",
                                cfg.jobs_timezone, offset);
            assert_non_null(d);
            int n = snprintf(out + len, cap - len, "%s", d);
            free(d);
            assert_true(n > 0 && (size_t)n < cap - len);
            len += (size_t)n;
            p = end + 1;
        } else {
            assert_true(len + 1 < cap);
            out[len++] = *p++;
        }
    }
    out[len] = '\0';
}

/* Resolves one row's body in a transaction that is rolled back; returns false (after
 * printing why) when the verdict differs. */
static bool check_case(size_t i, const struct resolve_case *c)
{
    char body_text[512], want_params[512], want_dedupe[256], want_mention[256] = "";
    expand(c->body, body_text, sizeof body_text);
    if (c->status != 0)
        expand(c->mention, want_mention, sizeof want_mention);
    json_t *body = json_loads(body_text, JSON_DECODE_ANY, NULL);
    assert_non_null(body);
    struct job_request req;
    memset(&req, 0, sizeof req);
    struct err e;
    err_clear(&e);
    if (db_begin(db.conn, cfg.db_query_timeout_ms, &e) != 0)
        fail_msg("BEGIN failed: %s", e.message);
    int rc = c->kind->resolve(&cfg, db.conn, body, &req, &e);
    db_rollback(db.conn);
    bool ok = true;
    if (c->status == 0) {
        expand(c->params, want_params, sizeof want_params);
        expand(c->dedupe, want_dedupe, sizeof want_dedupe);
        json_t *want = json_loads(want_params, 0, NULL);
        assert_non_null(want);
        if (rc != 0) {
            print_error("case %zu (%s %s) refused: %d %s %s\n", i, c->kind->name, body_text,
                        e.http_status, e.code, e.message);
            ok = false;
        } else if (!json_equal(req.params, want) || strcmp(req.dedupe_key, want_dedupe) != 0 ||
                   strcmp(req.tenant_id, TENANT) != 0) {
            char *got = json_dumps(req.params, JSON_COMPACT | JSON_SORT_KEYS);
            print_error("case %zu (%s %s): resolved to %s as %s (tenant %s), want %s as %s\n", i,
                        c->kind->name, body_text, got ? got : "(null)", req.dedupe_key,
                        req.tenant_id, want_params, want_dedupe);
            free(got);
            ok = false;
        }
        json_decref(want);
    } else if (rc == 0) {
        print_error("case %zu (%s %s) accepted, want %d %s\n", i, c->kind->name, body_text,
                    c->status, c->code);
        ok = false;
    } else if (e.http_status != c->status || strcmp(e.code, c->code) != 0 ||
               !strstr(e.message, want_mention)) {
        print_error("case %zu (%s %s): %d %s \"%s\", want %d %s naming \"%s\"\n", i, c->kind->name,
                    body_text, e.http_status, e.code, e.message, c->status, c->code, want_mention);
        ok = false;
    }
    job_request_clear(&req);
    json_decref(body);
    return ok;
}

/* ------------------------------------------------------------------ tests */

static void test_table(void **state)
{
    (void)state;
    size_t failed = 0;
    for (size_t i = 0; i < sizeof CASES / sizeof CASES[0]; i++)
        failed += !check_case(i, &CASES[i]);
    print_message("%zu cases\n", sizeof CASES / sizeof CASES[0]);
    if (failed)
        fail_msg("%zu of %zu cases failed", failed, sizeof CASES / sizeof CASES[0]);
}

/* ------------------------------------------------------------------ fixture */

static const char *env_of(void *ctx, const char *name)
{
    return strcmp(name, "DATABASE_URL") == 0 ? ctx : NULL;
}

static int setup(void **state)
{
    (void)state;
    testdb_create(&db, "resolve");
    fx_tenant(db.conn, TENANT);
    if (config_load(&cfg, CONFIG_JOB, env_of, db.url, stderr) != 0)
        return -1;
    /* The table's numbers are those of the defaults. */
    if (strcmp(cfg.jobs_timezone, "America/Sao_Paulo") != 0 || cfg.rebuild_max_range_days != 366) {
        print_error("JOBS_TIMEZONE %s, REBUILD_MAX_RANGE_DAYS %lld: not the defaults the table "
                    "assumes\n",
                    cfg.jobs_timezone, cfg.rebuild_max_range_days);
        return -1;
    }
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    config_free(&cfg);
    testdb_drop(&db);
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_table)};
    return cmocka_run_group_tests(tests, setup, teardown);
}
