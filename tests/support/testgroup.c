/* testgroup: see testgroup.h. */
#include "testgroup.h"

#include <stdbool.h>

static CMFixtureFunction group_teardown;
static bool teardown_passed;

/* Runs the group's teardown; an assertion that fails in it jumps back into cmocka past the
 * last line, so the verdict is "failed" until the teardown returned 0. */
static int counted_teardown(void **state)
{
    teardown_passed = false;
    int rc = group_teardown(state);
    teardown_passed = rc == 0;
    return rc;
}

int tgroup_run_n(const char *name, const struct CMUnitTest *tests, size_t n,
                 CMFixtureFunction setup, CMFixtureFunction teardown)
{
    group_teardown = teardown;
    teardown_passed = true;
    int failed = _cmocka_run_group_tests(name, tests, n, setup, teardown ? counted_teardown : NULL);
    group_teardown = NULL;
    if (!teardown_passed) {
        print_error("[  FAILED  ] %s: the group teardown's checks failed (counted as a failure)\n",
                    name);
        failed++;
    }
    return failed;
}
