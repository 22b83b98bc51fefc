/* api_health: /healthz (the process answers; no database) and /readyz (the database answers
 * and every migration this binary knows is applied with its checksum). */
#include "jobsd/api.h"
#include "jobsd/db.h"
#include "jobsd/http.h"
#include "jobsd/migrate.h"
#include "jobsd/util.h"

void api_healthz(void *app, struct http_request *req)
{
    (void)app;
    http_respond_json(req, 200, json_pack("{s:s}", "status", "ok"));
}

void api_readyz(void *app, struct http_request *req)
{
    struct api_ctx *a = app;
    struct err e;
    err_clear(&e);
    PGconn *c = db_pool_acquire(a->pool, 2000, &e);
    if (!c) {
        http_respond_err(req, &e, NULL);
        return;
    }
    bool ok = false;
    if (db_begin(c, a->cfg->db_query_timeout_ms, &e) == 0) {
        ok = migrate_is_current(c, &e);
        db_rollback(c);
    }
    db_pool_release(a->pool, c);
    if (!ok) {
        if (!err_is_set(&e))
            err_set(&e, 503, "database_unavailable", "database not ready");
        if (e.http_status != 503)
            err_set(&e, 503, "database_unavailable", "database not ready: %s", e.message);
        http_respond_err(req, &e, NULL);
        return;
    }
    http_respond_json(
        req, 200,
        json_pack("{s:s, s:i}", "status", "ready", "schemaVersion", migrate_latest_version()));
}
