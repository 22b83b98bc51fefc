/* log: formats a whole line in a local buffer and writes it with one write(2), so lines of
 * concurrent threads never interleave. */
#include "jobsd/log.h"
#include "jobsd/util.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#define LINE_MAX_BYTES 8192
#define MAX_FIELDS     32

static enum log_level g_level = LOG_INFO;
static enum log_format g_format = LOG_TEXT;
static int g_fd = STDOUT_FILENO;

void log_setup(enum log_level level, enum log_format format)
{
    g_level = level;
    g_format = format;
}

void log_set_fd(int fd)
{
    g_fd = fd < 0 ? STDOUT_FILENO : fd;
}

bool log_enabled(enum log_level level)
{
    return level >= g_level;
}

const char *log_level_name(enum log_level level)
{
    switch (level) {
    case LOG_DEBUG:
        return "debug";
    case LOG_INFO:
        return "info";
    case LOG_WARN:
        return "warn";
    case LOG_ERROR:
        return "error";
    }
    return "info";
}

struct out {
    char *p;
    size_t cap;
    size_t len;
    bool overflow;
};

static void put(struct out *o, const char *s, size_t n)
{
    if (o->overflow || n > o->cap - o->len) {
        o->overflow = true;
        return;
    }
    memcpy(o->p + o->len, s, n);
    o->len += n;
}

static void puts_(struct out *o, const char *s)
{
    put(o, s, strlen(s));
}

/* Bytes escaped for a JSON string (the text format's quoted values use the same escapes). */
static size_t escaped_len(unsigned char c)
{
    switch (c) {
    case '"':
    case '\\':
    case '\n':
    case '\r':
    case '\t':
        return 2;
    default:
        return c < 0x20 || c == 0x7f ? 6 : 1;
    }
}

static void put_escaped(struct out *o, unsigned char c)
{
    static const char hex[] = "0123456789abcdef";
    switch (c) {
    case '"':
        put(o, "\\\"", 2);
        break;
    case '\\':
        put(o, "\\\\", 2);
        break;
    case '\n':
        put(o, "\\n", 2);
        break;
    case '\r':
        put(o, "\\r", 2);
        break;
    case '\t':
        put(o, "\\t", 2);
        break;
    default:
        if (c < 0x20 || c == 0x7f) {
            char esc[6] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 15]};
            put(o, esc, 6);
        } else {
            put(o, (const char *)&c, 1);
        }
    }
}

/* How many bytes of s fit in limit bytes once escaped (escaped: s needs escaping). The cut
 * never splits a UTF-8 sequence. */
static size_t fitting_prefix(const char *s, size_t limit, bool escaped)
{
    const unsigned char *u = (const unsigned char *)s;
    size_t used = 0, i = 0;
    for (; u[i]; i++) {
        size_t w = escaped ? escaped_len(u[i]) : 1;
        if (used + w > limit)
            break;
        used += w;
    }
    if (u[i] == '\0')
        return i;
    while (i > 0 && (u[i] & 0xc0) == 0x80)
        i--;
    return i;
}

/* The marker that replaces the end of a value cut at LOG_VALUE_MAX. */
static void put_cut_marker(struct out *o, size_t dropped)
{
    char m[48];
    util_fmt(m, sizeof m, "\xe2\x80\xa6(truncated %zu bytes)", dropped);
    puts_(o, m);
}

/* JSON string escaping (also used for text values that need quoting); at most limit bytes of
 * the value, then the marker. */
static void put_json_string(struct out *o, const char *s, size_t limit)
{
    size_t keep = fitting_prefix(s, limit, true);
    put(o, "\"", 1);
    for (size_t i = 0; i < keep; i++)
        put_escaped(o, (unsigned char)s[i]);
    if (s[keep])
        put_cut_marker(o, strlen(s + keep));
    put(o, "\"", 1);
}

static bool needs_quotes(const char *s, size_t limit)
{
    if (!*s)
        return true;
    size_t n = 0;
    for (const unsigned char *c = (const unsigned char *)s; *c; c++, n++)
        if (*c <= ' ' || *c == '"' || *c == '=' || *c == 0x7f)
            return true;
    return n > limit; /* the marker has spaces */
}

/* The free-text message of the text format: control characters become '?' so one event stays
 * one line. */
static void put_text_msg(struct out *o, const char *msg, size_t limit)
{
    size_t keep = fitting_prefix(msg, limit, false);
    for (size_t i = 0; i < keep; i++) {
        unsigned char c = (unsigned char)msg[i];
        put(o, c < 0x20 || c == 0x7f ? "?" : &msg[i], 1);
    }
    if (msg[keep]) {
        put(o, " ", 1);
        put_cut_marker(o, strlen(msg + keep));
    }
}

static struct out format_once(char *buf, size_t cap, enum log_format format, const char *ts,
                              enum log_level level, const char *msg, const char *const *keys,
                              const char *const *values, size_t n, size_t limit)
{
    /* One byte is kept for the terminating NUL. */
    struct out o = {buf, cap - 1, 0, false};
    if (format == LOG_JSON) {
        puts_(&o, "{\"ts\":\"");
        puts_(&o, ts);
        puts_(&o, "\",\"level\":\"");
        puts_(&o, log_level_name(level));
        puts_(&o, "\",\"msg\":");
        put_json_string(&o, msg, limit);
        for (size_t i = 0; i < n; i++) {
            put(&o, ",", 1);
            put_json_string(&o, keys[i], limit);
            put(&o, ":", 1);
            if (values[i])
                put_json_string(&o, values[i], limit);
            else
                puts_(&o, "null");
        }
        puts_(&o, "}\n");
        return o;
    }
    puts_(&o, ts);
    put(&o, " ", 1);
    puts_(&o, log_level_name(level));
    put(&o, " ", 1);
    put_text_msg(&o, msg, limit);
    for (size_t i = 0; i < n; i++) {
        put(&o, " ", 1);
        puts_(&o, keys[i]);
        put(&o, "=", 1);
        const char *v = values[i] ? values[i] : "-";
        if (needs_quotes(v, limit))
            put_json_string(&o, v, limit);
        else
            puts_(&o, v);
    }
    put(&o, "\n", 1);
    return o;
}

size_t log_format_line(char *buf, size_t cap, enum log_format format, long long ts_ms,
                       enum log_level level, const char *msg, const char *const *keys,
                       const char *const *values, size_t n)
{
    if (cap == 0)
        return 0;
    char ts[32];
    util_format_timestamp_ms(ts_ms, ts, sizeof ts);
    /* Long values are cut, never the event: each value is capped at LOG_VALUE_MAX bytes once
     * escaped, and when many long values still overflow the line, at smaller caps, so every
     * key stays on the line. */
    static const size_t LIMITS[] = {LOG_VALUE_MAX, 256, 64};
    for (size_t k = 0; k < sizeof LIMITS / sizeof LIMITS[0]; k++) {
        struct out o = format_once(buf, cap, format, ts, level, msg, keys, values, n, LIMITS[k]);
        if (!o.overflow) {
            buf[o.len] = '\0';
            return o.len;
        }
    }
    buf[0] = '\0';
    return 0;
}

static void write_all(const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(g_fd, p, n);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return;
        }
        p += w;
        n -= (size_t)w;
    }
}

static void emit(enum log_level level, const char *msg, const char *const *keys,
                 const char *const *values, size_t n)
{
    char line[LINE_MAX_BYTES];
    size_t len =
        log_format_line(line, sizeof line, g_format, util_now_ms(), level, msg, keys, values, n);
    if (len == 0) {
        /* Only more fields than a line holds even with every value cut short (keys are the
         * code's own): keep the message. */
        len =
            log_format_line(line, sizeof line, g_format, util_now_ms(), level, msg, NULL, NULL, 0);
    }
    write_all(line, len);
}

void log_event(enum log_level level, const char *msg, ...)
{
    if (!log_enabled(level))
        return;
    const char *keys[MAX_FIELDS];
    const char *values[MAX_FIELDS];
    size_t n = 0;
    va_list ap;
    va_start(ap, msg);
    for (;;) {
        const char *k = va_arg(ap, const char *);
        if (!k)
            break;
        const char *v = va_arg(ap, const char *);
        if (n < MAX_FIELDS) {
            keys[n] = k;
            values[n] = v;
            n++;
        }
    }
    va_end(ap);
    emit(level, msg, keys, values, n);
}

void log_eventv(enum log_level level, const char *msg, const char *const *keys,
                const char *const *values, size_t n)
{
    if (!log_enabled(level))
        return;
    emit(level, msg, keys, values, n > MAX_FIELDS ? MAX_FIELDS : n);
}

void log_msgf(enum log_level level, const char *fmt, ...)
{
    if (!log_enabled(level))
        return;
    char msg[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    emit(level, msg, NULL, NULL, 0);
}
