/* Unit tests of cron (the grammar's edges, next fires in UTC and across America/Sao_Paulo's
 * DST gaps and overlaps, read from the system's tz database). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "jobsd/cron.h"

/* UTC seconds of a civil date and time (days from civil, proleptic Gregorian). */
static int64_t utc(int y, int mo, int d, int h, int mi, int s)
{
    y -= mo <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    int64_t yoe = y - era * 400;
    int64_t doy = (153 * (mo + (mo > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    int64_t days = era * 146097 + doe - 719468;
    return days * 86400 + h * 3600 + mi * 60 + s;
}

static struct cron_zone zone_utc, zone_sp;

static int setup(void **state)
{
    (void)state;
    struct err e;
    err_clear(&e);
    if (cron_zone_load(&zone_utc, "UTC", &e) != 0 ||
        cron_zone_load(&zone_sp, "America/Sao_Paulo", &e) != 0) {
        fprintf(stderr, "zone: %s\n", e.message);
        return -1;
    }
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    cron_zone_free(&zone_utc);
    cron_zone_free(&zone_sp);
    return 0;
}

static struct cron_expr expr(const char *text)
{
    struct cron_expr c;
    struct err e;
    err_clear(&e);
    if (cron_parse(text, &c, &e) != 0)
        fail_msg("\"%s\": %s", text, e.message);
    return c;
}

/* The next fire of text after `after` in zone z, asserted equal to want (0: none). */
static int64_t next_is(const char *text, const struct cron_zone *z, int64_t after, int64_t want)
{
    struct cron_expr c = expr(text);
    int64_t got = 0;
    bool found = cron_next(&c, z, after, &got);
    if (!want) {
        assert_false(found);
        return 0;
    }
    if (!found || got != want) {
        char g[40] = "none", w[40];
        if (found)
            cron_format(z, got, g, sizeof g);
        cron_format(z, want, w, sizeof w);
        fail_msg("\"%s\": next fire %s, want %s", text, g, w);
    }
    return got;
}

static void test_invalid(void **state)
{
    (void)state;
    const char *bad[] = {"",
                         "* * * *",
                         "* * * * * * *",
                         "60 * * * *",
                         "* 24 * * *",
                         "* * 0 * *",
                         "* * 32 * *",
                         "* * * 0 *",
                         "* * * 13 *",
                         "* * * * 8",
                         "5-1 * * * *",
                         "*/0 * * * *",
                         "5/10 * * * *",
                         "1,,2 * * * *",
                         "1, * * * *",
                         ",1 * * * *",
                         "a * * * *",
                         "* * * FOO *",
                         "-1 * * * *",
                         "1-2-3 * * * *",
                         "* * * * MONDAY",
                         "* * * JANUARY *",
                         "* * JAN * *",
                         "100 * * * *",
                         "*/61 * * * *",
                         "60 * * * * *",
                         "** * * * *",
                         NULL};
    for (size_t i = 0; bad[i]; i++) {
        struct cron_expr c;
        struct err e;
        err_clear(&e);
        if (cron_parse(bad[i], &c, &e) == 0)
            fail_msg("\"%s\" was accepted", bad[i]);
        assert_int_equal(e.http_status, 400);
    }
    struct err e;
    err_clear(&e);
    struct cron_expr c;
    assert_int_equal(cron_parse("0 25 * * *", &c, &e), -1);
    assert_non_null(strstr(e.message, "hour field \"25\""));
}

static void test_fields(void **state)
{
    (void)state;
    int64_t t = utc(2024, 1, 31, 6, 0, 0);
    next_is("0 6 * * *", &zone_utc, t, utc(2024, 2, 1, 6, 0, 0)); /* strictly after */
    next_is("0 6 * * *", &zone_utc, t - 1, t);
    /* steps over a range and over *, lists */
    int64_t a = next_is("*/20 9-17/4 * * *", &zone_utc, t, utc(2024, 1, 31, 9, 0, 0));
    a = next_is("*/20 9-17/4 * * *", &zone_utc, a, utc(2024, 1, 31, 9, 20, 0));
    a = next_is("*/20 9-17/4 * * *", &zone_utc, utc(2024, 1, 31, 9, 40, 0),
                utc(2024, 1, 31, 13, 0, 0));
    next_is("*/20 9-17/4 * * *", &zone_utc, utc(2024, 1, 31, 17, 40, 0), utc(2024, 2, 1, 9, 0, 0));
    next_is("5,10,58-59 * * * *", &zone_utc, utc(2024, 1, 31, 6, 10, 0),
            utc(2024, 1, 31, 6, 58, 0));
    next_is("5,10,58-59 * * * *", &zone_utc, utc(2024, 1, 31, 6, 59, 0), utc(2024, 1, 31, 7, 5, 0));
    /* names, either case; JUL; MON-fri (2024-07-01 is a Monday) */
    next_is("0 0 * JAN,jul MON-fri", &zone_utc, utc(2024, 2, 1, 0, 0, 0), utc(2024, 7, 1, 0, 0, 0));
    next_is("0 0 * JAN,jul MON-fri", &zone_utc, utc(2024, 7, 5, 0, 0, 0), utc(2024, 7, 8, 0, 0, 0));
    /* 0, 7 and SUN are Sunday (2024-02-04 is a Sunday); 5-7 is Friday to Sunday */
    int64_t sun = utc(2024, 2, 4, 0, 0, 0);
    next_is("0 0 * * 0", &zone_utc, t, sun);
    next_is("0 0 * * 7", &zone_utc, t, sun);
    next_is("0 0 * * sun", &zone_utc, t, sun);
    next_is("0 0 * * 5-7", &zone_utc, t, utc(2024, 2, 2, 0, 0, 0));
    next_is("0 0 * * 5-7", &zone_utc, sun, utc(2024, 2, 9, 0, 0, 0));
    /* last day of months, leap years, a date that never comes */
    next_is("0 0 31 * *", &zone_utc, t, utc(2024, 3, 31, 0, 0, 0));
    next_is("0 0 29 2 *", &zone_utc, utc(2024, 3, 1, 0, 0, 0), utc(2028, 2, 29, 0, 0, 0));
    next_is("0 0 29 2 *", &zone_utc, utc(2096, 3, 1, 0, 0, 0), utc(2104, 2, 29, 0, 0, 0));
    next_is("0 0 30 2 *", &zone_utc, t, 0);
    /* a year boundary */
    next_is("59 23 31 12 *", &zone_utc, utc(2024, 12, 31, 23, 59, 0), utc(2025, 12, 31, 23, 59, 0));
    next_is("0 0 1 1 *", &zone_utc, utc(2024, 12, 31, 23, 59, 59), utc(2025, 1, 1, 0, 0, 0));
    /* the optional leading seconds field */
    next_is("*/10 * * * * *", &zone_utc, utc(2024, 1, 31, 6, 0, 5), utc(2024, 1, 31, 6, 0, 10));
    next_is("30 0 6 * * *", &zone_utc, t, utc(2024, 1, 31, 6, 0, 30));
    next_is("* * * * *", &zone_utc, utc(2024, 1, 31, 6, 0, 5), utc(2024, 1, 31, 6, 1, 0));
}

static void test_day_rule(void **state)
{
    (void)state;
    /* Both restricted: the 13th OR a Friday (2024-01-05 and 12 are Fridays, the 13th a
     * Saturday). */
    int64_t a =
        next_is("0 0 13 * FRI", &zone_utc, utc(2024, 1, 1, 0, 0, 0), utc(2024, 1, 5, 0, 0, 0));
    a = next_is("0 0 13 * FRI", &zone_utc, a, utc(2024, 1, 12, 0, 0, 0));
    a = next_is("0 0 13 * FRI", &zone_utc, a, utc(2024, 1, 13, 0, 0, 0));
    next_is("0 0 13 * FRI", &zone_utc, a, utc(2024, 1, 19, 0, 0, 0));
    /* One of them starts with `*`: both must match (Vixie cron reads `*\/2` as a star). */
    a = next_is("0 0 */2 * MON", &zone_utc, utc(2023, 12, 31, 0, 0, 0), utc(2024, 1, 1, 0, 0, 0));
    next_is("0 0 */2 * MON", &zone_utc, a, utc(2024, 1, 15, 0, 0, 0));
    next_is("0 0 13 * *", &zone_utc, utc(2024, 1, 1, 0, 0, 0), utc(2024, 1, 13, 0, 0, 0));
    next_is("0 0 * * FRI", &zone_utc, utc(2024, 1, 1, 0, 0, 0), utc(2024, 1, 5, 0, 0, 0));
    next_is("0 0 1-7 * */7", &zone_utc, utc(2024, 1, 1, 0, 0, 0), utc(2024, 1, 7, 0, 0, 0));
}

/* America/Sao_Paulo: 2018-11-04 00:00 -03 became 01:00 -02 (03:00Z): the hour 00:00-00:59 never
 * happened. A schedule in it fires once, at 01:00 -02 (cronie's rule: jobs of the skipped
 * interval run right after the change). */
static void test_dst_gap(void **state)
{
    (void)state;
    int64_t before = utc(2018, 11, 3, 12, 0, 0), change = utc(2018, 11, 4, 3, 0, 0);
    int64_t a = next_is("0 0 * * *", &zone_sp, before, change);
    char s[40];
    cron_format(&zone_sp, a, s, sizeof s);
    assert_string_equal(s, "2018-11-04T01:00:00-02:00");
    next_is("0 0 * * *", &zone_sp, a, utc(2018, 11, 5, 2, 0, 0));
    next_is("30 0 * * *", &zone_sp, before, change);
    /* Every minute of the lost hour: one fire for all of them, then the next day. */
    a = next_is("* 0 * * *", &zone_sp, before, change);
    next_is("* 0 * * *", &zone_sp, a, utc(2018, 11, 5, 2, 0, 0));
    /* A time after the gap is not moved. */
    next_is("30 1 * * *", &zone_sp, before, utc(2018, 11, 4, 3, 30, 0));
    next_is("59 23 * * *", &zone_sp, before, utc(2018, 11, 4, 2, 59, 0));
    /* Every hour: 23:00 -03, (00:00 lost) 01:00 -02, 02:00 -02. */
    a = next_is("0 * * * *", &zone_sp, utc(2018, 11, 4, 1, 30, 0), utc(2018, 11, 4, 2, 0, 0));
    a = next_is("0 * * * *", &zone_sp, a, change);
    next_is("0 * * * *", &zone_sp, a, utc(2018, 11, 4, 4, 0, 0));
}

/* America/Sao_Paulo: 2019-02-17 00:00 -02 became 2019-02-16 23:00 -03 (02:00Z): 23:00-23:59
 * happened twice. A schedule in it fires once, at its first occurrence. */
static void test_dst_overlap(void **state)
{
    (void)state;
    int64_t before = utc(2019, 2, 16, 12, 0, 0);
    int64_t a = next_is("30 23 * * *", &zone_sp, before, utc(2019, 2, 17, 1, 30, 0));
    char s[40];
    cron_format(&zone_sp, a, s, sizeof s);
    assert_string_equal(s, "2019-02-16T23:30:00-02:00");
    next_is("30 23 * * *", &zone_sp, a, utc(2019, 2, 18, 2, 30, 0));
    /* From inside the second pass (23:10 -03), nothing of the repeated hour fires again. */
    next_is("30 23 * * *", &zone_sp, utc(2019, 2, 17, 2, 10, 0), utc(2019, 2, 18, 2, 30, 0));
    /* Every 15 minutes of hour 23: four fires, not eight. */
    struct cron_expr c = expr("*/15 23 * * *");
    int fires = 0;
    for (int64_t t = before; cron_next(&c, &zone_sp, t, &t) && t < utc(2019, 2, 17, 12, 0, 0);)
        fires++;
    assert_int_equal(fires, 4);
    /* Every hour across the change: 22:00 -02, 23:00 -02, 00:00 -03: no second 23:00. */
    a = next_is("0 * * * *", &zone_sp, utc(2019, 2, 17, 0, 30, 0), utc(2019, 2, 17, 1, 0, 0));
    a = next_is("0 * * * *", &zone_sp, a, utc(2019, 2, 17, 3, 0, 0));
    cron_format(&zone_sp, a, s, sizeof s);
    assert_string_equal(s, "2019-02-17T00:00:00-03:00");
    /* Every minute: the repeated hour's minutes once (60 fires from 23:00 to 23:59 -02), then
     * 00:00 -03. */
    c = expr("* * * * *");
    fires = 0;
    int64_t t = utc(2019, 2, 17, 0, 59, 59);
    while (cron_next(&c, &zone_sp, t, &t) && t < utc(2019, 2, 17, 3, 0, 0))
        fires++;
    assert_int_equal(fires, 60);
    assert_int_equal(t, utc(2019, 2, 17, 3, 0, 0));
    /* Local times and offsets around the change. */
    assert_int_equal(cron_local(&zone_sp, utc(2019, 2, 17, 1, 59, 0)), utc(2019, 2, 16, 23, 59, 0));
    assert_int_equal(cron_local(&zone_sp, utc(2019, 2, 17, 2, 0, 0)), utc(2019, 2, 16, 23, 0, 0));
    /* No DST since 2019: -03 all year. */
    next_is("0 6 * * *", &zone_sp, utc(2026, 1, 15, 0, 0, 0), utc(2026, 1, 15, 9, 0, 0));
    next_is("0 6 * * *", &zone_sp, utc(2026, 7, 15, 0, 0, 0), utc(2026, 7, 15, 9, 0, 0));
}

/* Past the transitions a TZif file lists (2037 in Debian's "fat" files; slim files list far
 * fewer), the zone's POSIX rule (the file's footer) gives them: New York 2040 and 2026. */
static void test_zone_rule(void **state)
{
    (void)state;
    struct cron_zone ny;
    struct err e;
    err_clear(&e);
    assert_int_equal(cron_zone_load(&ny, "America/New_York", &e), 0);
    for (int y = 2026; y <= 2040; y += 14) {
        /* the second Sunday of March: 02:00-02:59 never happens; `30 2` fires at 03:00 EDT */
        int mar = y == 2026 ? 8 : 11, nov = y == 2026 ? 1 : 4;
        int64_t a =
            next_is("30 2 * * *", &ny, utc(y, 3, mar - 1, 12, 0, 0), utc(y, 3, mar, 7, 0, 0));
        char s[40];
        cron_format(&ny, a, s, sizeof s);
        assert_non_null(strstr(s, "T03:00:00-04:00"));
        /* the first Sunday of November: 01:00-01:59 twice; `30 1` fires at the first */
        a = next_is("30 1 * * *", &ny, utc(y, 11, nov - 1, 12, 0, 0), utc(y, 11, nov, 5, 30, 0));
        next_is("30 1 * * *", &ny, a, utc(y, 11, nov + 1, 6, 30, 0));
    }
    cron_zone_free(&ny);
}

/* Offsets against the C library's own reading of the same zones (localtime_r with TZ: fine
 * in this single-threaded test), from 1975 to 2095, every 61 hours and 7 minutes. */
static void test_zone_offsets(void **state)
{
    (void)state;
    const char *zones[] = {"America/Sao_Paulo",
                           "America/New_York",
                           "Australia/Sydney",
                           "Europe/London",
                           "Asia/Kolkata",
                           "Pacific/Chatham",
                           "America/St_Johns",
                           "UTC",
                           NULL};
    const char *old = getenv("TZ");
    char *saved = old ? strdup(old) : NULL;
    for (size_t i = 0; zones[i]; i++) {
        struct cron_zone z;
        struct err e;
        err_clear(&e);
        assert_int_equal(cron_zone_load(&z, zones[i], &e), 0);
        setenv("TZ", zones[i], 1);
        tzset();
        for (int64_t t = utc(1975, 1, 1, 0, 0, 0); t < utc(2095, 1, 1, 0, 0, 0);
             t += 61 * 3600 + 420) {
            time_t tt = (time_t)t;
            struct tm tm;
            assert_non_null(localtime_r(&tt, &tm));
            if (cron_local(&z, t) - t != tm.tm_gmtoff)
                fail_msg("%s at %lld: offset %lld, the C library says %ld", zones[i], (long long)t,
                         (long long)(cron_local(&z, t) - t), tm.tm_gmtoff);
        }
        cron_zone_free(&z);
    }
    if (saved)
        setenv("TZ", saved, 1);
    else
        unsetenv("TZ");
    free(saved);
    tzset();
}

static void test_zone_errors(void **state)
{
    (void)state;
    struct cron_zone z;
    struct err e;
    err_clear(&e);
    assert_int_equal(cron_zone_load(&z, "Nowhere/Atlantis", &e), -1);
    assert_int_equal(cron_zone_load(&z, "../etc/passwd", &e), -1);
    assert_int_equal(cron_zone_load(&z, "/etc/passwd", &e), -1);
    assert_int_equal(cron_zone_load(&z, "", &e), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_invalid),     cmocka_unit_test(test_fields),
        cmocka_unit_test(test_day_rule),    cmocka_unit_test(test_dst_gap),
        cmocka_unit_test(test_dst_overlap), cmocka_unit_test(test_zone_errors),
        cmocka_unit_test(test_zone_rule),   cmocka_unit_test(test_zone_offsets),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
