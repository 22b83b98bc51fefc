/* router: matches a method and path against a route table. Literal segments win over
 * `{param}` segments, so /api/v1/jobs/status is never taken for /api/v1/jobs/{id}. Knows
 * nothing of libmicrohttpd; the table itself lives in routes.c. */
#ifndef JOBSD_ROUTER_H
#define JOBSD_ROUTER_H

#include <stdbool.h>
#include <stddef.h>

struct http_request;

/* Who may call a route (checked before any body byte is read). */
enum route_guard {
    GUARD_NONE = 0,
    GUARD_INTERNAL,        /* X-Internal-Key */
    GUARD_JWT,             /* Authorization: Bearer <JWT> */
    GUARD_INTERNAL_OR_JWT, /* X-Internal-Key when present, else the JWT */
    GUARD_METRICS,         /* the internal key as X-Internal-Key or Authorization: Bearer */
    GUARD_OPERATOR,        /* X-Internal-Key when present, else a JWT with "role": "operator" */
};

typedef void (*route_handler)(void *app, struct http_request *req);

struct route {
    const char *method; /* "GET", "POST" */
    const char *path;   /* "/api/v1/jobs/{id}" */
    enum route_guard guard;
    bool takes_body; /* JSON body parsed and handed to the handler */
    bool job_route;  /* its log lines carry [INTERNAL-JOB] */
    route_handler handler;
    const void *data; /* the handler's own (api: the job kind of a trigger route) */
};

enum router_result {
    ROUTER_FOUND = 0,
    ROUTER_NOT_FOUND,
    ROUTER_METHOD_NOT_ALLOWED,
};

#define ROUTER_PARAM_MAX 128
#define ROUTER_ALLOW_MAX 64

struct router_match {
    const struct route *route; /* FOUND only */
    const char *pattern;       /* the template that fits the path: FOUND and METHOD_NOT_ALLOWED */
    char param[ROUTER_PARAM_MAX];
    char allow[ROUTER_ALLOW_MAX]; /* "GET, HEAD" for METHOD_NOT_ALLOWED */
};

/* HEAD is served by GET routes. */
enum router_result router_match(const struct route *routes, size_t n, const char *method,
                                const char *path, struct router_match *out);

#endif
