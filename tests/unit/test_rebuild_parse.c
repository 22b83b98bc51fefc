/* Unit tests of the rebuild body checks that need no database (rebuild_parse), in SPEC 1.1
 * order: object → unknown field → types → tenantId → dates → combination → daysBack range.
 * The whole catalogue of bodies these checks decide lives here, one row per body: the status,
 * the code and a substring the message must name (the field). The rules that need the
 * database (the resolved window, today in JOBS_TIMEZONE, the tenant) are the table of
 * tests/integration/test_job_resolve.c; tests/e2e/test_http.c sends one body per error code
 * over HTTP. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <jansson.h>
#include <string.h>

#include "jobsd/job_rebuild.h"

/* A tenant in upper case: an accepted body must come back with it in lower case. */
#define T         "\"tenantId\": \"5F0E8C2A-1B2C-4D3E-8F90-ABCDEF012345\""
#define T_LOWER   "5f0e8c2a-1b2c-4d3e-8f90-abcdef012345"
#define MAX_RANGE 366 /* REBUILD_MAX_RANGE_DAYS's default */

struct rebuild_case {
    const char *body;
    int status;          /* 0 = accepted */
    const char *code;    /* error.code when refused */
    const char *mention; /* a substring the message must contain (the field) */
    long long days_back; /* accepted: the daysBack read (0 = absent) */
};

static const struct rebuild_case CASES[] = {
    /* Accepted combinations: nothing, from+to, daysBack, daysBack+to (dates or timestamps). */
    {"{" T "}", 0, NULL, NULL, 0},
    {"{" T ", \"from\": \"2024-01-01\", \"to\": \"2024-01-31\"}", 0, NULL, NULL, 0},
    {"{" T ", \"daysBack\": 7}", 0, NULL, NULL, 7},
    {"{" T ", \"daysBack\": 7, \"to\": \"2024-01-31T06:00:00Z\"}", 0, NULL, NULL, 7},
    {"{" T ", \"daysBack\": 1}", 0, NULL, NULL, 1},
    {"{" T ", \"daysBack\": 366}", 0, NULL, NULL, 366},
    {"{" T ", \"to\": \"2024-01-31T03:00:00-03:00\", \"daysBack\": 2}", 0, NULL, NULL, 2},
    {"{" T ", \"from\": \"2024-02-29\", \"to\": \"2024-03-01\"}", 0, NULL, NULL, 0},
    {"{" T ", \"from\": \"2023-01-01\", \"to\": \"2024-01-02T02:00:00Z\"}", 0, NULL, NULL, 0},

    /* The body is not an object. */
    {"[]", 400, "invalid_body", "JSON object", 0},
    {"[{" T "}]", 400, "invalid_body", "JSON object", 0},
    {"\"x\"", 400, "invalid_body", "JSON object", 0},
    {"\"5f0e8c2a-1b2c-4d3e-8f90-abcdef012345\"", 400, "invalid_body", "JSON object", 0},
    {"42", 400, "invalid_body", "JSON object", 0},
    {"-1.5", 400, "invalid_body", "JSON object", 0},
    {"null", 400, "invalid_body", "JSON object", 0},
    {"true", 400, "invalid_body", "JSON object", 0},

    /* Unknown fields: a typo never falls back to the default window. */
    {"{" T ", \"form\": \"2024-01-01\"}", 400, "unknown_field", "\"form\"", 0},
    {"{" T ", \"TenantId\": \"5f0e8c2a-1b2c-4d3e-8f90-abcdef012345\"}", 400, "unknown_field",
     "\"TenantId\"", 0},
    {"{\"tenant_id\": \"5f0e8c2a-1b2c-4d3e-8f90-abcdef012345\"}", 400, "unknown_field",
     "\"tenant_id\"", 0},
    {"{" T ", \"days_back\": 2}", 400, "unknown_field", "\"days_back\"", 0},
    {"{" T ", \"\": 2}", 400, "unknown_field", "unknown field \"\"", 0},
    /* a name longer than the message quotes (cut inside its multi-byte character) */
    {"{\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\xc3\xa9\": 1}", 400,
     "unknown_field", "\"aaaaaaaa", 0},

    /* Wrong types, each naming the field. */
    {"{\"tenantId\": 5}", 400, "invalid_field", "tenantId must be a string", 0},
    {"{\"tenantId\": 123}", 400, "invalid_field", "tenantId must be a string", 0},
    {"{\"tenantId\": null}", 400, "invalid_field", "tenantId must be a string", 0},
    {"{\"tenantId\": [\"5f0e8c2a-1b2c-4d3e-8f90-abcdef012345\"]}", 400, "invalid_field",
     "tenantId must be a string", 0},
    {"{\"tenantId\": {\"id\": \"5f0e8c2a-1b2c-4d3e-8f90-abcdef012345\"}}", 400, "invalid_field",
     "tenantId must be a string", 0},
    {"{" T ", \"from\": 20240101, \"to\": \"2024-01-31\"}", 400, "invalid_field",
     "from must be a string", 0},
    {"{" T ", \"from\": \"2024-01-01\", \"to\": true}", 400, "invalid_field", "to must be a string",
     0},
    {"{" T ", \"to\": null, \"daysBack\": 2}", 400, "invalid_field", "to must be a string", 0},
    {"{" T ", \"daysBack\": \"2\"}", 400, "invalid_field",
     "daysBack must be an integer from 1 to 366", 0},
    {"{" T ", \"daysBack\": \"7\"}", 400, "invalid_field",
     "daysBack must be an integer from 1 to 366", 0},
    {"{" T ", \"daysBack\": 2.5}", 400, "invalid_field",
     "daysBack must be an integer from 1 to 366", 0},
    {"{" T ", \"daysBack\": 2.0}", 400, "invalid_field",
     "daysBack must be an integer from 1 to 366", 0},
    {"{" T ", \"daysBack\": 7.0}", 400, "invalid_field",
     "daysBack must be an integer from 1 to 366", 0},
    {"{" T ", \"daysBack\": true}", 400, "invalid_field",
     "daysBack must be an integer from 1 to 366", 0},
    {"{}", 400, "invalid_field", "tenantId is required", 0},

    /* tenantId not a UUID. */
    {"{\"tenantId\": \"nope\"}", 400, "invalid_field", "tenantId must be a UUID", 0},
    {"{\"tenantId\": \"\"}", 400, "invalid_field", "tenantId must be a UUID", 0},
    {"{\"tenantId\": \"not-a-uuid\"}", 400, "invalid_field", "tenantId must be a UUID", 0},
    {"{\"tenantId\": \"3f1c2a5e8b7d4c6e9a1b2c3d4e5f6a7b\"}", 400, "invalid_field",
     "tenantId must be a UUID", 0},
    {"{\"tenantId\": \"{3f1c2a5e-8b7d-4c6e-9a1b-2c3d4e5f6a7b}\"}", 400, "invalid_field",
     "tenantId must be a UUID", 0},
    {"{\"tenantId\": \"3f1c2a5e-8b7d-4c6e-9a1b-2c3d4e5f6a7\"}", 400, "invalid_field",
     "tenantId must be a UUID", 0},
    {"{\"tenantId\": \"3f1c2a5e-8b7d-4c6e-9a1b-2c3d4e5f6a7bb\"}", 400, "invalid_field",
     "tenantId must be a UUID", 0},
    {"{\"tenantId\": \"3f1c2a5e-8b7d-4c6e-9a1b-2c3d4e5f6a7g\"}", 400, "invalid_field",
     "tenantId must be a UUID", 0},
    {"{\"tenantId\": \" 3f1c2a5e-8b7d-4c6e-9a1b-2c3d4e5f6a7b\"}", 400, "invalid_field",
     "tenantId must be a UUID", 0},
    {"{\"tenantId\": \"3f1c2a5e-8b7d-4c6e-9a1b-2c3d4e5f6a7b' OR '1'='1\"}", 400, "invalid_field",
     "tenantId must be a UUID", 0},
    {"{\"tenantId\": \"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\xc3\xa9\"}", 400, "invalid_field",
     "tenantId must be a UUID", 0},

    /* Dates that are not real calendar dates, or in neither accepted format. */
    {"{" T ", \"from\": \"2024-02-30\", \"to\": \"2024-03-01\"}", 400, "invalid_field",
     "from must be a calendar date", 0},
    {"{" T ", \"from\": \"2023-02-29\", \"to\": \"2023-03-01\"}", 400, "invalid_field",
     "from must be a calendar date", 0},
    {"{" T ", \"from\": \"2024-01-01\", \"to\": \"2024-04-31\"}", 400, "invalid_field",
     "to must be a calendar date", 0},
    {"{" T ", \"from\": \"2024-1-1\", \"to\": \"2024-01-31\"}", 400, "invalid_field",
     "from must be a calendar date", 0},
    {"{" T ", \"from\": \"2024-1-1\", \"to\": \"2024-03-01\"}", 400, "invalid_field",
     "from must be a calendar date", 0},
    {"{" T ", \"from\": \"31/01/2024\", \"to\": \"2024-02-01\"}", 400, "invalid_field",
     "from must be a calendar date", 0},
    {"{" T ", \"from\": \"2024-01-01\", \"to\": \"31/01/2024\"}", 400, "invalid_field",
     "to must be a calendar date", 0},
    {"{" T ", \"to\": \"2024-1-1\", \"daysBack\": 2}", 400, "invalid_field",
     "to must be a calendar date", 0},
    {"{" T ", \"to\": \"20240131\", \"daysBack\": 2}", 400, "invalid_field",
     "to must be a calendar date", 0},
    {"{" T ", \"to\": \"2024-01-31T25:00:00Z\", \"daysBack\": 2}", 400, "invalid_field",
     "to must be a calendar date", 0},
    {"{" T ", \"to\": \"2024-01-31T06:00:00\", \"daysBack\": 2}", 400, "invalid_field",
     "to must be a calendar date", 0},
    {"{" T ", \"to\": \"2024-01-31 06:00:00Z\", \"daysBack\": 2}", 400, "invalid_field",
     "to must be a calendar date", 0},
    {"{" T ", \"to\": \"yesterday\", \"daysBack\": 2}", 400, "invalid_field",
     "to must be a calendar date", 0},
    {"{" T ", \"to\": \"\", \"daysBack\": 2}", 400, "invalid_field", "to must be a calendar date",
     0},

    /* Combinations other than from+to, daysBack, daysBack+to, nothing. */
    {"{" T ", \"from\": \"2024-01-01\"}", 400, "invalid_field", "from requires to", 0},
    {"{" T ", \"to\": \"2024-01-01\"}", 400, "invalid_field", "to requires from or daysBack", 0},
    {"{" T ", \"to\": \"2024-01-31\"}", 400, "invalid_field", "to requires from or daysBack", 0},
    {"{" T ", \"from\": \"2024-01-01\", \"daysBack\": 3}", 400, "invalid_field",
     "from cannot be combined with daysBack", 0},
    {"{" T ", \"from\": \"2024-01-01\", \"to\": \"2024-01-02\", \"daysBack\": 3}", 400,
     "invalid_field", "from cannot be combined with daysBack", 0},
    {"{" T ", \"from\": \"2024-01-01\", \"to\": \"2024-01-31\", \"daysBack\": 3}", 400,
     "invalid_field", "from cannot be combined with daysBack", 0},

    /* daysBack 1..REBUILD_MAX_RANGE_DAYS. */
    {"{" T ", \"daysBack\": 0}", 400, "invalid_field", "daysBack must be an integer from 1 to 366",
     0},
    {"{" T ", \"daysBack\": -1}", 400, "invalid_field", "daysBack must be an integer from 1 to 366",
     0},
    {"{" T ", \"daysBack\": -3}", 400, "invalid_field", "daysBack must be an integer from 1 to 366",
     0},
    {"{" T ", \"daysBack\": 367}", 400, "invalid_field",
     "daysBack must be an integer from 1 to 366 (REBUILD_MAX_RANGE_DAYS)", 0},
    {"{" T ", \"daysBack\": 99999999999999999}", 400, "invalid_field",
     "daysBack must be an integer from 1 to 366 (REBUILD_MAX_RANGE_DAYS)", 0},

    /* When several rules are broken, the first in SPEC order is reported. */
    /* not an object over everything inside it */
    {"[{\"form\": 1, \"tenantId\": 5}]", 400, "invalid_body", "JSON object", 0},
    /* an unknown field over a bad type, a bad uuid, a missing tenant */
    {"{\"tenantId\": 5, \"x\": 1}", 400, "unknown_field", "\"x\"", 0},
    {"{\"tenantId\": 1, \"form\": \"2024-01-01\"}", 400, "unknown_field", "\"form\"", 0},
    {"{\"daysBack\": \"x\", \"tenantId\": \"nope\", \"form\": 1}", 400, "unknown_field", "\"form\"",
     0},
    {"{\"form\": \"2024-01-01\"}", 400, "unknown_field", "\"form\"", 0},
    /* a bad type over a bad uuid */
    {"{\"tenantId\": \"nope\", \"daysBack\": \"1\"}", 400, "invalid_field",
     "daysBack must be an integer from 1 to 366", 0},
    {"{\"tenantId\": \"nope\", \"daysBack\": \"2\"}", 400, "invalid_field",
     "daysBack must be an integer from 1 to 366", 0},
    {"{\"tenantId\": \"nope\", \"from\": 1, \"to\": \"2024-01-01\"}", 400, "invalid_field",
     "from must be a string", 0},
    /* a bad daysBack (below 1) over a missing tenant */
    {"{\"daysBack\": 0}", 400, "invalid_field", "daysBack must be an integer from 1 to 366", 0},
    /* a bad uuid over a bad date */
    {"{\"tenantId\": \"nope\", \"from\": \"2024-02-30\", \"to\": \"2024-03-01\"}", 400,
     "invalid_field", "tenantId must be a UUID", 0},
    /* a bad date over a bad combination */
    {"{" T ", \"from\": \"2024-02-30\"}", 400, "invalid_field", "from must be a calendar date", 0},
    {"{" T ", \"from\": \"2024-02-30\", \"daysBack\": 2}", 400, "invalid_field",
     "from must be a calendar date", 0},
    /* a bad combination over from-after-to (which needs the database) */
    {"{" T ", \"from\": \"2024-02-01\", \"to\": \"2024-01-01\", \"daysBack\": 3}", 400,
     "invalid_field", "from cannot be combined with daysBack", 0},
    /* a bad combination over a daysBack out of range */
    {"{" T ", \"from\": \"2024-01-01\", \"daysBack\": 400}", 400, "invalid_field",
     "from cannot be combined with daysBack", 0},
};

/* Checks one row; returns false (after printing why) when the verdict differs. */
static bool check_case(size_t i, const struct rebuild_case *c)
{
    json_error_t jerr;
    json_t *body = json_loads(c->body, JSON_DECODE_ANY, &jerr);
    if (!body) {
        print_error("case %zu: the body does not parse (%s): %s\n", i, jerr.text, c->body);
        return false;
    }
    struct rebuild_input in;
    struct err e;
    err_clear(&e);
    int rc = rebuild_parse(body, MAX_RANGE, &in, &e);
    bool ok = true;
    if (c->status == 0) {
        if (rc != 0) {
            print_error("case %zu (%s) refused: %d %s %s\n", i, c->body, e.http_status, e.code,
                        e.message);
            ok = false;
        } else if (strcmp(in.tenant_id, T_LOWER) != 0 || in.days_back != c->days_back) {
            print_error("case %zu (%s): tenant %s daysBack %lld, want %s %lld\n", i, c->body,
                        in.tenant_id, in.days_back, T_LOWER, c->days_back);
            ok = false;
        }
    } else if (rc == 0) {
        print_error("case %zu (%s) accepted, want %d %s\n", i, c->body, c->status, c->code);
        ok = false;
    } else if (e.http_status != c->status || strcmp(e.code, c->code) != 0 ||
               !strstr(e.message, c->mention)) {
        print_error("case %zu (%s): %d %s \"%s\", want %d %s naming \"%s\"\n", i, c->body,
                    e.http_status, e.code, e.message, c->status, c->code, c->mention);
        ok = false;
    }
    json_decref(body);
    return ok;
}

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

/* The bounds follow REBUILD_MAX_RANGE_DAYS, and the message names the setting. */
static void test_max_range_from_configuration(void **state)
{
    (void)state;
    static const struct {
        const char *body;
        long long max;
        bool accepted;
    } cases[] = {
        {"{" T ", \"daysBack\": 30}", 30, true},
        {"{" T ", \"daysBack\": 31}", 30, false},
        {"{" T ", \"daysBack\": 3660}", 3660, true},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        json_t *body = json_loads(cases[i].body, 0, NULL);
        assert_non_null(body);
        struct rebuild_input in;
        struct err e;
        err_clear(&e);
        int rc = rebuild_parse(body, cases[i].max, &in, &e);
        json_decref(body);
        if (cases[i].accepted) {
            assert_int_equal(rc, 0);
        } else {
            assert_int_not_equal(rc, 0);
            assert_string_equal(e.code, "invalid_field");
            if (!strstr(e.message, "REBUILD_MAX_RANGE_DAYS") || !strstr(e.message, "30"))
                fail_msg("message \"%s\" does not name REBUILD_MAX_RANGE_DAYS (30)", e.message);
        }
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_table),
                                       cmocka_unit_test(test_max_range_from_configuration)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
