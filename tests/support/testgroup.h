/* testgroup: cmocka groups whose teardown counts. cmocka 1.1 reports a failed group teardown
 * (it returned non-zero, or an assertion failed in it) as "[  FAILED  ] GROUP TEARDOWN" but
 * does not count it: cmocka_run_group_tests returns 0 and the program passes. The checks that
 * only make sense once a whole group ran (it wrote nothing, its jobsd stopped cleanly with a
 * clean log) live in group teardowns, so the program must fail with them: tgroup_run counts a
 * failed teardown as one more failure. A failed group setup is counted by cmocka itself (and
 * the teardown still runs). Only cmocka: the fake API's self-test uses it too. */
#ifndef JOBSD_TESTGROUP_H
#define JOBSD_TESTGROUP_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

/* cmocka_run_group_tests_name with a counted teardown (setup, teardown may be NULL). Returns
 * the number of failures. */
#define tgroup_run(name, tests, setup, teardown)                                                   \
    tgroup_run_n(name, tests, sizeof(tests) / sizeof((tests)[0]), setup, teardown)
int tgroup_run_n(const char *name, const struct CMUnitTest *tests, size_t n,
                 CMFixtureFunction setup, CMFixtureFunction teardown);

#endif
