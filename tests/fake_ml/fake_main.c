/* fake_main: command line, signals, and the libmicrohttpd glue. libmicrohttpd runs one thread
 * per connection, so injected latency and slow-drip bodies block only their own connection.
 * The access callback protocol (see libmicrohttpd's doc/examples/largepost.c) stays in this
 * file: the first call sees the headers, the next ones the body, the last one answers; the
 * completion callback frees the request. */
#include "fake_ml.h"

#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#define JSON_CTYPE "application/json;charset=UTF-8"
/* Idle keep-alive connections close after this. libmicrohttpd does not see activity while a
 * handler sleeps, so it must exceed the largest injectable latency (600 s). */
#define IDLE_TIMEOUT_S 660

static atomic_uint g_port; /* set once listening; read by redirect faults */
static atomic_llong g_latency_ms;
static bool g_verbose;
static atomic_bool g_stopping;
static pthread_mutex_t stop_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t stop_cv;

long long latency_get(void)
{
    return atomic_load(&g_latency_ms);
}

void latency_set(long long ms)
{
    atomic_store(&g_latency_ms, ms);
}

bool verbose_get(void)
{
    return g_verbose;
}

bool fake_stopping(void)
{
    return atomic_load(&g_stopping);
}

bool fake_sleep_ms(long long ms)
{
    if (ms <= 0)
        return !fake_stopping();
    struct timespec dl;
    clock_gettime(CLOCK_MONOTONIC, &dl);
    dl.tv_sec += (time_t)(ms / 1000);
    dl.tv_nsec += (long)(ms % 1000) * 1000000L;
    if (dl.tv_nsec >= 1000000000L) {
        dl.tv_sec++;
        dl.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&stop_mu);
    while (!atomic_load(&g_stopping))
        if (pthread_cond_timedwait(&stop_cv, &stop_mu, &dl) == ETIMEDOUT)
            break;
    pthread_mutex_unlock(&stop_mu);
    return !fake_stopping();
}

/* ------------------------------------------------------------------ one request */

struct req {
    char *uri;   /* raw request target */
    char *path;  /* raw path (before '?') */
    char *query; /* raw query string (after '?'), "" when none */
    struct params params;
    bool started;
    bool control;
    enum endpoint ep;
    struct sbuf body;
    long long start_us, start_ms;
    bool ended;     /* stats_end was called */
    bool in_flight; /* counted in in_flight and not released yet */
    /* a streamed body (slow drip or oversized) */
    char *sbody;
    size_t slen;
    long long drip_ms;
    uint64_t big_size;
};

static void *uri_logger(void *cls, const char *uri, struct MHD_Connection *con)
{
    (void)cls;
    (void)con;
    struct req *rq = xcalloc(1, sizeof *rq);
    rq->uri = xstrdup(uri ? uri : "/");
    const char *q = strchr(rq->uri, '?');
    rq->path = xstrndup(rq->uri, q ? (size_t)(q - rq->uri) : strlen(rq->uri));
    rq->query = xstrdup(q ? q + 1 : "");
    params_parse(&rq->params, rq->query, strlen(rq->query));
    return rq;
}

static void req_free(struct req *rq)
{
    free(rq->uri);
    free(rq->path);
    free(rq->query);
    params_free(&rq->params);
    sb_free(&rq->body);
    free(rq->sbody);
    free(rq);
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    (void)cls;
    (void)conn;
    (void)toe;
    struct req *rq = *con_cls;
    if (!rq)
        return;
    if (rq->started && !rq->control && !rq->ended)
        stats_end(rq->ep, rq->start_ms, rq->start_us, "", rq->path, rq->query, NULL, 0, false,
                  false);
    else if (rq->in_flight)
        stats_in_flight_done();
    req_free(rq);
    *con_cls = NULL;
}

static ssize_t drip_reader(void *cls, uint64_t pos, char *buf, size_t max)
{
    struct req *rq = cls;
    if (pos >= rq->slen || max == 0)
        return MHD_CONTENT_READER_END_OF_STREAM;
    if (!fake_sleep_ms(rq->drip_ms))
        return MHD_CONTENT_READER_END_WITH_ERROR;
    buf[0] = rq->sbody[pos];
    return 1;
}

static ssize_t big_reader(void *cls, uint64_t pos, char *buf, size_t max)
{
    static const char head[] = "{\"padding\":\"";
    struct req *rq = cls;
    if (pos >= rq->big_size)
        return MHD_CONTENT_READER_END_OF_STREAM;
    if (fake_stopping())
        return MHD_CONTENT_READER_END_WITH_ERROR;
    size_t n = 0;
    for (; n < max && pos + n < rq->big_size; n++) {
        uint64_t p = pos + n;
        if (p < sizeof head - 1)
            buf[n] = head[p];
        else if (p == rq->big_size - 2)
            buf[n] = '"';
        else if (p == rq->big_size - 1)
            buf[n] = '}';
        else
            buf[n] = 'x';
    }
    return (ssize_t)n;
}

static enum MHD_Result queue_reply(struct MHD_Connection *conn, struct req *rq, struct reply *r)
{
    struct MHD_Response *resp;
    if (!r->body) {
        r->body = xstrdup("");
        r->len = 0;
    }
    if (r->stream == STREAM_DRIP) {
        rq->sbody = r->body;
        rq->slen = r->len;
        rq->drip_ms = r->drip_ms;
        r->body = NULL;
        resp = MHD_create_response_from_callback(rq->slen, 1, drip_reader, rq, NULL);
    } else if (r->stream == STREAM_OVERSIZED) {
        rq->big_size = (uint64_t)r->oversized_bytes;
        resp = MHD_create_response_from_callback(rq->big_size, 64 * 1024, big_reader, rq, NULL);
    } else {
        resp = MHD_create_response_from_buffer(r->len, r->body, MHD_RESPMEM_MUST_FREE);
        if (resp)
            r->body = NULL; /* libmicrohttpd frees it */
    }
    if (!resp)
        return MHD_NO;
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, JSON_CTYPE);
    if (r->retry_after[0])
        MHD_add_response_header(resp, MHD_HTTP_HEADER_RETRY_AFTER, r->retry_after);
    if (r->location)
        MHD_add_response_header(resp, MHD_HTTP_HEADER_LOCATION, r->location);
    if (r->content_missing[0])
        MHD_add_response_header(resp, "X-Content-Missing", r->content_missing);
    enum MHD_Result ret = MHD_queue_response(conn, r->status, resp);
    MHD_destroy_response(resp);
    return ret;
}

static const char *fault_error(unsigned status, const char **message)
{
    switch (status) {
    case 429:
        *message = "Too many requests";
        return "local_rate_limited";
    case 500:
        *message = "Internal server error";
        return "internal_server_error";
    case 502:
        *message = "Bad gateway";
        return "bad_gateway";
    case 503:
        *message = "Service unavailable";
        return "service_unavailable";
    default:
        *message = "Injected fault";
        return "injected_fault";
    }
}

static json_t *params_json(const struct params *p)
{
    json_t *o = json_object();
    for (size_t i = 0; i < p->n; i++)
        if (!json_object_get(o, p->keys[i]))
            json_object_set_new(o, p->keys[i], json_string(p->vals[i]));
    return o;
}

static enum MHD_Result answer_api(struct MHD_Connection *conn, struct req *rq, const char *method)
{
    struct fault_action fa;
    faults_pick(rq->ep, &fa);
    if (!fake_sleep_ms(latency_get() + fa.latency_ms)) {
        fault_action_free(&fa);
        return MHD_NO; /* shutting down */
    }
    struct reply r = {0};
    json_t *lp = params_json(&rq->params);
    if (fa.fired && fa.mode == FAULT_MODE_REDIRECT_HTTP) {
        char loc[4096];
        snprintf(loc, sizeof loc, "http://127.0.0.1:%u%s", atomic_load(&g_port), rq->uri);
        r.location = xstrdup(fa.location ? fa.location : loc);
        reply_error(&r, fa.status ? fa.status : 302, "redirect", "Moved Temporarily");
    } else if (fa.fired && fa.status) {
        const char *msg, *err = fault_error(fa.status, &msg);
        if (fa.body) {
            r.status = fa.status;
            r.body = xstrdup(fa.body);
            r.len = strlen(r.body);
        } else {
            reply_error(&r, fa.status, err, msg);
        }
    } else if (!(fa.fired && fa.mode == FAULT_MODE_OVERSIZED)) {
        const char *authz =
            MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_AUTHORIZATION);
        const char *ctype =
            MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_TYPE);
        struct api_request ar = {.method = method,
                                 .path = rq->path,
                                 .query = &rq->params,
                                 .authorization = authz,
                                 .content_type = ctype,
                                 .body = rq->body.data,
                                 .body_len = rq->body.len,
                                 .endpoint = rq->ep,
                                 .log_params = lp};
        api_handle(&ar, &r);
        if (fa.fired && fa.mode == FAULT_MODE_PARTIAL)
            partial_apply(&r, fa.omit, fa.omit_absent);
    }
    if (fa.fired)
        memcpy(r.retry_after, fa.retry_after, sizeof r.retry_after);
    if (fa.fired && fa.mode == FAULT_MODE_OVERSIZED) {
        r.stream = STREAM_OVERSIZED;
        r.oversized_bytes = fa.size_bytes;
        if (!r.status)
            r.status = 200;
    } else if (fa.fired && fa.mode == FAULT_MODE_SLOW_DRIP) {
        r.stream = STREAM_DRIP;
        r.drip_ms = fa.drip_ms;
    }
    bool streamed = r.stream != STREAM_NONE;
    stats_end(rq->ep, rq->start_ms, rq->start_us, method, rq->path, rq->query, lp, r.status,
              fa.fired, streamed);
    rq->ended = true;
    rq->in_flight = streamed;
    if (g_verbose)
        fprintf(stderr, "fake_ml: %s %s -> %u (%lld ms)%s\n", method, rq->uri, r.status,
                (mono_us() - rq->start_us) / 1000, fa.fired ? " [fault]" : "");
    enum MHD_Result ret = queue_reply(conn, rq, &r);
    json_decref(lp);
    reply_free(&r);
    fault_action_free(&fa);
    return ret;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version, const char *upload_data,
                                  size_t *upload_data_size, void **con_cls)
{
    (void)cls;
    (void)version;
    struct req *rq = *con_cls;
    if (!rq) /* no URI callback ran (should not happen): fall back to the decoded path */
        *con_cls = rq = uri_logger(NULL, url, conn);
    if (!rq->started) {
        rq->started = true;
        rq->control = strncmp(rq->path, "/__fake/", 8) == 0;
        if (!rq->control) {
            rq->ep = endpoint_classify(rq->path);
            rq->start_us = mono_us();
            rq->start_ms = now_ms();
            stats_begin(rq->ep);
            rq->in_flight = true;
        }
        const char *cl =
            MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
        long long n;
        if (cl && parse_ll(cl, 0, LLONG_MAX, &n) && n > MAX_BODY_BYTES) {
            struct reply r = {0};
            reply_error(&r, 413, "request_entity_too_large", "Request body too large");
            if (!rq->control) {
                stats_end(rq->ep, rq->start_ms, rq->start_us, method, rq->path, rq->query, NULL,
                          413, false, false);
                rq->ended = true;
                rq->in_flight = false;
            }
            enum MHD_Result ret = queue_reply(conn, rq, &r);
            reply_free(&r);
            return ret;
        }
        return MHD_YES;
    }
    if (*upload_data_size) {
        if (rq->ended)
            return MHD_NO; /* a 413 was queued: stop reading */
        if (rq->body.len + *upload_data_size > MAX_BODY_BYTES)
            return MHD_NO; /* a chunked body past the limit: close the connection */
        sb_add(&rq->body, upload_data, *upload_data_size);
        *upload_data_size = 0;
        return MHD_YES;
    }
    if (rq->control) {
        struct reply r = {0};
        control_handle(method, rq->path, &rq->params, rq->body.data, rq->body.len, &r);
        enum MHD_Result ret = queue_reply(conn, rq, &r);
        reply_free(&r);
        return ret;
    }
    return answer_api(conn, rq, method);
}

/* ------------------------------------------------------------------ main */

static void usage(FILE *f)
{
    fputs("usage: fake_ml --scenario FILE [--port N] [--bind 127.0.0.1] [--latency-ms N]\n"
          "               [--seed N] [--rebase YYYY-MM-DD] [--verbose]\n"
          "A fake Mercado Livre API for tests (tests/fake_ml/README.md).\n",
          f);
}

int main(int argc, char **argv)
{
    const char *scenario = NULL, *bind_addr = "127.0.0.1";
    long long port = 0, latency = 0, seed = 0, rebase = LLONG_MIN;
    bool seed_set = false;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        bool ok = true;
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            usage(stdout);
            return 0;
        } else if (strcmp(a, "--verbose") == 0) {
            g_verbose = true;
            continue;
        } else if (!v) {
            ok = false;
        } else if (strcmp(a, "--scenario") == 0) {
            scenario = v;
        } else if (strcmp(a, "--port") == 0) {
            ok = parse_ll(v, 0, 65535, &port);
        } else if (strcmp(a, "--bind") == 0) {
            bind_addr = v;
        } else if (strcmp(a, "--latency-ms") == 0) {
            ok = parse_ll(v, 0, 600000, &latency);
        } else if (strcmp(a, "--seed") == 0) {
            ok = parse_ll(v, 0, LLONG_MAX, &seed);
            seed_set = true;
        } else if (strcmp(a, "--rebase") == 0) {
            ok = date_parse(v, &rebase);
        } else {
            ok = false;
        }
        if (!ok) {
            fprintf(stderr, "fake_ml: bad argument %s%s%s\n", a, v ? " " : "", v ? v : "");
            usage(stderr);
            return 2;
        }
        i++;
    }
    if (!scenario) {
        usage(stderr);
        return 2;
    }
    struct sockaddr_in sa;
    memset(&sa, 0, sizeof sa);
    sa.sin_family = AF_INET;
    sa.sin_port = htons((uint16_t)port);
    if (inet_pton(AF_INET, bind_addr, &sa.sin_addr) != 1) {
        fprintf(stderr, "fake_ml: --bind: not an IPv4 address: %s\n", bind_addr);
        return 2;
    }
    atomic_store(&g_latency_ms, latency);

    /* Signals go to sigwait in this thread only: block them before any thread exists. */
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    signal(SIGPIPE, SIG_IGN);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&stop_cv, &ca);
    pthread_condattr_destroy(&ca);

    stats_init();
    faults_init();
    struct world_config wc = {
        .seed = (uint64_t)seed, .seed_set = seed_set, .rebase_day = rebase, .start_ms = now_ms()};
    if (!world_load(scenario, &wc)) {
        world_free();
        faults_free();
        stats_free();
        return 2;
    }
    unsigned flags = MHD_USE_THREAD_PER_CONNECTION | MHD_USE_POLL_INTERNAL_THREAD;
    if (g_verbose)
        flags |= MHD_USE_ERROR_LOG;
    struct MHD_Daemon *d = MHD_start_daemon(
        flags, 0, NULL, NULL, on_request, NULL, MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&sa,
        MHD_OPTION_URI_LOG_CALLBACK, uri_logger, NULL, MHD_OPTION_NOTIFY_COMPLETED, on_completed,
        NULL, MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)IDLE_TIMEOUT_S, MHD_OPTION_CONNECTION_LIMIT,
        (unsigned)1000, MHD_OPTION_LISTEN_BACKLOG_SIZE, (unsigned)1024, MHD_OPTION_END);
    if (!d) {
        fprintf(stderr, "fake_ml: cannot listen on %s:%lld: %s\n", bind_addr, port,
                strerror(errno));
        world_free();
        faults_free();
        stats_free();
        return 1;
    }
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(d, MHD_DAEMON_INFO_BIND_PORT);
    atomic_store(&g_port, info ? info->port : (unsigned)port);
    printf("fake_ml listening port=%u\n", atomic_load(&g_port));
    fflush(stdout);

    int sig = 0;
    sigwait(&set, &sig);
    pthread_mutex_lock(&stop_mu);
    atomic_store(&g_stopping, true);
    pthread_cond_broadcast(&stop_cv);
    pthread_mutex_unlock(&stop_mu);
    MHD_stop_daemon(d);
    world_free();
    faults_free();
    stats_free();
    pthread_cond_destroy(&stop_cv);
    return 0;
}
