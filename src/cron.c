/* cron: see cron.h. */
#include "jobsd/cron.h"
#include "jobsd/util.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DAY            86400
#define RULE_LAST_YEAR 2100 /* a zone's POSIX rule is applied up to this year */

/* ------------------------------------------------------------------ the expression */

struct field_def {
    const char *name;
    int min, max;
    const char *const *names; /* index i names min + i; NULL when none */
};

static const char *const MONTHS[] = {"JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL",
                                     "AUG", "SEP", "OCT", "NOV", "DEC", NULL};
static const char *const DAYS[] = {"SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT", NULL};

static const struct field_def FIELDS[] = {
    {"second", 0, 59, NULL},       {"minute", 0, 59, NULL},  {"hour", 0, 23, NULL},
    {"day-of-month", 1, 31, NULL}, {"month", 1, 12, MONTHS}, {"day-of-week", 0, 7, DAYS},
};

/* A number or a name of the field, the whole of [s, s + n). */
static bool parse_value(const struct field_def *f, const char *s, size_t n, int *out)
{
    long long v;
    if (n > 0 && isdigit((unsigned char)s[0])) {
        if (n > 2 || !util_parse_i64n(s, n, f->min, f->max, &v))
            return false;
        *out = (int)v;
        return true;
    }
    for (int i = 0; f->names && f->names[i]; i++) {
        if (n == 3 && strncasecmp(s, f->names[i], 3) == 0) {
            *out = f->min + i;
            return true;
        }
    }
    return false;
}

/* One list item: `*`, `*\/n`, `v`, `a-b`, `a-b/n`. Sets its bits in *bits. */
static bool parse_item(const struct field_def *f, const char *s, size_t n, uint64_t *bits)
{
    const char *slash = memchr(s, '/', n);
    size_t base = slash ? (size_t)(slash - s) : n;
    int lo = f->min, hi = f->max;
    long long step = 1;
    if (slash && !util_parse_i64n(slash + 1, n - base - 1, 1, f->max + 1, &step))
        return false;
    if (base == 1 && s[0] == '*') {
        /* the whole range */
    } else {
        const char *dash = memchr(s, '-', base);
        if (dash) {
            if (!parse_value(f, s, (size_t)(dash - s), &lo) ||
                !parse_value(f, dash + 1, base - (size_t)(dash - s) - 1, &hi) || lo > hi)
                return false;
        } else {
            if (slash || !parse_value(f, s, base, &lo)) /* `5/10` is not in the grammar */
                return false;
            hi = lo;
        }
    }
    for (int v = lo; v <= hi; v += (int)step)
        *bits |= 1ULL << v;
    return true;
}

static bool parse_field(const struct field_def *f, const char *s, size_t n, uint64_t *bits)
{
    *bits = 0;
    while (n > 0) {
        const char *comma = memchr(s, ',', n);
        size_t len = comma ? (size_t)(comma - s) : n;
        if (len == 0 || !parse_item(f, s, len, bits))
            return false;
        if (!comma)
            return true;
        n -= len + 1;
        s = comma + 1;
        if (n == 0)
            return false; /* a trailing comma */
    }
    return false;
}

int cron_parse(const char *text, struct cron_expr *out, struct err *e)
{
    const char *tok[7];
    size_t len[7], ntok = 0;
    for (const char *p = text; *p;) {
        while (*p == ' ' || *p == '\t')
            p++;
        if (!*p)
            break;
        if (ntok == 7)
            return err_set(e, 400, "invalid_field", "a cron expression has 5 or 6 fields");
        tok[ntok] = p;
        while (*p && *p != ' ' && *p != '\t')
            p++;
        len[ntok] = (size_t)(p - tok[ntok]);
        ntok++;
    }
    if (ntok != 5 && ntok != 6)
        return err_set(e, 400, "invalid_field", "a cron expression has 5 or 6 fields (got %zu)",
                       ntok);
    memset(out, 0, sizeof *out);
    uint64_t bits[6] = {1}; /* five fields: at second 0 */
    size_t first = ntok == 6 ? 0 : 1;
    for (size_t i = 0; i < ntok; i++) {
        const struct field_def *f = &FIELDS[first + i];
        if (!parse_field(f, tok[i], len[i], &bits[first + i]))
            return err_set(e, 400, "invalid_field", "%s field \"%.*s\" is not valid (%d-%d)",
                           f->name, (int)(len[i] > 40 ? 40 : len[i]), tok[i], f->min, f->max);
    }
    out->second = bits[0];
    out->minute = bits[1];
    out->hour = (uint32_t)bits[2];
    out->dom = (uint32_t)bits[3];
    out->month = (uint16_t)bits[4];
    out->dow = (uint8_t)((bits[5] | (bits[5] >> 7)) & 0x7f); /* 7 is Sunday too */
    out->dom_star = tok[ntok - 3][0] == '*';
    out->dow_star = tok[ntok - 1][0] == '*';
    return 0;
}

/* ------------------------------------------------------------------ calendar */

static int64_t floor_div(int64_t a, int64_t b)
{
    int64_t q = a / b;
    return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q;
}

/* Days since 1970-01-01 into a proleptic Gregorian date (eras of 400 years). */
static void civil(int64_t days, int *year, int *month, int *day)
{
    int64_t z = days + 719468;
    int64_t era = floor_div(z, 146097);
    int64_t doe = z - era * 146097;                                      /* 0..146096 */
    int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365; /* 0..399 */
    int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);               /* from March 1st */
    int64_t mp = (5 * doy + 2) / 153;
    *day = (int)(doy - (153 * mp + 2) / 5 + 1);
    *month = (int)(mp < 10 ? mp + 3 : mp - 9);
    *year = (int)(yoe + era * 400 + (*month <= 2));
}

/* The inverse: days since 1970-01-01 of a date. */
static int64_t days_from_civil(int64_t y, int m, int d)
{
    y -= m <= 2;
    int64_t era = floor_div(y, 400);
    int64_t yoe = y - era * 400;
    int64_t doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

static bool leap_year(int64_t y)
{
    return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

static bool day_matches(const struct cron_expr *c, int64_t days)
{
    int y, m, d;
    civil(days, &y, &m, &d);
    if (!(c->month & (1u << m)))
        return false;
    int dow = (int)((days % 7 + 11) % 7); /* 1970-01-01 was a Thursday (4) */
    bool dom = (c->dom >> d) & 1, wd = (c->dow >> dow) & 1;
    if (c->dom_star || c->dow_star)
        return dom && wd;
    return dom || wd;
}

/* ------------------------------------------------------------------ zones */

/* The last segment whose start is <= utc. */
static size_t segment_at(const struct cron_zone *z, int64_t utc)
{
    size_t lo = 0, hi = z->n; /* segment 0 starts at the beginning of time */
    while (hi - lo > 1) {
        size_t mid = lo + (hi - lo) / 2;
        if (z->start[mid] <= utc)
            lo = mid;
        else
            hi = mid;
    }
    return lo;
}

int64_t cron_local(const struct cron_zone *z, int64_t utc)
{
    return utc + z->off[segment_at(z, utc)];
}

int64_t cron_instant(const struct cron_zone *z, int64_t local)
{
    /* k: the last segment whose local start is <= local. */
    size_t lo = 0, hi = z->n;
    while (hi - lo > 1) {
        size_t mid = lo + (hi - lo) / 2;
        if (z->start[mid] + z->off[mid] <= local)
            lo = mid;
        else
            hi = mid;
    }
    size_t k = lo;
    if (k >= 1 && local < z->start[k] + z->off[k - 1])
        return local - z->off[k - 1]; /* an overlap: its first occurrence */
    if (k + 1 == z->n || local < z->start[k + 1] + z->off[k])
        return local - z->off[k];
    return z->start[k + 1]; /* a gap: the first valid instant after it */
}

/* ------------------------------------------------------------------ POSIX TZ rules */

/* The footer of a TZif file (RFC 8536 section 3.3, POSIX TZ): "EST5EDT,M3.2.0,M11.1.0".
 * Transitions past the last one the file lists come from it (slim files list few). */
struct tz_rule_date {
    char kind; /* 'J' (1-365, no 29 FEB), 'D' (0-365), 'M' (month.week.day) */
    int a, b, c;
    long time; /* seconds after local midnight */
};

struct tz_rule {
    long std_off, dst_off; /* UTC offsets, seconds east */
    struct tz_rule_date start, end;
};

static bool tz_name(const char **p)
{
    const char *s = *p;
    if (*s == '<') {
        const char *e = strchr(s, '>');
        if (!e)
            return false;
        *p = e + 1;
        return true;
    }
    while (isalpha((unsigned char)**p))
        (*p)++;
    return *p - s >= 3;
}

static bool tz_num(const char **p, long max, long *out)
{
    if (!isdigit((unsigned char)**p))
        return false;
    long v = 0;
    while (isdigit((unsigned char)**p) && v <= max)
        v = v * 10 + (*(*p)++ - '0');
    *out = v;
    return v <= max;
}

/* [+-]hh[:mm[:ss]] into seconds (hh up to 167: RFC 8536's extension). */
static bool tz_time(const char **p, long *out)
{
    long sign = 1, h, m = 0, sec = 0;
    if (**p == '+' || **p == '-')
        sign = *(*p)++ == '-' ? -1 : 1;
    if (!tz_num(p, 167, &h))
        return false;
    if (**p == ':' && (++*p, !tz_num(p, 59, &m)))
        return false;
    if (**p == ':' && (++*p, !tz_num(p, 59, &sec)))
        return false;
    *out = sign * (h * 3600 + m * 60 + sec);
    return true;
}

static bool tz_date(const char **p, struct tz_rule_date *d)
{
    long a, b = 0, c = 0;
    d->kind = **p == 'J' || **p == 'M' ? *(*p)++ : 'D';
    if (!tz_num(p, 365, &a))
        return false;
    if (d->kind == 'M' && (*(*p)++ != '.' || !tz_num(p, 5, &b) || *(*p)++ != '.' ||
                           !tz_num(p, 6, &c) || a < 1 || a > 12 || b < 1))
        return false;
    d->a = (int)a;
    d->b = (int)b;
    d->c = (int)c;
    d->time = 7200;
    return **p != '/' || (++*p, tz_time(p, &d->time));
}

/* A footer with a DST rule into r; false when there is none (or it does not parse). */
static bool tz_parse_rule(const char *s, struct tz_rule *r)
{
    long off;
    if (!tz_name(&s) || !tz_time(&s, &off))
        return false;
    r->std_off = -off;
    r->dst_off = r->std_off + 3600;
    if (!*s || !tz_name(&s))
        return false; /* no DST: the last transition's offset holds */
    if (*s != ',' && tz_time(&s, &off))
        r->dst_off = -off;
    return *s == ',' && (++s, tz_date(&s, &r->start)) && *s == ',' && (++s, tz_date(&s, &r->end)) &&
           *s == '\0';
}

/* The UTC instant a rule date happens in year y, for a clock at offset off. */
static int64_t tz_when(const struct tz_rule_date *d, int64_t y, long off)
{
    int64_t day;
    if (d->kind == 'J')
        day = days_from_civil(y, 1, 1) + d->a - 1 + (leap_year(y) && d->a >= 60);
    else if (d->kind == 'D')
        day = days_from_civil(y, 1, 1) + d->a;
    else {
        static const int mdays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
        int len = mdays[d->a - 1] + (d->a == 2 && leap_year(y));
        int64_t first = days_from_civil(y, d->a, 1);
        int dom = 1 + (int)((d->c - (first % 7 + 11) % 7 + 7) % 7) + 7 * (d->b - 1);
        while (dom > len)
            dom -= 7;
        day = first + dom - 1;
    }
    return day * DAY + d->time - off;
}

/* Appends the rule's transitions after the last listed one, up to RULE_LAST_YEAR. */
static void tz_extend(struct cron_zone *z, const struct tz_rule *r)
{
    int y0, m, d;
    int64_t last = z->n > 1 ? z->start[z->n - 1] : 0;
    civil(floor_div(last, DAY), &y0, &m, &d);
    size_t cap = z->n + 2 * (size_t)(RULE_LAST_YEAR - y0 + 1);
    z->start = realloc(z->start, cap * sizeof *z->start);
    z->off = realloc(z->off, cap * sizeof *z->off);
    if (!z->start || !z->off)
        util_fatal("out of memory");
    for (int y = y0; y <= RULE_LAST_YEAR; y++) {
        int64_t on = tz_when(&r->start, y, r->std_off), off = tz_when(&r->end, y, r->dst_off);
        int64_t t[2] = {on < off ? on : off, on < off ? off : on};
        long o[2] = {on < off ? r->dst_off : r->std_off, on < off ? r->std_off : r->dst_off};
        for (int i = 0; i < 2; i++) {
            if (t[i] <= z->start[z->n - 1] || z->n == cap)
                continue;
            z->start[z->n] = t[i];
            z->off[z->n++] = (int32_t)o[i];
        }
    }
}

void cron_zone_free(struct cron_zone *z)
{
    free(z->start);
    free(z->off);
    memset(z, 0, sizeof *z);
}

static uint32_t be32(const unsigned char *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static int64_t be64(const unsigned char *p)
{
    return (int64_t)((uint64_t)be32(p) << 32 | be32(p + 4));
}

/* Parses a TZif file's 64-bit data (or version 1's 32-bit data) into z. */
static bool parse_tzif(const unsigned char *d, size_t n, struct cron_zone *z, char *footer,
                       size_t footer_cap)
{
    if (n < 44 || memcmp(d, "TZif", 4) != 0)
        return false;
    size_t tsize = 4;
    for (int pass = 0; pass < 2; pass++) {
        if (n < 44 || memcmp(d, "TZif", 4) != 0)
            return false;
        uint32_t isut = be32(d + 20), isstd = be32(d + 24), leap = be32(d + 28);
        uint32_t timecnt = be32(d + 32), typecnt = be32(d + 36), charcnt = be32(d + 40);
        if (timecnt > 10000 || typecnt == 0 || typecnt > 256 || leap > 10000 || isut > 256 ||
            isstd > 256 || charcnt > 10000)
            return false;
        size_t body =
            timecnt * tsize + timecnt + typecnt * 6 + charcnt + leap * (tsize + 4) + isstd + isut;
        if (n - 44 < body)
            return false;
        if (pass == 0 && d[4] >= '2') { /* skip the 32-bit data: the 64-bit one follows */
            d += 44 + body;
            n -= 44 + body;
            tsize = 8;
            continue;
        }
        if (tsize == 8 && n - 44 - body >= 2 && d[44 + body] == '\n') { /* the footer */
            const char *f = (const char *)d + 44 + body + 1;
            const char *nl = memchr(f, '\n', n - 44 - body - 1);
            if (nl && (size_t)(nl - f) < footer_cap && !memchr(f, '\0', (size_t)(nl - f)))
                memcpy(footer, f, (size_t)(nl - f));
        }
        const unsigned char *times = d + 44, *idx = times + timecnt * tsize;
        const unsigned char *types = idx + timecnt;
        z->n = timecnt + 1;
        z->start = util_calloc(z->n, sizeof *z->start);
        z->off = util_calloc(z->n, sizeof *z->off);
        z->start[0] = INT64_MIN;
        z->off[0] = (int32_t)be32(types); /* type 0 before the first transition (RFC 8536) */
        for (uint32_t i = 0; i < timecnt; i++) {
            if (idx[i] >= typecnt)
                return false;
            z->start[i + 1] = tsize == 8 ? be64(times + 8 * i) : (int32_t)be32(times + 4 * i);
            z->off[i + 1] = (int32_t)be32(types + 6 * idx[i]);
            if (z->off[i + 1] < -86400 || z->off[i + 1] > 86400)
                return false;
        }
        return true;
    }
    return false;
}

int cron_zone_load(struct cron_zone *z, const char *name, struct err *e)
{
    memset(z, 0, sizeof *z);
    if (!name || !*name || strstr(name, "..") || name[0] == '/')
        return err_set(e, 400, "invalid_field", "time zone name is not valid");
    const char *dir = getenv("TZDIR");
    char path[512];
    util_fmt(path, sizeof path, "%s/%s", dir && *dir ? dir : "/usr/share/zoneinfo", name);
    FILE *f = fopen(path, "rb");
    if (!f) {
        if (strcmp(name, "UTC") == 0 || strcmp(name, "Etc/UTC") == 0) {
            z->n = 1;
            z->start = util_calloc(1, sizeof *z->start);
            z->off = util_calloc(1, sizeof *z->off);
            z->start[0] = INT64_MIN;
            return 0;
        }
        return err_set(e, 400, "invalid_field", "time zone %s: cannot read %s: %s", name, path,
                       strerror(errno));
    }
    enum { CAP = 256 * 1024 };
    unsigned char *data = util_xmalloc(CAP);
    size_t len = fread(data, 1, CAP, f);
    fclose(f);
    char footer[128] = "";
    bool ok = len < CAP && parse_tzif(data, len, z, footer, sizeof footer);
    free(data);
    struct tz_rule rule;
    if (ok && tz_parse_rule(footer, &rule))
        tz_extend(z, &rule);
    if (!ok) {
        cron_zone_free(z);
        return err_set(e, 400, "invalid_field", "time zone %s: %s is not a TZif file", name, path);
    }
    return 0;
}

/* ------------------------------------------------------------------ next fire */

#define SEARCH_DAYS 3700       /* ten years and some: 29 FEB in a century year takes eight */
#define MARGIN      (3 * 3600) /* more than any DST overlap: the local clock goes back */

/* The first matching local time of day `days` at or after `from` whose instant is after
 * `after`; false when there is none that day. */
static bool next_in_day(const struct cron_expr *c, const struct cron_zone *z, int64_t days,
                        int64_t from, int64_t after, int64_t *out)
{
    int64_t base = days * DAY;
    for (int h = 0; h < 24; h++) {
        if (!((c->hour >> h) & 1) || base + h * 3600 + 3599 < from)
            continue;
        for (int m = 0; m < 60; m++) {
            if (!((c->minute >> m) & 1) || base + h * 3600 + m * 60 + 59 < from)
                continue;
            for (int s = 0; s < 60; s++) {
                int64_t local = base + h * 3600 + m * 60 + s;
                if (!((c->second >> s) & 1) || local < from)
                    continue;
                int64_t u = cron_instant(z, local);
                if (u > after) {
                    *out = u;
                    return true;
                }
            }
        }
    }
    return false;
}

bool cron_next(const struct cron_expr *c, const struct cron_zone *z, int64_t after, int64_t *out)
{
    /* cron_instant never decreases as local time grows: the first matching local time (from a
     * little before after's own) whose instant is later than after is the next fire. */
    int64_t from = cron_local(z, after) - MARGIN;
    int64_t day0 = floor_div(from, DAY);
    for (int64_t d = day0; d < day0 + SEARCH_DAYS; d++)
        if (day_matches(c, d) && next_in_day(c, z, d, from, after, out))
            return true;
    return false;
}

void cron_format(const struct cron_zone *z, int64_t utc, char *out, size_t cap)
{
    int64_t local = cron_local(z, utc);
    int64_t off = local - utc, days = floor_div(local, DAY), secs = local - days * DAY;
    int y, m, d;
    civil(days, &y, &m, &d);
    int64_t aoff = off < 0 ? -off : off;
    util_fmt(out, cap, "%04d-%02d-%02dT%02d:%02d:%02d%c%02d:%02d", y, m, d, (int)(secs / 3600),
             (int)(secs / 60 % 60), (int)(secs % 60), off < 0 ? '-' : '+', (int)(aoff / 3600),
             (int)(aoff / 60 % 60));
}
