/* Unit tests of the internal-key check: current and previous keys, near misses, lengths. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include "jobsd/internal_key.h"

#define CUR  "current-key-0123456789abcdef-0123456789"
#define PREV "previous-key-0123456789abcdef-012345678"

static enum internal_key_match check(const struct internal_key *k, const char *s)
{
    return internal_key_check(k, s, s ? strlen(s) : 0);
}

static void test_current_and_previous(void **state)
{
    (void)state;
    struct internal_key *k = internal_key_new(CUR, PREV);
    assert_int_equal(check(k, CUR), INTERNAL_KEY_CURRENT);
    assert_int_equal(check(k, PREV), INTERNAL_KEY_PREVIOUS);
    assert_int_equal(check(k, "current-key-0123456789abcdef-012345678X"), INTERNAL_KEY_NONE);
    assert_int_equal(check(k, "current-key-0123456789abcdef-012345678"), INTERNAL_KEY_NONE);
    assert_int_equal(check(k, CUR "x"), INTERNAL_KEY_NONE);
    assert_int_equal(check(k, ""), INTERNAL_KEY_NONE);
    assert_int_equal(check(k, NULL), INTERNAL_KEY_NONE);
    /* A key with an embedded NUL is compared over its full length. */
    char withnul[sizeof CUR + 1];
    memcpy(withnul, CUR, sizeof CUR);
    withnul[5] = '\0';
    assert_int_equal(internal_key_check(k, withnul, sizeof CUR - 1), INTERNAL_KEY_NONE);
    internal_key_free(k);
}

static void test_without_previous(void **state)
{
    (void)state;
    struct internal_key *k = internal_key_new(CUR, NULL);
    assert_int_equal(check(k, CUR), INTERNAL_KEY_CURRENT);
    assert_int_equal(check(k, PREV), INTERNAL_KEY_NONE);
    assert_int_equal(check(k, ""), INTERNAL_KEY_NONE);
    internal_key_free(k);
    assert_string_equal(internal_key_match_name(INTERNAL_KEY_PREVIOUS), "previous");
}

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_current_and_previous),
                                       cmocka_unit_test(test_without_previous)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
