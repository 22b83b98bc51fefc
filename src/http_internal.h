/* http_internal: what the two halves of the HTTP module share (src/ only): the server
 * (http_server.c: libmicrohttpd's call protocol, the checks, authentication, dispatch) and
 * the request as handlers see it (http_request.c: accessors and answering). */
#ifndef JOBSD_HTTP_INTERNAL_H
#define JOBSD_HTTP_INTERNAL_H

#include <microhttpd.h>
#include <pthread.h>
#include <stdatomic.h>

#include "jobsd/buf.h"
#include "jobsd/http.h"

#define MAX_RESPONSE_HEADERS 12
#define JSON_CTYPE           "application/json; charset=utf-8"
#define UNAUTHORIZED_MESSAGE "missing or invalid credentials"

#define MAX_CORS_ORIGINS 16

/* Query arguments a request may carry (the routes take a handful): beyond, 414
 * uri_too_long. */
#define HTTP_MAX_QUERY_ARGS 64

struct http_server {
    struct MHD_Daemon *daemon;
    struct http_server_config cfg;
    char *cors_origins[MAX_CORS_ORIGINS]; /* CORS_ALLOWED_ORIGINS, trimmed */
    size_t ncors;
    unsigned port;
    atomic_size_t suspended;
    struct http_conns *conns; /* http_conn.c: open connections and their deadlines */
};

struct header_kv {
    char *name;
    char *value;
};

struct http_request {
    struct http_server *srv;
    struct MHD_Connection *conn;
    long long start_mono;
    long long start_us; /* monotonic microseconds: the duration histogram */
    char method[16];
    char *path;
    struct router_match match;
    enum router_result route_result;
    const struct route *cors_route; /* the route whose CORS rules apply (also for OPTIONS) */
    char request_id[65];
    char remote[64];
    long long content_length; /* -1 = none (chunked or no body) */
    bool chunked;
    bool may_have_body;       /* any Transfer-Encoding or Content-Length other than one "0" */
    char reject_reason[64];   /* why authentication failed, for the access line */
    const char *wire_problem; /* a header line RFC 9112 rejects (http_wire.c), or NULL */
    bool dispatched;
    bool query_over_limit; /* more than HTTP_MAX_QUERY_ARGS query arguments: 414 */
    struct buf body;
    json_t *json;
    struct http_auth auth;

    pthread_mutex_t lock;
    bool suspended;
    bool has_response;
    bool queued;
    unsigned status;
    char *resp_body;
    size_t resp_len;
    const char *resp_ctype;
    struct header_kv hdrs[MAX_RESPONSE_HEADERS];
    size_t nhdrs;
};

/* MHD_OPTION_URI_LOG_CALLBACK (cls: the server): sees the request target before
 * libmicrohttpd parses its query. Beyond HTTP_MAX_QUERY_ARGS arguments it empties the query
 * and returns cls, which becomes the request's context until on_access answers 414;
 * otherwise NULL. */
void *http_uri_check(void *cls, const char *uri, struct MHD_Connection *c);
/* What the checks read of the request's headers (http_server.c fills it). */
struct header_scan {
    size_t content_length_count;
    const char *content_length;
    bool content_length_conflict;
    size_t te_count;
    const char *te;
    size_t key_count;
    const char *key;
    size_t key_len;
    size_t authorization_count;
    const char *authorization;
};

/* http_auth.c: authenticates the request for its route's guard. Returns false with a response
 * set (401, or 503 when JWT is not configured) when refused. */
bool http_auth_check(struct http_request *r, const struct header_scan *h);

/* http_wire.c: NULL when the request line and header lines are as RFC 9112 requires, else
 * what is wrong (a static string). Call on the access handler's first call with its method
 * and version arguments (they point into libmicrohttpd's read buffer). */
const char *http_wire_check(struct MHD_Connection *c, const char *method, const char *version);

/* http_conn.c: the connections' deadlines (see there). fit_limit raises the open-file limit
 * and returns how many connections fit in it; start/stop/free bracket the daemon (free after
 * MHD_stop_daemon); notify is the MHD_OPTION_NOTIFY_CONNECTION callback (cls: the server);
 * phase marks a request's headers complete (true) or its response done (false). */
unsigned http_conn_fit_limit(unsigned want);
struct http_conns *http_conn_start(unsigned header_timeout_s, unsigned idle_timeout_s,
                                   unsigned max_connections);
void http_conn_stop(struct http_conns *t);
void http_conn_free(struct http_conns *t);
void http_conn_notify(void *cls, struct MHD_Connection *conn, void **socket_context,
                      enum MHD_ConnectionNotificationCode code);
void http_conn_phase(struct http_server *s, struct MHD_Connection *conn, bool in_request);

/* First value of a request header (case-insensitive name), NULL when absent. */
const char *http_header_value(struct MHD_Connection *c, const char *name);

#endif
