/* api: the HTTP handlers and the route table. Handlers get a struct api_ctx (what they may
 * use) and a request that already passed routing, framing, authentication and body
 * parsing (see http.h). */
#ifndef JOBSD_API_H
#define JOBSD_API_H

#include <jansson.h>
#include <libpq-fe.h>
#include <stddef.h>

#include "jobsd/config.h"
#include "jobsd/err.h"
#include "jobsd/job_kinds.h"
#include "jobsd/router.h"

struct db_pool;
struct job_waiters;
struct job_runner;
struct http_request;
struct metrics;
struct ml_client;

struct api_ctx {
    const struct config *cfg;
    struct db_pool *pool;
    struct job_waiters *waiters;
    struct job_runner *runner;
    struct metrics *metrics;
    struct ml_client *ml;
};

/* Answers a read: runs fn with a pooled connection and DB_QUERY_TIMEOUT_MS (for db_read),
 * then responds 200 with the JSON text it returns (malloc'ed, taken) or with the error it
 * set. */
void api_read(struct api_ctx *a, struct http_request *req,
              char *(*fn)(PGconn *c, long long timeout_ms, void *ctx, struct err *e), void *ctx);
/* A read's JSON value as compact text (the value is released); NULL stays NULL. */
char *api_dump(json_t *body);

/* The whole route table (routes.c): one trigger route per job kind of the registry
 * (POST /api/v1/jobs/<name>), then the fixed routes. Caller-owned storage. */
#define API_ROUTES_MAX 48
struct api_routes {
    struct route route[API_ROUTES_MAX];
    size_t n;
    char job_paths[JOB_KINDS_MAX][96];
};
void api_routes_build(struct api_routes *out);

/* Handlers (void *app is a struct api_ctx *). A trigger route's data is its job kind. */
void api_post_job(void *app, struct http_request *req);
void api_get_job(void *app, struct http_request *req);
void api_get_status(void *app, struct http_request *req);
void api_get_stats(void *app, struct http_request *req);
void api_get_freshness(void *app, struct http_request *req);
void api_get_operator_queue(void *app, struct http_request *req);
void api_get_operator_jobs(void *app, struct http_request *req);
void api_get_operator_job(void *app, struct http_request *req);
void api_get_operator_trends(void *app, struct http_request *req);
void api_get_operator_fleet(void *app, struct http_request *req);
void api_post_retry(void *app, struct http_request *req);
void api_post_cancel(void *app, struct http_request *req);
void api_healthz(void *app, struct http_request *req);
void api_readyz(void *app, struct http_request *req);
void api_metrics(void *app, struct http_request *req);
/* The operator console's static files: /console, /console/app.js, /console/app.css. */
void api_console(void *app, struct http_request *req);

#endif
