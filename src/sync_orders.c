/* sync_orders: SPEC 1.2 step 3 (see sync_ml.h). The orders created in the last daysBack
 * business days, paged by offset: the first page says how many there are, then every other
 * page is in flight together and each is parsed as it arrives; orders are written in
 * pipelined transactions of up to ORDERS_WRITE_BATCH while the next pages are fetched. A
 * range holding more than the API can page through is split in two. */
#include "jobsd/ml_parse.h"
#include "jobsd/ml_path.h"
#include "jobsd/util.h"
#include "sync_ml.h"

#include <stdlib.h>
#include <string.h>

/* Pages are written together, up to this many orders per transaction (each order with its
 * items is still replaced atomically). */
#define ORDERS_WRITE_BATCH 1000

/* One page as it arrives: parsed into pending, which is written every ORDERS_WRITE_BATCH. */
static void take_page(struct sync *s, struct ml_request *r, json_t **pending, json_t *counts)
{
    int o = sync_outcome(s, "orders", r);
    if (o == 0)
        sync_http_error(s, "orders", r);
    if (o != 1)
        return;
    struct err e;
    err_clear(&e);
    long long total;
    json_t *p = ml_parse_orders(r->body, r->len, &total, &e);
    if (!p) {
        sync_add_error(s, "orders", &e);
        return;
    }
    sync_bump(counts, "fetched", (long long)json_array_size(p));
    json_array_extend(*pending, p);
    json_decref(p);
    if (json_array_size(*pending) >= ORDERS_WRITE_BATCH) {
        sync_write_orders(s, *pending, counts);
        json_decref(*pending);
        *pending = json_array();
    }
}

/* The pages after the first of [from, to), up to `last` results; pending (the first page's
 * orders, taken) and every page are written. */
static void fetch_pages(struct sync *s, long long from, long long to, long long last,
                        json_t *pending, json_t *counts)
{
    size_t nreq = last > ML_ORDERS_PAGE ? (size_t)((last - 1) / ML_ORDERS_PAGE) : 0;
    if (nreq > 0) {
        struct ml_request *reqs = util_calloc(nreq, sizeof *reqs);
        for (size_t i = 0; i < nreq; i++)
            reqs[i].path_query =
                ml_path_orders_search(s->seller_id, from, to, (long long)(i + 1) * ML_ORDERS_PAGE);
        struct ml_batch *b = sync_batch_start(s, reqs, nreq);
        size_t i;
        while (sync_batch_next(s, b, &i) == ML_BATCH_ANSWER) {
            take_page(s, &reqs[i], &pending, counts);
            ml_request_clear(&reqs[i]);
        }
        ml_batch_end(b);
        for (size_t k = 0; k < nreq; k++) {
            ml_request_clear(&reqs[k]);
            free(reqs[k].path_query);
        }
        free(reqs);
    }
    sync_write_orders(s, pending, counts);
    json_decref(pending);
}

/* The first page of [from, to) (its orders, new, and paging.total), or NULL (recorded). */
static json_t *first_page(struct sync *s, long long from, long long to, long long *total)
{
    struct ml_request r;
    memset(&r, 0, sizeof r);
    r.path_query = ml_path_orders_search(s->seller_id, from, to, 0);
    sync_batch_run(s, &r, 1);
    int o = sync_outcome(s, "orders", &r);
    if (o == 0)
        sync_http_error(s, "orders", &r);
    json_t *page = NULL;
    *total = -1;
    if (o == 1) {
        struct err e;
        err_clear(&e);
        page = ml_parse_orders(r.body, r.len, total, &e);
        if (!page)
            sync_add_error(s, "orders", &e);
    }
    ml_request_clear(&r);
    free(r.path_query);
    return page;
}

/* Fetches [from, to) (hour-aligned epoch seconds); splits the range while it holds more than
 * the API can page through. */
static void fetch_range(struct sync *s, long long from, long long to, json_t *counts, int depth)
{
    if (sync_cancelled(s))
        return;
    long long total;
    json_t *page = first_page(s, from, to, &total);
    if (!page)
        return;
    if (total > ML_ORDERS_OFFSET_CAP && to - from > 3600 && depth < 40) {
        /* Halve the range on an hour boundary (the API's date filters are truncated to the
         * hour). */
        json_decref(page);
        long long mid = from + ((to - from) / 2 / 3600) * 3600;
        if (mid <= from)
            mid = from + 3600;
        fetch_range(s, from, mid, counts, depth + 1);
        fetch_range(s, mid, to, counts, depth + 1);
        return;
    }
    if (total > ML_ORDERS_OFFSET_CAP) {
        struct err e;
        err_set(&e, 503, "ml_unavailable",
                "more than %d orders in one hour: only the first %d were fetched",
                ML_ORDERS_OFFSET_CAP, ML_ORDERS_OFFSET_CAP);
        sync_add_error(s, "orders", &e);
    }
    sync_bump(counts, "fetched", (long long)json_array_size(page));
    long long last = total < ML_ORDERS_OFFSET_CAP ? total : ML_ORDERS_OFFSET_CAP;
    fetch_pages(s, from, to, last, page, counts);
}

void sync_orders_fetch(struct sync *s, json_t *counts)
{
    sync_progress(s, "orders: fetching");
    char days[24];
    util_fmt(days, sizeof days, "%lld", s->days_back);
    const char *p[] = {s->run->cfg->jobs_timezone, days};
    struct err e;
    err_clear(&e);
    /* The last daysBack business days: from local midnight, to the next full hour. */
    PGresult *r =
        db_query(s->c,
                 "SELECT floor(extract(epoch FROM (((now() AT TIME ZONE $1)::date "
                 "  - ($2::int - 1))::timestamp AT TIME ZONE $1)) / 3600)::bigint * 3600, "
                 " extract(epoch FROM date_trunc('hour', now()) + interval '1 hour')"
                 "::bigint",
                 2, p, &e);
    if (!r) {
        sync_add_error(s, "orders", &e);
        return;
    }
    long long from = sync_count(r, 0), to = sync_count(r, 1);
    PQclear(r);
    fetch_range(s, from, to, counts, 0);
    sync_write_collect(s);
}
