/* Unit tests of the rebuild body checks that need no database, in SPEC 1.1 order: object →
 * unknown field → types → tenantId → dates → combination. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <jansson.h>
#include <string.h>

#include "jobsd/job_rebuild.h"

#define T "\"tenantId\": \"5F0E8C2A-1B2C-4D3E-8F90-ABCDEF012345\""

static void test_table(void **state)
{
    (void)state;
    struct {
        const char *body;
        const char *code;    /* NULL = accepted */
        const char *mention; /* substring of the message (the field) */
    } cases[] = {
        {"[]", "invalid_body", "JSON object"},
        {"\"x\"", "invalid_body", "JSON object"},
        {"{" T "}", NULL, NULL},
        {"{" T ", \"from\": \"2024-01-01\", \"to\": \"2024-01-31\"}", NULL, NULL},
        {"{" T ", \"daysBack\": 7}", NULL, NULL},
        {"{" T ", \"daysBack\": 7, \"to\": \"2024-01-31T06:00:00Z\"}", NULL, NULL},
        {"{" T ", \"form\": \"2024-01-01\"}", "unknown_field", "form"},
        /* unknown field wins over a bad type */
        {"{\"tenantId\": 5, \"x\": 1}", "unknown_field", "\"x\""},
        {"{\"tenantId\": 5}", "invalid_field", "tenantId"},
        {"{" T ", \"from\": 20240101, \"to\": \"2024-01-31\"}", "invalid_field", "from"},
        {"{" T ", \"to\": null, \"daysBack\": 2}", "invalid_field", "to"},
        {"{" T ", \"daysBack\": \"7\"}", "invalid_field", "daysBack"},
        {"{" T ", \"daysBack\": 7.0}", "invalid_field", "daysBack"},
        {"{" T ", \"daysBack\": 0}", "invalid_field", "daysBack"},
        {"{" T ", \"daysBack\": -3}", "invalid_field", "daysBack"},
        {"{" T ", \"daysBack\": 367}", "invalid_field", "daysBack"},
        /* a type error wins over a bad uuid */
        {"{\"tenantId\": \"nope\", \"daysBack\": \"1\"}", "invalid_field", "daysBack"},
        {"{}", "invalid_field", "tenantId is required"},
        {"{\"tenantId\": \"nope\"}", "invalid_field", "tenantId must be a UUID"},
        {"{" T ", \"from\": \"2024-02-30\", \"to\": \"2024-03-01\"}", "invalid_field", "from"},
        {"{" T ", \"from\": \"2024-1-1\", \"to\": \"2024-03-01\"}", "invalid_field", "from"},
        {"{" T ", \"from\": \"2024-01-01\", \"to\": \"31/01/2024\"}", "invalid_field", "to"},
        /* a bad date wins over a bad combination */
        {"{" T ", \"from\": \"2024-02-30\"}", "invalid_field", "calendar date"},
        {"{" T ", \"from\": \"2024-01-01\"}", "invalid_field", "from requires to"},
        {"{" T ", \"to\": \"2024-01-01\"}", "invalid_field", "to requires"},
        {"{" T ", \"from\": \"2024-01-01\", \"daysBack\": 3}", "invalid_field", "daysBack"},
        {"{" T ", \"from\": \"2024-01-01\", \"to\": \"2024-01-02\", \"daysBack\": 3}",
         "invalid_field", "daysBack"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        json_t *body = json_loads(cases[i].body, JSON_DECODE_ANY, NULL);
        assert_non_null(body);
        struct rebuild_input in;
        struct err e;
        err_clear(&e);
        int rc = rebuild_parse(body, 366, &in, &e);
        if (!cases[i].code) {
            if (rc != 0)
                fail_msg("case %zu (%s) rejected: %s", i, cases[i].body, e.message);
            assert_string_equal(in.tenant_id, "5f0e8c2a-1b2c-4d3e-8f90-abcdef012345");
        } else {
            if (rc == 0)
                fail_msg("case %zu (%s) accepted", i, cases[i].body);
            assert_int_equal(e.http_status, 400);
            assert_string_equal(e.code, cases[i].code);
            if (!strstr(e.message, cases[i].mention))
                fail_msg("case %zu: message \"%s\" lacks \"%s\"", i, e.message, cases[i].mention);
        }
        json_decref(body);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_table)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
