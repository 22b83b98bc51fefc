/* util: small pure helpers with no knowledge of HTTP, SQL or jobs: time, strict number and
 * date parsing, UUIDs, request ids, random bytes, constant-time comparison. */
#ifndef JOBSD_UTIL_H
#define JOBSD_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <pthread.h>
#include <stdint.h>

#include "jobsd/err.h"

#define MUSTCHECK __attribute__((warn_unused_result))

/* A condition variable on the monotonic clock (waits are not fooled by clock changes). */
void util_cond_init(pthread_cond_t *cv);
/* Waits on cv for at most ms milliseconds (the mutex held, as pthread_cond_timedwait). */
void util_cond_wait_ms(pthread_cond_t *cv, pthread_mutex_t *m, long long ms);

/* Wall clock in milliseconds since the epoch; monotonic clock in milliseconds. */
long long util_now_ms(void);
long long util_mono_ms(void);
/* Sleeps for ms milliseconds (restarts on EINTR unless *stop becomes true). */
void util_sleep_ms(long long ms, const volatile int *stop);

/* "2024-01-31T06:00:01.234Z" into out (at least 25 bytes). */
void util_format_timestamp_ms(long long ms, char *out, size_t cap);

/* Parses a whole decimal integer (optional leading '-', no spaces, no '+', no trailing
 * characters) within [min, max]. */
MUSTCHECK bool util_parse_i64(const char *s, long long min, long long max, long long *out);
/* A number from a trusted source (a database column): fallback when it does not parse. */
long long util_i64_or(const char *s, long long fallback);
/* Same for a counted string. */
MUSTCHECK bool util_parse_i64n(const char *s, size_t n, long long min, long long max,
                               long long *out);

/* Strict "YYYY-MM-DD" that is a real calendar date (1..9999). */
bool util_is_date(const char *s);
/* Strict RFC 3339 date-time: YYYY-MM-DDTHH:MM:SS[.fraction](Z|+HH:MM|-HH:MM), with a real
 * calendar date and time fields in range ('t' and 'z' accepted as RFC 3339 allows), and a
 * UTC offset PostgreSQL's timestamptz accepts (-15:59..+15:59; RFC 3339 alone allows 23:59). */
bool util_is_rfc3339(const char *s);

/* 8-4-4-4-12 hex UUID in any case. */
bool util_is_uuid(const char *s);
/* Copies a UUID lower-cased into out[37]; false when s is not a UUID. */
bool util_uuid_normalize(const char *s, char out[37]);
/* A random (version 4) UUID into out[37]. */
void util_uuid_v4(char out[37]);

/* A caller's X-Request-Id is kept when it is 1..64 chars of [A-Za-z0-9._-]. */
bool util_is_request_id(const char *s);

/* Fills buf with cryptographically random bytes (getrandom); aborts on failure. */
void util_random_bytes(void *buf, size_t n);

/* Constant-time equality of two buffers of the same length. */
bool util_ct_equal(const void *a, const void *b, size_t n);

/* Wipes a secret in memory (not optimised away); NULL is fine. util_wipe_str wipes up to the
 * NUL. The one way jobsd clears keys, tokens and passwords. */
void util_wipe(void *p, size_t n);
void util_wipe_str(char *s);

/* Case-insensitive ASCII comparison of the first n bytes / whole strings. */
bool util_strcaseeq(const char *a, const char *b);

/* Duplicates a string; aborts on out-of-memory. NULL stays NULL. */
char *util_strdup(const char *s);
/* Duplicates n bytes plus a NUL. */
char *util_strndup(const char *s, size_t n);
/* Allocation that aborts on out-of-memory; nmemb*size checked for overflow. */
void *util_calloc(size_t nmemb, size_t size);
void *util_xmalloc(size_t size);

/* snprintf that aborts when the output would not fit (for buffers sized by construction). */
void util_fmt(char *out, size_t cap, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* Base64 decoding. url=false: standard alphabet, '=' padding required when the length is not
 * a multiple of 4 is tolerated missing; url=true: base64url, padding rejected. Whitespace is
 * always rejected. Returns false on any bad character or when out_cap is too small. */
bool util_base64_decode(const char *in, size_t n, bool url, unsigned char *out, size_t out_cap,
                        size_t *out_len);
/* base64url without padding; out needs 4*ceil(n/3)+1 bytes. Returns the length. */
size_t util_base64url_encode(const unsigned char *in, size_t n, char *out, size_t out_cap);

/* A copy of s that is valid UTF-8 (RFC 3629): every byte outside a valid sequence becomes
 * '?'. For text that quotes request bytes and must go into JSON. Caller frees. */
char *util_utf8_clean(const char *s);

/* Removes the insignificant whitespace of a valid JSON text, in place (PostgreSQL's json
 * output puts spaces around ':' and ',', and line breaks in json_agg; answers are compact).
 * Only for JSON produced by PostgreSQL or jansson: it does not validate. */
void util_json_compact(char *s);

/* Logs the message to stderr and aborts. */
_Noreturn void util_fatal(const char *msg);

#endif
