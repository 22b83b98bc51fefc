/* err: the error every fallible function fills: an API error code (SPEC section 2), the
 * HTTP status it maps to, and a message naming what is wrong. Never holds a secret. */
#ifndef JOBSD_ERR_H
#define JOBSD_ERR_H

#include <stdbool.h>

/* On every function that fills a struct err: its result says whether e was filled, so it
 * must be looked at (gcc ignores a (void) cast; handle or log the failure instead). */
#define MUSTCHECK __attribute__((warn_unused_result))

#define ERR_CODE_MAX    40
#define ERR_MESSAGE_MAX 512

struct err {
    int http_status;         /* 0 = no error */
    char code[ERR_CODE_MAX]; /* snake_case, e.g. "invalid_field" */
    char message[ERR_MESSAGE_MAX];
    int retry_after; /* seconds for 503 answers; 0 = default */
};

void err_clear(struct err *e);
bool err_is_set(const struct err *e);
/* Fills e (when not NULL); returns -1 so callers can `return err_set(...)`. */
int err_set(struct err *e, int http_status, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* Is the error transient (a retry may succeed: 503)? */
bool err_is_transient(const struct err *e);

#endif
