/* fake_api_orders: GET /orders/search and GET /orders/{id} for a seller, as ML's orders page
 * documents them (README.md "GET /orders/search", "GET /orders/{id}"), and the 206 partial
 * answer a fault rule asks for. */
#include "fake_world.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A date filter truncated to the hour of its own offset (as the real API does). */
static bool hour_filter(const struct api_request *rq, const char *name, long long *ms,
                        struct reply *out)
{
    const char *v = params_get(rq->query, name);
    if (!v)
        return true;
    int off;
    if (!ts_parse(v, ms, &off)) {
        char msg[200];
        snprintf(msg, sizeof msg,
                 "Invalid date format for %s (expected like "
                 "2024-01-15T00:00:00.000-03:00)",
                 name);
        reply_error(out, 400, "bad_request", msg);
        return false;
    }
    long long local = *ms + (long long)off * 60000;
    *ms = floor_div(local, 3600000LL) * 3600000LL - (long long)off * 60000;
    return true;
}

/* Is status in the comma-separated list? */
static bool in_list(const char *list, const char *status)
{
    size_t n = strlen(status);
    for (const char *p = list;;) {
        const char *c = strchr(p, ',');
        size_t l = c ? (size_t)(c - p) : strlen(p);
        if (l == n && memcmp(p, status, n) == 0)
            return true;
        if (!c)
            return false;
        p = c + 1;
    }
}

/* A seller's search leaves cancelled orders out unless order.status names cancelled (ML's
 * orders page: "si realizas la búsqueda como vendedor, filtras órdenes canceladas"). */
static bool status_selected(const char *filter, const char *status)
{
    if (!filter || !*filter)
        return strcmp(status, "cancelled") != 0;
    return in_list(filter, status);
}

struct bounds {
    long long cf, ct, uf, ut, lf, lt;
};

static bool order_in(const struct order *o, const struct bounds *b, const char *status)
{
    if (o->created_ms < b->cf || o->created_ms > b->ct || o->updated_ms < b->uf ||
        o->updated_ms > b->ut || !status_selected(status, o->status))
        return false;
    /* order.date_closed.*: an order without date_closed matches no bound. */
    if (b->lf != LLONG_MIN || b->lt != LLONG_MAX)
        return o->closed_ms != LLONG_MIN && o->closed_ms >= b->lf && o->closed_ms <= b->lt;
    return true;
}

void orders_search(const struct api_request *rq, struct seller *s, struct reply *out)
{
    const char *sel = params_get(rq->query, "seller");
    long long seller_id;
    if (!sel) {
        reply_error(out, 400, "bad_request", "The parameter seller or buyer is required");
        return;
    }
    if (!parse_ll(sel, 1, LLONG_MAX, &seller_id)) {
        reply_error(out, 400, "bad_request", "Invalid seller id");
        return;
    }
    long long limit = 50, offset = 0;
    const char *ls = params_get(rq->query, "limit"), *os = params_get(rq->query, "offset");
    if (ls && !parse_ll(ls, 0, LLONG_MAX, &limit)) {
        reply_error(out, 400, "bad_request", "Invalid limit");
        return;
    }
    stats_note_orders_limit(limit);
    if (limit > 51) {
        reply_error(out, 400, "limit.maximum_exceeded", "Limit must be a lower or equal than 51");
        return;
    }
    if (os && !parse_ll(os, 0, LLONG_MAX, &offset)) {
        reply_error(out, 400, "bad_request", "Invalid offset");
        return;
    }
    if (offset >= 10000) {
        reply_error(out, 400, "bad_request", "Invalid offset. The offset must be lower than 10000");
        return;
    }
    const char *sort = params_get(rq->query, "sort");
    bool desc = false;
    if (sort && strcmp(sort, "date_desc") == 0)
        desc = true;
    else if (sort && strcmp(sort, "date_asc") != 0) {
        reply_error(out, 400, "bad_request", "Invalid sort. Valid values: date_asc, date_desc");
        return;
    }
    struct bounds b = {LLONG_MIN, LLONG_MAX, LLONG_MIN, LLONG_MAX, LLONG_MIN, LLONG_MAX};
    if (!hour_filter(rq, "order.date_created.from", &b.cf, out) ||
        !hour_filter(rq, "order.date_created.to", &b.ct, out) ||
        !hour_filter(rq, "order.date_last_updated.from", &b.uf, out) ||
        !hour_filter(rq, "order.date_last_updated.to", &b.ut, out) ||
        !hour_filter(rq, "order.date_closed.from", &b.lf, out) ||
        !hour_filter(rq, "order.date_closed.to", &b.lt, out))
        return;
    if (seller_id != s->user_id) {
        reply_json(out, 403,
                   json_pack("{s:i, s:s, s:s, s:s}", "status", 403, "error", "access_denied",
                             "message", "access to the requested resource is forbidden", "code",
                             "FORBIDDEN"));
        return;
    }
    const char *status = params_get(rq->query, "order.status");
    /* Orders are kept sorted by (date_closed or date_created, id): the asked order. */
    long long total = 0;
    struct sbuf res = {0};
    for (size_t k = 0; k < s->norders; k++) {
        const struct order *o = &s->orders[desc ? s->norders - 1 - k : k];
        if (!order_in(o, &b, status))
            continue;
        if (total >= offset && total < offset + limit) {
            if (res.len)
                sb_adds(&res, ",");
            sb_adds(&res, o->json);
        }
        total++;
    }
    struct sbuf body = {0};
    sb_addf(&body,
            "{\"query\":\"%lld\",\"display\":\"complete\",\"paging\":{\"total\":%lld,"
            "\"offset\":%lld,\"limit\":%lld},\"sort\":{\"id\":\"%s\",\"name\":\"%s\"},"
            "\"available_sorts\":[{\"id\":\"%s\",\"name\":\"%s\"}],\"filters\":[],\"results\":[",
            s->user_id, total, offset, limit, desc ? "date_desc" : "date_asc",
            desc ? "Date descending" : "Date ascending", desc ? "date_asc" : "date_desc",
            desc ? "Date ascending" : "Date descending");
    if (res.len)
        sb_add(&body, res.data, res.len);
    sb_adds(&body, "]}");
    sb_free(&res);
    out->status = 200;
    free(out->body);
    out->body = sb_take(&body, &out->len);
    /* The page is built: a change scheduled for it shows from the next page on. */
    hooks_page_served(s, offset);
}

void orders_get(const struct api_request *rq, struct seller *s, struct reply *out)
{
    const char *p = rq->path + strlen("/orders/");
    long long id;
    if (!parse_ll(p, 1, LLONG_MAX, &id)) {
        reply_error(out, 400, "invalid_order_id", "Invalid order ID");
        return;
    }
    struct seller *owner = NULL;
    const struct order *o = world_order_find_any(id, &owner);
    if (!o) {
        reply_error(out, 404, "order_not_found", "Order not found");
        return;
    }
    if (owner != s) {
        reply_error(out, 403, "not_owned_order", "The user has not access to the order");
        return;
    }
    out->status = 200;
    free(out->body);
    out->body = xstrdup(o->json);
    out->len = strlen(out->body);
}

/* ------------------------------------------------------------------ 206 partial answers */

static const char *const missing_names[MISSING_COUNT] = {"buyer", "feedback", "mediations",
                                                         "seller", "shipping"};

const char *missing_name(int bit_index)
{
    return bit_index >= 0 && bit_index < MISSING_COUNT ? missing_names[bit_index] : "?";
}

static void strip(json_t *order, unsigned omit, bool absent)
{
    if (!json_is_object(order))
        return;
    for (int i = 0; i < MISSING_COUNT; i++) {
        if (!(omit & (1u << i)))
            continue;
        if (absent)
            json_object_del(order, missing_names[i]);
        else
            json_object_set_new(order, missing_names[i], json_object());
    }
}

void partial_apply(struct reply *r, unsigned omit, bool absent)
{
    if (r->status != 200 || !r->body || omit == 0)
        return;
    json_t *j = json_loadb(r->body, r->len, 0, NULL);
    if (!j)
        return;
    json_t *results = json_object_get(j, "results");
    if (json_is_array(results)) {
        size_t i;
        json_t *o;
        json_array_foreach(results, i, o)
        {
            strip(o, omit, absent);
        }
    } else {
        strip(j, omit, absent);
    }
    size_t n = 0;
    for (int i = 0; i < MISSING_COUNT; i++)
        if (omit & (1u << i))
            n += (size_t)snprintf(r->content_missing + n, sizeof r->content_missing - n, "%s%s",
                                  n ? ", " : "", missing_names[i]);
    reply_json(r, 206, j);
    stats_count(C_PARTIAL_ANSWERS);
}
