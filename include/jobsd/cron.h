/* cron: the built-in scheduler's time arithmetic, with no I/O but reading a zone file.
 *  - A cron expression: five fields (minute hour day-of-month month day-of-week) or six (a
 *    leading seconds field, documented in README "Schedules"): `*`, values, ranges `a-b`,
 *    steps `*\/n` and `a-b/n`, lists, month and day names (JAN.., SUN..), 0 and 7 = Sunday.
 *    When both day fields are restricted (neither starts with `*`), a day matches when EITHER
 *    does (Vixie cron's rule, kept by cronie).
 *  - A time zone read from the system's tz database (TZif files, RFC 8536) into a table of
 *    offsets, so local times are computed without TZ/setenv/localtime (thread-safe).
 *  - The next fire: the first matching local time whose instant is after a given one. A
 *    local time that happens twice (a DST overlap) fires at its first occurrence only; one
 *    that never happens (a DST gap) fires once at the end of the gap, the first valid instant
 *    (cronie's cron(8): jobs of the skipped interval run right after the change). */
#ifndef JOBSD_CRON_H
#define JOBSD_CRON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "jobsd/err.h"

struct cron_expr {
    uint64_t second; /* bit n = second n (0-59) */
    uint64_t minute; /* 0-59 */
    uint32_t hour;   /* 0-23 */
    uint32_t dom;    /* 1-31 */
    uint16_t month;  /* 1-12 */
    uint8_t dow;     /* 0-6, Sunday = 0 */
    bool dom_star;   /* the field starts with `*`: not restricted */
    bool dow_star;
};

/* Parses an expression of 5 or 6 whitespace-separated fields. 400 invalid_field naming the
 * field on failure. */
MUSTCHECK int cron_parse(const char *text, struct cron_expr *out, struct err *e);

/* A time zone: n segments, segment i from start[i] (UTC seconds; segment 0 from the
 * beginning of time) with UTC offset off[i] seconds: the transitions the file lists, then
 * those of its POSIX TZ footer (e.g. EST5EDT,M3.2.0,M11.1.0) up to the year 2100. */
struct cron_zone {
    size_t n;
    int64_t *start;
    int32_t *off;
};

/* Loads name (e.g. America/Sao_Paulo) from $TZDIR or /usr/share/zoneinfo; "UTC" works
 * without a file. 400 invalid_field when it is not a valid zone file. */
MUSTCHECK int cron_zone_load(struct cron_zone *z, const char *name, struct err *e);
void cron_zone_free(struct cron_zone *z);

/* Local wall-clock time (seconds since 1970-01-01 00:00 local) of a UTC instant. */
int64_t cron_local(const struct cron_zone *z, int64_t utc);
/* The instant of a local time: its first occurrence; in a gap, the end of the gap. */
int64_t cron_instant(const struct cron_zone *z, int64_t local);

/* The first fire strictly after `after` (UTC seconds) into *out; false when none comes
 * within ten years (e.g. 30 FEB). */
MUSTCHECK bool cron_next(const struct cron_expr *c, const struct cron_zone *z, int64_t after,
                         int64_t *out);

/* "2019-02-16T23:00:00-02:00": utc as local time with its offset, into out (>= 26 bytes). */
void cron_format(const struct cron_zone *z, int64_t utc, char *out, size_t cap);

#endif
