/* err: see err.h. */
#include "jobsd/err.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

void err_clear(struct err *e)
{
    if (e)
        memset(e, 0, sizeof *e);
}

bool err_is_set(const struct err *e)
{
    return e && e->http_status != 0;
}

int err_set(struct err *e, int http_status, const char *code, const char *fmt, ...)
{
    if (!e)
        return -1;
    e->http_status = http_status;
    snprintf(e->code, sizeof e->code, "%s", code);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(e->message, sizeof e->message, fmt, ap);
    va_end(ap);
    e->retry_after = 0;
    return -1;
}

bool err_is_transient(const struct err *e)
{
    return e && e->http_status == 503;
}
