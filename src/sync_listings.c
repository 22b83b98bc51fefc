/* sync_listings: SPEC 1.2 step 2 (see sync_ml.h). Every item id of the seller through
 * search_type=scan (no 1,000-result cap; one page after another, each needs the previous
 * page's scroll id), then the details in multigets of ML_MULTIGET_MAX ids, all in flight
 * together, then one upsert. A per-item PolicyAgent 403 marks that listing blocked (never the
 * connection); 404 items are skipped; items that disappeared are not deleted. */
#include "jobsd/ml_parse.h"
#include "jobsd/ml_path.h"
#include "jobsd/util.h"
#include "sync_ml.h"

#include <stdlib.h>
#include <string.h>

/* Every item id of the seller (array of strings). NULL on failure (error recorded). */
static json_t *discover(struct sync *s)
{
    json_t *all = json_array();
    /* Production's scroll ids are a few hundred characters; far more than that is refused
     * by ml_parse_search as an error rather than ending the scan early. */
    char *scroll = util_calloc(1, ML_SCROLL_ID_MAX + 1);
    for (int page = 0; page < 1000000; page++) {
        if (sync_cancelled(s))
            break;
        struct ml_request r;
        memset(&r, 0, sizeof r);
        r.path_query = ml_path_items_scan(s->seller_id, scroll);
        sync_batch_run(s, &r, 1);
        free(r.path_query);
        int o = sync_outcome(s, "listings", &r);
        if (o == 0)
            sync_http_error(s, "listings", &r);
        if (o != 1) {
            ml_request_clear(&r);
            json_decref(all);
            all = NULL;
            break;
        }
        struct err e;
        err_clear(&e);
        long long total;
        json_t *ids = ml_parse_search(r.body, r.len, scroll, ML_SCROLL_ID_MAX + 1, &total, &e);
        ml_request_clear(&r);
        if (!ids) {
            sync_add_error(s, "listings", &e);
            json_decref(all);
            all = NULL;
            break;
        }
        size_t n = json_array_size(ids);
        json_array_extend(all, ids);
        json_decref(ids);
        if (n == 0 || !scroll[0])
            break;
    }
    free(scroll);
    return all;
}

/* One multiget's answer: its items into items, PolicyAgent-blocked ids into blocked. */
static void take_details(struct sync *s, struct ml_request *r, const char *const *ids, size_t n,
                         json_t *items, json_t *blocked)
{
    int o = sync_outcome(s, "listings", r);
    if (o == 0)
        sync_http_error(s, "listings", r);
    if (o != 1)
        return;
    struct err e;
    err_clear(&e);
    json_t *els = ml_parse_multiget(r->body, r->len, ids, n, &e);
    if (!els)
        sync_add_error(s, "listings", &e);
    size_t i;
    json_t *el;
    json_array_foreach(els, i, el)
    {
        long long code = (long long)json_integer_value(json_object_get(el, "code"));
        if (code == 200)
            json_array_append(items, json_object_get(el, "item"));
        else if (code == 403 && json_is_true(json_object_get(el, "blocked")))
            json_array_append(blocked, json_object_get(el, "id"));
        else if (code != 404) {
            struct err ee;
            err_set(&ee, 503, "ml_unavailable", "item %s answered %lld",
                    json_string_value(json_object_get(el, "id")), code);
            sync_add_error(s, "listings", &ee);
        }
    }
    json_decref(els);
}

/* The details of the n ids, ML_MULTIGET_MAX per request, all in one batch. */
static void fetch_details(struct sync *s, const char *const *ids, size_t n, json_t *items,
                          json_t *blocked)
{
    size_t nreq = (n + ML_MULTIGET_MAX - 1) / ML_MULTIGET_MAX;
    struct ml_request *reqs = util_calloc(nreq ? nreq : 1, sizeof *reqs);
    for (size_t q = 0; q < nreq; q++) {
        size_t first = q * ML_MULTIGET_MAX;
        size_t count = n - first < ML_MULTIGET_MAX ? n - first : ML_MULTIGET_MAX;
        reqs[q].path_query = ml_path_items_multiget(ids + first, count);
    }
    sync_progress(s, "listings: fetching details");
    sync_batch_run(s, reqs, nreq);
    for (size_t q = 0; q < nreq; q++) {
        size_t first = q * ML_MULTIGET_MAX;
        size_t count = n - first < ML_MULTIGET_MAX ? n - first : ML_MULTIGET_MAX;
        take_details(s, &reqs[q], ids + first, count, items, blocked);
        ml_request_clear(&reqs[q]);
        free(reqs[q].path_query);
    }
    free(reqs);
}

void sync_listings_fetch(struct sync *s, json_t *counts)
{
    sync_progress(s, "listings: discovering items");
    json_t *ids = discover(s);
    if (!ids)
        return;
    size_t n = json_array_size(ids);
    json_object_set_new(counts, "discovered", json_integer((json_int_t)n));
    const char **id_list = util_calloc(n ? n : 1, sizeof *id_list);
    for (size_t i = 0; i < n; i++)
        id_list[i] = json_string_value(json_array_get(ids, i));
    json_t *items = json_array();
    json_t *blocked = json_array();
    fetch_details(s, id_list, n, items, blocked);
    free(id_list);
    json_decref(ids);
    sync_write_listings(s, items, blocked, counts);
    json_decref(items);
    json_decref(blocked);
}
