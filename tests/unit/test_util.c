/* Unit tests of util: number, date, timestamp, UUID, request-id, base64 parsing, JSON compaction.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <string.h>

#include "jobsd/util.h"

static void test_parse_i64(void **state)
{
    (void)state;
    long long v;
    assert_true(util_parse_i64("0", 0, 10, &v));
    assert_int_equal(v, 0);
    assert_true(util_parse_i64("-5", -10, 10, &v));
    assert_int_equal(v, -5);
    assert_true(util_parse_i64("9223372036854775807", 0, 9223372036854775807LL, &v));
    assert_false(util_parse_i64("9223372036854775808", 0, 9223372036854775807LL, &v));
    const char *bad[] = {"", "-", "+1", " 1", "1 ", "1a", "0x10", "1.0", "11", NULL};
    for (size_t i = 0; bad[i]; i++)
        assert_false(util_parse_i64(bad[i], 0, 10, &v));
    assert_false(util_parse_i64(NULL, 0, 10, &v));
    assert_int_equal(util_i64_or("12", 7), 12);
    assert_int_equal(util_i64_or("x", 7), 7);
}

static void test_dates(void **state)
{
    (void)state;
    const char *good[] = {"2024-01-31", "2024-02-29", "2000-02-29",
                          "0001-01-01", "9999-12-31", NULL};
    for (size_t i = 0; good[i]; i++)
        assert_true(util_is_date(good[i]));
    const char *bad[] = {"2024-02-30", "2023-02-29", "1900-02-29", "2024-13-01", "2024-00-10",
                         "2024-01-00", "2024-1-01",  "2024/01/01", "24-01-01",   "2024-01-011",
                         "",           "0000-01-01", "2024-04-31", NULL};
    for (size_t i = 0; bad[i]; i++)
        assert_false(util_is_date(bad[i]));
}

static void test_rfc3339(void **state)
{
    (void)state;
    const char *good[] = {"2024-01-31T06:00:00Z",
                          "2024-01-31T03:00:00-03:00",
                          "2024-01-31T03:00:00.123Z",
                          "2024-01-31t03:00:00z",
                          "2024-12-31T23:59:60+00:00",
                          "2024-01-31T03:00:00.123456789+05:30",
                          "2024-01-31T03:00:00+15:59",
                          "2024-01-31T03:00:00-15:59",
                          NULL};
    for (size_t i = 0; good[i]; i++)
        assert_true(util_is_rfc3339(good[i]));
    const char *bad[] = {"2024-01-31",
                         "2024-01-31T06:00:00",
                         "2024-01-31 06:00:00Z",
                         "2024-02-30T06:00:00Z",
                         "2024-01-31T24:00:00Z",
                         "2024-01-31T06:60:00Z",
                         "2024-01-31T06:00:00.Z",
                         "2024-01-31T06:00:00+3",
                         "2024-01-31T06:00Z",
                         "2024-01-31T06:00:00+24:00",
                         "2024-01-31T06:00:00+16:00", /* PostgreSQL's limit: 15:59 */
                         "2024-01-31T06:00:00-16:00",
                         "2024-01-31T06:00:00+23:59",
                         "2024-01-31T06:00:00Zjunk",
                         NULL};
    for (size_t i = 0; bad[i]; i++)
        assert_false(util_is_rfc3339(bad[i]));
}

static void test_uuid(void **state)
{
    (void)state;
    char out[37];
    assert_true(util_uuid_normalize("5F0E8C2A-1B2C-4D3E-8F90-ABCDEF012345", out));
    assert_string_equal(out, "5f0e8c2a-1b2c-4d3e-8f90-abcdef012345");
    assert_false(util_is_uuid("5f0e8c2a1b2c4d3e8f90abcdef012345"));
    assert_false(util_is_uuid("5f0e8c2a-1b2c-4d3e-8f90-abcdef01234g"));
    assert_false(util_is_uuid("{5f0e8c2a-1b2c-4d3e-8f90-abcdef012345}"));
    assert_false(util_is_uuid(""));
    char a[37], b[37];
    util_uuid_v4(a);
    util_uuid_v4(b);
    assert_true(util_is_uuid(a));
    assert_string_not_equal(a, b);
    assert_int_equal(a[14], '4');
}

static void test_request_id(void **state)
{
    (void)state;
    assert_true(util_is_request_id("abc-DEF_1.2"));
    char long_ok[65];
    memset(long_ok, 'a', 64);
    long_ok[64] = '\0';
    assert_true(util_is_request_id(long_ok));
    char too_long[66];
    memset(too_long, 'a', 65);
    too_long[65] = '\0';
    assert_false(util_is_request_id(too_long));
    assert_false(util_is_request_id(""));
    assert_false(util_is_request_id("a b"));
    assert_false(util_is_request_id("a\"b"));
    assert_false(util_is_request_id("a\r\nX-Injected: 1"));
}

static void test_base64(void **state)
{
    (void)state;
    unsigned char out[64];
    size_t n;
    assert_true(util_base64_decode("aGVsbG8", 7, true, out, sizeof out, &n));
    assert_int_equal(n, 5);
    assert_memory_equal(out, "hello", 5);
    assert_true(util_base64_decode("aGVsbG8=", 8, false, out, sizeof out, &n));
    assert_int_equal(n, 5);
    assert_false(util_base64_decode("aGVsbG8=", 8, true, out, sizeof out, &n));
    assert_false(util_base64_decode("aGV sbG8", 8, true, out, sizeof out, &n));
    assert_false(util_base64_decode("a+", 2, true, out, sizeof out, &n));
    assert_false(util_base64_decode("a", 1, true, out, sizeof out, &n));
    /* Non-canonical trailing bits are refused. */
    assert_false(util_base64_decode("aGVsbG9", 7, true, out, sizeof out, &n));
    char enc[16];
    assert_int_equal(util_base64url_encode((const unsigned char *)"hello", 5, enc, sizeof enc), 7);
    assert_string_equal(enc, "aGVsbG8");
    unsigned char bin[] = {0xfb, 0xff};
    util_base64url_encode(bin, 2, enc, sizeof enc);
    assert_string_equal(enc, "-_8");
}

static void test_timestamp_and_ct(void **state)
{
    (void)state;
    char ts[32];
    util_format_timestamp_ms(1706680801234LL, ts, sizeof ts);
    assert_string_equal(ts, "2024-01-31T06:00:01.234Z");
    assert_true(util_ct_equal("abc", "abc", 3));
    assert_false(util_ct_equal("abc", "abd", 3));
    assert_true(util_strcaseeq("Content-Length", "content-length"));
    assert_false(util_strcaseeq("Content-Length", "content-lengths"));
}

static void test_json_compact(void **state)
{
    (void)state;
    static const char *const cases[][2] = {
        {"{\"a\" : 1, \"b\" : [1, 2,\n 3]}", "{\"a\":1,\"b\":[1,2,3]}"},
        /* whitespace, colons and commas inside strings are kept; escapes do not end them */
        {"[{\"m\" : \"a : b, c\"}, \n {\"q\" : \"say \\\"x y\\\" \\\\\"}]",
         "[{\"m\":\"a : b, c\"},{\"q\":\"say \\\"x y\\\" \\\\\"}]"},
        {"\t{ }\r\n", "{}"},
        {"", ""},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char buf[128];
        snprintf(buf, sizeof buf, "%s", cases[i][0]);
        util_json_compact(buf);
        assert_string_equal(buf, cases[i][1]);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_i64),        cmocka_unit_test(test_dates),
        cmocka_unit_test(test_rfc3339),          cmocka_unit_test(test_uuid),
        cmocka_unit_test(test_request_id),       cmocka_unit_test(test_base64),
        cmocka_unit_test(test_timestamp_and_ct), cmocka_unit_test(test_json_compact),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
