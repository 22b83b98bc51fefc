/* Unit tests of buf (bounded buffer) and log (line formats). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "jobsd/buf.h"
#include "jobsd/log.h"

static void test_buf_bound(void **state)
{
    (void)state;
    struct buf b;
    buf_init(&b, 10);
    assert_true(buf_append(&b, "12345", 5));
    assert_true(buf_append(&b, "67890", 5));
    assert_false(buf_append(&b, "x", 1)); /* over the maximum: refused, unchanged */
    assert_int_equal(b.len, 10);
    assert_string_equal(buf_str(&b), "1234567890");
    assert_false(buf_append(&b, "x", (size_t)-1));
    char *s = buf_take(&b);
    assert_string_equal(s, "1234567890");
    free(s);
    assert_int_equal(b.len, 0);
    s = buf_take(&b);
    assert_string_equal(s, "");
    free(s);
    buf_free(&b);
}

static void test_log_text(void **state)
{
    (void)state;
    char line[512];
    const char *keys[] = {"jobLogId", "note", "nil"};
    const char *values[] = {"abc", "two words \"q\"", NULL};
    size_t n =
        log_format_line(line, sizeof line, LOG_TEXT, 1706680801234LL, LOG_INFO,
                        LOG_JOB_TAG "rebuild-daily-metrics finished\nforged", keys, values, 3);
    assert_true(n > 0);
    assert_string_equal(line, "2024-01-31T06:00:01.234Z info [INTERNAL-JOB] rebuild-daily-metrics "
                              "finished?forged jobLogId=abc note=\"two words \\\"q\\\"\" nil=-\n");
}

static void test_log_json(void **state)
{
    (void)state;
    char line[512];
    const char *keys[] = {"k"};
    const char *values[] = {"v\n\x01"};
    size_t n = log_format_line(line, sizeof line, LOG_JSON, 0, LOG_WARN, "m\"", keys, values, 1);
    assert_true(n > 0);
    json_error_t e;
    json_t *j = json_loads(line, 0, &e);
    assert_non_null(j);
    assert_string_equal(json_string_value(json_object_get(j, "ts")), "1970-01-01T00:00:00.000Z");
    assert_string_equal(json_string_value(json_object_get(j, "level")), "warn");
    assert_string_equal(json_string_value(json_object_get(j, "msg")), "m\"");
    assert_string_equal(json_string_value(json_object_get(j, "k")), "v\n\x01");
    json_decref(j);
    /* Too small a buffer: 0, never a truncated line. */
    assert_int_equal(log_format_line(line, 10, LOG_JSON, 0, LOG_WARN, "m", NULL, NULL, 0), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_buf_bound),
                                       cmocka_unit_test(test_log_text),
                                       cmocka_unit_test(test_log_json)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
