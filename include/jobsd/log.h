/* log: one line per event on stdout, text or JSON (SPEC section 6).
 * The one global of jobsd: the level and format are set once at start-up.
 * Fields are key/value string pairs; values are never secrets by contract. */
#ifndef JOBSD_LOG_H
#define JOBSD_LOG_H

#include <stdbool.h>
#include <stddef.h>

enum log_level { LOG_DEBUG = 0, LOG_INFO = 1, LOG_WARN = 2, LOG_ERROR = 3 };
enum log_format { LOG_TEXT = 0, LOG_JSON = 1 };

/* Prefix of every line about a job (the runbook's CloudWatch filter). */
#define LOG_JOB_TAG "[INTERNAL-JOB] "

void log_setup(enum log_level level, enum log_format format);
bool log_enabled(enum log_level level);
/* Redirects output (tests); NULL restores stdout. */
void log_set_fd(int fd);

/* Writes one event: msg, then key/value pairs (const char *), terminated by NULL.
 * A NULL value prints as null / "-". */
void log_event(enum log_level level, const char *msg, ...) __attribute__((sentinel));

/* The same with the fields in arrays (n pairs). */
void log_eventv(enum log_level level, const char *msg, const char *const *keys,
                const char *const *values, size_t n);

/* printf-style message without fields. */
void log_msgf(enum log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* A value (and the message) longer than this once escaped is cut to it, at a UTF-8 boundary,
 * and ends with "…(truncated N bytes)", N the bytes left out: a long value never costs the
 * event its other fields. When the line still does not fit, values are cut shorter (256, then
 * 64 bytes). */
#define LOG_VALUE_MAX 1024

/* Formats one NUL-terminated line into out; returns its length or 0 when it does not fit even
 * with values cut to 64 bytes. keys/values hold n pairs. ts_ms is milliseconds since the
 * epoch. */
size_t log_format_line(char *out, size_t cap, enum log_format format, long long ts_ms,
                       enum log_level level, const char *msg, const char *const *keys,
                       const char *const *values, size_t n);

const char *log_level_name(enum log_level level);

#endif
