/* Unit tests of the allTenants field in both kinds' bodies (rebuild_parse, sync_parse; issue
 * 20 item 1): `true` stands for tenantId (the tenant is then empty), `false` is as absent,
 * anything but a boolean is 400 invalid_field, and tenantId with allTenants: true is 400
 * (one or the other). The rest of the body keeps its rules. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <jansson.h>
#include <string.h>

#include "jobsd/job_rebuild.h"
#include "jobsd/job_sync_ml.h"

#define T "\"tenantId\": \"5f0e8c2a-1b2c-4d3e-8f90-abcdef012345\""

struct fleet_case {
    const char *body;
    int status;          /* 0 = accepted */
    const char *mention; /* refused: a substring of the message */
    bool all;            /* accepted: allTenants read */
};

static const struct fleet_case CASES[] = {
    {"{\"allTenants\": true}", 0, NULL, true},
    {"{\"allTenants\": true, \"daysBack\": 2}", 0, NULL, true},
    {"{\"allTenants\": false, " T "}", 0, NULL, false},
    {"{\"allTenants\": false}", 400, "tenantId is required", false},
    {"{\"allTenants\": true, " T "}", 400, "not both", false},
    {"{\"allTenants\": \"yes\"}", 400, "allTenants must be true or false", false},
    {"{\"allTenants\": 1}", 400, "allTenants must be true or false", false},
    {"{\"allTenants\": null}", 400, "allTenants must be true or false", false},
    {"{\"allTenants\": true, \"daysBack\": 0}", 400, "daysBack", false},
};

static bool check(size_t i, bool sync)
{
    const struct fleet_case *c = &CASES[i];
    json_t *body = json_loads(c->body, 0, NULL);
    assert_non_null(body);
    struct err e;
    err_clear(&e);
    int rc;
    bool all = false;
    if (sync) {
        char tenant[37] = "x";
        long long days = 0;
        unsigned include = 0;
        rc = sync_parse(body, tenant, &days, &include, &e);
        all = rc == 0 && tenant[0] == '\0';
    } else {
        struct rebuild_input in;
        rc = rebuild_parse(body, 366, &in, &e);
        all = rc == 0 && in.all_tenants && in.tenant_id[0] == '\0';
    }
    json_decref(body);
    bool ok = c->status == 0
                  ? rc == 0 && all == c->all
                  : rc != 0 && e.http_status == c->status && strcmp(e.code, "invalid_field") == 0 &&
                        strstr(e.message, c->mention) != NULL;
    if (!ok)
        print_error("%s case %zu (%s): rc %d, %d %s \"%s\", allTenants read %d\n",
                    sync ? "sync" : "rebuild", i, c->body, rc, e.http_status, e.code, e.message,
                    all);
    return ok;
}

static void test_rebuild_all_tenants(void **state)
{
    (void)state;
    int bad = 0;
    for (size_t i = 0; i < sizeof CASES / sizeof CASES[0]; i++)
        bad += !check(i, false);
    assert_int_equal(bad, 0);
}

static void test_sync_all_tenants(void **state)
{
    (void)state;
    int bad = 0;
    for (size_t i = 0; i < sizeof CASES / sizeof CASES[0]; i++)
        bad += !check(i, true);
    assert_int_equal(bad, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rebuild_all_tenants),
        cmocka_unit_test(test_sync_all_tenants),
    };
    return cmocka_run_group_tests_name("fleet_parse", tests, NULL, NULL);
}
