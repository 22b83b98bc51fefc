/* api: what every handler shares: answering a read with a pooled connection. */
#include "jobsd/api.h"
#include "jobsd/db.h"
#include "jobsd/http.h"

void api_read(struct api_ctx *a, struct http_request *req,
              char *(*fn)(PGconn *c, long long timeout_ms, void *ctx, struct err *e), void *ctx)
{
    struct err e;
    err_clear(&e);
    PGconn *c = db_pool_acquire(a->pool, a->cfg->db_query_timeout_ms, &e);
    if (!c) {
        http_respond_err(req, &e, NULL);
        return;
    }
    char *body = fn(c, a->cfg->db_query_timeout_ms, ctx, &e);
    db_pool_release(a->pool, c);
    if (!body)
        http_respond_err(req, &e, NULL);
    else
        http_respond_json_text(req, 200, body);
}

char *api_dump(json_t *body)
{
    if (!body)
        return NULL;
    char *text = http_json_dump(body);
    json_decref(body);
    return text;
}
