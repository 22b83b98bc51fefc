/* Unit tests of log's long values: a value is cut (marked, at a UTF-8 boundary), never the
 * event, so a hostile header cannot take a line's other fields with it. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jobsd/log.h"

#define LINE_CAP 8192 /* log.c's line buffer */

/* n copies of byte c, NUL-terminated (caller frees). */
static char *repeat(char c, size_t n)
{
    char *s = malloc(n + 1);
    assert_non_null(s);
    memset(s, c, n);
    s[n] = '\0';
    return s;
}

/* The access line of a 401 on a job route whose User-Agent is 1,500 control bytes (each
 * escaped to \u0001, 9,000 bytes): every other field is still there. */
static void test_text_keeps_every_field(void **state)
{
    (void)state;
    char *ua = repeat('\x01', 1500);
    const char *keys[] = {"method",    "path",      "status",    "durationMs", "remote",
                          "userAgent", "requestId", "completed", "reason"};
    const char *values[] = {
        "POST",   "/api/v1/jobs/rebuild-daily-metrics", "401", "0", "127.0.0.1", ua, "rid-1", "ok",
        "invalid"};
    char line[LINE_CAP];
    size_t n = log_format_line(line, sizeof line, LOG_TEXT, 0, LOG_INFO, LOG_JOB_TAG "request",
                               keys, values, 9);
    assert_true(n > 0);
    assert_int_equal(strlen(line), n);
    assert_non_null(strstr(line, " info [INTERNAL-JOB] request method=POST "
                                 "path=/api/v1/jobs/rebuild-daily-metrics status=401 "));
    assert_non_null(strstr(line, " remote=127.0.0.1 userAgent=\"\\u0001"));
    /* 1,024 bytes hold 170 escaped control bytes: 1,330 left out. */
    assert_non_null(strstr(line, "\\u0001\xe2\x80\xa6(truncated 1330 bytes)\" requestId=rid-1 "
                                 "completed=ok reason=invalid\n"));
    char *p = strstr(line, "userAgent=\"");
    char *q = strstr(line, "\xe2\x80\xa6(truncated");
    assert_int_equal(q - (p + strlen("userAgent=\"")), LOG_VALUE_MAX - 4); /* 170 * 6 */
    free(ua);
}

/* JSON: still one valid object with every key; the cut value is a prefix plus the marker. */
static void test_json_cut_value(void **state)
{
    (void)state;
    char *ua = repeat('\x01', 1500);
    const char *keys[] = {"path", "status", "userAgent", "requestId"};
    const char *values[] = {"/api/v1/jobs/x", "401", ua, "rid-2"};
    char line[LINE_CAP];
    assert_true(log_format_line(line, sizeof line, LOG_JSON, 0, LOG_INFO, LOG_JOB_TAG "request",
                                keys, values, 4) > 0);
    json_error_t e;
    json_t *j = json_loads(line, 0, &e);
    assert_non_null(j);
    assert_string_equal(json_string_value(json_object_get(j, "msg")), LOG_JOB_TAG "request");
    assert_string_equal(json_string_value(json_object_get(j, "path")), "/api/v1/jobs/x");
    assert_string_equal(json_string_value(json_object_get(j, "status")), "401");
    assert_string_equal(json_string_value(json_object_get(j, "requestId")), "rid-2");
    char want[256];
    memset(want, '\x01', 170);
    snprintf(want + 170, sizeof want - 170, "\xe2\x80\xa6(truncated 1330 bytes)");
    assert_string_equal(json_string_value(json_object_get(j, "userAgent")), want);
    json_decref(j);
    free(ua);
}

/* A cut never splits a UTF-8 sequence (jansson refuses the line otherwise). */
static void test_cut_at_utf8_boundary(void **state)
{
    (void)state;
    size_t pairs = 1500;
    char *v = malloc(1 + 2 * pairs + 1);
    assert_non_null(v);
    v[0] = 'a';
    for (size_t i = 0; i < pairs; i++)
        memcpy(v + 1 + 2 * i, "\xc3\xa9", 2); /* é */
    v[1 + 2 * pairs] = '\0';
    const char *keys[] = {"v"};
    const char *values[] = {v};
    char line[LINE_CAP];
    assert_true(log_format_line(line, sizeof line, LOG_JSON, 0, LOG_INFO, "m", keys, values, 1) >
                0);
    json_error_t e;
    json_t *j = json_loads(line, 0, &e);
    assert_non_null(j);
    const char *got = json_string_value(json_object_get(j, "v"));
    assert_non_null(got);
    /* 'a' and 511 é (1,023 bytes): the 512th would end past 1,024. */
    assert_int_equal(strncmp(got, v, 1023), 0);
    assert_string_equal(got + 1023, "\xe2\x80\xa6(truncated 1978 bytes)");
    json_decref(j);
    free(v);
}

/* Many long values: cut shorter, still every key on the line; a long message too. */
static void test_many_long_values(void **state)
{
    (void)state;
    char *big = repeat('x', 5000);
    const char *keys[32];
    const char *values[32];
    char names[32][8];
    for (size_t i = 0; i < 32; i++) {
        snprintf(names[i], sizeof names[i], "k%zu", i);
        keys[i] = names[i];
        values[i] = big;
    }
    char line[LINE_CAP];
    size_t n = log_format_line(line, sizeof line, LOG_TEXT, 0, LOG_WARN, big, keys, values, 32);
    assert_true(n > 0 && n < sizeof line);
    for (size_t i = 0; i < 32; i++) {
        char want[24];
        snprintf(want, sizeof want, " k%zu=\"x", i);
        assert_non_null(strstr(line, want));
    }
    assert_non_null(strstr(line, "(truncated"));
    assert_ptr_equal(strchr(line, '\n'), line + n - 1); /* one line */
    n = log_format_line(line, sizeof line, LOG_JSON, 0, LOG_WARN, big, keys, values, 32);
    assert_true(n > 0);
    json_error_t e;
    json_t *j = json_loads(line, 0, &e);
    assert_non_null(j);
    assert_int_equal(json_object_size(j), 3 + 32);
    json_decref(j);
    /* A short value is never touched. */
    const char *k1[] = {"k"};
    const char *v1[] = {"short"};
    assert_true(log_format_line(line, sizeof line, LOG_TEXT, 0, LOG_INFO, "m", k1, v1, 1) > 0);
    assert_null(strstr(line, "truncated"));
    free(big);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_text_keeps_every_field), cmocka_unit_test(test_json_cut_value),
        cmocka_unit_test(test_cut_at_utf8_boundary), cmocka_unit_test(test_many_long_values)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
