/* http_request: the request as a handler sees it (accessors over libmicrohttpd's parsed
 * headers and query) and the answering side: a response set once, from any thread, which
 * wakes a parked (suspended) connection. The server half is http_server.c. */
#include "http_internal.h"
#include "jobsd/log.h"
#include "jobsd/util.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

char *http_json_dump(const json_t *j)
{
    char *s = json_dumps(j, JSON_COMPACT | JSON_REAL_PRECISION(10));
    if (!s)
        util_fatal("out of memory (json_dumps)");
    return s;
}

json_t *http_error_body(const char *code, const char *message, const char *request_id,
                        const char *job_id)
{
    /* Messages quote request bytes (a percent-decoded path, a field cut by "%.64s"), and
     * jansson refuses invalid UTF-8. */
    char *clean = util_utf8_clean(message ? message : "");
    json_t *body = json_pack("{s:b, s:{s:s, s:s}, s:s}", "success", 0, "error", "code", code,
                             "message", clean, "requestId", request_id ? request_id : "");
    free(clean);
    if (!body)
        util_fatal("out of memory (json_pack)");
    if (job_id)
        json_object_set_new(body, "jobLogId", json_string(job_id));
    return body;
}

const char *http_header_value(struct MHD_Connection *c, const char *name)
{
    return MHD_lookup_connection_value(c, MHD_HEADER_KIND, name);
}

/* ------------------------------------------------------------------ responding */

void http_add_header(struct http_request *r, const char *name, const char *value)
{
    if (r->nhdrs >= MAX_RESPONSE_HEADERS)
        util_fatal("too many response headers");
    r->hdrs[r->nhdrs].name = util_strdup(name);
    r->hdrs[r->nhdrs].value = util_strdup(value);
    r->nhdrs++;
}

/* Sets the response and, when the connection is parked, wakes it. Any thread. */
static void set_response(struct http_request *r, unsigned status, char *body, size_t len,
                         const char *ctype)
{
    pthread_mutex_lock(&r->lock);
    if (r->has_response) {
        pthread_mutex_unlock(&r->lock);
        free(body);
        log_event(LOG_ERROR, "bug: second response for one request", "requestId", r->request_id,
                  NULL);
        return;
    }
    r->status = status;
    r->resp_body = body;
    r->resp_len = len;
    r->resp_ctype = ctype;
    r->has_response = true;
    bool resume = r->suspended;
    r->suspended = false;
    pthread_mutex_unlock(&r->lock);
    if (resume) {
        atomic_fetch_sub(&r->srv->suspended, 1);
        MHD_resume_connection(r->conn);
    }
}

void http_respond_json(struct http_request *r, unsigned status, json_t *body)
{
    char *s = http_json_dump(body);
    json_decref(body);
    set_response(r, status, s, strlen(s), JSON_CTYPE);
}

void http_respond_json_text(struct http_request *r, unsigned status, char *text)
{
    set_response(r, status, text, strlen(text), JSON_CTYPE);
}

void http_respond_text(struct http_request *r, unsigned status, const char *content_type,
                       const char *text)
{
    char *s = util_strdup(text);
    set_response(r, status, s, strlen(s), content_type);
}

void http_respond_err(struct http_request *r, const struct err *e, const char *job_id)
{
    unsigned status = e && e->http_status ? (unsigned)e->http_status : 500;
    const char *code = e && e->code[0] ? e->code : "internal_error";
    const char *msg = e && e->message[0] ? e->message : "internal error";
    /* A 500 is a bug: its text (a database's or a library's words, a statement, a value)
     * goes to the log with the request id, never to the client (SPEC 2). */
    if (status == 500) {
        log_event(LOG_ERROR, "internal error answered", "code", code, "error", msg, "requestId",
                  r->request_id, "jobLogId", job_id, NULL);
        code = "internal_error";
        msg = "internal error: the server log has the details under this requestId";
    }
    if (status == 503) {
        char ra[16];
        util_fmt(ra, sizeof ra, "%d", e && e->retry_after > 0 ? e->retry_after : 5);
        http_add_header(r, "Retry-After", ra);
    }
    http_respond_json(r, status, http_error_body(code, msg, r->request_id, job_id));
}

void http_respond_error(struct http_request *r, unsigned status, const char *code, const char *fmt,
                        ...)
{
    struct err e;
    err_clear(&e);
    e.http_status = (int)status;
    snprintf(e.code, sizeof e.code, "%s", code);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(e.message, sizeof e.message, fmt, ap);
    va_end(ap);
    http_respond_err(r, &e, NULL);
}

void http_suspend(struct http_request *r)
{
    pthread_mutex_lock(&r->lock);
    if (!r->has_response && !r->suspended) {
        r->suspended = true;
        atomic_fetch_add(&r->srv->suspended, 1);
        MHD_suspend_connection(r->conn);
    }
    pthread_mutex_unlock(&r->lock);
}

/* ------------------------------------------------------------------ request accessors */

const char *http_request_method(const struct http_request *r)
{
    return r->method;
}
const char *http_request_path(const struct http_request *r)
{
    return r->path;
}
const char *http_request_param(const struct http_request *r)
{
    return r->match.param;
}
const char *http_request_id(const struct http_request *r)
{
    return r->request_id;
}
const char *http_request_user_agent(const struct http_request *r)
{
    return http_header_value(r->conn, "User-Agent");
}
const char *http_request_header(const struct http_request *r, const char *name)
{
    return http_header_value(r->conn, name);
}
json_t *http_request_json(const struct http_request *r)
{
    return r->json;
}
const struct http_auth *http_request_auth(const struct http_request *r)
{
    return &r->auth;
}
const struct route *http_request_route(const struct http_request *r)
{
    return r->match.route;
}

struct each_header_ctx {
    const char *name;
    bool (*fn)(void *ctx, const char *value);
    void *ctx;
    bool stop;
};

static enum MHD_Result each_header_cb(void *cls, enum MHD_ValueKind kind, const char *key,
                                      size_t key_size, const char *value, size_t value_size)
{
    (void)kind;
    (void)key_size;
    (void)value_size;
    struct each_header_ctx *c = cls;
    if (c->stop || !key || !util_strcaseeq(key, c->name))
        return MHD_YES;
    if (!c->fn(c->ctx, value ? value : ""))
        c->stop = true;
    return MHD_YES;
}

void http_request_each_header(const struct http_request *r, const char *name,
                              bool (*fn)(void *ctx, const char *value), void *ctx)
{
    struct each_header_ctx c = {name, fn, ctx, false};
    MHD_get_connection_values_n(r->conn, MHD_HEADER_KIND, each_header_cb, &c);
}

struct query_ctx {
    const char *name;
    size_t count;
    const char *first;
    bool (*fn)(void *ctx, const char *key, const char *value);
    void *ctx;
    bool stop;
};

static enum MHD_Result query_cb(void *cls, enum MHD_ValueKind kind, const char *key,
                                const char *value)
{
    (void)kind;
    struct query_ctx *q = cls;
    if (!key)
        return MHD_YES;
    if (q->fn) {
        if (!q->stop && !q->fn(q->ctx, key, value ? value : ""))
            q->stop = true;
        return MHD_YES;
    }
    if (strcmp(key, q->name) == 0) {
        if (q->count++ == 0)
            q->first = value ? value : "";
    }
    return MHD_YES;
}

/* Query arguments as libmicrohttpd 0.9.75 splits them (MHD_parse_arguments_): one per
 * '&'-separated piece, empty pieces included, except an empty last one. */
static size_t count_query_args(const char *q)
{
    if (!*q)
        return 0;
    size_t n = 1;
    for (const char *p = q; *p; p++)
        if (*p == '&' && p[1] != '\0')
            n++;
    return n;
}

void *http_uri_check(void *cls, const char *uri, struct MHD_Connection *c)
{
    (void)c;
    char *q = uri ? (char *)strchr(uri, '?') : NULL;
    if (!q || count_query_args(q + 1) <= HTTP_MAX_QUERY_ARGS)
        return NULL;
    /* libmicrohttpd 0.9.75 stores every argument as a record in the connection's 32 KiB memory
     * pool: some 450 of them exhaust it, and its error path then leaves the connection waiting
     * for headers it has no buffer for, without an answer, until the timeout. The target lies
     * in the connection's read buffer, which libmicrohttpd itself rewrites right after this
     * callback (the '?' becomes the path's end): ending the query at its first byte leaves it
     * nothing to parse. The request is answered 414 by the first checks. */
    q[1] = '\0';
    return cls;
}

const char *http_request_query(const struct http_request *r, const char *name, size_t *count)
{
    struct query_ctx q = {name, 0, NULL, NULL, NULL, false};
    MHD_get_connection_values(r->conn, MHD_GET_ARGUMENT_KIND, query_cb, &q);
    if (count)
        *count = q.count;
    return q.first;
}

void http_request_each_query(const struct http_request *r,
                             bool (*fn)(void *ctx, const char *key, const char *value), void *ctx)
{
    struct query_ctx q = {NULL, 0, NULL, fn, ctx, false};
    MHD_get_connection_values(r->conn, MHD_GET_ARGUMENT_KIND, query_cb, &q);
}
