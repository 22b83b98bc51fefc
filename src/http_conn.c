/* http_conn: what bounds the connections a slow or idle client can hold (issue 19 item 7;
 * README "Connections: limits and deadlines").
 *
 * libmicrohttpd 0.9.75's timeout is an *inactivity* timeout: a client that sends one byte of
 * its headers every few seconds keeps its connection (and its 32 KiB of memory) forever, and
 * MAX_CONNECTIONS of them stop the server (at its limit libmicrohttpd stops accepting: every
 * other client waits in the listen backlog). So, besides the global and per-address limits
 * libmicrohttpd applies:
 *  - a header deadline: from the moment a connection is accepted, its first request's line
 *    and headers must be complete within HEADER_TIMEOUT_SECONDS; on a kept-alive connection
 *    the next request's headers must be complete within the idle timeout (30 s) of the
 *    previous response, or KEEPALIVE_UNDER_PRESSURE_MS once half of MAX_CONNECTIONS are open
 *    (idle keep-alive connections make room first);
 *  - the process's open-file limit raised to its hard limit, and MAX_CONNECTIONS lowered (with
 *    a warning) when even that cannot hold it.
 * Every connection is tracked from libmicrohttpd's MHD_CONNECTION_NOTIFY_STARTED to
 * _CLOSED (called before it closes the socket, so a tracked descriptor is never reused under
 * us). One thread checks the deadlines every TICK_MS and shuts a late connection's socket
 * down (shutdown(2) is safe from any thread): libmicrohttpd then sees the end of the input in
 * its own thread and closes the connection the ordinary way. */
#include "http_internal.h"
#include "jobsd/log.h"
#include "jobsd/util.h"

#include <pthread.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <sys/socket.h>

#define TICK_MS                     250
#define KEEPALIVE_UNDER_PRESSURE_MS 2000
#define FDS_KEPT_FOR_THE_REST       256 /* database pool, log, the listen socket, libcurl */

enum conn_phase { PHASE_FIRST_HEADERS, PHASE_REQUEST, PHASE_NEXT_HEADERS };

struct http_conn {
    struct http_conn *prev, *next;
    MHD_socket fd;
    long long since_ms; /* accepted, or the previous response completed */
    enum conn_phase phase;
    bool cut; /* shut down: waiting for libmicrohttpd to close it */
};

struct http_conns {
    pthread_mutex_t lock;
    pthread_cond_t wake;
    pthread_t thread;
    bool stop;
    struct http_conn head; /* circular list of open connections */
    size_t open;
    long long header_ms, idle_ms;
    size_t pressure_at;
};

/* Raises the soft open-file limit to the hard one and returns how many connections fit. */
unsigned http_conn_fit_limit(unsigned want)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
        return want;
    if (rl.rlim_cur < rl.rlim_max) {
        struct rlimit up = {rl.rlim_max, rl.rlim_max};
        if (setrlimit(RLIMIT_NOFILE, &up) == 0)
            rl.rlim_cur = rl.rlim_max;
    }
    if (rl.rlim_cur == RLIM_INFINITY || rl.rlim_cur >= (rlim_t)want + FDS_KEPT_FOR_THE_REST)
        return want;
    unsigned fit = rl.rlim_cur > 2 * FDS_KEPT_FOR_THE_REST
                       ? (unsigned)(rl.rlim_cur - FDS_KEPT_FOR_THE_REST)
                       : (unsigned)(rl.rlim_cur / 2);
    if (fit == 0)
        fit = 1;
    char have[24], got[24], wanted[24];
    util_fmt(have, sizeof have, "%llu", (unsigned long long)rl.rlim_cur);
    util_fmt(got, sizeof got, "%u", fit);
    util_fmt(wanted, sizeof wanted, "%u", want);
    log_event(LOG_WARN,
              "open-file limit too low for MAX_CONNECTIONS: lowered (raise LimitNOFILE / "
              "ulimit -n)",
              "nofile", have, "maxConnections", wanted, "using", got, NULL);
    return fit;
}

static long long deadline_of(const struct http_conns *t, const struct http_conn *c)
{
    switch (c->phase) {
    case PHASE_FIRST_HEADERS:
        return c->since_ms + t->header_ms;
    case PHASE_NEXT_HEADERS:
        return c->since_ms + (t->open >= t->pressure_at && t->idle_ms > KEEPALIVE_UNDER_PRESSURE_MS
                                  ? KEEPALIVE_UNDER_PRESSURE_MS
                                  : t->idle_ms);
    case PHASE_REQUEST:
        break;
    }
    return -1;
}

/* One pass over the open connections; the caller holds the lock. Returns how many it cut. */
static unsigned cut_late(struct http_conns *t, long long now)
{
    unsigned n = 0;
    for (struct http_conn *c = t->head.next; c != &t->head; c = c->next) {
        long long due = deadline_of(t, c);
        if (c->cut || due < 0 || now < due)
            continue;
        c->cut = true;
        shutdown(c->fd, SHUT_RDWR);
        n++;
    }
    return n;
}

static void *deadline_thread(void *arg)
{
    struct http_conns *t = arg;
    pthread_mutex_lock(&t->lock);
    while (!t->stop) {
        unsigned n = cut_late(t, util_mono_ms());
        if (n > 0) {
            char count[16];
            util_fmt(count, sizeof count, "%u", n);
            log_event(LOG_DEBUG, "connections closed: request headers too slow or idle too long",
                      "connections", count, NULL);
        }
        util_cond_wait_ms(&t->wake, &t->lock, TICK_MS);
    }
    pthread_mutex_unlock(&t->lock);
    return NULL;
}

struct http_conns *http_conn_start(unsigned header_timeout_s, unsigned idle_timeout_s,
                                   unsigned max_connections)
{
    struct http_conns *t = util_calloc(1, sizeof *t);
    pthread_mutex_init(&t->lock, NULL);
    util_cond_init(&t->wake);
    t->head.next = t->head.prev = &t->head;
    t->header_ms = (long long)header_timeout_s * 1000;
    t->idle_ms = (long long)(idle_timeout_s ? idle_timeout_s : header_timeout_s) * 1000;
    t->pressure_at = max_connections / 2 ? max_connections / 2 : 1;
    if (pthread_create(&t->thread, NULL, deadline_thread, t) != 0)
        util_fatal("cannot start the connection deadline thread");
    return t;
}

void http_conn_stop(struct http_conns *t)
{
    if (!t)
        return;
    pthread_mutex_lock(&t->lock);
    t->stop = true;
    pthread_cond_signal(&t->wake);
    pthread_mutex_unlock(&t->lock);
    pthread_join(t->thread, NULL);
    /* Connections still open are closed by MHD_stop_daemon, whose _CLOSED notifications
     * free them: the list must outlive the daemon (http_conn_free). */
}

void http_conn_free(struct http_conns *t)
{
    if (!t)
        return;
    while (t->head.next != &t->head) {
        struct http_conn *c = t->head.next;
        c->prev->next = c->next;
        c->next->prev = c->prev;
        free(c);
    }
    pthread_cond_destroy(&t->wake);
    pthread_mutex_destroy(&t->lock);
    free(t);
}

void http_conn_notify(void *cls, struct MHD_Connection *conn, void **socket_context,
                      enum MHD_ConnectionNotificationCode code)
{
    struct http_conns *t = ((struct http_server *)cls)->conns;
    if (code == MHD_CONNECTION_NOTIFY_STARTED) {
        const union MHD_ConnectionInfo *ci =
            MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
        if (!ci)
            return;
        struct http_conn *c = util_calloc(1, sizeof *c);
        c->fd = ci->connect_fd;
        c->since_ms = util_mono_ms();
        c->phase = PHASE_FIRST_HEADERS;
        pthread_mutex_lock(&t->lock);
        c->next = &t->head;
        c->prev = t->head.prev;
        t->head.prev->next = c;
        t->head.prev = c;
        t->open++;
        pthread_mutex_unlock(&t->lock);
        *socket_context = c;
    } else if (code == MHD_CONNECTION_NOTIFY_CLOSED && *socket_context) {
        struct http_conn *c = *socket_context;
        pthread_mutex_lock(&t->lock);
        c->prev->next = c->next;
        c->next->prev = c->prev;
        t->open--;
        pthread_mutex_unlock(&t->lock);
        free(c);
        *socket_context = NULL;
    }
}

/* The request's headers are complete (true) or its response is done (false). */
void http_conn_phase(struct http_server *s, struct MHD_Connection *conn, bool in_request)
{
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(conn, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
    struct http_conn *c = ci ? ci->socket_context : NULL;
    if (!c)
        return;
    pthread_mutex_lock(&s->conns->lock);
    c->phase = in_request ? PHASE_REQUEST : PHASE_NEXT_HEADERS;
    c->since_ms = util_mono_ms();
    pthread_mutex_unlock(&s->conns->lock);
}
