/* Unit tests of the Prefer header parser (RFC 7240 as SPEC 1.3 uses it). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "jobsd/http.h"

static void test_table(void **state)
{
    (void)state;
    struct {
        const char *values[3];
        bool async, has_wait;
        long long wait;
    } cases[] = {
        {{"respond-async", NULL}, true, false, 0},
        {{"Respond-Async", NULL}, true, false, 0},
        {{"wait=3", NULL}, false, true, 3},
        {{"respond-async, wait=3", NULL}, true, true, 3},
        {{"respond-async; wait=7", NULL}, true, true, 7},
        {{"respond-async;wait=7", NULL}, true, true, 7},
        {{"WAIT = 5", NULL}, false, true, 5},
        {{"wait=\"9\"", NULL}, false, true, 9},
        {{"wait=0", NULL}, false, true, 0},
        {{"wait=5, wait=10", NULL}, false, true, 5},
        {{"wait=abc", NULL}, false, false, 0},
        {{"wait=-1", NULL}, false, false, 0},
        {{"wait=", NULL}, false, false, 0},
        {{"handling=lenient, return=minimal", NULL}, false, false, 0},
        {{"foo; wait=4", NULL}, false, false, 0},
        {{"respond-async", "wait=2"}, true, true, 2},
        {{"x=\"a,b\", respond-async", NULL}, true, false, 0},
        {{"", NULL}, false, false, 0},
        {{",,, ;", NULL}, false, false, 0},
        {{"wait=99999999999999999999999", NULL}, false, true, 999999999999999999LL},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct http_prefer p = {false, false, 0};
        for (size_t j = 0; j < 3 && cases[i].values[j]; j++)
            http_prefer_parse(&p, cases[i].values[j]);
        assert_int_equal(p.respond_async, cases[i].async);
        assert_int_equal(p.has_wait, cases[i].has_wait);
        if (p.has_wait)
            assert_int_equal(p.wait, cases[i].wait);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_table)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
