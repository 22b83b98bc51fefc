/* Unit tests of the sync body checks (sync_parse, SPEC 1.2: tenantId, daysBack 1..365,
 * include), in the order of SPEC 1.1 that 1.2 takes over: object → unknown field → types and
 * ranges → tenantId → include's items. One row per body: the status, the code and a
 * substring the message must name, or for an accepted body the values read (defaults: 30
 * days, every part). The unknown tenant (404) is the table of
 * tests/integration/test_job_resolve.c; tests/e2e/test_http.c sends one body per error code
 * over HTTP. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <jansson.h>
#include <string.h>

#include "jobsd/job_sync_ml.h"

/* A tenant in upper case: an accepted body must come back with it in lower case. */
#define T       "\"tenantId\": \"5F0E8C2A-1B2C-4D3E-8F90-ABCDEF012345\""
#define T_LOWER "5f0e8c2a-1b2c-4d3e-8f90-abcdef012345"
#define ALL     (SYNC_LISTINGS | SYNC_ORDERS | SYNC_VISITS)

struct sync_case {
    const char *body;
    int status;          /* 0 = accepted */
    const char *code;    /* error.code when refused */
    const char *mention; /* a substring the message must contain (the field) */
    long long days_back; /* accepted: the values read */
    unsigned include;
};

static const struct sync_case CASES[] = {
    /* Accepted, and the defaults. */
    {"{" T "}", 0, NULL, NULL, 30, ALL},
    {"{" T ", \"daysBack\": 1}", 0, NULL, NULL, 1, ALL},
    {"{" T ", \"daysBack\": 365}", 0, NULL, NULL, 365, ALL},
    {"{" T ", \"include\": [\"orders\"]}", 0, NULL, NULL, 30, SYNC_ORDERS},
    {"{" T ", \"include\": [\"visits\", \"listings\"], \"daysBack\": 7}", 0, NULL, NULL, 7,
     SYNC_LISTINGS | SYNC_VISITS},
    {"{" T ", \"include\": [\"listings\", \"orders\", \"visits\"]}", 0, NULL, NULL, 30, ALL},
    {"{\"tenantId\": \"5f0e8c2a-1b2c-4d3e-8f90-abcdef012345\"}", 0, NULL, NULL, 30, ALL},

    /* The body is not an object. */
    {"[]", 400, "invalid_body", "JSON object", 0, 0},
    {"[{" T "}]", 400, "invalid_body", "JSON object", 0, 0},
    {"\"5f0e8c2a-1b2c-4d3e-8f90-abcdef012345\"", 400, "invalid_body", "JSON object", 0, 0},
    {"42", 400, "invalid_body", "JSON object", 0, 0},
    {"null", 400, "invalid_body", "JSON object", 0, 0},
    {"true", 400, "invalid_body", "JSON object", 0, 0},

    /* Unknown fields (the rebuild's fields too: they are not the sync's). */
    {"{" T ", \"days_back\": 2}", 400, "unknown_field", "\"days_back\"", 0, 0},
    {"{" T ", \"includes\": [\"orders\"]}", 400, "unknown_field", "\"includes\"", 0, 0},
    {"{" T ", \"TenantId\": \"x\"}", 400, "unknown_field", "\"TenantId\"", 0, 0},
    {"{" T ", \"from\": \"2024-01-01\", \"to\": \"2024-01-31\"}", 400, "unknown_field", "\"from\"",
     0, 0},
    {"{" T ", \"\": 1}", 400, "unknown_field", "unknown field \"\"", 0, 0},

    /* tenantId: type, missing, not a UUID. */
    {"{\"tenantId\": 5}", 400, "invalid_field", "tenantId must be a string", 0, 0},
    {"{\"tenantId\": null}", 400, "invalid_field", "tenantId must be a string", 0, 0},
    {"{\"tenantId\": [\"5f0e8c2a-1b2c-4d3e-8f90-abcdef012345\"]}", 400, "invalid_field",
     "tenantId must be a string", 0, 0},
    {"{}", 400, "invalid_field", "tenantId is required", 0, 0},
    {"{\"daysBack\": 7}", 400, "invalid_field", "tenantId is required", 0, 0},
    {"{\"tenantId\": \"nope\"}", 400, "invalid_field", "tenantId must be a UUID", 0, 0},
    {"{\"tenantId\": \"\"}", 400, "invalid_field", "tenantId must be a UUID", 0, 0},
    {"{\"tenantId\": \"5f0e8c2a1b2c4d3e8f90abcdef012345\"}", 400, "invalid_field",
     "tenantId must be a UUID", 0, 0},
    {"{\"tenantId\": \"5f0e8c2a-1b2c-4d3e-8f90-abcdef01234g\"}", 400, "invalid_field",
     "tenantId must be a UUID", 0, 0},
    {"{\"tenantId\": \" 5f0e8c2a-1b2c-4d3e-8f90-abcdef012345\"}", 400, "invalid_field",
     "tenantId must be a UUID", 0, 0},

    /* daysBack: an integer from 1 to 365. */
    {"{" T ", \"daysBack\": \"7\"}", 400, "invalid_field",
     "daysBack must be an integer from 1 to 365", 0, 0},
    {"{" T ", \"daysBack\": 7.5}", 400, "invalid_field",
     "daysBack must be an integer from 1 to 365", 0, 0},
    {"{" T ", \"daysBack\": 7.0}", 400, "invalid_field",
     "daysBack must be an integer from 1 to 365", 0, 0},
    {"{" T ", \"daysBack\": true}", 400, "invalid_field",
     "daysBack must be an integer from 1 to 365", 0, 0},
    {"{" T ", \"daysBack\": null}", 400, "invalid_field",
     "daysBack must be an integer from 1 to 365", 0, 0},
    {"{" T ", \"daysBack\": 0}", 400, "invalid_field", "daysBack must be an integer from 1 to 365",
     0, 0},
    {"{" T ", \"daysBack\": -1}", 400, "invalid_field", "daysBack must be an integer from 1 to 365",
     0, 0},
    {"{" T ", \"daysBack\": 366}", 400, "invalid_field",
     "daysBack must be an integer from 1 to 365", 0, 0},
    {"{" T ", \"daysBack\": 99999999999999999}", 400, "invalid_field",
     "daysBack must be an integer from 1 to 365", 0, 0},

    /* include: an array of distinct known parts, not empty. */
    {"{" T ", \"include\": \"orders\"}", 400, "invalid_field", "include must be an array", 0, 0},
    {"{" T ", \"include\": {\"orders\": true}}", 400, "invalid_field", "include must be an array",
     0, 0},
    {"{" T ", \"include\": null}", 400, "invalid_field", "include must be an array", 0, 0},
    {"{" T ", \"include\": [\"orderz\"]}", 400, "invalid_field", "include must contain only", 0, 0},
    {"{" T ", \"include\": [\"Orders\"]}", 400, "invalid_field", "include must contain only", 0, 0},
    {"{" T ", \"include\": [\"orders\", 1]}", 400, "invalid_field", "include must contain only", 0,
     0},
    {"{" T ", \"include\": [null]}", 400, "invalid_field", "include must contain only", 0, 0},
    {"{" T ", \"include\": [\"orders\", \"orders\"]}", 400, "invalid_field",
     "include lists \"orders\" twice", 0, 0},
    {"{" T ", \"include\": [\"listings\", \"visits\", \"listings\"]}", 400, "invalid_field",
     "include lists \"listings\" twice", 0, 0},
    {"{" T ", \"include\": []}", 400, "invalid_field", "include must not be empty", 0, 0},

    /* When several rules are broken, the first in SPEC order is reported. */
    /* not an object over everything inside it */
    {"[{\"includes\": 1, \"tenantId\": 5}]", 400, "invalid_body", "JSON object", 0, 0},
    /* an unknown field over bad types and a missing tenant */
    {"{\"tenantId\": 5, \"daysBack\": \"x\", \"x\": 1}", 400, "unknown_field", "\"x\"", 0, 0},
    {"{\"include\": \"orders\", \"form\": 1}", 400, "unknown_field", "\"form\"", 0, 0},
    /* a bad type over a missing tenant and a bad uuid */
    {"{\"daysBack\": 0}", 400, "invalid_field", "daysBack must be an integer from 1 to 365", 0, 0},
    {"{\"tenantId\": \"nope\", \"daysBack\": 366}", 400, "invalid_field",
     "daysBack must be an integer from 1 to 365", 0, 0},
    {"{\"tenantId\": \"nope\", \"include\": \"orders\"}", 400, "invalid_field",
     "include must be an array", 0, 0},
    /* tenantId's type over daysBack's range */
    {"{\"tenantId\": 5, \"daysBack\": 0}", 400, "invalid_field", "tenantId must be a string", 0, 0},
    /* daysBack over include's type */
    {"{" T ", \"daysBack\": 0, \"include\": \"orders\"}", 400, "invalid_field",
     "daysBack must be an integer from 1 to 365", 0, 0},
    /* a bad uuid over include's items */
    {"{\"tenantId\": \"nope\", \"include\": [\"orderz\"]}", 400, "invalid_field",
     "tenantId must be a UUID", 0, 0},
    {"{\"tenantId\": \"nope\", \"include\": []}", 400, "invalid_field", "tenantId must be a UUID",
     0, 0},
    /* items in order: an unknown part before a later duplicate */
    {"{" T ", \"include\": [\"orderz\", \"orders\", \"orders\"]}", 400, "invalid_field",
     "include must contain only", 0, 0},
};

/* Checks one row; returns false (after printing why) when the verdict differs. */
static bool check_case(size_t i, const struct sync_case *c)
{
    json_error_t jerr;
    json_t *body = json_loads(c->body, JSON_DECODE_ANY, &jerr);
    if (!body) {
        print_error("case %zu: the body does not parse (%s): %s\n", i, jerr.text, c->body);
        return false;
    }
    char tenant[37] = "";
    long long days = 0;
    unsigned include = 0;
    struct err e;
    err_clear(&e);
    int rc = sync_parse(body, tenant, &days, &include, &e);
    bool ok = true;
    if (c->status == 0) {
        if (rc != 0) {
            print_error("case %zu (%s) refused: %d %s %s\n", i, c->body, e.http_status, e.code,
                        e.message);
            ok = false;
        } else if (strcmp(tenant, T_LOWER) != 0 || days != c->days_back || include != c->include) {
            print_error("case %zu (%s): tenant %s daysBack %lld include %u, want %s %lld %u\n", i,
                        c->body, tenant, days, include, T_LOWER, c->days_back, c->include);
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

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_table)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
