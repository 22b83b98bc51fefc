/* http: the HTTP server (libmicrohttpd) and the request a handler sees. The server owns
 * libmicrohttpd's call protocol (several calls per request, body accumulation, suspend and
 * resume, completion); handlers see one call with a validated, authenticated request and
 * answer once, either at once or later from another thread after http_suspend.
 *
 * Before a handler runs the server has, in this order: matched the route (404/405), checked
 * framing (400), authenticated the caller (401/503), refused an oversized body (413), checked
 * the media type (415), parsed the JSON body strictly (400). */
#ifndef JOBSD_HTTP_H
#define JOBSD_HTTP_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "jobsd/err.h"
#include "jobsd/router.h"

struct internal_key;
struct metrics;
struct http_server;
struct http_request;

/* The caller's identity once its route guard passed. */
enum http_auth_kind { HTTP_AUTH_NONE = 0, HTTP_AUTH_INTERNAL, HTTP_AUTH_JWT };

struct http_auth {
    enum http_auth_kind kind;
    int key_match;      /* enum internal_key_match for HTTP_AUTH_INTERNAL */
    char tenant_id[37]; /* HTTP_AUTH_JWT: the token's tenant (lower case) */
    char user_id[129];  /* HTTP_AUTH_JWT: may be empty */
    bool operator_role; /* HTTP_AUTH_JWT: the token has "role": "operator" */
};

/* Verifies a bearer token for GUARD_JWT routes. Returns 0 and fills auth, or -1 and fills e
 * (401 invalid token, 503 jwt_not_configured). NULL in the config: JWT not configured. */
typedef int (*http_jwt_verify_fn)(void *ctx, const char *token, struct http_auth *auth,
                                  struct err *e);

struct http_server_config {
    const char *bind_address;
    unsigned port; /* 0 = any free port (see http_server_port) */
    unsigned threads;
    unsigned max_connections;
    unsigned per_ip_connections;
    size_t max_body_bytes;
    unsigned connection_timeout_seconds; /* inactivity; also a kept-alive connection's wait */
    unsigned header_timeout_seconds;     /* accept → the first request's headers complete */
    const struct route *routes;
    size_t nroutes;
    void *app; /* passed to handlers */
    const struct internal_key *key;
    http_jwt_verify_fn jwt_verify;
    void *jwt_ctx;
    const char *cors_allowed_origins; /* comma-separated, NULL = CORS off */
    struct metrics *metrics;          /* may be NULL */
};

/* Starts listening. Returns NULL and fills e on failure. */
MUSTCHECK struct http_server *http_server_start(const struct http_server_config *cfg,
                                                struct err *e);
unsigned http_server_port(const struct http_server *s);
/* Stops accepting new connections (existing ones are served). */
void http_server_quiesce(struct http_server *s);
/* Requests currently suspended (waiting for a job). */
size_t http_server_suspended(const struct http_server *s);
/* Stops the server. Every suspended request must have been completed first. */
void http_server_stop(struct http_server *s);
/* libmicrohttpd's version, for `jobsd version`. */
const char *http_server_library_version(void);

/* ---- the request, as handlers see it (borrowed pointers, valid until completion) ---- */
const char *http_request_method(const struct http_request *r);
const char *http_request_path(const struct http_request *r);
/* The {param} of the route pattern ("" when none). */
const char *http_request_param(const struct http_request *r);
const char *http_request_id(const struct http_request *r);
const char *http_request_user_agent(const struct http_request *r);
/* First value of a header (case-insensitive name), NULL when absent. */
const char *http_request_header(const struct http_request *r, const char *name);
/* Calls fn for every value of a header (in order); stops when fn returns false. */
void http_request_each_header(const struct http_request *r, const char *name,
                              bool (*fn)(void *ctx, const char *value), void *ctx);
/* Query-string handling: the number of occurrences of a key and its first value. */
const char *http_request_query(const struct http_request *r, const char *name, size_t *count);
/* Calls fn for every query key; used to reject unknown parameters. */
void http_request_each_query(const struct http_request *r,
                             bool (*fn)(void *ctx, const char *key, const char *value), void *ctx);
/* The parsed JSON body (borrowed; `{}` for an empty body). Only for routes with takes_body. */
json_t *http_request_json(const struct http_request *r);
const struct http_auth *http_request_auth(const struct http_request *r);
const struct route *http_request_route(const struct http_request *r);

/* ---- answering (exactly once per request) ---- */
/* Adds a response header (copied). At most 12 per response. */
void http_add_header(struct http_request *r, const char *name, const char *value);
/* JSON response; steals body. */
void http_respond_json(struct http_request *r, unsigned status, json_t *body);
/* The same with a JSON text already serialised (malloc'ed; ownership passes). */
void http_respond_json_text(struct http_request *r, unsigned status, char *text);
/* Plain text response (copied). */
void http_respond_text(struct http_request *r, unsigned status, const char *content_type,
                       const char *text);
/* The error envelope of SPEC section 2; job_id adds "jobLogId" when not NULL. A 503 gets
 * Retry-After (e->retry_after or 5 s). */
void http_respond_err(struct http_request *r, const struct err *e, const char *job_id);
void http_respond_error(struct http_request *r, unsigned status, const char *code, const char *fmt,
                        ...) __attribute__((format(printf, 4, 5)));

/* Parks the request: the handler returns and another thread answers later with one of the
 * respond functions above (any order with http_suspend is safe). */
void http_suspend(struct http_request *r);

/* RFC 7240 Prefer: call once per Prefer header value; names are case-insensitive, the first
 * occurrence of a preference wins, unknown or malformed preferences are ignored. wait may also
 * be a ";" parameter of respond-async. */
struct http_prefer {
    bool respond_async;
    bool has_wait;
    long long wait; /* seconds */
};
void http_prefer_parse(struct http_prefer *p, const char *value);

/* The error body of SPEC section 2 (new reference). */
json_t *http_error_body(const char *code, const char *message, const char *request_id,
                        const char *job_id);

/* Dumps JSON the way every response does (compact, reals with at most 4 decimals as
 * rounded by the caller). Caller frees. */
char *http_json_dump(const json_t *j);

#endif
