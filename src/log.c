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

/* JSON string escaping (also used for text values that need quoting). */
static void put_json_string(struct out *o, const char *s)
{
    static const char hex[] = "0123456789abcdef";
    put(o, "\"", 1);
    for (const unsigned char *c = (const unsigned char *)s; *c; c++) {
        char esc[6];
        switch (*c) {
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
            if (*c < 0x20 || *c == 0x7f) {
                esc[0] = '\\';
                esc[1] = 'u';
                esc[2] = '0';
                esc[3] = '0';
                esc[4] = hex[*c >> 4];
                esc[5] = hex[*c & 15];
                put(o, esc, 6);
            } else {
                put(o, (const char *)c, 1);
            }
        }
    }
    put(o, "\"", 1);
}

static bool needs_quotes(const char *s)
{
    if (!*s)
        return true;
    for (const unsigned char *c = (const unsigned char *)s; *c; c++)
        if (*c <= ' ' || *c == '"' || *c == '=' || *c == 0x7f)
            return true;
    return false;
}

size_t log_format_line(char *buf, size_t cap, enum log_format format, long long ts_ms,
                       enum log_level level, const char *msg, const char *const *keys,
                       const char *const *values, size_t n)
{
    if (cap == 0)
        return 0;
    /* One byte is kept for the terminating NUL. */
    struct out o = {buf, cap - 1, 0, false};
    char ts[32];
    util_format_timestamp_ms(ts_ms, ts, sizeof ts);
    if (format == LOG_JSON) {
        puts_(&o, "{\"ts\":\"");
        puts_(&o, ts);
        puts_(&o, "\",\"level\":\"");
        puts_(&o, log_level_name(level));
        puts_(&o, "\",\"msg\":");
        put_json_string(&o, msg);
        for (size_t i = 0; i < n; i++) {
            put(&o, ",", 1);
            put_json_string(&o, keys[i]);
            put(&o, ":", 1);
            if (values[i])
                put_json_string(&o, values[i]);
            else
                puts_(&o, "null");
        }
        puts_(&o, "}\n");
    } else {
        puts_(&o, ts);
        put(&o, " ", 1);
        puts_(&o, log_level_name(level));
        put(&o, " ", 1);
        /* The message is free text; control characters are escaped so one event stays one
         * line. */
        for (const unsigned char *c = (const unsigned char *)msg; *c; c++) {
            if (*c < 0x20 || *c == 0x7f)
                put(&o, "?", 1);
            else
                put(&o, (const char *)c, 1);
        }
        for (size_t i = 0; i < n; i++) {
            put(&o, " ", 1);
            puts_(&o, keys[i]);
            put(&o, "=", 1);
            const char *v = values[i] ? values[i] : "-";
            if (needs_quotes(v))
                put_json_string(&o, v);
            else
                puts_(&o, v);
        }
        put(&o, "\n", 1);
    }
    if (o.overflow) {
        buf[0] = '\0';
        return 0;
    }
    buf[o.len] = '\0';
    return o.len;
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
        /* Too long: drop the fields rather than the event. */
        len = log_format_line(line, sizeof line, g_format, util_now_ms(), level,
                              "(log line truncated)", NULL, NULL, 0);
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
