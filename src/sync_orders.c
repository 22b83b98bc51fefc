/* sync_orders: SPEC 1.2 step 3 (see sync_ml.h), made to see every change Mercado Livre makes
 * to an order (README "The Mercado Livre sync", with the documentation behind each rule):
 *  1. the window search: the orders created in the last daysBack business days. A seller's
 *     search leaves cancelled orders out;
 *  2. the updated pass: the orders whose date_last_updated is after the connection's
 *     watermark (orders_synced_at) less an hour of overlap: a boleto paid days later, a
 *     refund, a shipment, also for an order created before the window;
 *  3. the window's stored sales that neither returned (cancelled since, most likely): the
 *     cancelled search over the window, then each one still missing read by id.
 * A search pages by offset, and for a seller the API sorts by date_closed, so an order whose
 * date_closed is set while the pages are read moves and another can be skipped: each range's
 * distinct orders are compared with paging.total and the range is read again while short
 * (at most MAX_PASSES times). A range holding more than the API can page through is split in
 * two. Orders are written in pipelined transactions of up to ORDERS_WRITE_BATCH while the
 * next pages are fetched; an order that did not change is not written. The watermark moves
 * to the start of this phase only when every search was read to its end without an error. */
#include "jobsd/ml_parse.h"
#include "jobsd/ml_path.h"
#include "jobsd/util.h"
#include "sync_ml.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Pages are written together, up to this many orders per transaction (each order with its
 * items is still replaced atomically). */
#define ORDERS_WRITE_BATCH 1000
/* Reads of one range when orders keep moving under the paging. */
#define MAX_PASSES 3

struct pass {
    struct sync *s;
    json_t *counts;
    json_t *seen;    /* external ids (decimal text) any search or read returned: true */
    json_t *pending; /* normalised orders not written yet */
    bool complete;   /* every search was read to its end */
};

/* Queues orders (taken) for writing; marks them seen, and in range when given. */
static void take(struct pass *p, json_t *orders, json_t *range)
{
    size_t i;
    json_t *o;
    json_array_foreach(orders, i, o)
    {
        char id[24];
        util_fmt(id, sizeof id, "%lld",
                 (long long)json_integer_value(json_object_get(o, "external_id")));
        json_object_set_new(p->seen, id, json_true());
        if (range)
            json_object_set_new(range, id, json_true());
    }
    sync_bump(p->counts, "fetched", (long long)json_array_size(orders));
    json_array_extend(p->pending, orders);
    json_decref(orders);
    if (json_array_size(p->pending) >= ORDERS_WRITE_BATCH) {
        sync_write_orders(p->s, p->pending, p->counts);
        json_decref(p->pending);
        p->pending = json_array();
    }
}

/* A search page's orders (new) and its paging.total, or NULL (recorded). */
static json_t *parse_page(struct sync *s, struct ml_request *r, long long *total)
{
    int o = sync_outcome(s, "orders", r);
    if (o == 0)
        sync_http_error(s, "orders", r);
    if (o != 1)
        return NULL;
    struct err e;
    err_clear(&e);
    json_t *page = ml_parse_orders(r->body, r->len, total, &e);
    if (!page)
        sync_add_error(s, "orders", &e);
    return page;
}

/* Reads the pages of q from offset `first` (a multiple of the page size) up to `last`
 * results, all in flight together; returns the largest paging.total they reported. */
static long long read_pages(struct pass *p, const struct ml_orders_query *q, long long first,
                            long long last, json_t *range)
{
    long long total = -1;
    size_t nreq = last > first ? (size_t)((last - first + ML_ORDERS_PAGE - 1) / ML_ORDERS_PAGE) : 0;
    if (nreq == 0)
        return total;
    struct ml_request *reqs = util_calloc(nreq, sizeof *reqs);
    for (size_t i = 0; i < nreq; i++)
        reqs[i].path_query = ml_path_orders_search(q, first + (long long)i * ML_ORDERS_PAGE);
    struct ml_batch *b = sync_batch_start(p->s, reqs, nreq);
    size_t i;
    while (sync_batch_next(p->s, b, &i) == ML_BATCH_ANSWER) {
        long long t = -1;
        json_t *page = parse_page(p->s, &reqs[i], &t);
        if (page)
            take(p, page, range);
        total = t > total ? t : total;
        ml_request_clear(&reqs[i]);
    }
    ml_batch_end(b);
    for (size_t k = 0; k < nreq; k++) {
        ml_request_clear(&reqs[k]);
        free(reqs[k].path_query);
    }
    free(reqs);
    return total;
}

/* The first page of q: its orders (new) and paging.total, or NULL (recorded). */
static json_t *first_page(struct pass *p, const struct ml_orders_query *q, long long *total)
{
    struct ml_request r;
    memset(&r, 0, sizeof r);
    r.path_query = ml_path_orders_search(q, 0);
    sync_batch_run(p->s, &r, 1);
    *total = -1;
    json_t *page = parse_page(p->s, &r, total);
    ml_request_clear(&r);
    free(r.path_query);
    return page;
}

/* Reads a range that fits the API's paging, again while it yields fewer distinct orders than
 * its paging.total (orders moved under the offsets). page holds its first page (taken). */
static void read_range(struct pass *p, const struct ml_orders_query *q, json_t *page,
                       long long total)
{
    json_t *range = json_object();
    take(p, page, range);
    long long errors = p->s->nerrors;
    for (int pass = 0; pass < MAX_PASSES && !sync_cancelled(p->s); pass++) {
        long long last = total < ML_ORDERS_OFFSET_CAP ? total : ML_ORDERS_OFFSET_CAP;
        long long t = read_pages(p, q, pass == 0 ? ML_ORDERS_PAGE : 0, last, range);
        total = t > total ? t : total;
        long long want = total < ML_ORDERS_OFFSET_CAP ? total : ML_ORDERS_OFFSET_CAP;
        if ((long long)json_object_size(range) >= want || p->s->nerrors != errors)
            break;
        sync_bump(p->counts, "repaged", 1);
        if (pass == MAX_PASSES - 1)
            p->complete = false; /* still short: the next sync's updated pass looks again */
    }
    json_decref(range);
}

/* Reads q (hour-aligned bounds), splitting it while it holds more than the API pages
 * through. */
static void fetch_range(struct pass *p, struct ml_orders_query q, int depth)
{
    if (sync_cancelled(p->s))
        return;
    long long total;
    json_t *page = first_page(p, &q, &total);
    if (!page)
        return;
    /* The range that splits: the update range when there is one, else the creation range. */
    long long *lo_from = q.updated_from > 0 ? &q.updated_from : &q.created_from;
    long long *lo_to = q.updated_from > 0 ? &q.updated_to : &q.created_to;
    if (total > ML_ORDERS_OFFSET_CAP && *lo_to - *lo_from > 3600 && depth < 40) {
        /* Halve the range on an hour boundary (the API's date filters are truncated to the
         * hour). */
        json_decref(page);
        long long from = *lo_from, to = *lo_to;
        long long mid = from + ((to - from) / 2 / 3600) * 3600;
        if (mid <= from)
            mid = from + 3600;
        *lo_to = mid;
        fetch_range(p, q, depth + 1);
        *lo_to = to;
        *lo_from = mid;
        fetch_range(p, q, depth + 1);
        return;
    }
    if (total > ML_ORDERS_OFFSET_CAP) {
        struct err e;
        err_set(&e, 503, "ml_unavailable",
                "more than %d orders in one hour: only the first %d were fetched",
                ML_ORDERS_OFFSET_CAP, ML_ORDERS_OFFSET_CAP);
        sync_add_error(p->s, "orders", &e);
    }
    read_range(p, &q, page, total);
}

/* The connection's stored sales created in [from, to) that no search returned (new array of
 * external ids), or NULL (recorded). Collects the writes in flight first. */
static json_t *missing_sales(struct pass *p, long long from, long long to)
{
    struct sync *s = p->s;
    sync_write_collect(s);
    char f[24], t[24];
    util_fmt(f, sizeof f, "%lld", from);
    util_fmt(t, sizeof t, "%lld", to);
    const char *params[] = {s->tenant, s->conn_id, f, t};
    struct err e;
    err_clear(&e);
    PGresult *r = db_query(s->c,
                           "SELECT external_id FROM orders WHERE tenant_id = $1 "
                           "AND connection_id = $2 AND marketplace = 'mercadolivre' "
                           "AND jobsd_is_sale(status) AND ordered_at >= to_timestamp($3) "
                           "AND ordered_at < to_timestamp($4) ORDER BY external_id",
                           4, params, &e);
    if (!r) {
        sync_add_error(s, "orders", &e);
        return NULL;
    }
    json_t *out = json_array();
    for (int i = 0; i < PQntuples(r); i++)
        if (!json_object_get(p->seen, PQgetvalue(r, i, 0)))
            json_array_append_new(out, json_string(PQgetvalue(r, i, 0)));
    PQclear(r);
    return out;
}

/* Reads each of these orders by id (an array of external ids as text). */
static void read_by_id(struct pass *p, json_t *ids)
{
    size_t n = json_array_size(ids);
    if (n == 0)
        return;
    struct ml_request *reqs = util_calloc(n, sizeof *reqs);
    for (size_t i = 0; i < n; i++)
        reqs[i].path_query =
            ml_path_order(util_i64_or(json_string_value(json_array_get(ids, i)), 0));
    struct ml_batch *b = sync_batch_start(p->s, reqs, n);
    size_t i;
    while (sync_batch_next(p->s, b, &i) == ML_BATCH_ANSWER) {
        struct ml_request *r = &reqs[i];
        int o = sync_outcome(p->s, "orders", r);
        struct err e;
        err_clear(&e);
        json_t *order = o == 1 ? ml_parse_order(r->body, r->len, &e) : NULL;
        if (order) {
            take(p, json_pack("[o]", order), NULL);
            sync_bump(p->counts, "reread", 1);
        } else if (o == 1) {
            sync_add_error(p->s, "orders", &e);
        } else if (o == 0 && r->status != 404) {
            sync_http_error(p->s, "orders", r); /* 404: gone from the API; kept as it is */
        }
        ml_request_clear(r);
    }
    ml_batch_end(b);
    for (size_t k = 0; k < n; k++) {
        ml_request_clear(&reqs[k]);
        free(reqs[k].path_query);
    }
    free(reqs);
}

/* The window (from local midnight daysBack - 1 days ago to the next full hour), the
 * watermark less the overlap (0 when there is none), and now, from the database. */
static MUSTCHECK int bounds(struct sync *s, long long *from, long long *to, long long *since,
                            char *now, size_t cap, struct err *e)
{
    char days[24];
    util_fmt(days, sizeof days, "%lld", s->days_back);
    const char *p[] = {s->run->cfg->jobs_timezone, days, s->conn_id};
    PGresult *r = db_query(
        s->c,
        "SELECT floor(extract(epoch FROM (((now() AT TIME ZONE $1)::date "
        "  - ($2::int - 1))::timestamp AT TIME ZONE $1)) / 3600)::bigint * 3600, "
        " extract(epoch FROM date_trunc('hour', now()) + interval '1 hour')::bigint, "
        " coalesce((SELECT floor(extract(epoch FROM orders_synced_at - interval '1 hour') / 3600)"
        "   ::bigint * 3600 FROM marketplace_connections WHERE id = $3), 0), now()::text",
        3, p, e);
    if (!r)
        return -1;
    *from = sync_count(r, 0);
    *to = sync_count(r, 1);
    *since = sync_count(r, 2);
    snprintf(now, cap, "%s", PQgetvalue(r, 0, 3));
    PQclear(r);
    return 0;
}

/* Searches 1 to 3 of the header comment. */
static void search_all(struct pass *p, long long from, long long to, long long since)
{
    struct sync *s = p->s;
    struct ml_orders_query window = {s->seller_id, from, to, 0, 0, NULL};
    fetch_range(p, window, 0);
    if (since > 0 && since < to) {
        /* What the window cannot see: orders created before it, changed since. */
        struct ml_orders_query updated = {s->seller_id, 0, from, since, to, NULL};
        fetch_range(p, updated, 0);
    }
    json_t *missing = missing_sales(p, from, to);
    if (missing && json_array_size(missing) > 0) {
        json_decref(missing);
        struct ml_orders_query cancelled = {s->seller_id, from, to, 0, 0, "cancelled"};
        fetch_range(p, cancelled, 0);
        missing = missing_sales(p, from, to);
    }
    if (missing)
        read_by_id(p, missing);
    json_decref(missing);
}

void sync_orders_fetch(struct sync *s, json_t *counts)
{
    sync_progress(s, "orders: fetching");
    sync_bump(counts, "reread", 0);
    sync_bump(counts, "repaged", 0);
    long long from, to, since;
    char now[64];
    struct err e;
    err_clear(&e);
    if (bounds(s, &from, &to, &since, now, sizeof now, &e) != 0) {
        sync_add_error(s, "orders", &e);
        return;
    }
    struct pass p = {s, counts, json_object(), json_array(), true};
    long long errors = s->nerrors;
    search_all(&p, from, to, since);
    sync_write_orders(s, p.pending, counts);
    json_decref(p.pending);
    json_decref(p.seen);
    sync_write_collect(s);
    if (!p.complete || s->nerrors != errors || sync_cancelled(s))
        return;
    const char *params[] = {s->conn_id, now};
    if (db_exec(s->c, "UPDATE marketplace_connections SET orders_synced_at = $2 WHERE id = $1", 2,
                params, &e) != 0)
        sync_add_error(s, "orders", &e);
}
