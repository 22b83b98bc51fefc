/* job_sync_ml: the mercadolivre_sync kind (see job_sync_ml.h): the request body, resolve, the
 * run over every active connection of the tenant, one connection (a valid token, then
 * listings, orders and visits, in that order), the result and its presentation. The parts
 * are the sync_*.c files (src/sync_ml.h); this file sits on top of them. Every write is its
 * own short transaction, so a failure keeps everything written before it; orders and visits
 * are written while the next requests are in flight (sync_write.c). */
#include "jobsd/job_sync_ml.h"
#include "jobsd/db.h"
#include "jobsd/job_store.h"
#include "jobsd/token_crypt.h"
#include "jobsd/util.h"
#include "sync_ml.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------------ request body */

static const char *const PARTS[] = {"listings", "orders", "visits", NULL};

int sync_parse(json_t *body, char tenant[37], long long *days_back, unsigned *include,
               struct err *e)
{
    if (!json_is_object(body))
        return err_set(e, 400, "invalid_body", "the request body must be a JSON object");
    const char *k;
    json_t *v;
    json_object_foreach(body, k, v)
    {
        if (strcmp(k, "tenantId") != 0 && strcmp(k, "daysBack") != 0 && strcmp(k, "include") != 0 &&
            strcmp(k, "allTenants") != 0)
            return err_set(e, 400, "unknown_field",
                           "unknown field \"%.64s\" (allowed: tenantId, allTenants, daysBack, "
                           "include)",
                           k);
    }
    json_t *t = json_object_get(body, "tenantId");
    json_t *d = json_object_get(body, "daysBack");
    json_t *inc = json_object_get(body, "include");
    if (t && !json_is_string(t))
        return err_set(e, 400, "invalid_field", "tenantId must be a string (a UUID)");
    if (d && (!json_is_integer(d) || json_integer_value(d) < 1 || json_integer_value(d) > 365))
        return err_set(e, 400, "invalid_field", "daysBack must be an integer from 1 to 365");
    if (inc && !json_is_array(inc))
        return err_set(e, 400, "invalid_field",
                       "include must be an array of \"listings\", \"orders\", \"visits\"");
    json_t *all = json_object_get(body, "allTenants");
    if (all && !json_is_boolean(all))
        return err_set(e, 400, "invalid_field", "allTenants must be true or false");
    if (json_is_true(all) && t)
        return err_set(e, 400, "invalid_field", "send tenantId or allTenants: true, not both");
    if (!t && !json_is_true(all))
        return err_set(e, 400, "invalid_field", "tenantId is required (or allTenants: true)");
    tenant[0] = '\0';
    if (t && !util_uuid_normalize(json_string_value(t), tenant))
        return err_set(e, 400, "invalid_field", "tenantId must be a UUID; got \"%.40s\"",
                       json_string_value(t));
    *days_back = d ? (long long)json_integer_value(d) : 30;
    *include = inc ? 0 : SYNC_LISTINGS | SYNC_ORDERS | SYNC_VISITS;
    size_t i;
    json_array_foreach(inc, i, v)
    {
        const char *s = json_string_value(v);
        unsigned bit = 0;
        for (size_t p = 0; s && PARTS[p]; p++)
            if (strcmp(s, PARTS[p]) == 0)
                bit = 1u << p;
        if (!bit)
            return err_set(e, 400, "invalid_field",
                           "include must contain only \"listings\", \"orders\", \"visits\"");
        if (*include & bit)
            return err_set(e, 400, "invalid_field", "include lists \"%s\" twice", s);
        *include |= bit;
    }
    if (*include == 0)
        return err_set(e, 400, "invalid_field", "include must not be empty");
    return 0;
}

static MUSTCHECK int sync_resolve(const struct config *cfg, PGconn *c, json_t *body,
                                  struct job_request *req, struct err *e)
{
    (void)cfg;
    char tenant[37];
    long long days;
    unsigned include;
    if (sync_parse(body, tenant, &days, &include, e) != 0)
        return -1;
    json_t *parts = json_array();
    for (size_t i = 0; PARTS[i]; i++)
        if (include & (1u << i))
            json_array_append_new(parts, json_string(PARTS[i]));
    if (!tenant[0]) { /* allTenants: one fleet sync at a time, as one sync per tenant */
        util_fmt(req->dedupe_key, sizeof req->dedupe_key, "mercadolivre_sync:all");
        req->params = json_pack("{s:b, s:I, s:o}", "allTenants", 1, "daysBack", (json_int_t)days,
                                "include", parts);
        if (!req->params)
            util_fatal("out of memory");
        return 0;
    }
    const char *p[] = {tenant};
    PGresult *r = db_query(c, "SELECT EXISTS (SELECT 1 FROM tenants WHERE id = $1)", 1, p, e);
    if (!r) {
        json_decref(parts);
        return -1;
    }
    bool exists = strcmp(PQgetvalue(r, 0, 0), "t") == 0;
    PQclear(r);
    if (!exists) {
        json_decref(parts);
        return err_set(e, 404, "tenant_not_found", "tenantId %s does not exist", tenant);
    }
    snprintf(req->tenant_id, sizeof req->tenant_id, "%s", tenant);
    util_fmt(req->dedupe_key, sizeof req->dedupe_key, "mercadolivre_sync:%s", tenant);
    req->params = json_pack("{s:s, s:I, s:o}", "tenantId", tenant, "daysBack", (json_int_t)days,
                            "include", parts);
    if (!req->params)
        util_fatal("out of memory");
    return 0;
}

/* ------------------------------------------------------------------ one connection */

/* The parts asked for, in order, then the connection's last_synced_at. */
static void run_parts(struct sync *s, json_t *listings, json_t *orders, json_t *visits,
                      json_t *warnings)
{
    long long t0 = util_mono_ms(), d0 = s->db_ms;
    if ((s->include & SYNC_LISTINGS) && !sync_cancelled(s)) {
        sync_listings_fetch(s, listings);
        sync_phase_done(s, "listings", t0, d0);
    }
    t0 = util_mono_ms();
    d0 = s->db_ms;
    if ((s->include & SYNC_ORDERS) && !sync_cancelled(s)) {
        sync_orders_fetch(s, orders);
        sync_phase_done(s, "orders", t0, d0);
    }
    t0 = util_mono_ms();
    d0 = s->db_ms;
    if ((s->include & SYNC_VISITS) && !sync_cancelled(s)) {
        sync_visits_fetch(s, visits, warnings);
        sync_phase_done(s, "visits", t0, d0);
    }
    sync_write_collect(s);
    if (err_is_set(&s->refresh_err))
        sync_add_error(s, "token", &s->refresh_err);
    if (sync_cancelled(s))
        return; /* not synced: last_synced_at stays */
    const char *p[] = {s->conn_id};
    struct err e;
    err_clear(&e);
    if (db_exec(s->c,
                "UPDATE marketplace_connections SET last_synced_at = now(), updated_at = now() "
                "WHERE id = $1",
                1, p, &e) != 0)
        sync_add_error(s, "token", &e);
}

/* The connection in s->conn_id: its entry of connections[]. */
static json_t *sync_connection(struct sync *s, json_t *warnings)
{
    s->refreshed = false;
    s->forced_refresh = false;
    err_clear(&s->refresh_err);
    s->errors = json_array();
    json_t *listings = json_pack("{s:i, s:i, s:i}", "discovered", 0, "upserted", 0, "blocked", 0);
    json_t *orders = json_pack("{s:i, s:i, s:i}", "fetched", 0, "upserted", 0, "items", 0);
    json_t *visits = json_pack("{s:i, s:i}", "listings", 0, "days", 0);
    struct err e;
    err_clear(&e);
    sync_progress(s, "checking the access token");
    if (sync_token_ensure(s, NULL, s->token, sizeof s->token, &e) != 0)
        sync_add_error(s, "token", &e);
    else
        run_parts(s, listings, orders, visits, warnings);
    util_wipe(s->token, sizeof s->token);
    return json_pack("{s:I, s:b, s:o, s:o, s:o, s:o}", "sellerId", (json_int_t)s->seller_id,
                     "tokenRefreshed", s->refreshed, "listings", listings, "orders", orders,
                     "visits", visits, "errors", s->errors);
}

/* ------------------------------------------------------------------ the run */

/* The stored request into s: the tenant, daysBack and include. */
static MUSTCHECK int load_request(struct sync *s, struct job_run *run, struct err *e)
{
    s->run = run;
    s->c = run->conn;
    if (!run->ml || !util_uuid_normalize(run->tenant_id, s->tenant))
        return err_set(e, 500, "internal_error", "job %s has an invalid stored request", run->id);
    s->days_back = (long long)json_integer_value(json_object_get(run->params, "daysBack"));
    if (s->days_back < 1 || s->days_back > 365)
        s->days_back = 30;
    size_t i;
    json_t *v;
    json_array_foreach(json_object_get(run->params, "include"), i, v)
    {
        for (size_t p = 0; PARTS[p]; p++)
            if (json_string_value(v) && strcmp(json_string_value(v), PARTS[p]) == 0)
                s->include |= 1u << p;
    }
    if (!s->include)
        s->include = SYNC_LISTINGS | SYNC_ORDERS | SYNC_VISITS;
    return 0;
}

/* The tenant's Mercado Livre connections (id, seller_id, status) and how many are active; NULL
 * with e when the query fails or none is active (422). */
static MUSTCHECK PGresult *list_connections(struct sync *s, int *active, struct err *e)
{
    const char *p[] = {s->tenant};
    PGresult *r = db_query(s->c,
                           "SELECT id, seller_id, status FROM marketplace_connections "
                           "WHERE tenant_id = $1 AND provider = 'mercadolivre' ORDER BY seller_id",
                           1, p, e);
    if (!r)
        return NULL;
    bool reauth = false;
    *active = 0;
    for (int k = 0; k < PQntuples(r); k++) {
        if (strcmp(PQgetvalue(r, k, 2), "active") == 0)
            (*active)++;
        else if (strcmp(PQgetvalue(r, k, 2), "reauth_required") == 0)
            reauth = true;
    }
    if (*active > 0)
        return r;
    PQclear(r);
    if (reauth)
        err_set(e, 422, "reauth_required",
                "every Mercado Livre connection of tenant %s needs to be reconnected", s->tenant);
    else
        err_set(e, 422, "no_active_connection", "tenant %s has no active Mercado Livre connection",
                s->tenant);
    return NULL;
}

/* The job's end once every connection was tried (connections and warnings are taken): NULL
 * with e when it was cancelled or nothing could be done at all (the failure itself is the
 * answer, 503 or 422), else the result, with the job marked finished (success, or error for
 * a partial success). */
static MUSTCHECK json_t *finish(struct sync *s, json_t *connections, json_t *warnings,
                                bool all_failed, struct err *e)
{
    bool cancelled = sync_cancelled(s);
    if (cancelled || (all_failed && err_is_set(&s->worst))) {
        json_decref(connections);
        json_decref(warnings);
        if (cancelled) {
            err_set(e, 503, "interrupted", "the sync was cancelled");
            return NULL;
        }
        *e = s->worst;
        if (e->http_status == 503 && strcmp(e->code, "ml_unavailable") == 0 && e->retry_after <= 0)
            e->retry_after = 60;
        return NULL;
    }
    struct job_run *run = s->run;
    bool partial = err_is_set(&s->worst);
    json_t *result =
        json_pack("{s:b, s:s, s:i, s:I, s:I, s:o, s:o}", "success", !partial, "jobLogId", run->id,
                  "duration", 0, "daysBack", (json_int_t)s->days_back, "recordsProcessed",
                  (json_int_t)s->records, "connections", connections, "warnings", warnings);
    long long duration = 0;
    struct err partial_err;
    err_clear(&partial_err);
    if (partial)
        err_set(&partial_err, 200, s->worst.code,
                "the sync finished with errors (see connections[].errors): %s", s->worst.message);
    int rc = partial ? job_store_finish_partial(s->c, run->id, run->worker_id, s->records, result,
                                                &partial_err, &duration, e)
                     : job_store_finish_success(s->c, run->id, run->worker_id, s->records, result,
                                                &duration, e);
    if (rc != 0) {
        json_decref(result);
        return NULL;
    }
    json_object_set_new(result, "duration", json_integer(duration));
    return result;
}

static MUSTCHECK json_t *sync_run_with(struct job_run *run, struct token_crypt *crypt,
                                       struct err *e)
{
    struct sync s;
    memset(&s, 0, sizeof s);
    s.crypt = crypt;
    if (load_request(&s, run, e) != 0)
        return NULL;
    int active;
    PGresult *r = list_connections(&s, &active, e);
    if (!r)
        return NULL;
    json_t *connections = json_array();
    json_t *warnings = json_array();
    int failed_connections = 0;
    for (int k = 0; k < PQntuples(r) && !sync_cancelled(&s); k++) {
        if (strcmp(PQgetvalue(r, k, 2), "active") != 0)
            continue;
        snprintf(s.conn_id, sizeof s.conn_id, "%s", PQgetvalue(r, k, 0));
        s.seller_id = util_i64_or(PQgetvalue(r, k, 1), 0);
        long long ok_before = s.ml_ok;
        json_t *c = sync_connection(&s, warnings);
        bool nothing_worked = s.ml_ok == ok_before;
        if (json_array_size(json_object_get(c, "errors")) > 0 && nothing_worked)
            failed_connections++;
        json_array_append_new(connections, c);
    }
    PQclear(r);
    return finish(&s, connections, warnings, failed_connections == active, e);
}

static MUSTCHECK json_t *sync_run(struct job_run *run, struct err *e)
{
    struct token_crypt *crypt = token_crypt_new(run->cfg->token_encryption_key, e);
    if (!crypt)
        return NULL;
    json_t *result = sync_run_with(run, crypt, e);
    token_crypt_free(crypt);
    return result;
}

static const char *const RESULT_KEYS[] = {"success",  "jobLogId",         "duration",
                                          "daysBack", "recordsProcessed", "connections",
                                          "warnings", "deduplicated",     NULL};
static const char *const CONN_KEYS[] = {"sellerId", "tokenRefreshed", "listings", "orders",
                                        "visits",   "errors",         NULL};

static json_t *sync_present(json_t *result)
{
    json_t *out = job_json_ordered(result, RESULT_KEYS);
    json_t *conns = json_object_get(out, "connections");
    if (json_is_array(conns)) {
        json_t *ordered = json_array();
        size_t i;
        json_t *c;
        json_array_foreach(conns, i, c)
        {
            json_array_append_new(ordered, json_is_object(c) ? job_json_ordered(c, CONN_KEYS)
                                                             : json_incref(c));
        }
        json_object_set_new(out, "connections", ordered);
    }
    return out;
}

static const char USAGE[] =
    "usage: jobsd sync-mercadolivre (--tenant ID | --all-tenants) [--days-back N] [--include "
    "listings,orders,visits]\n"
    "--all-tenants: one sync per active tenant with an active connection, with a progress line.\n"
    "Pulls listings, orders (the last N business days, default 30) and daily visits from the\n"
    "Mercado Livre API for every active connection of the tenant, in this process, recorded in\n"
    "job_logs with trigger=cli. Needs DATABASE_URL, and ML_CLIENT_ID/ML_CLIENT_SECRET when a\n"
    "token must be refreshed. Prints the result JSON on stdout.\n"
    "Exit codes: 0 done, 1 failed or partly failed, 2 bad arguments, configuration, or a\n"
    "connection that needs reauthorisation, 3 transient (Mercado Livre or the database\n"
    "unavailable, or a sync of this tenant already running).\n";

/* clang-format off */
static const struct job_option OPTIONS[] = {
    {"--tenant",    "tenantId", JOB_OPTION_STRING,  true},
    {"--all-tenants", "allTenants", JOB_OPTION_FLAG, false},
    {"--days-back", "daysBack", JOB_OPTION_INTEGER, false},
    {"--include",   "include",  JOB_OPTION_LIST,    false},
    {NULL, NULL, JOB_OPTION_STRING, false},
};
/* clang-format on */

const struct job_kind job_sync_ml_kind = {
    .type = "mercadolivre_sync",
    .name = "sync-mercadolivre",
    .synopsis = "--tenant ID|--all-tenants [--days-back N] [--include listings,orders,visits]",
    .summary = "pull listings, orders and visits from Mercado Livre",
    .usage = USAGE,
    .options = OPTIONS,
    .resolve = sync_resolve,
    .run = sync_run,
    .present = sync_present,
    .fleet_tenants = "SELECT DISTINCT m.tenant_id FROM marketplace_connections m "
                     "JOIN tenants t ON t.id = m.tenant_id "
                     "WHERE m.status = 'active' AND t.status = 'active'",
    .calls_ml = true,
};
