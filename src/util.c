/* util: see util.h. */
#include "jobsd/util.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

long long util_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

long long util_mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void util_cond_init(pthread_cond_t *cv)
{
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(cv, &ca);
    pthread_condattr_destroy(&ca);
}

void util_cond_wait_ms(pthread_cond_t *cv, pthread_mutex_t *m, long long ms)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    ts.tv_sec += (time_t)(ms / 1000);
    ts.tv_nsec += (long)(ms % 1000) * 1000000L;
    if (ts.tv_nsec >= 1000000000L) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000L;
    }
    pthread_cond_timedwait(cv, m, &ts);
}

void util_sleep_ms(long long ms, const volatile int *stop)
{
    long long end = util_mono_ms() + ms;
    for (;;) {
        if (stop && *stop)
            return;
        long long left = end - util_mono_ms();
        if (left <= 0)
            return;
        /* Short slices so a stop flag is seen promptly. */
        long long slice = left > 50 ? 50 : left;
        struct timespec ts = {(time_t)(slice / 1000), (long)(slice % 1000) * 1000000L};
        nanosleep(&ts, NULL);
    }
}

void util_format_timestamp_ms(long long ms, char *out, size_t cap)
{
    time_t secs = (time_t)(ms / 1000);
    int millis = (int)(ms % 1000);
    if (millis < 0) {
        millis += 1000;
        secs -= 1;
    }
    struct tm tm;
    gmtime_r(&secs, &tm);
    snprintf(out, cap, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1,
             tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, millis);
}

bool util_parse_i64n(const char *s, size_t n, long long min, long long max, long long *out)
{
    if (!s || n == 0 || n > 20)
        return false;
    size_t i = 0;
    bool neg = false;
    if (s[0] == '-') {
        neg = true;
        i = 1;
        if (n == 1)
            return false;
    }
    unsigned long long v = 0;
    for (; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return false;
        unsigned d = (unsigned)(s[i] - '0');
        if (v > (9223372036854775808ULL - d) / 10)
            return false;
        v = v * 10 + d;
    }
    long long r;
    if (neg) {
        if (v > 9223372036854775808ULL)
            return false;
        r = v == 9223372036854775808ULL ? (-9223372036854775807LL - 1) : -(long long)v;
    } else {
        if (v > 9223372036854775807ULL)
            return false;
        r = (long long)v;
    }
    if (r < min || r > max)
        return false;
    *out = r;
    return true;
}

bool util_parse_i64(const char *s, long long min, long long max, long long *out)
{
    if (!s)
        return false;
    return util_parse_i64n(s, strlen(s), min, max, out);
}

long long util_i64_or(const char *s, long long fallback)
{
    long long v;
    return util_parse_i64(s, -9223372036854775807LL - 1, 9223372036854775807LL, &v) ? v : fallback;
}

static bool digits(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (s[i] < '0' || s[i] > '9')
            return false;
    return true;
}

static int num(const char *s, size_t n)
{
    int v = 0;
    for (size_t i = 0; i < n; i++)
        v = v * 10 + (s[i] - '0');
    return v;
}

static bool valid_ymd(int y, int m, int d)
{
    static const int mdays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    if (y < 1 || m < 1 || m > 12 || d < 1)
        return false;
    int max = mdays[m - 1];
    if (m == 2 && ((y % 4 == 0 && y % 100 != 0) || y % 400 == 0))
        max = 29;
    return d <= max;
}

static bool date_prefix(const char *s)
{
    if (!digits(s, 4) || s[4] != '-' || !digits(s + 5, 2) || s[7] != '-' || !digits(s + 8, 2))
        return false;
    return valid_ymd(num(s, 4), num(s + 5, 2), num(s + 8, 2));
}

bool util_is_date(const char *s)
{
    return s && strlen(s) == 10 && date_prefix(s);
}

bool util_is_rfc3339(const char *s)
{
    if (!s)
        return false;
    size_t n = strlen(s);
    if (n < 20 || n > 64 || !date_prefix(s))
        return false;
    if (s[10] != 'T' && s[10] != 't')
        return false;
    const char *t = s + 11;
    if (!digits(t, 2) || t[2] != ':' || !digits(t + 3, 2) || t[5] != ':' || !digits(t + 6, 2))
        return false;
    /* RFC 3339 allows a leap second (60). */
    if (num(t, 2) > 23 || num(t + 3, 2) > 59 || num(t + 6, 2) > 60)
        return false;
    const char *p = t + 8;
    if (*p == '.') {
        p++;
        size_t k = 0;
        while (p[k] >= '0' && p[k] <= '9')
            k++;
        if (k == 0 || k > 9)
            return false;
        p += k;
    }
    if ((p[0] == 'Z' || p[0] == 'z') && p[1] == '\0')
        return true;
    if ((p[0] == '+' || p[0] == '-') && digits(p + 1, 2) && p[3] == ':' && digits(p + 4, 2) &&
        p[6] == '\0')
        /* RFC 3339 allows offsets up to 23:59; PostgreSQL's timestamptz (where every
         * timestamp ends up) refuses 16:00 and over ("time zone displacement out of range"). */
        return num(p + 1, 2) <= 15 && num(p + 4, 2) <= 59;
    return false;
}

static bool is_hex(char c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

bool util_is_uuid(const char *s)
{
    if (!s || strlen(s) != 36)
        return false;
    for (size_t i = 0; i < 36; i++) {
        if (i == 8 || i == 13 || i == 18 || i == 23) {
            if (s[i] != '-')
                return false;
        } else if (!is_hex(s[i])) {
            return false;
        }
    }
    return true;
}

bool util_uuid_normalize(const char *s, char out[37])
{
    if (!util_is_uuid(s))
        return false;
    for (size_t i = 0; i < 36; i++) {
        char c = s[i];
        out[i] = (c >= 'A' && c <= 'F') ? (char)(c - 'A' + 'a') : c;
    }
    out[36] = '\0';
    return true;
}

void util_uuid_v4(char out[37])
{
    static const char hex[] = "0123456789abcdef";
    unsigned char b[16];
    util_random_bytes(b, sizeof b);
    b[6] = (unsigned char)((b[6] & 0x0f) | 0x40);
    b[8] = (unsigned char)((b[8] & 0x3f) | 0x80);
    size_t o = 0;
    for (size_t i = 0; i < 16; i++) {
        if (i == 4 || i == 6 || i == 8 || i == 10)
            out[o++] = '-';
        out[o++] = hex[b[i] >> 4];
        out[o++] = hex[b[i] & 15];
    }
    out[o] = '\0';
}

bool util_is_request_id(const char *s)
{
    if (!s)
        return false;
    size_t n = strlen(s);
    if (n < 1 || n > 64)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                  c == '.' || c == '_' || c == '-';
        if (!ok)
            return false;
    }
    return true;
}

/* getrandom in 4 KiB gulps per thread: one system call per ~250 request ids, not one each. */
static _Thread_local unsigned char pool[4096];
static _Thread_local size_t pool_left;

static void fill(void *buf, size_t n)
{
    unsigned char *p = buf;
    while (n > 0) {
        ssize_t r = getrandom(p, n, 0);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            util_fatal("getrandom failed");
        }
        p += r;
        n -= (size_t)r;
    }
}

void util_random_bytes(void *buf, size_t n)
{
    if (n > sizeof pool / 4) {
        fill(buf, n);
        return;
    }
    if (pool_left < n) {
        fill(pool, sizeof pool);
        pool_left = sizeof pool;
    }
    memcpy(buf, pool + sizeof pool - pool_left, n);
    /* Bytes handed out are not kept. */
    memset(pool + sizeof pool - pool_left, 0, n);
    pool_left -= n;
}

bool util_ct_equal(const void *a, const void *b, size_t n)
{
    const volatile unsigned char *x = a;
    const volatile unsigned char *y = b;
    unsigned char acc = 0;
    for (size_t i = 0; i < n; i++)
        acc |= (unsigned char)(x[i] ^ y[i]);
    return acc == 0;
}

void util_wipe(void *p, size_t n)
{
    if (p && n)
        explicit_bzero(p, n);
}

void util_wipe_str(char *s)
{
    if (s)
        util_wipe(s, strlen(s));
}

static char lower(char c)
{
    return (c >= 'A' && c <= 'Z') ? (char)(c - 'A' + 'a') : c;
}

bool util_strcaseeq(const char *a, const char *b)
{
    if (!a || !b)
        return false;
    for (; *a && *b; a++, b++)
        if (lower(*a) != lower(*b))
            return false;
    return *a == *b;
}

_Noreturn void util_fatal(const char *msg)
{
    fprintf(stderr, "jobsd: fatal: %s\n", msg);
    abort();
}

void *util_xmalloc(size_t size)
{
    void *p = malloc(size ? size : 1);
    if (!p)
        util_fatal("out of memory");
    return p;
}

void *util_calloc(size_t nmemb, size_t size)
{
    if (size && nmemb > SIZE_MAX / size)
        util_fatal("allocation size overflow");
    void *p = calloc(nmemb ? nmemb : 1, size ? size : 1);
    if (!p)
        util_fatal("out of memory");
    return p;
}

char *util_strndup(const char *s, size_t n)
{
    if (n == SIZE_MAX)
        util_fatal("allocation size overflow");
    char *p = util_xmalloc(n + 1);
    memcpy(p, s, n);
    p[n] = '\0';
    return p;
}

char *util_strdup(const char *s)
{
    if (!s)
        return NULL;
    return util_strndup(s, strlen(s));
}

void util_fmt(char *out, size_t cap, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(out, cap, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= cap)
        util_fatal("formatted string does not fit its buffer");
}

static int b64_value(char c, bool url)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == (url ? '-' : '+'))
        return 62;
    if (c == (url ? '_' : '/'))
        return 63;
    return -1;
}

bool util_base64_decode(const char *in, size_t n, bool url, unsigned char *out, size_t out_cap,
                        size_t *out_len)
{
    if (!url) {
        /* Standard alphabet: strip up to two '=' of padding on a full quantum. */
        if (n % 4 == 0 && n > 0 && in[n - 1] == '=') {
            n--;
            if (in[n - 1] == '=')
                n--;
        }
    }
    if (n % 4 == 1)
        return false;
    size_t need = n / 4 * 3 + (n % 4 ? n % 4 - 1 : 0);
    if (need > out_cap)
        return false;
    size_t o = 0;
    unsigned acc = 0;
    int bits = 0;
    for (size_t i = 0; i < n; i++) {
        int v = b64_value(in[i], url);
        if (v < 0)
            return false;
        acc = (acc << 6) | (unsigned)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out[o++] = (unsigned char)((acc >> bits) & 0xff);
        }
    }
    /* Leftover bits must be zero (canonical encoding). */
    if (bits > 0 && (acc & ((1u << bits) - 1)) != 0)
        return false;
    *out_len = o;
    return true;
}

size_t util_base64url_encode(const unsigned char *in, size_t n, char *out, size_t out_cap)
{
    static const char tab[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    size_t o = 0;
    size_t i = 0;
    if (out_cap == 0)
        return 0;
    while (i + 3 <= n && o + 4 < out_cap) {
        unsigned v = (unsigned)in[i] << 16 | (unsigned)in[i + 1] << 8 | in[i + 2];
        out[o++] = tab[(v >> 18) & 63];
        out[o++] = tab[(v >> 12) & 63];
        out[o++] = tab[(v >> 6) & 63];
        out[o++] = tab[v & 63];
        i += 3;
    }
    size_t rest = n - i;
    if (rest == 1 && o + 2 < out_cap) {
        unsigned v = (unsigned)in[i] << 16;
        out[o++] = tab[(v >> 18) & 63];
        out[o++] = tab[(v >> 12) & 63];
    } else if (rest == 2 && o + 3 < out_cap) {
        unsigned v = (unsigned)in[i] << 16 | (unsigned)in[i + 1] << 8;
        out[o++] = tab[(v >> 18) & 63];
        out[o++] = tab[(v >> 12) & 63];
        out[o++] = tab[(v >> 6) & 63];
    }
    out[o] = '\0';
    return o;
}

/* Length of the valid UTF-8 sequence at s (RFC 3629: no overlong forms, no surrogates, at
 * most U+10FFFF), or 0 when s does not start one. */
static size_t utf8_sequence(const unsigned char *s)
{
    if (s[0] < 0x80)
        return 1;
    size_t n;
    unsigned cp;
    if (s[0] >= 0xc2 && s[0] <= 0xdf) {
        n = 2;
        cp = s[0] & 0x1fu;
    } else if (s[0] >= 0xe0 && s[0] <= 0xef) {
        n = 3;
        cp = s[0] & 0x0fu;
    } else if (s[0] >= 0xf0 && s[0] <= 0xf4) {
        n = 4;
        cp = s[0] & 0x07u;
    } else {
        return 0;
    }
    for (size_t i = 1; i < n; i++) {
        if ((s[i] & 0xc0) != 0x80)
            return 0; /* also stops at the terminating NUL */
        cp = cp << 6 | (s[i] & 0x3fu);
    }
    if ((n == 3 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff))) ||
        (n == 4 && (cp < 0x10000 || cp > 0x10ffff)))
        return 0;
    return n;
}

void util_json_compact(char *s)
{
    char *w = s;
    bool in_string = false;
    for (const char *r = s; *r; r++) {
        char c = *r;
        if (in_string) {
            *w++ = c;
            if (c == '\\' && r[1])
                *w++ = *++r;
            else if (c == '"')
                in_string = false;
        } else if (c != ' ' && c != '\n' && c != '\r' && c != '\t') {
            *w++ = c;
            in_string = c == '"';
        }
    }
    *w = '\0';
}

char *util_utf8_clean(const char *s)
{
    size_t len = strlen(s);
    char *out = util_xmalloc(len + 1);
    size_t o = 0;
    const unsigned char *p = (const unsigned char *)s;
    while (*p) {
        size_t n = utf8_sequence(p);
        if (n == 0) {
            out[o++] = '?';
            p++;
            continue;
        }
        memcpy(out + o, p, n);
        o += n;
        p += n;
    }
    out[o] = '\0';
    return out;
}
