/* Unit tests of router: literal routes win over {param}, 404 vs 405 with Allow, HEAD. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include "jobsd/router.h"

static void h(void *app, struct http_request *r)
{
    (void)app;
    (void)r;
}

static const struct route ROUTES[] = {
    {"POST", "/api/v1/jobs/rebuild-daily-metrics", GUARD_INTERNAL, true, true, h, NULL},
    {"GET", "/api/v1/jobs/status", GUARD_JWT, false, true, h, NULL},
    {"GET", "/api/v1/jobs/{id}", GUARD_INTERNAL_OR_JWT, false, true, h, NULL},
    {"GET", "/healthz", GUARD_NONE, false, false, h, NULL},
};
#define N (sizeof ROUTES / sizeof ROUTES[0])

static void test_table(void **state)
{
    (void)state;
    struct {
        const char *method, *path;
        enum router_result want;
        int route; /* index when FOUND */
        const char *allow;
        const char *param;
    } cases[] = {
        {"POST", "/api/v1/jobs/rebuild-daily-metrics", ROUTER_FOUND, 0, NULL, ""},
        {"GET", "/api/v1/jobs/rebuild-daily-metrics", ROUTER_METHOD_NOT_ALLOWED, -1, "POST", NULL},
        {"GET", "/api/v1/jobs/status", ROUTER_FOUND, 1, NULL, ""},
        {"POST", "/api/v1/jobs/status", ROUTER_METHOD_NOT_ALLOWED, -1, "GET, HEAD", NULL},
        {"GET", "/api/v1/jobs/5f0e8c2a-1b2c-4d3e-8f90-abcdef012345", ROUTER_FOUND, 2, NULL,
         "5f0e8c2a-1b2c-4d3e-8f90-abcdef012345"},
        {"HEAD", "/api/v1/jobs/abc", ROUTER_FOUND, 2, NULL, "abc"},
        {"DELETE", "/api/v1/jobs/abc", ROUTER_METHOD_NOT_ALLOWED, -1, "GET, HEAD", NULL},
        {"GET", "/api/v1/jobs/", ROUTER_NOT_FOUND, -1, NULL, NULL},
        {"GET", "/api/v1/jobs/a/b", ROUTER_NOT_FOUND, -1, NULL, NULL},
        {"GET", "/healthz/", ROUTER_NOT_FOUND, -1, NULL, NULL},
        {"GET", "/HEALTHZ", ROUTER_NOT_FOUND, -1, NULL, NULL},
        {"GET", "/", ROUTER_NOT_FOUND, -1, NULL, NULL},
        {"GET", "", ROUTER_NOT_FOUND, -1, NULL, NULL},
        {"OPTIONS", "/healthz", ROUTER_METHOD_NOT_ALLOWED, -1, "GET, HEAD", NULL},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct router_match m;
        enum router_result r = router_match(ROUTES, N, cases[i].method, cases[i].path, &m);
        assert_int_equal(r, cases[i].want);
        if (r == ROUTER_FOUND) {
            assert_ptr_equal(m.route, &ROUTES[cases[i].route]);
            assert_string_equal(m.param, cases[i].param);
        }
        if (r == ROUTER_METHOD_NOT_ALLOWED)
            assert_string_equal(m.allow, cases[i].allow);
    }
}

static void test_long_param(void **state)
{
    (void)state;
    char path[400] = "/api/v1/jobs/";
    memset(path + strlen(path), 'a', 300);
    path[313] = '\0';
    struct router_match m;
    /* A parameter longer than the router holds is simply not this route. */
    assert_int_equal(router_match(ROUTES, N, "GET", path, &m), ROUTER_NOT_FOUND);
}

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_table),
                                       cmocka_unit_test(test_long_param)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
