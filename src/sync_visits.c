/* sync_visits: SPEC 1.2 step 4 (see sync_ml.h). Daily visits of every accessible listing of
 * the connection, one request per listing, all in one batch; each answer is parsed as it
 * arrives and the rows are written in pipelined transactions every VISITS_WRITE_ROWS while the
 * next requests are in flight. A failed fetch writes nothing: known values are never
 * replaced by NULL or 0. A 403 marks the listing blocked_by_policy. */
#include "jobsd/ml_parse.h"
#include "jobsd/ml_path.h"
#include "jobsd/util.h"
#include "sync_ml.h"

#include <stdlib.h>

#define VISITS_WRITE_ROWS 20000 /* visits rows per pipelined write */

struct visits {
    PGresult *listings; /* id, external_id, the window's ending */
    json_t *counts;
    json_t *rows;    /* rows not written yet */
    json_t *blocked; /* listing ids answered with a 403 */
    long long ok;    /* listings fetched */
};

/* Listing i's answer, as it arrives. */
static void take_answer(struct sync *s, struct visits *v, size_t i, struct ml_request *r)
{
    const char *listing = PQgetvalue(v->listings, (int)i, 0);
    int o = sync_outcome(s, "visits", r);
    if (o == 0) {
        if (r->status == 403)
            json_array_append_new(v->blocked, json_string(listing));
        else if (r->status != 404)
            sync_http_error(s, "visits", r);
    }
    if (o != 1)
        return;
    struct err pe;
    err_clear(&pe);
    json_t *days = ml_parse_visits(r->body, r->len, &pe);
    if (!days) {
        sync_add_error(s, "visits", &pe);
        return;
    }
    v->ok++;
    size_t j;
    json_t *d;
    json_array_foreach(days, j, d)
    {
        json_object_set_new(d, "listing_id", json_string(listing));
        json_array_append(v->rows, d);
    }
    json_decref(days);
    if (json_array_size(v->rows) >= VISITS_WRITE_ROWS) {
        sync_write_visits(s, v->rows, v->counts);
        json_decref(v->rows);
        v->rows = json_array();
    }
}

/* Fetches every listing's visits over the last `last` days, handling answers as they come. */
static void fetch_all(struct sync *s, struct visits *v, long long last)
{
    size_t n = (size_t)PQntuples(v->listings);
    struct ml_request *reqs = util_calloc(n ? n : 1, sizeof *reqs);
    for (size_t i = 0; i < n; i++)
        reqs[i].path_query = ml_path_item_visits(PQgetvalue(v->listings, (int)i, 1), last,
                                                 PQgetvalue(v->listings, 0, 2));
    struct ml_batch *b = sync_batch_start(s, reqs, n);
    size_t i;
    while (sync_batch_next(s, b, &i) == ML_BATCH_ANSWER) {
        take_answer(s, v, i, &reqs[i]);
        ml_request_clear(&reqs[i]);
    }
    ml_batch_end(b);
    sync_write_visits(s, v->rows, v->counts);
    sync_write_collect(s);
    for (size_t k = 0; k < n; k++) {
        ml_request_clear(&reqs[k]);
        free(reqs[k].path_query);
    }
    free(reqs);
}

void sync_visits_fetch(struct sync *s, json_t *counts, json_t *warnings)
{
    sync_progress(s, "visits: fetching");
    sync_write_collect(s);
    const char *p[] = {s->tenant, s->conn_id};
    struct err e;
    err_clear(&e);
    PGresult *r = db_query(s->c,
                           "SELECT id, external_id, "
                           " to_char((now() AT TIME ZONE 'UTC')::date + 1, 'YYYY-MM-DD') "
                           "FROM listings WHERE tenant_id = $1 AND connection_id = $2 "
                           "AND marketplace = 'mercadolivre' AND access_status = 'accessible' "
                           "AND status <> 'deleted' ORDER BY external_id",
                           2, p, &e);
    if (!r) {
        sync_add_error(s, "visits", &e);
        return;
    }
    /* The window is [ending - last, ending): ending tomorrow (UTC) includes today's partial
     * count, which the next sync replaces. */
    long long last = s->days_back < ML_VISITS_MAX_DAYS ? s->days_back : ML_VISITS_MAX_DAYS;
    if (s->days_back > ML_VISITS_MAX_DAYS)
        json_array_append_new(warnings,
                              json_string("visits are limited to the last 150 days by the API"));
    struct visits v = {r, counts, json_array(), json_array(), 0};
    fetch_all(s, &v, last);
    sync_write_blocked(s, v.blocked);
    json_decref(v.rows);
    json_decref(v.blocked);
    PQclear(r);
    json_object_set_new(counts, "listings", json_integer(v.ok));
}
