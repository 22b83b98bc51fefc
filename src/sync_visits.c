/* sync_visits: SPEC 1.2 step 4 (see sync_ml.h). Daily visits of every accessible listing of
 * the connection over the last min(daysBack, 150) UTC days, one request per listing, all in
 * one batch; no `ending` is sent, so the window ends where the API's documented default puts
 * it (now). Each answer is parsed as it arrives and the rows are written in pipelined
 * transactions every VISITS_WRITE_ROWS while the next requests are in flight; the last days
 * come back every sync until Mercado Livre's 48 hours made them final. A failed fetch writes
 * nothing: known values are never replaced by NULL or 0.
 * A 403 is ambiguous: the visits API answers PolicyAgent's 403 for a listing blocked by a
 * policy but also for an invalid or expired access token or a missing permission. So the
 * listings answered 403 are asked again once with a refreshed token, beside one listing that
 * succeeded (a probe): those still refused while the probe or another listing succeeds with
 * that same token are blocked_by_policy; when nothing succeeds with it, the connection is not
 * authorised for visits: reported, and no listing is marked. */
#include "jobsd/ml_parse.h"
#include "jobsd/ml_path.h"
#include "jobsd/util.h"
#include "sync_ml.h"

#include <stdlib.h>

#define VISITS_WRITE_ROWS 20000 /* visits rows per pipelined write */

struct visits {
    PGresult *listings; /* id, external_id */
    json_t *counts;
    json_t *rows;      /* rows not written yet */
    json_t *forbidden; /* indexes of the listings answered 403 */
    long long ok;      /* listings fetched */
    long long probe;   /* index of a listing fetched (the retry's probe), -1 when none */
};

/* A 2xx answer of listing i: its rows queued (unless it is only a probe). */
static void take_rows(struct sync *s, struct visits *v, size_t i, struct ml_request *r, bool keep)
{
    struct err pe;
    err_clear(&pe);
    json_t *days = ml_parse_visits(r->body, r->len, &pe);
    if (!days) {
        sync_add_error(s, "visits", &pe);
        return;
    }
    if (v->probe < 0)
        v->probe = (long long)i;
    if (!keep) {
        json_decref(days);
        return;
    }
    v->ok++;
    size_t j;
    json_t *d;
    json_array_foreach(days, j, d)
    {
        json_object_set_new(d, "listing_id", json_string(PQgetvalue(v->listings, (int)i, 0)));
        json_array_append(v->rows, d);
    }
    json_decref(days);
    if (json_array_size(v->rows) >= VISITS_WRITE_ROWS) {
        sync_write_visits(s, v->rows, v->counts);
        json_decref(v->rows);
        v->rows = json_array();
    }
}

/* Fetches the listings of idx (indexes into v->listings) over the last `last` days; a 403
 * goes to `refused` (when not NULL), 2xx rows are queued unless the listing is `probe_only`.
 * Returns how many succeeded. */
static long long fetch(struct sync *s, struct visits *v, const long long *idx, size_t n,
                       long long last, long long probe_only, json_t *refused)
{
    struct ml_request *reqs = util_calloc(n ? n : 1, sizeof *reqs);
    for (size_t k = 0; k < n; k++)
        reqs[k].path_query = ml_path_item_visits(PQgetvalue(v->listings, (int)idx[k], 1), last);
    long long succeeded = 0;
    struct ml_batch *b = sync_batch_start(s, reqs, n);
    size_t k;
    while (sync_batch_next(s, b, &k) == ML_BATCH_ANSWER) {
        struct ml_request *r = &reqs[k];
        int o = sync_outcome(s, "visits", r);
        if (o == 1) {
            succeeded++;
            take_rows(s, v, (size_t)idx[k], r, idx[k] != probe_only);
        } else if (o == 0 && r->status == 403 && refused) {
            json_array_append_new(refused, json_integer(idx[k]));
        } else if (o == 0 && r->status != 404) {
            sync_http_error(s, "visits", r);
        }
        ml_request_clear(r);
    }
    ml_batch_end(b);
    for (size_t j = 0; j < n; j++) {
        ml_request_clear(&reqs[j]);
        free(reqs[j].path_query);
    }
    free(reqs);
    return succeeded;
}

/* The listings answered 403, asked again with a refreshed token beside the probe: those
 * still refused while something succeeds with that token are blocked; otherwise the
 * connection is not authorised for visits and nothing is marked. */
static void retry_forbidden(struct sync *s, struct visits *v, long long last)
{
    struct err e;
    err_clear(&e);
    char fresh[SYNC_TOKEN_MAX];
    int rc = sync_token_ensure(s, s->token, fresh, sizeof fresh, &e);
    if (rc == 0)
        snprintf(s->token, sizeof s->token, "%s", fresh);
    util_wipe(fresh, sizeof fresh);
    if (rc != 0) {
        sync_add_error(s, "visits", &e);
        return;
    }
    size_t n = json_array_size(v->forbidden);
    long long *idx = util_calloc(n + 1, sizeof *idx);
    for (size_t k = 0; k < n; k++)
        idx[k] = (long long)json_integer_value(json_array_get(v->forbidden, k));
    long long probe = v->probe;
    if (probe >= 0)
        idx[n] = probe;
    json_t *refused = json_array();
    long long succeeded = fetch(s, v, idx, probe >= 0 ? n + 1 : n, last, probe, refused);
    free(idx);
    if (json_array_size(refused) > 0 && succeeded > 0) {
        json_t *ids = json_array();
        size_t k;
        json_t *x;
        json_array_foreach(refused, k, x) json_array_append_new(
            ids, json_string(PQgetvalue(v->listings, (int)json_integer_value(x), 0)));
        sync_write_blocked(s, ids);
        json_decref(ids);
    } else if (json_array_size(refused) > 0) {
        err_set(&e, 422, "reauth_required",
                "Mercado Livre refused the visits of every listing asked with a fresh access "
                "token (403 %s): the token is invalid or the application lacks the visits "
                "permission; no listing was marked blocked",
                "PA_UNAUTHORIZED_RESULT_FROM_POLICIES");
        sync_add_error(s, "visits", &e);
    }
    json_decref(refused);
}

void sync_visits_fetch(struct sync *s, json_t *counts, json_t *warnings)
{
    sync_progress(s, "visits: fetching");
    sync_write_collect(s);
    const char *p[] = {s->tenant, s->conn_id};
    struct err e;
    err_clear(&e);
    PGresult *r = db_query(s->c,
                           "SELECT id, external_id FROM listings WHERE tenant_id = $1 "
                           "AND connection_id = $2 AND marketplace = 'mercadolivre' "
                           "AND access_status = 'accessible' AND status <> 'deleted' "
                           "ORDER BY external_id",
                           2, p, &e);
    if (!r) {
        sync_add_error(s, "visits", &e);
        return;
    }
    long long last = s->days_back < ML_VISITS_MAX_DAYS ? s->days_back : ML_VISITS_MAX_DAYS;
    if (s->days_back > ML_VISITS_MAX_DAYS)
        json_array_append_new(warnings,
                              json_string("visits are limited to the last 150 days by the API"));
    struct visits v = {r, counts, json_array(), json_array(), 0, -1};
    size_t n = (size_t)PQntuples(r);
    long long *all = util_calloc(n ? n : 1, sizeof *all);
    for (size_t k = 0; k < n; k++)
        all[k] = (long long)k;
    (void)fetch(s, &v, all, n, last, -1, v.forbidden);
    free(all);
    if (json_array_size(v.forbidden) > 0 && !sync_cancelled(s))
        retry_forbidden(s, &v, last);
    sync_write_visits(s, v.rows, v.counts);
    sync_write_collect(s);
    json_decref(v.rows);
    json_decref(v.forbidden);
    PQclear(r);
    json_object_set_new(counts, "listings", json_integer(v.ok));
}
