/* fake_util: small helpers of the fake (buffers, parsing, time, PRNG, replies). They know
 * nothing of the world or of libmicrohttpd. */
#include "fake_ml.h"

#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* ------------------------------------------------------------------ memory */

void fatal(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("fake_ml: fatal: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    abort();
}

void *xmalloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    if (!p)
        fatal("out of memory");
    return p;
}

void *xcalloc(size_t n, size_t size)
{
    void *p = calloc(n ? n : 1, size ? size : 1);
    if (!p)
        fatal("out of memory");
    return p;
}

void *xrealloc(void *p, size_t n)
{
    void *q = realloc(p, n ? n : 1);
    if (!q)
        fatal("out of memory");
    return q;
}

char *xstrdup(const char *s)
{
    return xstrndup(s, strlen(s));
}

char *xstrndup(const char *s, size_t n)
{
    char *p = xmalloc(n + 1);
    memcpy(p, s, n);
    p[n] = '\0';
    return p;
}

char *dump_json(const json_t *j)
{
    char *s = json_dumps(j, JSON_COMPACT | JSON_REAL_PRECISION(15) | JSON_ENCODE_ANY);
    if (!s)
        fatal("out of memory (json_dumps)");
    return s;
}

/* ------------------------------------------------------------------ sbuf */

static void sb_reserve(struct sbuf *b, size_t extra)
{
    if (extra > SIZE_MAX / 2 - b->len)
        fatal("buffer too large");
    size_t need = b->len + extra + 1;
    if (need <= b->cap)
        return;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < need)
        cap *= 2;
    b->data = xrealloc(b->data, cap);
    b->cap = cap;
}

void sb_add(struct sbuf *b, const char *s, size_t n)
{
    sb_reserve(b, n);
    memcpy(b->data + b->len, s, n);
    b->len += n;
    b->data[b->len] = '\0';
}

void sb_adds(struct sbuf *b, const char *s)
{
    sb_add(b, s, strlen(s));
}

void sb_addf(struct sbuf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    va_list ap2;
    va_copy(ap2, ap);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0)
        fatal("vsnprintf failed");
    sb_reserve(b, (size_t)n);
    vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap2);
    va_end(ap2);
    b->len += (size_t)n;
}

char *sb_take(struct sbuf *b, size_t *len)
{
    if (!b->data) {
        sb_reserve(b, 0);
        b->data[0] = '\0';
    }
    char *s = b->data;
    if (len)
        *len = b->len;
    b->data = NULL;
    b->len = b->cap = 0;
    return s;
}

void sb_free(struct sbuf *b)
{
    free(b->data);
    b->data = NULL;
    b->len = b->cap = 0;
}

/* ------------------------------------------------------------------ parsing */

bool parse_ll(const char *s, long long min, long long max, long long *out)
{
    if (!s || !*s)
        return false;
    /* strtoll accepts leading blanks and '+': the API's parameters do not. */
    if (!(s[0] == '-' || (s[0] >= '0' && s[0] <= '9')))
        return false;
    errno = 0;
    char *end = NULL;
    long long v = strtoll(s, &end, 10);
    if (errno != 0 || end == s || *end != '\0' || v < min || v > max)
        return false;
    *out = v;
    return true;
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

char *url_decode(const char *s, size_t len, bool plus_is_space)
{
    char *out = xmalloc(len + 1);
    size_t o = 0;
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        if (c == '%') {
            if (i + 2 >= len) {
                free(out);
                return NULL;
            }
            int hi = hexval(s[i + 1]), lo = hexval(s[i + 2]);
            if (hi < 0 || lo < 0) {
                free(out);
                return NULL;
            }
            out[o++] = (char)(hi * 16 + lo);
            i += 2;
        } else if (c == '+' && plus_is_space) {
            out[o++] = ' ';
        } else {
            out[o++] = c;
        }
    }
    out[o] = '\0';
    return out;
}

void params_parse(struct params *p, const char *s, size_t len)
{
    memset(p, 0, sizeof *p);
    size_t cap = 0;
    size_t i = 0;
    while (i < len) {
        size_t j = i;
        while (j < len && s[j] != '&')
            j++;
        if (j > i) {
            const char *eq = memchr(s + i, '=', j - i);
            size_t klen = eq ? (size_t)(eq - (s + i)) : j - i;
            char *k = url_decode(s + i, klen, true);
            char *v = eq ? url_decode(eq + 1, (size_t)(s + j - eq - 1), true) : xstrdup("");
            if (k && v) {
                if (p->n == cap) {
                    cap = cap ? cap * 2 : 8;
                    p->keys = xrealloc(p->keys, cap * sizeof *p->keys);
                    p->vals = xrealloc(p->vals, cap * sizeof *p->vals);
                }
                p->keys[p->n] = k;
                p->vals[p->n] = v;
                p->n++;
            } else {
                /* A malformed escape: the pair is dropped, as if it were not sent. */
                free(k);
                free(v);
            }
        }
        i = j + 1;
    }
}

const char *params_get(const struct params *p, const char *key)
{
    for (size_t i = 0; i < p->n; i++)
        if (strcmp(p->keys[i], key) == 0)
            return p->vals[i];
    return NULL;
}

void params_free(struct params *p)
{
    for (size_t i = 0; i < p->n; i++) {
        free(p->keys[i]);
        free(p->vals[i]);
    }
    free(p->keys);
    free(p->vals);
    memset(p, 0, sizeof *p);
}

/* ------------------------------------------------------------------ time */

long long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

long long mono_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* Howard Hinnant's civil-date algorithms (proleptic Gregorian). */
long long days_from_civil(long long y, unsigned m, unsigned d)
{
    y -= m <= 2;
    long long era = floor_div(y, 400);
    unsigned yoe = (unsigned)(y - era * 400);
    unsigned doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
    unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + (long long)doe - 719468;
}

void civil_from_days(long long z, long long *y, unsigned *m, unsigned *d)
{
    z += 719468;
    long long era = floor_div(z, 146097);
    unsigned doe = (unsigned)(z - era * 146097);
    unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    long long yy = (long long)yoe + era * 400;
    unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    unsigned mp = (5 * doy + 2) / 153;
    *d = doy - (153 * mp + 2) / 5 + 1;
    *m = mp < 10 ? mp + 3 : mp - 9;
    *y = yy + (*m <= 2);
}

static bool digits(const char *s, size_t n, unsigned *out)
{
    unsigned v = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return false;
        v = v * 10 + (unsigned)(s[i] - '0');
    }
    *out = v;
    return true;
}

static unsigned month_days(long long y, unsigned m)
{
    static const unsigned md[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    return m == 2 && leap ? 29 : md[m - 1];
}

bool date_parse(const char *s, long long *day)
{
    unsigned y, m, d;
    if (strlen(s) != 10 || s[4] != '-' || s[7] != '-' || !digits(s, 4, &y) ||
        !digits(s + 5, 2, &m) || !digits(s + 8, 2, &d))
        return false;
    if (y < 1 || m < 1 || m > 12 || d < 1 || d > month_days(y, m))
        return false;
    *day = days_from_civil(y, m, d);
    return true;
}

void date_format(long long day, char out[DATE_BUF])
{
    long long y;
    unsigned m, d;
    civil_from_days(day, &y, &m, &d);
    snprintf(out, DATE_BUF, "%04lld-%02u-%02u", y, m, d);
}

bool ts_parse(const char *s, long long *ms, int *offset_min)
{
    size_t n = strlen(s);
    unsigned hh, mi, ss;
    long long day;
    if (n < 20 || s[10] != 'T' || s[13] != ':' || s[16] != ':')
        return false;
    char date[11];
    memcpy(date, s, 10);
    date[10] = '\0';
    if (!date_parse(date, &day) || !digits(s + 11, 2, &hh) || !digits(s + 14, 2, &mi) ||
        !digits(s + 17, 2, &ss) || hh > 23 || mi > 59 || ss > 59)
        return false;
    size_t i = 19;
    long long frac_ms = 0;
    if (s[i] == '.') {
        i++;
        size_t start = i;
        unsigned scale = 100;
        while (i < n && s[i] >= '0' && s[i] <= '9') {
            frac_ms += (s[i] - '0') * (long long)scale;
            scale /= 10;
            i++;
        }
        if (i == start || i - start > 9)
            return false;
    }
    int off = 0;
    if (i < n && s[i] == 'Z' && i + 1 == n) {
        off = 0;
    } else if (i + 6 == n && (s[i] == '+' || s[i] == '-') && s[i + 3] == ':') {
        unsigned oh, om;
        if (!digits(s + i + 1, 2, &oh) || !digits(s + i + 4, 2, &om) || oh > 14 || om > 59)
            return false;
        off = (int)(oh * 60 + om);
        if (s[i] == '-')
            off = -off;
    } else {
        return false;
    }
    long long local = day * 86400000LL + (long long)hh * 3600000 + (long long)mi * 60000 +
                      (long long)ss * 1000 + frac_ms;
    *ms = local - (long long)off * 60000;
    *offset_min = off;
    return true;
}

void ts_format(long long ms, int offset_min, bool zulu, char out[TS_BUF])
{
    long long local = ms + (long long)offset_min * 60000;
    long long day = floor_div(local, 86400000LL);
    long long rem = local - day * 86400000LL;
    long long y;
    unsigned m, d;
    civil_from_days(day, &y, &m, &d);
    unsigned hh = (unsigned)(rem / 3600000), mi = (unsigned)(rem / 60000 % 60),
             ss = (unsigned)(rem / 1000 % 60), milli = (unsigned)(rem % 1000);
    if (zulu && offset_min == 0) {
        snprintf(out, TS_BUF, "%04lld-%02u-%02uT%02u:%02u:%02u.%03uZ", y, m, d, hh, mi, ss, milli);
    } else {
        int a = offset_min < 0 ? -offset_min : offset_min;
        snprintf(out, TS_BUF, "%04lld-%02u-%02uT%02u:%02u:%02u.%03u%c%02d:%02d", y, m, d, hh, mi,
                 ss, milli, offset_min < 0 ? '-' : '+', a / 60, a % 60);
    }
}

/* ------------------------------------------------------------------ PRNG */

uint64_t mix64(uint64_t x)
{
    x += 0x9e3779b97f4a7c15ULL;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
    return x ^ (x >> 31);
}

uint64_t hash_str(const char *s)
{
    uint64_t h = 1469598103934665603ULL; /* FNV-1a, then mixed */
    for (; *s; s++) {
        h ^= (unsigned char)*s;
        h *= 1099511628211ULL;
    }
    return mix64(h);
}

uint64_t rng_next(struct rng *r)
{
    r->s += 0x9e3779b97f4a7c15ULL;
    uint64_t z = r->s;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

uint64_t rng_below(struct rng *r, uint64_t n)
{
    /* Rejection sampling: no modulo bias, so a seed means the same world everywhere. */
    uint64_t limit = UINT64_MAX - UINT64_MAX % n;
    for (;;) {
        uint64_t v = rng_next(r);
        if (v < limit)
            return v % n;
    }
}

/* ------------------------------------------------------------------ replies */

void reply_json(struct reply *r, unsigned status, json_t *j)
{
    free(r->body);
    r->status = status;
    r->body = dump_json(j);
    r->len = strlen(r->body);
    json_decref(j);
}

void reply_error(struct reply *r, unsigned status, const char *error, const char *message)
{
    reply_json(r, status,
               json_pack("{s:s, s:s, s:i, s:[]}", "message", message, "error", error, "status",
                         (int)status, "cause"));
}

void reply_free(struct reply *r)
{
    free(r->body);
    free(r->location);
    memset(r, 0, sizeof *r);
}

/* ------------------------------------------------------------------ endpoints */

static const char *const ep_names[EP_COUNT] = {"oauth_token",    "users_me",      "items_search",
                                               "items_multiget", "orders_search", "orders_get",
                                               "visits",         "other"};

const char *endpoint_name(enum endpoint ep)
{
    return ep < EP_COUNT ? ep_names[ep] : "?";
}

bool endpoint_parse(const char *name, int *ep)
{
    if (strcmp(name, "any") == 0) {
        *ep = -1;
        return true;
    }
    for (int i = 0; i < EP_OTHER; i++)
        if (strcmp(name, ep_names[i]) == 0) {
            *ep = i;
            return true;
        }
    return false;
}

/* "/a/b/c" split into at most max segments (no decoding); returns the count, or -1 when there
 * are more. Empty segments count (so "/users/me/" has 3). */
static int split_path(const char *path, const char *seg[], size_t seglen[], int max)
{
    if (path[0] != '/')
        return -1;
    int n = 0;
    const char *p = path + 1;
    for (;;) {
        const char *e = strchr(p, '/');
        size_t l = e ? (size_t)(e - p) : strlen(p);
        if (n == max)
            return -1;
        seg[n] = p;
        seglen[n] = l;
        n++;
        if (!e)
            break;
        p = e + 1;
    }
    return n;
}

static bool seg_is(const char *seg, size_t len, const char *lit)
{
    return strlen(lit) == len && memcmp(seg, lit, len) == 0;
}

enum endpoint endpoint_classify(const char *path)
{
    const char *s[6];
    size_t l[6];
    int n = split_path(path, s, l, 6);
    if (n == 2 && seg_is(s[0], l[0], "oauth") && seg_is(s[1], l[1], "token"))
        return EP_OAUTH_TOKEN;
    if (n == 2 && seg_is(s[0], l[0], "users") && seg_is(s[1], l[1], "me"))
        return EP_USERS_ME;
    if (n == 4 && seg_is(s[0], l[0], "users") && l[1] > 0 && seg_is(s[2], l[2], "items") &&
        seg_is(s[3], l[3], "search"))
        return EP_ITEMS_SEARCH;
    if (n == 1 && seg_is(s[0], l[0], "items"))
        return EP_ITEMS_MULTIGET;
    if (n == 2 && seg_is(s[0], l[0], "orders") && seg_is(s[1], l[1], "search"))
        return EP_ORDERS_SEARCH;
    if (n == 2 && seg_is(s[0], l[0], "orders") && l[1] > 0)
        return EP_ORDERS_GET;
    if (n == 4 && seg_is(s[0], l[0], "items") && l[1] > 0 && seg_is(s[2], l[2], "visits") &&
        seg_is(s[3], l[3], "time_window"))
        return EP_VISITS;
    return EP_OTHER;
}
