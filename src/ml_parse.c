/* ml_parse: see ml_parse.h. Nothing here trusts the shape of a response: every field is
 * looked up, type-checked and bounded; a missing optional field becomes JSON null. */
#include "jobsd/ml_parse.h"
#include "jobsd/util.h"

#include <stdio.h>
#include <string.h>

#define MAX_TEXT 2000

static MUSTCHECK json_t *load(const char *body, size_t len, struct err *e, const char *what)
{
    json_error_t jerr;
    json_t *j = body ? json_loadb(body, len, JSON_DECODE_ANY, &jerr) : NULL;
    if (!j)
        err_set(e, 503, "ml_unavailable", "Mercado Livre sent an unreadable %s response", what);
    return j;
}

static const char *str(const json_t *o, const char *key)
{
    const char *s = json_string_value(json_object_get(o, key));
    return s && strlen(s) <= MAX_TEXT ? s : NULL;
}

/* A bounded string or null. */
static json_t *opt_str(const json_t *o, const char *key)
{
    const char *s = str(o, key);
    return s ? json_string(s) : json_null();
}

/* An RFC 3339 timestamp or null (PostgreSQL gets only what it can parse). */
static json_t *opt_time(const json_t *o, const char *key)
{
    const char *s = str(o, key);
    return s && util_is_rfc3339(s) ? json_string(s) : json_null();
}

static json_t *opt_num(const json_t *o, const char *key)
{
    json_t *v = json_object_get(o, key);
    if (json_is_integer(v))
        return json_integer(json_integer_value(v));
    if (json_is_real(v)) {
        double d = json_real_value(v);
        if (d == d && d < 1e12 && d > -1e12)
            return json_real(d);
    }
    return json_null();
}

static json_t *opt_int(const json_t *o, const char *key)
{
    json_t *v = json_object_get(o, key);
    return json_is_integer(v) ? json_integer(json_integer_value(v)) : json_null();
}

/* An integer that may come as a number or a numeric string (64-bit ids). */
static bool as_i64(const json_t *v, long long *out)
{
    if (json_is_integer(v)) {
        *out = (long long)json_integer_value(v);
        return true;
    }
    if (json_is_string(v))
        return util_parse_i64(json_string_value(v), -9223372036854775807LL, 9223372036854775807LL,
                              out);
    return false;
}

void ml_parse_error(const char *body, size_t len, struct ml_error *out)
{
    memset(out, 0, sizeof *out);
    json_t *j = body ? json_loadb(body, len, JSON_DECODE_ANY, NULL) : NULL;
    if (!json_is_object(j)) {
        json_decref(j);
        return;
    }
    const char *err = str(j, "error");
    const char *msg = str(j, "message");
    if (!msg)
        msg = str(j, "error_description");
    json_t *code = json_object_get(j, "code");
    if (!err && json_is_string(code))
        err = json_string_value(code);
    snprintf(out->error, sizeof out->error, "%s", err ? err : "");
    snprintf(out->message, sizeof out->message, "%s", msg ? msg : "");
    long long st = 0;
    if (as_i64(json_object_get(j, "status"), &st) && st >= 0 && st < 1000)
        out->status = (int)st;
    json_decref(j);
}

int ml_parse_token(const char *body, size_t len, struct ml_token *out, struct err *e)
{
    memset(out, 0, sizeof *out);
    json_t *j = load(body, len, e, "token");
    if (!j)
        return -1;
    const char *at = str(j, "access_token");
    const char *rt = str(j, "refresh_token");
    long long exp = 0;
    bool ok = at && rt && strlen(at) < sizeof out->access_token &&
              strlen(rt) < sizeof out->refresh_token &&
              as_i64(json_object_get(j, "expires_in"), &exp) && exp > 0 && exp < 100000000;
    if (ok) {
        snprintf(out->access_token, sizeof out->access_token, "%s", at);
        snprintf(out->refresh_token, sizeof out->refresh_token, "%s", rt);
        out->expires_in = exp;
        (void)as_i64(json_object_get(j, "user_id"), &out->user_id);
    }
    json_decref(j);
    if (!ok)
        return err_set(e, 503, "ml_unavailable",
                       "Mercado Livre's token answer lacks access_token, refresh_token or "
                       "expires_in");
    return 0;
}

json_t *ml_parse_search(const char *body, size_t len, char *scroll_id, size_t scroll_cap,
                        long long *total, struct err *e)
{
    if (scroll_cap)
        scroll_id[0] = '\0';
    *total = -1;
    json_t *j = load(body, len, e, "items search");
    if (!j)
        return NULL;
    if (!json_is_object(j)) {
        json_decref(j);
        err_set(e, 503, "ml_unavailable", "Mercado Livre's items search is not an object");
        return NULL;
    }
    const char *sid = str(j, "scroll_id");
    if (sid && strlen(sid) >= scroll_cap) {
        /* Never dropped silently: the scan would stop after this page. */
        err_set(e, 503, "ml_unavailable",
                "Mercado Livre's scroll_id is %zu characters, longer than the %zu accepted",
                strlen(sid), scroll_cap ? scroll_cap - 1 : 0);
        json_decref(j);
        return NULL;
    }
    if (sid)
        snprintf(scroll_id, scroll_cap, "%s", sid);
    long long t;
    if (as_i64(json_object_get(json_object_get(j, "paging"), "total"), &t))
        *total = t;
    json_t *ids = json_array();
    json_t *results = json_object_get(j, "results");
    size_t i;
    json_t *v;
    json_array_foreach(results, i, v)
    {
        const char *id = json_string_value(v);
        if (id && strlen(id) > 0 && strlen(id) < 40)
            json_array_append_new(ids, json_string(id));
    }
    json_decref(j);
    return ids;
}

static const char *listing_status(const char *status, const json_t *item)
{
    json_t *sub = json_object_get(item, "sub_status");
    size_t i;
    json_t *v;
    json_array_foreach(sub, i, v)
    {
        const char *s = json_string_value(v);
        if (s && strcmp(s, "deleted") == 0)
            return "deleted";
    }
    if (!status)
        return "unknown";
    if (strcmp(status, "active") == 0 || strcmp(status, "paused") == 0 ||
        strcmp(status, "closed") == 0)
        return status;
    if (strcmp(status, "under_review") == 0 || strcmp(status, "inactive") == 0)
        return "paused";
    return "unknown";
}

static json_t *normalise_item(const json_t *it, const char *fallback_id)
{
    const char *id = str(it, "id");
    if (!id)
        id = fallback_id;
    if (!id || strlen(id) >= 40)
        return NULL;
    json_t *n = json_object();
    json_object_set_new(n, "external_id", json_string(id));
    json_object_set_new(n, "title", opt_str(it, "title"));
    json_object_set_new(n, "status", json_string(listing_status(str(it, "status"), it)));
    json_object_set_new(n, "price", opt_num(it, "price"));
    json_object_set_new(n, "currency", opt_str(it, "currency_id"));
    json_object_set_new(n, "available_quantity", opt_int(it, "available_quantity"));
    json_object_set_new(n, "sold_quantity", opt_int(it, "sold_quantity"));
    json_object_set_new(n, "permalink", opt_str(it, "permalink"));
    json_object_set_new(n, "category_id", opt_str(it, "category_id"));
    json_object_set_new(n, "listing_type_id", opt_str(it, "listing_type_id"));
    json_object_set_new(n, "external_updated_at", opt_time(it, "last_updated"));
    return n;
}

json_t *ml_parse_multiget(const char *body, size_t len, const char *const *ids, size_t nids,
                          struct err *e)
{
    json_t *j = load(body, len, e, "items");
    if (!j)
        return NULL;
    if (!json_is_array(j)) {
        json_decref(j);
        err_set(e, 503, "ml_unavailable", "Mercado Livre's items answer is not an array");
        return NULL;
    }
    json_t *out = json_array();
    size_t i;
    json_t *el;
    json_array_foreach(j, i, el)
    {
        long long code = 0;
        json_t *c = json_object_get(el, "code");
        if (!as_i64(c, &code))
            (void)as_i64(json_object_get(el, "status_code"), &code);
        json_t *body_ = json_object_get(el, "body");
        const char *fallback = i < nids ? ids[i] : NULL;
        const char *id = str(body_, "id");
        if (!id)
            id = fallback;
        if (!id)
            continue;
        json_t *o = json_pack("{s:s, s:I}", "id", id, "code", (json_int_t)code);
        if (code == 200) {
            json_t *item = normalise_item(body_, fallback);
            if (item)
                json_object_set_new(o, "item", item);
            else
                json_object_set_new(o, "code", json_integer(502));
        } else if (code == 403) {
            const char *by = str(body_, "blocked_by");
            const char *bcode = str(body_, "code");
            bool policy =
                (by && strcmp(by, "PolicyAgent") == 0) || (bcode && strncmp(bcode, "PA_", 3) == 0);
            json_object_set_new(o, "blocked", json_boolean(policy));
        }
        json_array_append_new(out, o);
    }
    json_decref(j);
    return out;
}

const char *ml_map_order_status(const char *status, const char *shipping_status)
{
    static const struct {
        const char *ml, *ours;
    } map[] = {
        {"confirmed", "pending"},
        {"payment_required", "pending"},
        {"payment_in_process", "pending"},
        {"partially_paid", "pending"}, /* the payment is insufficient: not a sale (yet) */
        {"paid", "paid"},
        {"partially_refunded", "partially_refunded"}, /* a sale, minus the refund */
        {"cancelled", "cancelled"},
        {"invalid", "cancelled"},
        {"pending_cancel", "cancelled"},
    };
    const char *ours = "pending";
    for (size_t i = 0; status && i < sizeof map / sizeof map[0]; i++)
        if (strcmp(status, map[i].ml) == 0)
            ours = map[i].ours;
    if (strcmp(ours, "paid") == 0 && shipping_status) {
        if (strcmp(shipping_status, "delivered") == 0)
            return "delivered";
        if (strcmp(shipping_status, "shipped") == 0)
            return "shipped";
    }
    return ours;
}

/* The amount refunded to the buyer: the sum of the payments' transaction_amount_refunded
 * (a number, 2 decimals; 0 when none says so). */
static json_t *refunded(const json_t *payments)
{
    double sum = 0;
    size_t i;
    json_t *p;
    json_array_foreach(payments, i, p)
    {
        json_t *r = json_object_get(p, "transaction_amount_refunded");
        if (json_is_number(r) && json_number_value(r) > 0 && json_number_value(r) < 1e12)
            sum += json_number_value(r);
    }
    return json_real((double)(long long)(sum * 100.0 + 0.5) / 100.0);
}

/* The order's lines: {listing_external_id, variation_id, title, quantity, unit_price,
 * full_unit_price} (new array; a line without an item id or a sane quantity is left out). */
static json_t *normalise_items(const json_t *o)
{
    json_t *items = json_array();
    size_t i;
    json_t *it;
    json_array_foreach(json_object_get(o, "order_items"), i, it)
    {
        const json_t *item = json_object_get(it, "item");
        const char *iid = str(item, "id");
        long long qty = 0;
        if (!iid || strlen(iid) >= 40 || !as_i64(json_object_get(it, "quantity"), &qty) ||
            qty < 0 || qty > 1000000000)
            continue;
        json_t *x = json_object();
        json_object_set_new(x, "listing_external_id", json_string(iid));
        long long var;
        json_object_set_new(x, "variation_id",
                            as_i64(json_object_get(item, "variation_id"), &var) ? json_integer(var)
                                                                                : json_null());
        json_object_set_new(x, "title", opt_str(item, "title"));
        json_object_set_new(x, "quantity", json_integer(qty));
        json_t *up = opt_num(it, "unit_price");
        if (json_is_null(up)) {
            json_decref(up);
            up = json_integer(0);
        }
        json_object_set_new(x, "unit_price", up);
        json_object_set_new(x, "full_unit_price", opt_num(it, "full_unit_price"));
        json_array_append_new(items, x);
    }
    return items;
}

/* paid_at: the first approved payment's date_approved (new; null when none). */
static json_t *first_approval(const json_t *payments)
{
    size_t i;
    json_t *p;
    json_array_foreach(payments, i, p)
    {
        json_t *t = opt_time(p, "date_approved");
        if (!json_is_null(t))
            return t;
        json_decref(t);
    }
    return json_null();
}

static json_t *normalise_order(const json_t *o)
{
    long long id;
    if (!as_i64(json_object_get(o, "id"), &id) || id <= 0)
        return NULL;
    json_t *ordered = opt_time(o, "date_created");
    if (json_is_null(ordered)) {
        json_decref(ordered);
        return NULL; /* an order without a date cannot be placed on a day */
    }
    const char *st = str(o, "status");
    const char *ship = str(json_object_get(o, "shipping"), "status");
    json_t *n = json_object();
    json_object_set_new(n, "external_id", json_integer(id));
    json_object_set_new(n, "status", json_string(ml_map_order_status(st, ship)));
    json_object_set_new(n, "external_status", st ? json_string(st) : json_null());
    json_object_set_new(n, "total_amount", opt_num(o, "total_amount"));
    json_object_set_new(n, "paid_amount", opt_num(o, "paid_amount"));
    json_object_set_new(n, "currency", opt_str(o, "currency_id"));
    long long buyer;
    json_object_set_new(n, "buyer_id",
                        as_i64(json_object_get(json_object_get(o, "buyer"), "id"), &buyer)
                            ? json_integer(buyer)
                            : json_null());
    json_object_set_new(n, "ordered_at", ordered);
    json_object_set_new(n, "closed_at", opt_time(o, "date_closed"));
    json_t *updated = opt_time(o, "last_updated");
    if (json_is_null(updated)) {
        json_decref(updated);
        updated = opt_time(o, "date_last_updated");
    }
    json_object_set_new(n, "external_updated_at", updated);
    json_object_set_new(n, "paid_at", first_approval(json_object_get(o, "payments")));
    json_object_set_new(n, "refunded_amount", refunded(json_object_get(o, "payments")));
    /* A partial answer (HTTP 206, X-Content-Missing) leaves these out, absent or as an empty
     * object: what it does not say is unknown, not erased (the orders write keeps the stored
     * buyer, and a stored shipped/delivered). */
    json_t *buyer_id = json_object_get(json_object_get(o, "buyer"), "id");
    json_object_set_new(n, "buyer_known", json_boolean(buyer_id != NULL));
    json_t *shipping = json_object_get(o, "shipping");
    json_object_set_new(n, "shipping_known",
                        json_boolean(json_is_object(shipping) && json_object_size(shipping) > 0));
    json_object_set_new(n, "items", normalise_items(o));
    return n;
}

json_t *ml_parse_orders(const char *body, size_t len, long long *total, struct err *e)
{
    *total = -1;
    json_t *j = load(body, len, e, "orders search");
    if (!j)
        return NULL;
    if (!json_is_object(j)) {
        json_decref(j);
        err_set(e, 503, "ml_unavailable", "Mercado Livre's orders search is not an object");
        return NULL;
    }
    long long t;
    if (as_i64(json_object_get(json_object_get(j, "paging"), "total"), &t))
        *total = t;
    json_t *out = json_array();
    size_t i;
    json_t *o;
    json_array_foreach(json_object_get(j, "results"), i, o)
    {
        json_t *n = normalise_order(o);
        if (n)
            json_array_append_new(out, n);
    }
    json_decref(j);
    return out;
}

json_t *ml_parse_order(const char *body, size_t len, struct err *e)
{
    json_t *j = load(body, len, e, "order");
    if (!j)
        return NULL;
    json_t *n = json_is_object(j) ? normalise_order(j) : NULL;
    json_decref(j);
    if (!n)
        err_set(e, 503, "ml_unavailable", "Mercado Livre's order answer is not an order");
    return n;
}

json_t *ml_parse_visits(const char *body, size_t len, struct err *e)
{
    json_t *j = load(body, len, e, "visits");
    if (!j)
        return NULL;
    json_t *results = json_object_get(j, "results");
    if (!json_is_array(results)) {
        json_decref(j);
        err_set(e, 503, "ml_unavailable", "Mercado Livre's visits answer has no results");
        return NULL;
    }
    json_t *out = json_array();
    size_t i;
    json_t *d;
    json_array_foreach(results, i, d)
    {
        const char *date = str(d, "date");
        long long total = 0;
        /* "2021-06-15T00:00:00Z": the UTC day is the date part, taken as is. */
        if (!date || strlen(date) < 10 || !as_i64(json_object_get(d, "total"), &total) ||
            total < 0 || total > 2000000000)
            continue;
        char day[11];
        memcpy(day, date, 10);
        day[10] = '\0';
        if (!util_is_date(day))
            continue;
        json_array_append_new(out,
                              json_pack("{s:s, s:I}", "date", day, "visits", (json_int_t)total));
    }
    json_decref(j);
    return out;
}
