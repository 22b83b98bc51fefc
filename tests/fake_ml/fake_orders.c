/* fake_orders: the control API's order changes (README.md "Changing an order"): cancel, pay,
 * refund, partial-refund and close, applied now or deferred until a page of the seller's
 * orders search has been served (a hook), so a test can move an order while a client pages. */
#include "fake_world.h"

#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_HOOKS 256

static json_t *err_json(const char *msg)
{
    return json_pack("{s:s}", "error", msg);
}

static double cents(double x)
{
    return round(x * 100.0) / 100.0;
}

static double num(const json_t *o, const char *key)
{
    json_t *v = json_object_get(o, key);
    return json_is_number(v) ? json_number_value(v) : 0.0;
}

static const char *str(const json_t *o, const char *key)
{
    const char *s = json_string_value(json_object_get(o, key));
    return s ? s : "";
}

static void touch(json_t *o, const char *now)
{
    json_object_set_new(o, "last_updated", json_string(now));
    json_object_set_new(o, "date_last_updated", json_string(now));
}

/* tags: drop `from`, add `to` once. */
static void retag(json_t *o, const char *from, const char *to)
{
    json_t *tags = json_object_get(o, "tags");
    if (!json_is_array(tags)) {
        tags = json_array();
        json_object_set_new(o, "tags", tags);
    }
    bool has = false;
    for (size_t i = 0; i < json_array_size(tags);) {
        const char *t = json_string_value(json_array_get(tags, i));
        if (t && strcmp(t, from) == 0) {
            json_array_remove(tags, i);
            continue;
        }
        has |= t && strcmp(t, to) == 0;
        i++;
    }
    if (!has)
        json_array_append_new(tags, json_string(to));
}

static json_t *payments_of(json_t *o)
{
    json_t *p = json_object_get(o, "payments");
    if (!json_is_array(p)) {
        p = json_array();
        json_object_set_new(o, "payments", p);
    }
    return p;
}

static bool approved(const json_t *p)
{
    return strcmp(str(p, "status"), "approved") == 0 || strcmp(str(p, "status"), "authorized") == 0;
}

/* What can still be refunded of an approved payment. */
static double refundable(const json_t *p)
{
    return cents(num(p, "transaction_amount") - num(p, "transaction_amount_refunded"));
}

/* Mercado Pago's statuses: an approved payment becomes refunded ("Payment was refunded to the
 * user"), one never approved becomes cancelled ("cancelled by one of the parties"). */
static void close_payments(json_t *o, const char *now)
{
    json_t *pays = payments_of(o), *p;
    size_t i;
    json_array_foreach(pays, i, p)
    {
        if (!json_is_object(p))
            continue;
        if (approved(p)) {
            json_object_set_new(p, "status", json_string("refunded"));
            json_object_set_new(p, "status_detail", json_string("refunded"));
            json_object_set_new(p, "transaction_amount_refunded",
                                json_real(cents(num(p, "transaction_amount"))));
        } else if (strcmp(str(p, "status"), "refunded") != 0) {
            json_object_set_new(p, "status", json_string("cancelled"));
            json_object_set_new(p, "status_detail", json_string("by_collector"));
        }
        json_object_set_new(p, "date_last_modified", json_string(now));
    }
}

static json_t *cancel_detail(json_t *body, const char *group, const char *code,
                             const char *description, const char *by, const char *now)
{
    json_t *given = json_object_get(body, "cancel_detail");
    if (given)
        return json_deep_copy(given);
    return json_pack("{s:s, s:s, s:s, s:s, s:s}", "group", group, "code", code, "description",
                     description, "requested_by", by, "date", now);
}

/* ------------------------------------------------------------------ the actions */

/* Each changes o (a copy of the stored order) at `now`; false with *status and msg on a
 * change the order's state does not allow. */
typedef bool (*action_fn)(json_t *o, json_t *body, const char *now, unsigned *status, char *msg,
                          size_t msglen);

static bool act_cancel(json_t *o, json_t *body, const char *now, unsigned *status, char *msg,
                       size_t msglen)
{
    if (strcmp(str(o, "status"), "cancelled") == 0) {
        snprintf(msg, msglen, "the order is already cancelled");
        *status = 409;
        return false;
    }
    json_object_set_new(o, "status", json_string("cancelled"));
    json_object_set_new(o, "cancel_detail",
                        cancel_detail(body, "seller", "fake_control_cancel",
                                      "Cancelled through the fake's control API", "seller", now));
    close_payments(o, now);
    return true;
}

static bool act_refund(json_t *o, json_t *body, const char *now, unsigned *status, char *msg,
                       size_t msglen)
{
    json_t *pays = payments_of(o), *p;
    size_t i;
    bool any = false;
    json_array_foreach(pays, i, p)
    {
        any |= json_is_object(p) && approved(p);
    }
    if (!any) {
        snprintf(msg, msglen, "no approved payment to refund (cancel the order instead)");
        *status = 409;
        return false;
    }
    /* ML has no "refunded" order status: a fully refunded order is a cancelled one. */
    json_object_set_new(o, "status", json_string("cancelled"));
    json_object_set_new(o, "cancel_detail",
                        cancel_detail(body, "mediations", "fake_control_refund",
                                      "Fully refunded through the fake's control API", "buyer",
                                      now));
    close_payments(o, now);
    return true;
}

static bool act_partial_refund(json_t *o, json_t *body, const char *now, unsigned *status,
                               char *msg, size_t msglen)
{
    json_t *a = json_object_get(body, "amount");
    double amount = json_is_number(a) ? cents(json_number_value(a)) : 0;
    *status = 400;
    if (amount <= 0) {
        snprintf(msg, msglen, "partial-refund needs {\"amount\": a positive number}");
        return false;
    }
    json_t *pays = payments_of(o), *p;
    size_t i;
    double left = 0;
    json_array_foreach(pays, i, p)
    {
        if (json_is_object(p) && approved(p))
            left += refundable(p);
    }
    if (amount >= cents(left)) {
        snprintf(msg, msglen,
                 "amount %.2f is not below the refundable %.2f (use /refund for a full refund)",
                 amount, left);
        *status = left > 0 ? 400 : 409;
        return false;
    }
    /* Spread over the approved payments in order: transaction_amount_refunded grows, the
     * payment stays approved with status_detail partially_refunded (Mercado Pago). */
    double rest = amount;
    json_array_foreach(pays, i, p)
    {
        if (rest <= 0 || !json_is_object(p) || !approved(p) || refundable(p) <= 0)
            continue;
        double take = refundable(p) < rest ? refundable(p) : rest;
        json_object_set_new(p, "transaction_amount_refunded",
                            json_real(cents(num(p, "transaction_amount_refunded") + take)));
        json_object_set_new(p, "status_detail", json_string("partially_refunded"));
        json_object_set_new(p, "date_last_modified", json_string(now));
        rest = cents(rest - take);
    }
    json_object_set_new(o, "status", json_string("partially_refunded"));
    return true;
}

static bool act_pay(json_t *o, json_t *body, const char *now, unsigned *status, char *msg,
                    size_t msglen)
{
    (void)body;
    static const char *const payable[] = {"confirmed", "payment_required", "payment_in_process",
                                          "partially_paid", NULL};
    bool ok = false;
    for (size_t i = 0; payable[i]; i++)
        ok |= strcmp(str(o, "status"), payable[i]) == 0;
    if (!ok) {
        snprintf(msg, msglen, "an order in status %s cannot be paid", str(o, "status"));
        *status = 409;
        return false;
    }
    double total = cents(num(o, "total_amount")), paid = 0;
    json_t *pays = payments_of(o), *p, *pending = NULL;
    size_t i;
    json_array_foreach(pays, i, p)
    {
        if (!json_is_object(p))
            continue;
        if (approved(p))
            paid += num(p, "transaction_amount");
        else if (!pending && strcmp(str(p, "status"), "refunded") != 0 &&
                 strcmp(str(p, "status"), "cancelled") != 0)
            pending = p;
    }
    if (!pending) {
        long long id = json_integer_value(json_object_get(o, "id"));
        pending = json_pack("{s:I, s:I, s:f, s:s, s:s}", "id",
                            (json_int_t)(91000000000LL + id % 1000000000LL), "order_id",
                            (json_int_t)id, "transaction_amount", cents(total - paid),
                            "currency_id", str(o, "currency_id"), "date_created", now);
        json_array_append_new(pays, pending);
    }
    json_object_set_new(pending, "status", json_string("approved"));
    json_object_set_new(pending, "status_detail", json_string("accredited"));
    json_object_set_new(pending, "total_paid_amount",
                        json_real(cents(num(pending, "transaction_amount"))));
    json_object_set_new(pending, "date_approved", json_string(now));
    json_object_set_new(pending, "date_last_modified", json_string(now));
    json_object_set_new(o, "status", json_string("paid"));
    json_object_set_new(o, "paid_amount", json_real(total));
    retag(o, "not_paid", "paid");
    /* date_closed: "set when an order status changes for the first time to confirmed / paid". */
    if (json_is_null(json_object_get(o, "date_closed")))
        json_object_set_new(o, "date_closed", json_string(now));
    return true;
}

static bool act_close(json_t *o, json_t *body, const char *now, unsigned *status, char *msg,
                      size_t msglen)
{
    json_t *d = json_object_get(body, "date_closed");
    long long ms;
    int off;
    if (d && (!json_is_string(d) || !ts_parse(json_string_value(d), &ms, &off))) {
        snprintf(msg, msglen, "date_closed: not a timestamp like 2024-01-15T23:30:00.000-03:00");
        *status = 400;
        return false;
    }
    json_object_set_new(o, "date_closed", d ? json_deep_copy(d) : json_string(now));
    return true;
}

static const char *const cancel_keys[] = {"cancel_detail", NULL};
static const char *const no_keys[] = {NULL};
static const char *const amount_keys[] = {"amount", NULL};
static const char *const close_keys[] = {"date_closed", NULL};

static const struct {
    const char *name;
    action_fn fn;
    const char *const *keys; /* the body keys it takes besides on_page/on_offset */
} actions[] = {
    {"cancel", act_cancel, cancel_keys}, {"pay", act_pay, no_keys},
    {"refund", act_refund, cancel_keys}, {"partial-refund", act_partial_refund, amount_keys},
    {"close", act_close, close_keys},
};

static int action_index(const char *name)
{
    for (size_t i = 0; i < sizeof actions / sizeof actions[0]; i++)
        if (strcmp(actions[i].name, name) == 0)
            return (int)i;
    return -1;
}

/* Applies action ai to order id of s now (world.lock held). 200 with the new order in *out,
 * or an error status with {"error"}. */
static unsigned apply(struct seller *s, long long id, int ai, json_t *body, json_t **out)
{
    struct order *o = world_order_find(s, id);
    if (!o) {
        *out = err_json("unknown order (or one of another seller)");
        return 404;
    }
    json_t *j = json_loads(o->json, 0, NULL);
    if (!j)
        fatal("stored order does not parse");
    char now[TS_BUF], msg[256];
    ts_now_sp(now);
    unsigned status = 400;
    if (!actions[ai].fn(j, body, now, &status, msg, sizeof msg)) {
        json_decref(j);
        *out = err_json(msg);
        return status;
    }
    /* A change on the real API moves last_updated and date_last_updated. */
    touch(j, now);
    if (!world_order_put(s, j, msg, sizeof msg)) {
        json_decref(j);
        *out = err_json(msg);
        return 400;
    }
    *out = j;
    return 200;
}

/* ------------------------------------------------------------------ hooks */

static json_t *hook_json(const struct hook *h)
{
    json_t *j =
        json_pack("{s:I, s:I, s:I, s:s, s:O, s:I, s:b}", "id", (json_int_t)h->id, "seller",
                  (json_int_t)h->seller, "order_id", (json_int_t)h->order_id, "action", h->action,
                  "body", h->body, "pages_seen", (json_int_t)h->pages_seen, "applied", h->applied);
    if (h->on_page)
        json_object_set_new(j, "on_page", json_integer(h->on_page));
    if (h->on_offset >= 0)
        json_object_set_new(j, "on_offset", json_integer(h->on_offset));
    if (h->applied) {
        char at[TS_BUF];
        ts_format(h->applied_ms, 0, true, at);
        json_object_set_new(j, "applied_at", json_string(at));
        json_object_set_new(j, "result", json_incref(h->result));
    }
    return j;
}

void hooks_page_served(struct seller *s, long long offset)
{
    for (size_t i = 0; i < g_world.nhooks; i++) {
        struct hook *h = &g_world.hooks[i];
        if (h->applied || h->seller != s->user_id)
            continue;
        h->pages_seen++;
        bool due = h->on_page ? h->pages_seen >= h->on_page : h->on_offset == offset;
        if (!due)
            continue;
        json_t *res = NULL;
        unsigned st = apply(s, h->order_id, action_index(h->action), h->body, &res);
        h->applied = true;
        h->applied_ms = now_ms();
        h->result = st == 200 ? res
                              : json_pack("{s:I, s:o}", "status", (json_int_t)st, "error",
                                          json_incref(json_object_get(res, "error")));
        if (st != 200)
            json_decref(res);
        stats_count(C_HOOKS_APPLIED);
    }
}

void hooks_free(void)
{
    for (size_t i = 0; i < g_world.nhooks; i++) {
        json_decref(g_world.hooks[i].body);
        json_decref(g_world.hooks[i].result);
    }
    free(g_world.hooks);
    g_world.hooks = NULL;
    g_world.nhooks = g_world.caphooks = 0;
}

unsigned world_hooks(json_t **out)
{
    pthread_mutex_lock(&g_world.lock);
    json_t *arr = json_array();
    for (size_t i = 0; i < g_world.nhooks; i++)
        json_array_append_new(arr, hook_json(&g_world.hooks[i]));
    pthread_mutex_unlock(&g_world.lock);
    *out = arr;
    return 200;
}

unsigned world_hooks_clear(json_t **out)
{
    pthread_mutex_lock(&g_world.lock);
    hooks_free();
    pthread_mutex_unlock(&g_world.lock);
    *out = json_array();
    return 200;
}

/* ------------------------------------------------------------------ the control call */

/* body: NULL or an object of the action's keys plus on_page / on_offset. */
static bool check_body(int ai, json_t *body, long long *on_page, long long *on_offset, char *msg,
                       size_t msglen)
{
    *on_page = 0;
    *on_offset = -1;
    if (!body)
        return true;
    if (!json_is_object(body)) {
        snprintf(msg, msglen, "expected a JSON object");
        return false;
    }
    const char *k;
    json_t *v;
    json_object_foreach(body, k, v)
    {
        bool ok = strcmp(k, "on_page") == 0 || strcmp(k, "on_offset") == 0;
        for (size_t i = 0; actions[ai].keys[i]; i++)
            ok |= strcmp(k, actions[ai].keys[i]) == 0;
        if (!ok) {
            snprintf(msg, msglen, "%s: unknown key \"%s\"", actions[ai].name, k);
            return false;
        }
    }
    json_t *p = json_object_get(body, "on_page"), *f = json_object_get(body, "on_offset");
    if (p && (!json_is_integer(p) || json_integer_value(p) < 1 || json_integer_value(p) > 100000)) {
        snprintf(msg, msglen, "on_page: expected an integer 1..100000");
        return false;
    }
    if (f && (!json_is_integer(f) || json_integer_value(f) < 0 || json_integer_value(f) > 9999)) {
        snprintf(msg, msglen, "on_offset: expected an integer 0..9999");
        return false;
    }
    if (p && f) {
        snprintf(msg, msglen, "give on_page or on_offset, not both");
        return false;
    }
    *on_page = p ? json_integer_value(p) : 0;
    *on_offset = f ? json_integer_value(f) : -1;
    json_t *cd = json_object_get(body, "cancel_detail");
    if (cd && !json_is_object(cd)) {
        snprintf(msg, msglen, "cancel_detail: expected an object");
        return false;
    }
    return true;
}

unsigned world_order_action(long long user_id, long long order_id, const char *action, json_t *body,
                            json_t **out)
{
    int ai = action_index(action);
    char msg[256];
    long long on_page, on_offset;
    if (ai < 0) {
        *out = err_json("unknown order action (cancel, pay, refund, partial-refund, close)");
        return 404;
    }
    if (!check_body(ai, body, &on_page, &on_offset, msg, sizeof msg)) {
        *out = err_json(msg);
        return 400;
    }
    pthread_mutex_lock(&g_world.lock);
    unsigned st;
    struct seller *s = world_seller(user_id);
    if (!s) {
        *out = err_json("unknown seller"), st = 404;
    } else if (!on_page && on_offset < 0) {
        st = apply(s, order_id, ai, body, out);
    } else if (!world_order_find(s, order_id)) {
        *out = err_json("unknown order (or one of another seller)"), st = 404;
    } else if (g_world.nhooks == MAX_HOOKS) {
        *out = err_json("too many hooks (DELETE /__fake/hooks)"), st = 400;
    } else {
        if (g_world.nhooks == g_world.caphooks) {
            g_world.caphooks = g_world.caphooks ? g_world.caphooks * 2 : 8;
            g_world.hooks = xrealloc(g_world.hooks, g_world.caphooks * sizeof *g_world.hooks);
        }
        struct hook *h = &g_world.hooks[g_world.nhooks++];
        memset(h, 0, sizeof *h);
        h->id = ++g_world.hook_serial;
        h->seller = user_id;
        h->order_id = order_id;
        snprintf(h->action, sizeof h->action, "%s", actions[ai].name);
        h->body = body ? json_deep_copy(body) : json_object();
        json_object_del(h->body, "on_page");
        json_object_del(h->body, "on_offset");
        h->on_page = on_page;
        h->on_offset = on_offset;
        *out = hook_json(h);
        st = 202;
    }
    pthread_mutex_unlock(&g_world.lock);
    return st;
}
