/* http_server: libmicrohttpd glue. Everything about libmicrohttpd's call protocol is in this
 * file (see doc/examples/largepost.c upstream for the protocol): the access callback is
 * called once with the headers, once per body chunk, once when the body is complete, and once
 * more after a suspended connection is resumed; the completion callback frees the request.
 * Here too: the checks of SPEC section 2 in order, authentication, CORS, the access line.
 * What a handler sees of its request, and answering it, is http_request.c. */
#include "http_internal.h"
#include "jobsd/buf.h"
#include "jobsd/log.h"
#include "jobsd/metrics.h"
#include "jobsd/util.h"

#include <arpa/inet.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sched.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>

static enum MHD_Result scan_header(void *cls, enum MHD_ValueKind kind, const char *key,
                                   size_t key_size, const char *value, size_t value_size)
{
    (void)kind;
    (void)key_size;
    (void)value_size;
    struct header_scan *h = cls;
    if (!key)
        return MHD_YES;
    if (util_strcaseeq(key, "Content-Length")) {
        if (h->content_length_count++ && h->content_length &&
            strcmp(h->content_length, value ? value : "") != 0)
            h->content_length_conflict = true;
        if (!h->content_length)
            h->content_length = value ? value : "";
    } else if (util_strcaseeq(key, "Transfer-Encoding")) {
        h->te_count++;
        if (!h->te)
            h->te = value ? value : "";
    } else if (util_strcaseeq(key, "X-Internal-Key")) {
        h->key_count++;
        if (!h->key) {
            h->key = value ? value : "";
            h->key_len = value ? value_size : 0;
        }
    } else if (util_strcaseeq(key, "Authorization")) {
        h->authorization_count++;
        if (!h->authorization)
            h->authorization = value ? value : "";
    }
    return MHD_YES;
}

/* ------------------------------------------------------------------ CORS */

/* Routes a browser calls with a seller's JWT. */
static bool jwt_route(const struct route *rt)
{
    return rt && (rt->guard == GUARD_JWT || rt->guard == GUARD_INTERNAL_OR_JWT);
}

/* The request's Origin when CORS is on and it is one of CORS_ALLOWED_ORIGINS, else NULL. */
static const char *allowed_origin(const struct http_request *r)
{
    const struct http_server *s = r->srv;
    if (s->ncors == 0)
        return NULL;
    const char *origin = http_header_value(r->conn, "Origin");
    for (size_t i = 0; origin && i < s->ncors; i++)
        if (strcmp(origin, s->cors_origins[i]) == 0)
            return s->cors_origins[i];
    return NULL;
}

static void add_cors_headers(const struct http_request *r, struct MHD_Response *resp)
{
    if (r->srv->ncors == 0 || !jwt_route(r->cors_route))
        return;
    /* Answers differ by Origin: caches must know. */
    MHD_add_response_header(resp, "Vary", "Origin");
    const char *origin = allowed_origin(r);
    if (!origin)
        return;
    MHD_add_response_header(resp, "Access-Control-Allow-Origin", origin);
    MHD_add_response_header(resp, "Access-Control-Expose-Headers", "X-Request-Id");
    if (strcmp(r->method, "OPTIONS") == 0) {
        MHD_add_response_header(resp, "Access-Control-Allow-Methods", "GET, OPTIONS");
        MHD_add_response_header(resp, "Access-Control-Allow-Headers",
                                "Authorization, Content-Type, X-Request-Id");
        MHD_add_response_header(resp, "Access-Control-Max-Age", "600");
    }
}

static void parse_origins(struct http_server *s, const char *list)
{
    for (const char *p = list; p && *p && s->ncors < MAX_CORS_ORIGINS;) {
        const char *end = strchr(p, ',');
        size_t n = end ? (size_t)(end - p) : strlen(p);
        const char *a = p;
        while (n > 0 && (*a == ' ' || *a == '\t')) {
            a++;
            n--;
        }
        while (n > 0 && (a[n - 1] == ' ' || a[n - 1] == '\t'))
            n--;
        if (n > 0)
            s->cors_origins[s->ncors++] = util_strndup(a, n);
        p = end ? end + 1 : p + strlen(p);
    }
}

static void free_origins(struct http_server *s)
{
    for (size_t i = 0; i < s->ncors; i++)
        free(s->cors_origins[i]);
    s->ncors = 0;
}

/* The monotonic clock in microseconds: request durations well under a millisecond. */
static long long mono_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* Counts the request in jobsd_http_requests_total and its duration histogram. This runs when
 * the response is queued, before any byte of it reaches the client, so a scrape that follows a
 * response always includes it (counted at completion instead, another pool thread could serve
 * the scrape first); a request that ends without a response is counted at completion. */
static void count_request(struct http_request *r)
{
    const char *route = r->cors_route ? r->cors_route->path : r->match.pattern;
    metrics_http(r->srv->cfg.metrics, route ? route : "unmatched", r->method, r->status,
                 (double)(mono_us() - r->start_us) / 1e6);
}

static enum MHD_Result queue(struct http_request *r)
{
    struct MHD_Response *resp =
        MHD_create_response_from_buffer(r->resp_len, r->resp_body, MHD_RESPMEM_MUST_FREE);
    if (!resp)
        return MHD_NO;
    r->resp_body = NULL; /* owned by libmicrohttpd now */
    MHD_add_response_header(resp, "Content-Type", r->resp_ctype);
    MHD_add_response_header(resp, "X-Request-Id", r->request_id);
    /* no-store unless the handler chose its own caching (the console's static files). */
    bool cache_set = false;
    for (size_t i = 0; i < r->nhdrs; i++) {
        MHD_add_response_header(resp, r->hdrs[i].name, r->hdrs[i].value);
        cache_set = cache_set || strcasecmp(r->hdrs[i].name, "Cache-Control") == 0;
    }
    if (!cache_set)
        MHD_add_response_header(resp, "Cache-Control", "no-store");
    add_cors_headers(r, resp);
    /* What follows a malformed header line cannot be framed: never read as a request. */
    if (r->wire_problem)
        MHD_add_response_header(resp, "Connection", "close");
    count_request(r);
    enum MHD_Result ret = MHD_queue_response(r->conn, r->status, resp);
    MHD_destroy_response(resp);
    r->queued = true;
    return ret;
}

/* ------------------------------------------------------------------ the checks */

static bool is_json_media_type(const char *ctype)
{
    if (!ctype)
        return false;
    while (*ctype == ' ' || *ctype == '\t')
        ctype++;
    size_t n = strcspn(ctype, ";");
    while (n > 0 && (ctype[n - 1] == ' ' || ctype[n - 1] == '\t'))
        n--;
    static const char want[] = "application/json";
    if (n != sizeof want - 1)
        return false;
    char tmp[sizeof want];
    memcpy(tmp, ctype, n);
    tmp[n] = '\0';
    return util_strcaseeq(tmp, want);
}

/* The framing checks of SPEC section 2 (RFC 9112 sections 5 and 6). Leaves a 400 set and
 * returns false when the request's framing is refused. */
static bool framing_ok(struct http_request *r, const struct header_scan *h)
{
    if (r->wire_problem) {
        http_respond_error(r, 400, "bad_framing", "%s (RFC 9112)", r->wire_problem);
        return false;
    }
    if (h->content_length_count > 1) {
        http_respond_error(r, 400, "bad_framing",
                           h->content_length_conflict ? "conflicting Content-Length headers"
                                                      : "duplicate Content-Length headers");
        return false;
    }
    if (h->te_count > 0 && h->content_length_count > 0) {
        http_respond_error(r, 400, "bad_framing",
                           "Transfer-Encoding and Content-Length must not both be sent");
        return false;
    }
    if (h->te_count > 1 || (h->te_count == 1 && !util_strcaseeq(h->te, "chunked"))) {
        http_respond_error(r, 400, "bad_framing",
                           "Transfer-Encoding must be chunked when it is sent");
        return false;
    }
    r->chunked = h->te_count == 1;
    r->content_length = -1;
    if (h->content_length_count == 1) {
        long long n;
        if (!util_parse_i64(h->content_length, 0, (long long)1 << 62, &n)) {
            http_respond_error(r, 400, "bad_framing", "Content-Length is not a valid length");
            return false;
        }
        r->content_length = n;
    }
    return true;
}

/* Everything decided from the request line and headers, before any body byte is read.
 * Leaves a response set when the request is refused. */
static void first_call_checks(struct http_request *r)
{
    struct http_server *s = r->srv;
    struct header_scan h;
    memset(&h, 0, sizeof h);
    MHD_get_connection_values_n(r->conn, MHD_HEADER_KIND, scan_header, &h);
    r->may_have_body = h.te_count > 0 || h.content_length_count > 1 ||
                       (h.content_length_count == 1 && strcmp(h.content_length, "0") != 0);
    r->route_result = router_match(s->cfg.routes, s->cfg.nroutes, r->method, r->path, &r->match);
    if (r->query_over_limit) {
        http_add_header(r, "Connection", "close");
        http_respond_error(r, 414, "uri_too_long", "more than %d query parameters",
                           HTTP_MAX_QUERY_ARGS);
        return;
    }
    if (r->route_result == ROUTER_NOT_FOUND) {
        http_respond_error(r, 404, "not_found", "no route for %s %.200s", r->method, r->path);
        return;
    }
    r->cors_route = r->match.route;
    if (r->route_result == ROUTER_METHOD_NOT_ALLOWED && strcmp(r->method, "OPTIONS") == 0 &&
        s->ncors > 0) {
        /* A browser's preflight for a JWT route: no credentials are sent with it. */
        struct router_match get;
        if (router_match(s->cfg.routes, s->cfg.nroutes, "GET", r->path, &get) == ROUTER_FOUND &&
            jwt_route(get.route)) {
            r->cors_route = get.route;
            http_respond_text(r, 204, "text/plain; charset=utf-8", "");
            return;
        }
    }
    if (r->route_result == ROUTER_METHOD_NOT_ALLOWED) {
        http_add_header(r, "Allow", r->match.allow);
        http_respond_error(r, 405, "method_not_allowed",
                           "%s is not allowed on %.200s (allowed: %s)", r->method, r->path,
                           r->match.allow);
        return;
    }
    if (!framing_ok(r, &h))
        return;
    if (!http_auth_check(r, &h))
        return;
    if (r->content_length > (long long)s->cfg.max_body_bytes) {
        http_respond_error(
            r, 413, "body_too_large",
            "request body of %lld bytes exceeds the limit of %zu bytes (MAX_BODY_BYTES)",
            r->content_length, s->cfg.max_body_bytes);
        return;
    }
    if (r->match.route->takes_body && r->content_length > 0 &&
        !is_json_media_type(http_header_value(r->conn, "Content-Type"))) {
        http_respond_error(r, 415, "unsupported_media_type",
                           "Content-Type must be application/json");
        return;
    }
}

/* The body is complete: media type of a chunked body, JSON parsing, then the handler. */
static void dispatch(struct http_request *r)
{
    const struct route *rt = r->match.route;
    if (rt->takes_body) {
        if (r->body.len == 0) {
            r->json = json_object();
        } else {
            if (!is_json_media_type(http_header_value(r->conn, "Content-Type"))) {
                http_respond_error(r, 415, "unsupported_media_type",
                                   "Content-Type must be application/json");
                return;
            }
            /* JSON_DECODE_ANY: a well-formed body that is not an object ("42", "\"x\"") is
             * the validator's invalid_body, not invalid_json. */
            json_error_t jerr;
            r->json = json_loadb(r->body.data, r->body.len,
                                 JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, &jerr);
            if (!r->json) {
                http_respond_error(r, 400, "invalid_json", "invalid JSON at line %d, column %d: %s",
                                   jerr.line, jerr.column, jerr.text);
                return;
            }
        }
    }
    rt->handler(r->srv->cfg.app, r);
}

/* ------------------------------------------------------------------ callbacks */

static void client_address(struct MHD_Connection *c, char *out, size_t cap)
{
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(c, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    out[0] = '\0';
    if (!ci || !ci->client_addr)
        return;
    const struct sockaddr *sa = ci->client_addr;
    if (sa->sa_family == AF_INET)
        inet_ntop(AF_INET, &((const struct sockaddr_in *)(const void *)sa)->sin_addr, out,
                  (socklen_t)cap);
    else if (sa->sa_family == AF_INET6)
        inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr, out,
                  (socklen_t)cap);
}

static struct http_request *request_new(struct http_server *s, struct MHD_Connection *c,
                                        const char *url, const char *method)
{
    struct http_request *r = util_calloc(1, sizeof *r);
    r->srv = s;
    r->conn = c;
    r->start_mono = util_mono_ms();
    r->start_us = mono_us();
    snprintf(r->method, sizeof r->method, "%s", method);
    r->path = util_strdup(url);
    pthread_mutex_init(&r->lock, NULL);
    buf_init(&r->body, s->cfg.max_body_bytes);
    const char *rid = http_header_value(c, "X-Request-Id");
    if (util_is_request_id(rid))
        snprintf(r->request_id, sizeof r->request_id, "%s", rid);
    else
        util_uuid_v4(r->request_id);
    client_address(c, r->remote, sizeof r->remote);
    return r;
}

static void request_free(struct http_request *r)
{
    buf_free(&r->body);
    json_decref(r->json);
    free(r->resp_body);
    for (size_t i = 0; i < r->nhdrs; i++) {
        free(r->hdrs[i].name);
        free(r->hdrs[i].value);
    }
    free(r->path);
    pthread_mutex_destroy(&r->lock);
    free(r);
}

static enum MHD_Result on_access(void *cls, struct MHD_Connection *conn, const char *url,
                                 const char *method, const char *version, const char *data,
                                 size_t *size, void **con_cls)
{
    struct http_server *s = cls;
    struct http_request *r = *con_cls;
    if (!r || r == (void *)s) { /* s: http_uri_check found too many query arguments */
        bool over = r != NULL;
        r = request_new(s, conn, url, method);
        r->query_over_limit = over;
        *con_cls = r;
        r->wire_problem = http_wire_check(conn, method, version);
        http_conn_phase(s, conn, true);
        first_call_checks(r);
        /* A refusal is sent at once when a body may follow (413, or 401 before a large
         * upload): libmicrohttpd then closes the connection instead of reading it. Without a
         * body it waits for the next call, which keeps the connection alive. */
        if (r->has_response && (r->may_have_body || r->wire_problem))
            return queue(r);
        return MHD_YES;
    }
    if (*size > 0) {
        if (!buf_append(&r->body, data, *size)) {
            /* Only a chunked body gets here (a declared length was checked): libmicrohttpd
             * 0.9.75 cannot answer 413 once reading started, so the connection is closed. */
            log_event(LOG_WARN, "chunked request body over MAX_BODY_BYTES: connection closed",
                      "path", r->path, "remote", r->remote, "requestId", r->request_id, NULL);
            r->status = 413;
            return MHD_NO;
        }
        *size = 0;
        return MHD_YES;
    }
    if (!r->dispatched) {
        r->dispatched = true;
        if (!r->has_response)
            dispatch(r);
    }
    pthread_mutex_lock(&r->lock);
    bool ready = r->has_response && !r->queued;
    bool parked = r->suspended;
    pthread_mutex_unlock(&r->lock);
    if (ready)
        return queue(r);
    if (parked)
        return MHD_YES;
    if (r->queued)
        return MHD_YES;
    log_event(LOG_ERROR, "bug: handler returned without answering", "path", r->path, "requestId",
              r->request_id, NULL);
    http_respond_error(r, 500, "internal_error", "internal error");
    return queue(r);
}

/* Each pool thread owns the connections it accepted and, while it has work, keeps its core for
 * a whole scheduler time slice: with more runnable threads than cores (the pool, the job
 * workers, a client on the same machine) the connections of a descheduled thread wait that
 * long, and that wait is the p99. Giving the core up after every YIELD_EVERY responses bounds
 * it to about half a millisecond of work; when nothing else is runnable sched_yield returns at
 * once (bench/README.md, "Where the p99 comes from": p99 at 64 connections on 2 cores shared
 * with wrk from about 7 ms to about 3.5 ms, the same requests per second; every response
 * yielding costs a third of the throughput). */
#define YIELD_EVERY 32

static void yield_now_and_then(void)
{
    static _Thread_local unsigned served;
    if (++served % YIELD_EVERY == 0)
        sched_yield();
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    http_conn_phase(cls, conn, false);
    struct http_request *r = *con_cls;
    if (!r || r == cls) /* no request, or http_uri_check's mark without one */
        return;
    *con_cls = NULL;
    char status[8], dur[24];
    long long ms = util_mono_ms() - r->start_mono;
    util_fmt(status, sizeof status, "%u", r->status);
    util_fmt(dur, sizeof dur, "%lld", ms);
    if (!r->queued)
        count_request(r);
    const char *ua = http_header_value(conn, "User-Agent");
    bool job = r->match.route && r->match.route->job_route;
    const char *keys[] = {"method",    "path",      "status",    "durationMs", "remote",
                          "userAgent", "requestId", "completed", "reason"};
    const char *values[] = {
        r->method,       r->path,
        status,          dur,
        r->remote,       ua ? ua : "",
        r->request_id,   toe == MHD_REQUEST_TERMINATED_COMPLETED_OK ? "ok" : "aborted",
        r->reject_reason};
    log_eventv(r->status >= 500 ? LOG_WARN : LOG_INFO, job ? LOG_JOB_TAG "request" : "request",
               keys, values, r->reject_reason[0] ? 9 : 8);
    request_free(r);
    yield_now_and_then();
}

__attribute__((format(printf, 2, 0))) static void on_mhd_log(void *cls, const char *fmt, va_list ap)
{
    (void)cls;
    char msg[512];
    vsnprintf(msg, sizeof msg, fmt, ap);
    size_t n = strlen(msg);
    while (n > 0 && (msg[n - 1] == '\n' || msg[n - 1] == '\r'))
        msg[--n] = '\0';
    log_event(LOG_DEBUG, "libmicrohttpd", "detail", msg, NULL);
}

/* ------------------------------------------------------------------ lifecycle */

struct http_server *http_server_start(const struct http_server_config *cfg, struct err *e)
{
    struct http_server *s = util_calloc(1, sizeof *s);
    s->cfg = *cfg;
    atomic_init(&s->suspended, 0);
    parse_origins(s, cfg->cors_allowed_origins);

    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof ss);
    unsigned flags = MHD_USE_EPOLL | MHD_USE_INTERNAL_POLLING_THREAD | MHD_ALLOW_SUSPEND_RESUME |
                     MHD_USE_ERROR_LOG;
    struct sockaddr_in *in4 = (struct sockaddr_in *)(void *)&ss;
    struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)(void *)&ss;
    if (inet_pton(AF_INET, cfg->bind_address, &in4->sin_addr) == 1) {
        in4->sin_family = AF_INET;
        in4->sin_port = htons((uint16_t)cfg->port);
    } else if (inet_pton(AF_INET6, cfg->bind_address, &in6->sin6_addr) == 1) {
        in6->sin6_family = AF_INET6;
        in6->sin6_port = htons((uint16_t)cfg->port);
        flags |= MHD_USE_IPv6;
    } else {
        free_origins(s);
        free(s);
        err_set(e, 500, "internal_error", "BIND_ADDRESS %s is not an IP address",
                cfg->bind_address);
        return NULL;
    }

    struct MHD_OptionItem opts[16];
    size_t n = 0;
    /* The logger first: libmicrohttpd prints to stderr, bypassing it, until it is set. */
    opts[n++] = (struct MHD_OptionItem){MHD_OPTION_EXTERNAL_LOGGER, (intptr_t)on_mhd_log, s};
    opts[n++] = (struct MHD_OptionItem){MHD_OPTION_SOCK_ADDR, 0, &ss};
    opts[n++] = (struct MHD_OptionItem){MHD_OPTION_CONNECTION_TIMEOUT,
                                        (intptr_t)cfg->connection_timeout_seconds, NULL};
    /* Limits and deadlines of slow and idle connections: http_conn.c. */
    unsigned max_connections = http_conn_fit_limit(cfg->max_connections);
    s->conns = http_conn_start(cfg->header_timeout_seconds, cfg->connection_timeout_seconds,
                               max_connections);
    opts[n++] =
        (struct MHD_OptionItem){MHD_OPTION_NOTIFY_CONNECTION, (intptr_t)http_conn_notify, s};
    opts[n++] =
        (struct MHD_OptionItem){MHD_OPTION_CONNECTION_LIMIT, (intptr_t)max_connections, NULL};
    opts[n++] = (struct MHD_OptionItem){MHD_OPTION_PER_IP_CONNECTION_LIMIT,
                                        (intptr_t)cfg->per_ip_connections, NULL};
    /* 32 KiB per connection bounds request line + headers (40 KB of headers → 431). */
    opts[n++] = (struct MHD_OptionItem){MHD_OPTION_CONNECTION_MEMORY_LIMIT, (intptr_t)32768, NULL};
    opts[n++] = (struct MHD_OptionItem){MHD_OPTION_NOTIFY_COMPLETED, (intptr_t)on_completed, s};
    opts[n++] = (struct MHD_OptionItem){MHD_OPTION_URI_LOG_CALLBACK, (intptr_t)http_uri_check, s};
    opts[n++] = (struct MHD_OptionItem){MHD_OPTION_LISTEN_BACKLOG_SIZE, (intptr_t)1024, NULL};
    if (cfg->threads > 1)
        opts[n++] =
            (struct MHD_OptionItem){MHD_OPTION_THREAD_POOL_SIZE, (intptr_t)cfg->threads, NULL};
    opts[n++] = (struct MHD_OptionItem){MHD_OPTION_END, 0, NULL};

    s->daemon = MHD_start_daemon(flags, (uint16_t)cfg->port, NULL, NULL, on_access, s,
                                 MHD_OPTION_ARRAY, opts, MHD_OPTION_END);
    if (!s->daemon) {
        http_conn_stop(s->conns);
        http_conn_free(s->conns);
        free_origins(s);
        free(s);
        err_set(e, 500, "internal_error", "cannot listen on %s:%u (address in use?)",
                cfg->bind_address, cfg->port);
        return NULL;
    }
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(s->daemon, MHD_DAEMON_INFO_BIND_PORT);
    s->port = info ? info->port : cfg->port;
    return s;
}

unsigned http_server_port(const struct http_server *s)
{
    return s->port;
}

void http_server_quiesce(struct http_server *s)
{
    if (s && s->daemon) {
        MHD_socket fd = MHD_quiesce_daemon(s->daemon);
        if (fd != MHD_INVALID_SOCKET)
            close(fd);
    }
}

size_t http_server_suspended(const struct http_server *s)
{
    return atomic_load(&s->suspended);
}

void http_server_stop(struct http_server *s)
{
    if (!s)
        return;
    if (s->daemon) {
        /* Resumed connections need a moment to send their answers. */
        long long deadline = util_mono_ms() + 2000;
        for (;;) {
            const union MHD_DaemonInfo *info =
                MHD_get_daemon_info(s->daemon, MHD_DAEMON_INFO_CURRENT_CONNECTIONS);
            if (!info || info->num_connections == 0 || util_mono_ms() > deadline)
                break;
            if (atomic_load(&s->suspended) > 0)
                break;
            util_sleep_ms(20, NULL);
        }
        http_conn_stop(s->conns);
        MHD_stop_daemon(s->daemon);
    }
    http_conn_free(s->conns);
    free_origins(s);
    free(s);
}

const char *http_server_library_version(void)
{
    return MHD_get_version();
}
