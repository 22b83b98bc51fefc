/* fake_state: loads a scenario into the world (explicit data and deterministic generators),
 * and the world operations of the control API (upserts, token inspection). */
#include "fake_world.h"

#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct world g_world = {.lock = PTHREAD_MUTEX_INITIALIZER};

#define DEFAULT_ACCESS_TTL_S 21600
#define DEFAULT_SCROLL_TTL_S 300
#define MAX_GENERATED        2000000
#define SAO_PAULO_OFFSET_MIN (-180)

/* The scenario loader's error: one message with the JSON path of the culprit. */
static char g_err[512];

static bool fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Prepends "where." to the current error. */
static bool fail_in(const char *where)
{
    size_t wl = strlen(where), el = strlen(g_err);
    if (wl + 2 >= sizeof g_err)
        return false;
    if (el > sizeof g_err - wl - 2)
        el = sizeof g_err - wl - 2;
    memmove(g_err + wl + 1, g_err, el);
    memcpy(g_err, where, wl);
    g_err[wl] = '.';
    g_err[wl + 1 + el] = '\0';
    return false;
}
static bool fail(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(g_err, sizeof g_err, fmt, ap);
    va_end(ap);
    return false;
}

/* Load-time context: the generator anchor and the --rebase shift. */
static long long g_anchor_ms;
static long long g_shift_days;

/* ------------------------------------------------------------------ validation helpers */

/* Every key of obj is in allowed (keys starting with '_' are comments). */
static bool check_keys(json_t *obj, const char *const allowed[], const char *where)
{
    const char *k;
    json_t *v;
    json_object_foreach(obj, k, v)
    {
        (void)v;
        if (k[0] == '_')
            continue;
        bool ok = false;
        for (size_t i = 0; allowed[i]; i++)
            if (strcmp(k, allowed[i]) == 0)
                ok = true;
        if (!ok)
            return fail("%s: unknown key \"%s\"", where, k);
    }
    return true;
}

static bool opt_int(const json_t *obj, const char *key, long long min, long long max, long long def,
                    long long *out, const char *where)
{
    json_t *v = json_object_get(obj, key);
    *out = def;
    if (!v || json_is_null(v))
        return true;
    if (!json_is_integer(v) || json_integer_value(v) < min || json_integer_value(v) > max)
        return fail("%s.%s: expected an integer in %lld..%lld", where, key, min, max);
    *out = json_integer_value(v);
    return true;
}

static bool opt_str(const json_t *obj, const char *key, const char *def, const char **out,
                    const char *where)
{
    json_t *v = json_object_get(obj, key);
    *out = def;
    if (!v || json_is_null(v))
        return true;
    if (!json_is_string(v))
        return fail("%s.%s: expected a string", where, key);
    *out = json_string_value(v);
    return true;
}

static bool opt_bool(const json_t *obj, const char *key, bool def, bool *out, const char *where)
{
    json_t *v = json_object_get(obj, key);
    *out = def;
    if (!v || json_is_null(v))
        return true;
    if (!json_is_boolean(v))
        return fail("%s.%s: expected true or false", where, key);
    *out = json_is_true(v);
    return true;
}

static bool valid_item_id(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > 64)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '-'))
            return false;
    }
    return true;
}

/* ------------------------------------------------------------------ lookups */

struct seller *world_seller(long long user_id)
{
    for (size_t i = 0; i < g_world.nsellers; i++)
        if (g_world.sellers[i].user_id == user_id)
            return &g_world.sellers[i];
    return NULL;
}

struct item *world_item(const char *id, struct seller **owner)
{
    for (size_t i = 0; i < g_world.nsellers; i++) {
        struct seller *s = &g_world.sellers[i];
        json_t *ix = json_object_get(s->item_index, id);
        if (ix) {
            if (owner)
                *owner = s;
            return &s->items[json_integer_value(ix)];
        }
    }
    return NULL;
}

long long world_visits(const struct seller *s, const struct item *it, long long day)
{
    if (it->visits) {
        char d[DATE_BUF];
        date_format(day, d);
        json_t *v = json_object_get(it->visits, d);
        if (v)
            return json_integer_value(v);
    }
    if (s->gen_visits && day >= s->gv_first && day <= s->gv_last) {
        uint64_t h = mix64(s->gv_seed ^ hash_str(it->id) ^ mix64((uint64_t)day));
        /* About one day in five is a zero day; the rest uniform in 1..max. */
        if (s->gv_max == 0 || h % 5 == 0)
            return 0;
        return 1 + (long long)((h >> 8) % (uint64_t)s->gv_max);
    }
    return 0;
}

void world_rotate_tokens(struct seller *s)
{
    struct rng *r = &g_world.token_rng;
    g_world.token_serial++;
    char buf[160];
    uint64_t a = rng_next(r), b = rng_next(r), c = rng_next(r), d = rng_next(r);
    snprintf(buf, sizeof buf, "APP_USR-%016llu-%06llu-%016llx%016llx-%lld",
             (unsigned long long)(a % 10000000000000000ULL), g_world.token_serial % 1000000,
             (unsigned long long)b, (unsigned long long)c, s->user_id);
    free(s->access_token);
    s->access_token = xstrdup(buf);
    snprintf(buf, sizeof buf, "TG-%016llx%08llx-%lld", (unsigned long long)d,
             (unsigned long long)(rng_next(r) & 0xffffffffULL), s->user_id);
    free(s->refresh_token);
    s->refresh_token = xstrdup(buf);
    s->access_expires_ms = now_ms() + g_world.access_ttl_s * 1000;
}

/* ------------------------------------------------------------------ timestamps */

/* Shifts a timestamp field by the --rebase day count, keeping its offset and style. */
static bool shift_field(json_t *obj, const char *key, const char *where)
{
    json_t *v = json_object_get(obj, key);
    if (!v || json_is_null(v))
        return true;
    if (!json_is_string(v))
        return fail("%s.%s: expected a timestamp string", where, key);
    long long ms;
    int off;
    const char *s = json_string_value(v);
    if (!ts_parse(s, &ms, &off))
        return fail("%s.%s: \"%s\" is not a timestamp like 2024-01-15T23:30:00.000-03:00", where,
                    key, s);
    if (g_shift_days == 0)
        return true;
    char out[TS_BUF];
    ts_format(ms + g_shift_days * 86400000LL, off, s[strlen(s) - 1] == 'Z', out);
    json_object_set_new(obj, key, json_string(out));
    return true;
}

static void set_default(json_t *obj, const char *key, json_t *value)
{
    if (!json_object_get(obj, key))
        json_object_set_new(obj, key, value);
    else
        json_decref(value);
}

/* ------------------------------------------------------------------ items */

static struct item *item_append(struct seller *s)
{
    if (s->nitems == s->capitems) {
        s->capitems = s->capitems ? s->capitems * 2 : 64;
        s->items = xrealloc(s->items, s->capitems * sizeof *s->items);
    }
    struct item *it = &s->items[s->nitems++];
    memset(it, 0, sizeof *it);
    return it;
}

static void item_clear(struct item *it)
{
    free(it->id);
    free(it->status);
    free(it->title);
    free(it->json);
    json_decref(it->visits);
    memset(it, 0, sizeof *it);
}

/* Completes an item object in place (defaults, seller_id) and takes out the scenario flags. */
static bool item_normalize(json_t *o, const struct seller *s, bool *blocked, bool *missing,
                           bool shift, const char *where)
{
    const char *id;
    if (!opt_str(o, "id", NULL, &id, where))
        return false;
    if (!id || !valid_item_id(id))
        return fail("%s.id: expected an item id like \"MLB123\" ([A-Za-z0-9_-], 1..64)", where);
    if (!opt_bool(o, "policy_blocked", false, blocked, where) ||
        !opt_bool(o, "missing", false, missing, where))
        return false;
    json_object_del(o, "policy_blocked");
    json_object_del(o, "missing");
    const char *status;
    if (!opt_str(o, "status", "active", &status, where))
        return false;
    json_t *price = json_object_get(o, "price");
    if (price && !json_is_number(price))
        return fail("%s.price: expected a number", where);
    if (shift && (!shift_field(o, "date_created", where) || !shift_field(o, "last_updated", where)))
        return false;
    char link[256];
    snprintf(link, sizeof link, "https://produto.mercadolivre.com.br/%.3s-%s-item-_JM", id,
             strlen(id) > 3 ? id + 3 : id);
    json_object_set_new(o, "seller_id", json_integer(s->user_id));
    set_default(o, "site_id", json_string("MLB"));
    char title[96];
    snprintf(title, sizeof title, "Item %s", id);
    set_default(o, "title", json_string(title));
    set_default(o, "category_id", json_string("MLB1055"));
    set_default(o, "price", json_real(100.0));
    set_default(o, "base_price", json_deep_copy(json_object_get(o, "price")));
    set_default(o, "original_price", json_null());
    set_default(o, "currency_id", json_string("BRL"));
    set_default(o, "available_quantity", json_integer(10));
    set_default(o, "sold_quantity", json_integer(0));
    json_t *aq = json_object_get(o, "available_quantity"),
           *sq = json_object_get(o, "sold_quantity");
    set_default(o, "initial_quantity",
                json_integer((json_is_integer(aq) ? json_integer_value(aq) : 0) +
                             (json_is_integer(sq) ? json_integer_value(sq) : 0)));
    set_default(o, "listing_type_id", json_string("gold_special"));
    set_default(o, "condition", json_string("new"));
    set_default(o, "permalink", json_string(link));
    set_default(o, "thumbnail", json_string("http://http2.mlstatic.com/D_NQ_NP_000000-I.jpg"));
    set_default(o, "status", json_string(status));
    set_default(o, "sub_status", json_array());
    set_default(o, "pictures", json_array());
    set_default(o, "tags", json_array());
    set_default(o, "date_created", json_string("2023-06-01T12:00:00.000Z"));
    set_default(o, "last_updated", json_deep_copy(json_object_get(o, "date_created")));
    set_default(o, "health", json_null());
    return true;
}

/* Stores a normalized item into it (replacing what was there except the visits). */
static void item_store(struct item *it, json_t *o, bool blocked, bool missing)
{
    free(it->id);
    free(it->status);
    free(it->title);
    free(it->json);
    it->id = xstrdup(json_string_value(json_object_get(o, "id")));
    json_t *st = json_object_get(o, "status"), *ti = json_object_get(o, "title");
    it->status = xstrdup(json_is_string(st) ? json_string_value(st) : "");
    it->title = xstrdup(json_is_string(ti) ? json_string_value(ti) : "");
    json_t *pr = json_object_get(o, "price");
    it->price = json_is_number(pr) ? json_number_value(pr) : 0;
    it->json = dump_json(o);
    it->policy_blocked = blocked;
    it->missing = missing;
}

static bool load_items(struct seller *s, const json_t *arr, const char *where)
{
    if (!json_is_array(arr))
        return fail("%s: expected an array", where);
    size_t i;
    json_t *v;
    json_array_foreach(arr, i, v)
    {
        char w[160];
        snprintf(w, sizeof w, "%s[%zu]", where, i);
        if (!json_is_object(v))
            return fail("%s: expected an object", w);
        json_t *o = json_deep_copy(v);
        bool blocked, missing;
        if (!item_normalize(o, s, &blocked, &missing, true, w)) {
            json_decref(o);
            return false;
        }
        const char *id = json_string_value(json_object_get(o, "id"));
        if (world_item(id, NULL)) {
            json_decref(o);
            return fail("%s.id: duplicate item id %s", w, id);
        }
        struct item *it = item_append(s);
        item_store(it, o, blocked, missing);
        json_object_set_new(s->item_index, it->id, json_integer((json_int_t)(s->nitems - 1)));
        json_decref(o);
    }
    return true;
}

/* A weighted choice among the keys of a {"name": weight} object. */
struct mix {
    size_t n;
    const char *names[32];
    long long weights[32];
    long long total;
};

static bool parse_mix(json_t *obj, struct mix *m, const char *where)
{
    memset(m, 0, sizeof *m);
    if (!json_is_object(obj))
        return fail("%s: expected an object {\"status\": weight}", where);
    const char *k;
    json_t *v;
    json_object_foreach(obj, k, v)
    {
        if (m->n == 32)
            return fail("%s: at most 32 entries", where);
        if (!json_is_integer(v) || json_integer_value(v) < 0 || json_integer_value(v) > 1000000)
            return fail("%s.%s: expected an integer weight 0..1000000", where, k);
        m->names[m->n] = k;
        m->weights[m->n] = json_integer_value(v);
        m->total += m->weights[m->n];
        m->n++;
    }
    if (m->total <= 0)
        return fail("%s: weights must add up to more than 0", where);
    return true;
}

static const char *mix_pick(const struct mix *m, struct rng *r)
{
    long long x = (long long)rng_below(r, (uint64_t)m->total);
    for (size_t i = 0; i < m->n; i++) {
        if (x < m->weights[i])
            return m->names[i];
        x -= m->weights[i];
    }
    return m->names[m->n - 1];
}

static const char *const item_titles[] = {
    "Fone de Ouvido Bluetooth", "Cabo USB-C 2m",     "Capa para Celular", "Carregador Turbo 20W",
    "Smartwatch Esportivo",     "Mouse Sem Fio",     "Teclado Mecanico",  "Garrafa Termica 1L",
    "Mochila Notebook 15",      "Luminaria LED Mesa"};

static bool generate_items(struct seller *s, json_t *g, size_t seller_ix, const char *where)
{
    static const char *const keys[] = {
        "count",         "prefix",     "start", "step", "policy_blocked_every",
        "missing_every", "status_mix", NULL};
    if (!json_is_object(g))
        return fail("%s: expected an object", where);
    long long count, start, step, pbe, me;
    const char *prefix;
    if (!check_keys(g, keys, where) || !opt_int(g, "count", 0, MAX_GENERATED, 0, &count, where) ||
        !opt_str(g, "prefix", "MLB", &prefix, where) ||
        !opt_int(g, "start", 0, 999999999999999LL, 1000000000, &start, where) ||
        !opt_int(g, "step", 1, 1000000, 1, &step, where) ||
        !opt_int(g, "policy_blocked_every", 0, INT_MAX, 0, &pbe, where) ||
        !opt_int(g, "missing_every", 0, INT_MAX, 0, &me, where))
        return false;
    if (strlen(prefix) > 16 || !valid_item_id(prefix))
        return fail("%s.prefix: expected 1..16 characters [A-Za-z0-9_-]", where);
    struct mix mix = {
        .n = 3, .names = {"active", "paused", "closed"}, .weights = {90, 8, 2}, .total = 100};
    json_t *jm = json_object_get(g, "status_mix");
    if (jm && !parse_mix(jm, &mix, where))
        return false;
    struct rng r = {g_world.seed ^ mix64((uint64_t)s->user_id) ^ 0x17e45ULL ^ seller_ix};
    for (long long i = 1; i <= count; i++) {
        char id[96];
        long long num = start + (i - 1) * step;
        snprintf(id, sizeof id, "%s%lld", prefix, num);
        if (world_item(id, NULL))
            return fail("%s: generated id %s collides with an explicit item", where, id);
        long long cents = 990 + (long long)rng_below(&r, 99000);
        long long avail = (long long)rng_below(&r, 200), sold = (long long)rng_below(&r, 500);
        long long created = g_anchor_ms - 86400000LL * (30 + (long long)rng_below(&r, 700)) -
                            (long long)rng_below(&r, 86400000);
        long long updated = created + (long long)rng_below(&r, 86400000LL * 30);
        if (updated > g_anchor_ms)
            updated = g_anchor_ms;
        char dc[TS_BUF], du[TS_BUF], title[128], link[256];
        ts_format(created, 0, true, dc);
        ts_format(updated, 0, true, du);
        snprintf(title, sizeof title, "%s %lld",
                 item_titles[rng_below(&r, sizeof item_titles / sizeof item_titles[0])], i);
        snprintf(link, sizeof link, "https://produto.mercadolivre.com.br/%s-%lld-item-gerado-_JM",
                 prefix, num);
        const char *status = mix_pick(&mix, &r);
        json_t *o = json_pack(
            "{s:s, s:s, s:s, s:I, s:s, s:f, s:f, s:n, s:s, s:I, s:I, s:I, s:s, s:s, s:s, s:s,"
            " s:s, s:[], s:[], s:[s], s:s, s:s, s:n}",
            "id", id, "site_id", "MLB", "title", title, "seller_id", (json_int_t)s->user_id,
            "category_id", "MLB1055", "price", (double)cents / 100.0, "base_price",
            (double)cents / 100.0, "original_price", "currency_id", "BRL", "initial_quantity",
            (json_int_t)(avail + sold), "available_quantity", (json_int_t)avail, "sold_quantity",
            (json_int_t)sold, "listing_type_id", i % 3 == 0 ? "gold_pro" : "gold_special",
            "condition", "new", "permalink", link, "thumbnail",
            "http://http2.mlstatic.com/D_NQ_NP_000000-I.jpg", "status", status, "sub_status",
            "pictures", "tags", "good_quality_thumbnail", "date_created", dc, "last_updated", du,
            "health");
        if (!o)
            fatal("json_pack failed (generated item)");
        struct item *it = item_append(s);
        item_store(it, o, pbe > 0 && i % pbe == 0, me > 0 && i % me == 0);
        json_object_set_new(s->item_index, it->id, json_integer((json_int_t)(s->nitems - 1)));
        json_decref(o);
    }
    return true;
}

/* ------------------------------------------------------------------ orders */

/* A seller's search sorts by date_closed, or date_created while date_closed is null (ML's
 * orders page, "Ordenar las órdenes"), ties by id. */
static int order_cmp(const void *a, const void *b)
{
    const struct order *x = a, *y = b;
    if (x->sort_ms != y->sort_ms)
        return x->sort_ms < y->sort_ms ? -1 : 1;
    return x->id < y->id ? -1 : x->id > y->id;
}

static void orders_sort(struct seller *s)
{
    if (s->norders > 1)
        qsort(s->orders, s->norders, sizeof *s->orders, order_cmp);
}

static struct order *order_append(struct seller *s)
{
    if (s->norders == s->caporders) {
        s->caporders = s->caporders ? s->caporders * 2 : 256;
        s->orders = xrealloc(s->orders, s->caporders * sizeof *s->orders);
    }
    struct order *o = &s->orders[s->norders++];
    memset(o, 0, sizeof *o);
    return o;
}

static void order_clear(struct order *o)
{
    free(o->status);
    free(o->json);
    memset(o, 0, sizeof *o);
}

static double round2(double x)
{
    long long c = (long long)(x * 100.0 + (x >= 0 ? 0.5 : -0.5));
    return (double)c / 100.0;
}

/* date_closed is set "when an order status changes for the first time to confirmed / paid"
 * (ML's orders page): an order still waiting for its payment has none. */
static bool closes_later(const char *status)
{
    return strcmp(status, "payment_required") == 0 || strcmp(status, "payment_in_process") == 0 ||
           strcmp(status, "partially_paid") == 0;
}

/* Statuses an order only reaches through confirmed or paid. */
static bool has_closed(const char *status)
{
    return strcmp(status, "confirmed") == 0 || strcmp(status, "paid") == 0 ||
           strcmp(status, "partially_refunded") == 0;
}

/* Completes an order object in place. shift: apply --rebase (scenario data only). */
static bool order_normalize(json_t *o, const struct seller *s, bool shift, const char *where)
{
    json_t *id = json_object_get(o, "id");
    if (!json_is_integer(id) || json_integer_value(id) <= 0)
        return fail("%s.id: expected a positive 64-bit integer", where);
    const char *status;
    if (!opt_str(o, "status", "paid", &status, where))
        return false;
    if (!json_is_string(json_object_get(o, "date_created")))
        return fail("%s.date_created: required timestamp string", where);
    static const char *const tsk[] = {"date_created", "date_closed", "last_updated",
                                      "date_last_updated", NULL};
    for (size_t i = 0; tsk[i]; i++) {
        if (shift) {
            if (!shift_field(o, tsk[i], where))
                return false;
        } else {
            long long ms;
            int off;
            json_t *v = json_object_get(o, tsk[i]);
            if (v && !json_is_null(v) &&
                (!json_is_string(v) || !ts_parse(json_string_value(v), &ms, &off)))
                return fail("%s.%s: not a timestamp like 2024-01-15T23:30:00.000-03:00", where,
                            tsk[i]);
        }
    }
    json_t *items = json_object_get(o, "order_items");
    if (items && !json_is_array(items))
        return fail("%s.order_items: expected an array", where);
    double total = 0;
    size_t i;
    json_t *oi;
    json_array_foreach(items, i, oi)
    {
        json_t *item = json_object_get(oi, "item");
        if (!json_is_object(oi) || !json_is_object(item) ||
            !json_is_string(json_object_get(item, "id")))
            return fail("%s.order_items[%zu]: expected {\"item\": {\"id\": ...}, ...}", where, i);
        json_t *q = json_object_get(oi, "quantity"), *up = json_object_get(oi, "unit_price");
        if (q && !json_is_integer(q))
            return fail("%s.order_items[%zu].quantity: expected an integer", where, i);
        if (up && !json_is_number(up))
            return fail("%s.order_items[%zu].unit_price: expected a number", where, i);
        set_default(oi, "quantity", json_integer(1));
        set_default(oi, "unit_price", json_real(0));
        set_default(oi, "full_unit_price", json_deep_copy(json_object_get(oi, "unit_price")));
        set_default(oi, "currency_id", json_string("BRL"));
        set_default(item, "variation_id", json_null());
        total += (double)json_integer_value(json_object_get(oi, "quantity")) *
                 json_number_value(json_object_get(oi, "unit_price"));
    }
    if (shift) {
        json_t *pays = json_object_get(o, "payments");
        json_t *p;
        json_array_foreach(pays, i, p)
        {
            if (json_is_object(p) && (!shift_field(p, "date_approved", where) ||
                                      !shift_field(p, "date_created", where) ||
                                      !shift_field(p, "date_last_modified", where)))
                return false;
        }
    }
    json_t *dc = json_object_get(o, "date_created"); /* after the shift replaced it */
    set_default(o, "status", json_string(status));
    set_default(o, "status_detail", json_null());
    set_default(o, "date_closed", closes_later(status) ? json_null() : json_deep_copy(dc));
    json_t *dcl = json_object_get(o, "date_closed");
    set_default(o, "last_updated", json_deep_copy(json_is_null(dcl) ? dc : dcl));
    set_default(o, "date_last_updated", json_deep_copy(json_object_get(o, "last_updated")));
    set_default(o, "total_amount", json_real(round2(total)));
    set_default(o, "paid_amount", json_deep_copy(json_object_get(o, "total_amount")));
    set_default(o, "currency_id", json_string("BRL"));
    set_default(o, "pack_id", json_null());
    set_default(o, "order_items", json_array());
    set_default(o, "buyer", json_pack("{s:I}", "id", (json_int_t)100000001));
    json_object_set_new(o, "seller", json_pack("{s:I}", "id", (json_int_t)s->user_id));
    set_default(o, "payments", json_array());
    set_default(o, "shipping", json_pack("{s:n}", "id"));
    set_default(o, "tags", json_array());
    set_default(o, "cancel_detail", json_null());
    return true;
}

/* Fills a slot from a normalized order. */
static void order_store(struct order *slot, json_t *o)
{
    free(slot->status);
    free(slot->json);
    long long ms;
    int off;
    slot->id = json_integer_value(json_object_get(o, "id"));
    if (!ts_parse(json_string_value(json_object_get(o, "date_created")), &ms, &off))
        fatal("order_store: unparsable date_created");
    slot->created_ms = ms;
    json_t *dcl = json_object_get(o, "date_closed");
    slot->closed_ms = LLONG_MIN;
    if (json_is_string(dcl) && ts_parse(json_string_value(dcl), &ms, &off))
        slot->closed_ms = ms;
    slot->sort_ms = slot->closed_ms != LLONG_MIN ? slot->closed_ms : slot->created_ms;
    json_t *lu = json_object_get(o, "date_last_updated");
    if (!json_is_string(lu))
        lu = json_object_get(o, "last_updated");
    if (!json_is_string(lu) || !ts_parse(json_string_value(lu), &slot->updated_ms, &off))
        slot->updated_ms = ms;
    json_t *st = json_object_get(o, "status");
    slot->status = xstrdup(json_is_string(st) ? json_string_value(st) : "");
    slot->json = dump_json(o);
}

struct order *world_order_find(struct seller *s, long long id)
{
    for (size_t i = 0; i < s->norders; i++)
        if (s->orders[i].id == id)
            return &s->orders[i];
    return NULL;
}

struct order *world_order_find_any(long long id, struct seller **owner)
{
    for (size_t i = 0; i < g_world.nsellers; i++) {
        struct order *o = world_order_find(&g_world.sellers[i], id);
        if (o) {
            if (owner)
                *owner = &g_world.sellers[i];
            return o;
        }
    }
    return NULL;
}

void ts_now_sp(char out[TS_BUF])
{
    ts_format(now_ms(), SAO_PAULO_OFFSET_MIN, false, out);
}

bool world_order_put(struct seller *s, json_t *o, char *err, size_t errlen)
{
    if (!order_normalize(o, s, false, "order")) {
        snprintf(err, errlen, "%s", g_err);
        return false;
    }
    struct order *old = world_order_find(s, json_integer_value(json_object_get(o, "id")));
    order_store(old ? old : order_append(s), o);
    orders_sort(s);
    return true;
}

static bool load_orders(struct seller *s, const json_t *arr, const char *where)
{
    if (!json_is_array(arr))
        return fail("%s: expected an array", where);
    size_t i;
    json_t *v;
    json_array_foreach(arr, i, v)
    {
        char w[160];
        snprintf(w, sizeof w, "%s[%zu]", where, i);
        if (!json_is_object(v))
            return fail("%s: expected an object", w);
        json_t *o = json_deep_copy(v);
        if (!order_normalize(o, s, true, w)) {
            json_decref(o);
            return false;
        }
        long long id = json_integer_value(json_object_get(o, "id"));
        if (world_order_find_any(id, NULL)) {
            json_decref(o);
            return fail("%s.id: duplicate order id %lld", w, id);
        }
        order_store(order_append(s), o);
        json_decref(o);
    }
    return true;
}

static int ll_cmp(const void *a, const void *b)
{
    long long x = *(const long long *)a, y = *(const long long *)b;
    return x < y ? -1 : x > y;
}

static bool generate_orders(struct seller *s, json_t *g, size_t seller_ix, const char *where)
{
    static const char *const keys[] = {
        "count",    "days", "items_per_order_max", "status_mix", "unknown_item_every",
        "id_start", NULL};
    if (!json_is_object(g))
        return fail("%s: expected an object", where);
    long long count, days, ipo, uie, id_start;
    if (!check_keys(g, keys, where) || !opt_int(g, "count", 0, MAX_GENERATED, 0, &count, where) ||
        !opt_int(g, "days", 1, 3650, 30, &days, where) ||
        !opt_int(g, "items_per_order_max", 1, 50, 3, &ipo, where) ||
        !opt_int(g, "unknown_item_every", 0, INT_MAX, 0, &uie, where) ||
        !opt_int(g, "id_start", 1, LLONG_MAX / 4,
                 2000010000000000LL + (long long)seller_ix * 100000000LL, &id_start, where))
        return false;
    struct mix mix = {.n = 3,
                      .names = {"paid", "cancelled", "payment_in_process"},
                      .weights = {85, 10, 5},
                      .total = 100};
    json_t *jm = json_object_get(g, "status_mix");
    if (jm && !parse_mix(jm, &mix, where))
        return false;
    struct rng r = {g_world.seed ^ mix64((uint64_t)s->user_id) ^ 0x0bde5ULL ^ seller_ix};
    long long *times = xcalloc((size_t)count, sizeof *times);
    long long span = days * 86400000LL;
    for (long long i = 0; i < count; i++)
        times[i] = g_anchor_ms - 1 - (long long)rng_below(&r, (uint64_t)span);
    qsort(times, (size_t)count, sizeof *times, ll_cmp);
    long long id = id_start;
    for (long long i = 0; i < count; i++) {
        id += 1 + (long long)rng_below(&r, 9);
        /* One order in five in -04:00 (Manaus), the rest in São Paulo's -03:00. */
        int off = rng_below(&r, 5) == 0 ? -240 : SAO_PAULO_OFFSET_MIN;
        const char *status = mix_pick(&mix, &r);
        long long closed = times[i] + 1000 * (long long)rng_below(&r, 600);
        long long updated = closed + 1000 * (long long)rng_below(&r, 86400);
        char dc[TS_BUF], dcl[TS_BUF], du[TS_BUF];
        ts_format(times[i], off, false, dc);
        ts_format(closed, off, false, dcl);
        ts_format(updated, off, false, du);
        json_t *items = json_array();
        long long nitems = 1 + (long long)rng_below(&r, (uint64_t)ipo);
        double total = 0;
        for (long long k = 0; k < nitems; k++) {
            char iid[96];
            const char *item_id = iid;
            long long cents = 990 + (long long)rng_below(&r, 20000);
            const char *title = "Item desconhecido";
            if ((uie > 0 && (i + 1) % uie == 0 && k == 0) || s->nitems == 0) {
                snprintf(iid, sizeof iid, "MLB%lld", 8000000000LL + i);
            } else {
                const struct item *it = &s->items[rng_below(&r, s->nitems)];
                item_id = it->id;
                cents = (long long)(it->price * 100.0 + 0.5);
                title = it->title;
            }
            long long q = 1 + (long long)(rng_below(&r, 4) == 0 ? rng_below(&r, 4) : 0);
            double up = (double)cents / 100.0;
            total += up * (double)q;
            json_t *oi = json_pack("{s:{s:s, s:s, s:n}, s:I, s:f, s:f, s:s}", "item", "id", item_id,
                                   "title", title, "variation_id", "quantity", (json_int_t)q,
                                   "unit_price", up, "full_unit_price", up, "currency_id", "BRL");
            if (!oi)
                fatal("json_pack failed (order item)");
            json_array_append_new(items, oi);
        }
        total = round2(total);
        bool paid = strcmp(status, "paid") == 0 || strcmp(status, "partially_refunded") == 0;
        bool unclosed = closes_later(status);
        json_t *payments = json_array();
        json_t *pay = json_pack(
            "{s:I, s:I, s:s, s:s, s:f, s:f, s:s, s:s, s:s}", "id",
            (json_int_t)(90000000000LL + id % 1000000000LL), "order_id", (json_int_t)id, "status",
            paid                               ? "approved"
            : strcmp(status, "cancelled") == 0 ? "cancelled"
                                               : "pending",
            "status_detail", paid ? "accredited" : "pending_waiting_payment", "transaction_amount",
            total, "total_paid_amount", paid ? total : 0.0, "date_approved", dcl, "date_created",
            dc, "currency_id", "BRL");
        if (pay && unclosed)
            json_object_set_new(pay, "date_approved", json_null());
        if (!pay)
            fatal("json_pack failed (payment)");
        json_array_append_new(payments, pay);
        json_t *o = json_pack(
            "{s:I, s:s, s:n, s:s, s:s, s:s, s:s, s:f, s:f, s:s, s:n, s:o, s:{s:I}, s:{s:I},"
            " s:o, s:{s:I}, s:[s], s:n}",
            "id", (json_int_t)id, "status", status, "status_detail", "date_created", dc,
            "date_closed", dcl, "last_updated", du, "date_last_updated", du, "total_amount", total,
            "paid_amount", paid ? total : 0.0, "currency_id", "BRL", "pack_id", "order_items",
            items, "buyer", "id", (json_int_t)(100000000 + (long long)rng_below(&r, 900000000)),
            "seller", "id", (json_int_t)s->user_id, "payments", payments, "shipping", "id",
            (json_int_t)(40000000000LL + id % 1000000000LL), "tags", paid ? "paid" : "not_paid",
            "cancel_detail");
        if (!o)
            fatal("json_pack failed (generated order)");
        if (unclosed)
            json_object_set_new(o, "date_closed", json_null());
        order_store(order_append(s), o);
        json_decref(o);
    }
    free(times);
    return true;
}

/* ------------------------------------------------------------------ visits */

static bool set_visits(struct seller *s, json_t *obj, bool shift, const char *where)
{
    if (!json_is_object(obj))
        return fail("%s: expected {\"MLB123\": {\"2024-01-15\": 12}}", where);
    const char *id;
    json_t *days;
    json_object_foreach((json_t *)obj, id, days)
    {
        json_t *ix = json_object_get(s->item_index, id);
        if (!ix)
            return fail("%s.%s: not an item of seller %lld", where, id, s->user_id);
        if (!json_is_object(days))
            return fail("%s.%s: expected {\"YYYY-MM-DD\": count}", where, id);
        struct item *it = &s->items[json_integer_value(ix)];
        const char *d;
        json_t *n;
        json_object_foreach(days, d, n)
        {
            long long day;
            if (!date_parse(d, &day))
                return fail("%s.%s: \"%s\" is not a YYYY-MM-DD date", where, id, d);
            if (!json_is_integer(n) || json_integer_value(n) < 0 ||
                json_integer_value(n) > 1000000000)
                return fail("%s.%s.%s: expected an integer count 0..1000000000", where, id, d);
        }
        if (!it->visits)
            it->visits = json_object();
        json_object_foreach(days, d, n)
        {
            long long day;
            date_parse(d, &day);
            char key[DATE_BUF];
            date_format(day + (shift ? g_shift_days : 0), key);
            json_object_set_new(it->visits, key, json_integer(json_integer_value(n)));
        }
    }
    return true;
}

static bool generate_visits(struct seller *s, json_t *g, size_t seller_ix, const char *where)
{
    static const char *const keys[] = {"days", "max", NULL};
    long long days, max;
    if (!json_is_object(g))
        return fail("%s: expected an object", where);
    if (!check_keys(g, keys, where) || !opt_int(g, "days", 1, 3650, 30, &days, where) ||
        !opt_int(g, "max", 0, 1000000000, 50, &max, where))
        return false;
    long long today = floor_div(g_anchor_ms, 86400000LL);
    s->gen_visits = true;
    s->gv_first = today - days;
    s->gv_last = today - 1;
    s->gv_max = max;
    s->gv_seed = mix64(g_world.seed ^ mix64((uint64_t)s->user_id) ^ 0x7151ULL ^ seller_ix);
    return true;
}

/* ------------------------------------------------------------------ sellers */

static bool load_seller(json_t *j, size_t ix)
{
    static const char *const keys[] = {"user_id",
                                       "nickname",
                                       "client_id",
                                       "access_token",
                                       "access_token_expires_in",
                                       "refresh_token",
                                       "items",
                                       "generate_items",
                                       "orders",
                                       "generate_orders",
                                       "visits",
                                       "generate_visits",
                                       "visits_permission",
                                       NULL};
    char where[64];
    snprintf(where, sizeof where, "sellers[%zu]", ix);
    if (!json_is_object(j))
        return fail("%s: expected an object", where);
    if (!check_keys(j, keys, where))
        return false;
    struct seller *s = &g_world.sellers[ix];
    long long uid, exp_in;
    const char *nick, *client, *at, *rt;
    if (!opt_int(j, "user_id", 1, LLONG_MAX, 0, &uid, where))
        return false;
    if (uid == 0)
        return fail("%s.user_id: required", where);
    if (world_seller(uid))
        return fail("%s.user_id: duplicate seller %lld", where, uid);
    s->user_id = uid;
    s->item_index = json_object();
    char defnick[64];
    snprintf(defnick, sizeof defnick, "SELLER%lld", uid);
    if (!opt_str(j, "nickname", defnick, &nick, where) ||
        !opt_str(j, "client_id", g_world.nclients ? g_world.clients[0].id : "", &client, where) ||
        !opt_str(j, "access_token", NULL, &at, where) ||
        !opt_str(j, "refresh_token", NULL, &rt, where) ||
        !opt_int(j, "access_token_expires_in", -100LL * 365 * 86400, 100LL * 365 * 86400,
                 g_world.access_ttl_s, &exp_in, where) ||
        !opt_bool(j, "visits_permission", true, &s->visits_permission, where))
        return false;
    bool known = g_world.nclients == 0; /* without clients, no refresh can succeed anyway */
    for (size_t i = 0; i < g_world.nclients; i++)
        if (strcmp(g_world.clients[i].id, client) == 0)
            known = true;
    if (!known)
        return fail("%s.client_id: \"%s\" is not in \"clients\"", where, client);
    s->nickname = xstrdup(nick);
    s->client_id = xstrdup(client);
    world_rotate_tokens(s); /* defaults, replaced below when the scenario names them */
    if (at) {
        free(s->access_token);
        s->access_token = xstrdup(at);
    }
    if (rt) {
        free(s->refresh_token);
        s->refresh_token = xstrdup(rt);
    }
    s->access_expires_ms = now_ms() + exp_in * 1000;
    json_t *v;
    if ((v = json_object_get(j, "items")) && !load_items(s, v, "items"))
        return fail_in(where);
    if ((v = json_object_get(j, "generate_items")) && !generate_items(s, v, ix, "generate_items"))
        return fail_in(where);
    if ((v = json_object_get(j, "orders")) && !load_orders(s, v, "orders"))
        return fail_in(where);
    if ((v = json_object_get(j, "generate_orders")) &&
        !generate_orders(s, v, ix, "generate_orders"))
        return fail_in(where);
    orders_sort(s);
    if ((v = json_object_get(j, "visits")) && !set_visits(s, v, true, "visits"))
        return fail_in(where);
    if ((v = json_object_get(j, "generate_visits")) &&
        !generate_visits(s, v, ix, "generate_visits"))
        return fail_in(where);
    return true;
}

bool world_load(const char *path, const struct world_config *cfg)
{
    static const char *const keys[] = {"seed",
                                       "generate_until",
                                       "clients",
                                       "access_token_ttl_seconds",
                                       "scroll_ttl_seconds",
                                       "multiget_status_code_key",
                                       "scan_end_results_null",
                                       "visits_over_max",
                                       "visits_future_ending",
                                       "scroll_id_length",
                                       "sellers",
                                       "faults",
                                       "description",
                                       NULL};
    json_error_t jerr;
    json_t *root = json_load_file(path, JSON_REJECT_DUPLICATES, &jerr);
    bool ok = false;
    if (!root) {
        fprintf(stderr, "fake_ml: %s:%d:%d: %s\n", path, jerr.line, jerr.column, jerr.text);
        return false;
    }
    g_err[0] = '\0';
    if (!json_is_object(root)) {
        fail("the scenario must be a JSON object");
        goto out;
    }
    if (!check_keys(root, keys, "scenario"))
        goto out;
    long long seed, ttl, sttl, sidlen;
    const char *until, *over, *future;
    if (!opt_int(root, "seed", 0, LLONG_MAX, 1, &seed, "scenario") ||
        !opt_int(root, "access_token_ttl_seconds", 1, 100LL * 365 * 86400, DEFAULT_ACCESS_TTL_S,
                 &ttl, "scenario") ||
        !opt_int(root, "scroll_ttl_seconds", 1, 86400, DEFAULT_SCROLL_TTL_S, &sttl, "scenario") ||
        !opt_bool(root, "multiget_status_code_key", false, &g_world.multiget_status_code_key,
                  "scenario") ||
        !opt_bool(root, "scan_end_results_null", false, &g_world.scan_end_null, "scenario") ||
        !opt_str(root, "visits_over_max", "cap", &over, "scenario") ||
        !opt_str(root, "visits_future_ending", "accept", &future, "scenario") ||
        !opt_int(root, "scroll_id_length", SCROLL_ID_MIN, SCROLL_ID_MAX, SCROLL_ID_DEFAULT, &sidlen,
                 "scenario") ||
        !opt_str(root, "generate_until", NULL, &until, "scenario"))
        goto out;
    if (strcmp(over, "cap") != 0 && strcmp(over, "error") != 0) {
        fail("scenario.visits_over_max: expected \"cap\" or \"error\"");
        goto out;
    }
    g_world.visits_over_max_error = strcmp(over, "error") == 0;
    if (strcmp(future, "accept") != 0 && strcmp(future, "error") != 0) {
        fail("scenario.visits_future_ending: expected \"accept\" or \"error\"");
        goto out;
    }
    g_world.visits_future_error = strcmp(future, "error") == 0;
    g_world.scroll_id_length = sidlen;
    g_world.seed = cfg->seed_set ? cfg->seed : (uint64_t)seed;
    g_world.token_rng.s = mix64(g_world.seed ^ 0x70c3ULL);
    g_world.access_ttl_s = ttl;
    g_world.scroll_ttl_s = sttl;
    g_shift_days = 0;
    if (cfg->rebase_day != LLONG_MIN)
        g_shift_days = floor_div(cfg->start_ms, 86400000LL) - cfg->rebase_day;
    g_anchor_ms = cfg->start_ms;
    if (until) {
        int off;
        if (!ts_parse(until, &g_anchor_ms, &off)) {
            fail("scenario.generate_until: not a timestamp like 2024-02-01T00:00:00.000Z");
            goto out;
        }
        g_anchor_ms += g_shift_days * 86400000LL;
    }

    json_t *clients = json_object_get(root, "clients");
    if (clients && !json_is_array(clients)) {
        fail("scenario.clients: expected an array");
        goto out;
    }
    g_world.clients = xcalloc(json_array_size(clients), sizeof *g_world.clients);
    size_t i;
    json_t *v;
    json_array_foreach(clients, i, v)
    {
        static const char *const ckeys[] = {"client_id", "client_secret", NULL};
        char w[64];
        snprintf(w, sizeof w, "clients[%zu]", i);
        const char *id, *secret;
        if (!json_is_object(v)) {
            fail("%s: expected an object", w);
            goto out;
        }
        if (!check_keys(v, ckeys, w) || !opt_str(v, "client_id", NULL, &id, w) ||
            !opt_str(v, "client_secret", NULL, &secret, w))
            goto out;
        if (!id || !secret || !*id) {
            fail("%s: client_id and client_secret are required", w);
            goto out;
        }
        g_world.clients[i].id = xstrdup(id);
        g_world.clients[i].secret = xstrdup(secret);
        g_world.nclients = i + 1;
    }

    json_t *sellers = json_object_get(root, "sellers");
    if (!json_is_array(sellers)) {
        fail("scenario.sellers: required array");
        goto out;
    }
    g_world.sellers = xcalloc(json_array_size(sellers), sizeof *g_world.sellers);
    json_array_foreach(sellers, i, v)
    {
        g_world.nsellers = i + 1;
        if (!load_seller(v, i))
            goto out;
    }

    json_t *faults = json_object_get(root, "faults");
    if (faults) {
        char e[256];
        if (!faults_install(faults, e, sizeof e)) {
            fail("scenario.faults: %s", e);
            goto out;
        }
    }
    ok = true;
out:
    if (!ok)
        fprintf(stderr, "fake_ml: %s: %s\n", path, g_err);
    json_decref(root);
    return ok;
}

void world_free(void)
{
    for (size_t i = 0; i < g_world.nsellers; i++) {
        struct seller *s = &g_world.sellers[i];
        for (size_t k = 0; k < s->nitems; k++)
            item_clear(&s->items[k]);
        for (size_t k = 0; k < s->norders; k++)
            order_clear(&s->orders[k]);
        free(s->items);
        free(s->orders);
        json_decref(s->item_index);
        free(s->nickname);
        free(s->client_id);
        free(s->access_token);
        free(s->refresh_token);
    }
    free(g_world.sellers);
    for (size_t i = 0; i < g_world.nclients; i++) {
        free(g_world.clients[i].id);
        free(g_world.clients[i].secret);
    }
    free(g_world.clients);
    for (size_t i = 0; i < g_world.nscrolls; i++) {
        free(g_world.scrolls[i].status_filter);
        free(g_world.scrolls[i].id);
    }
    free(g_world.scrolls);
    hooks_free();
    g_world.sellers = NULL;
    g_world.clients = NULL;
    g_world.scrolls = NULL;
    g_world.nsellers = g_world.nclients = g_world.nscrolls = 0;
}

/* ------------------------------------------------------------------ runtime knobs */

long long world_scroll_ttl_s(void)
{
    pthread_mutex_lock(&g_world.lock);
    long long v = g_world.scroll_ttl_s;
    pthread_mutex_unlock(&g_world.lock);
    return v;
}

void world_set_scroll_ttl_s(long long s)
{
    pthread_mutex_lock(&g_world.lock);
    g_world.scroll_ttl_s = s;
    pthread_mutex_unlock(&g_world.lock);
}

long long world_access_ttl_s(void)
{
    pthread_mutex_lock(&g_world.lock);
    long long v = g_world.access_ttl_s;
    pthread_mutex_unlock(&g_world.lock);
    return v;
}

void world_set_access_ttl_s(long long s)
{
    pthread_mutex_lock(&g_world.lock);
    g_world.access_ttl_s = s;
    pthread_mutex_unlock(&g_world.lock);
}

bool world_visits_future_error(void)
{
    pthread_mutex_lock(&g_world.lock);
    bool v = g_world.visits_future_error;
    pthread_mutex_unlock(&g_world.lock);
    return v;
}

void world_set_visits_future_error(bool error)
{
    pthread_mutex_lock(&g_world.lock);
    g_world.visits_future_error = error;
    pthread_mutex_unlock(&g_world.lock);
}

long long world_scroll_id_length(void)
{
    pthread_mutex_lock(&g_world.lock);
    long long v = g_world.scroll_id_length;
    pthread_mutex_unlock(&g_world.lock);
    return v;
}

void world_set_scroll_id_length(long long n)
{
    pthread_mutex_lock(&g_world.lock);
    g_world.scroll_id_length = n;
    pthread_mutex_unlock(&g_world.lock);
}

/* ------------------------------------------------------------------ control operations */

static json_t *err_body(const char *msg)
{
    return json_pack("{s:s}", "error", msg);
}

static json_t *tokens_json(const struct seller *s)
{
    char exp[TS_BUF];
    ts_format(s->access_expires_ms, 0, true, exp);
    long long left = s->access_expires_ms - now_ms();
    return json_pack("{s:s?, s:s?, s:s, s:I, s:I}", "access_token", s->access_token,
                     "refresh_token", s->refresh_token, "access_token_expires_at", exp,
                     "access_token_expires_at_ms", (json_int_t)s->access_expires_ms,
                     "access_token_expires_in", (json_int_t)floor_div(left, 1000));
}

unsigned world_tokens(long long user_id, json_t **out)
{
    pthread_mutex_lock(&g_world.lock);
    struct seller *s = world_seller(user_id);
    unsigned st = 200;
    if (s)
        *out = tokens_json(s);
    else
        *out = err_body("unknown seller"), st = 404;
    pthread_mutex_unlock(&g_world.lock);
    return st;
}

unsigned world_expire_access_token(long long user_id, json_t **out)
{
    pthread_mutex_lock(&g_world.lock);
    struct seller *s = world_seller(user_id);
    unsigned st = 200;
    if (s) {
        s->access_expires_ms = now_ms() - 1000;
        *out = tokens_json(s);
    } else {
        *out = err_body("unknown seller"), st = 404;
    }
    pthread_mutex_unlock(&g_world.lock);
    return st;
}

unsigned world_revoke_refresh_token(long long user_id, json_t **out)
{
    pthread_mutex_lock(&g_world.lock);
    struct seller *s = world_seller(user_id);
    unsigned st = 200;
    if (s) {
        free(s->refresh_token);
        s->refresh_token = NULL;
        free(s->access_token);
        s->access_token = NULL;
        *out = tokens_json(s);
    } else {
        *out = err_body("unknown seller"), st = 404;
    }
    pthread_mutex_unlock(&g_world.lock);
    return st;
}

/* Shallow merge of patch over base (a new object). */
static json_t *merged(const char *base_text, json_t *patch)
{
    json_t *o = base_text ? json_loads(base_text, 0, NULL) : json_object();
    if (!o)
        fatal("stored JSON does not parse");
    json_object_update(o, patch);
    return o;
}

unsigned world_upsert_orders(long long user_id, json_t *orders, json_t **out)
{
    if (!json_is_array(orders)) {
        *out = err_body("expected a JSON array of orders");
        return 400;
    }
    pthread_mutex_lock(&g_world.lock);
    unsigned st = 200;
    struct seller *s = world_seller(user_id);
    long long created = 0, updated = 0;
    if (!s) {
        *out = err_body("unknown seller"), st = 404;
        goto out;
    }
    /* Validate everything first, so a bad element changes nothing. */
    json_t *norm = json_array();
    size_t i;
    json_t *v;
    json_array_foreach(orders, i, v)
    {
        char w[64];
        snprintf(w, sizeof w, "[%zu]", i);
        json_t *id = json_object_get(v, "id");
        if (!json_is_object(v) || !json_is_integer(id)) {
            fail("%s: expected an object with an integer id", w);
            json_decref(norm);
            *out = err_body(g_err), st = 400;
            goto out;
        }
        struct seller *owner = NULL;
        struct order *old = world_order_find_any(json_integer_value(id), &owner);
        if (old && owner != s) {
            fail("%s: order %lld belongs to seller %lld", w, (long long)json_integer_value(id),
                 owner->user_id);
            json_decref(norm);
            *out = err_body(g_err), st = 400;
            goto out;
        }
        json_t *o = merged(old ? old->json : NULL, v);
        if (old && !json_object_get(v, "last_updated") &&
            !json_object_get(v, "date_last_updated")) {
            /* A change on the real API moves last_updated. */
            char now[TS_BUF];
            ts_format(now_ms(), SAO_PAULO_OFFSET_MIN, false, now);
            json_object_set_new(o, "last_updated", json_string(now));
            json_object_set_new(o, "date_last_updated", json_string(now));
        }
        /* Reaching confirmed/paid sets a null date_closed, unless the change gives one. */
        json_t *ns = json_object_get(o, "status"), *dcl = json_object_get(o, "date_closed");
        if (old && json_is_null(dcl) && !json_object_get(v, "date_closed") && json_is_string(ns) &&
            has_closed(json_string_value(ns))) {
            char now[TS_BUF];
            ts_format(now_ms(), SAO_PAULO_OFFSET_MIN, false, now);
            json_object_set_new(o, "date_closed", json_string(now));
        }
        if (!order_normalize(o, s, false, w)) {
            json_decref(o);
            json_decref(norm);
            *out = err_body(g_err), st = 400;
            goto out;
        }
        json_array_append_new(norm, o);
    }
    json_array_foreach(norm, i, v)
    {
        struct order *old = world_order_find(s, json_integer_value(json_object_get(v, "id")));
        if (old) {
            order_store(old, v);
            updated++;
        } else {
            order_store(order_append(s), v);
            created++;
        }
    }
    json_decref(norm);
    orders_sort(s);
    *out = json_pack("{s:I, s:I, s:I}", "created", (json_int_t)created, "updated",
                     (json_int_t)updated, "orders", (json_int_t)s->norders);
out:
    pthread_mutex_unlock(&g_world.lock);
    return st;
}

unsigned world_upsert_items(long long user_id, json_t *items, json_t **out)
{
    if (!json_is_array(items)) {
        *out = err_body("expected a JSON array of items");
        return 400;
    }
    pthread_mutex_lock(&g_world.lock);
    unsigned st = 200;
    struct seller *s = world_seller(user_id);
    long long created = 0, updated = 0;
    if (!s) {
        *out = err_body("unknown seller"), st = 404;
        goto out;
    }
    json_t *norm = json_array();
    size_t i;
    json_t *v;
    json_array_foreach(items, i, v)
    {
        char w[64];
        snprintf(w, sizeof w, "[%zu]", i);
        json_t *id = json_object_get(v, "id");
        if (!json_is_object(v) || !json_is_string(id)) {
            fail("%s: expected an object with a string id", w);
            json_decref(norm);
            *out = err_body(g_err), st = 400;
            goto out;
        }
        struct seller *owner = NULL;
        struct item *old = world_item(json_string_value(id), &owner);
        if (old && owner != s) {
            fail("%s: item %s belongs to seller %lld", w, json_string_value(id), owner->user_id);
            json_decref(norm);
            *out = err_body(g_err), st = 400;
            goto out;
        }
        json_t *o = merged(old ? old->json : NULL, v);
        /* Flags persist unless the patch names them. */
        if (old && !json_object_get(v, "policy_blocked"))
            json_object_set_new(o, "policy_blocked", json_boolean(old->policy_blocked));
        if (old && !json_object_get(v, "missing"))
            json_object_set_new(o, "missing", json_boolean(old->missing));
        bool b, m;
        if (!item_normalize(o, s, &b, &m, false, w)) {
            json_decref(o);
            json_decref(norm);
            *out = err_body(g_err), st = 400;
            goto out;
        }
        json_object_set_new(o, "policy_blocked", json_boolean(b));
        json_object_set_new(o, "missing", json_boolean(m));
        json_array_append_new(norm, o);
    }
    json_array_foreach(norm, i, v)
    {
        bool b = json_is_true(json_object_get(v, "policy_blocked"));
        bool m = json_is_true(json_object_get(v, "missing"));
        json_object_del(v, "policy_blocked");
        json_object_del(v, "missing");
        struct item *old = world_item(json_string_value(json_object_get(v, "id")), NULL);
        if (old) {
            item_store(old, v, b, m);
            updated++;
        } else {
            struct item *it = item_append(s);
            item_store(it, v, b, m);
            json_object_set_new(s->item_index, it->id, json_integer((json_int_t)(s->nitems - 1)));
            created++;
        }
    }
    json_decref(norm);
    *out = json_pack("{s:I, s:I, s:I}", "created", (json_int_t)created, "updated",
                     (json_int_t)updated, "items", (json_int_t)s->nitems);
out:
    pthread_mutex_unlock(&g_world.lock);
    return st;
}

unsigned world_set_visits(long long user_id, json_t *visits, json_t **out)
{
    pthread_mutex_lock(&g_world.lock);
    unsigned st = 200;
    struct seller *s = world_seller(user_id);
    if (!s) {
        *out = err_body("unknown seller"), st = 404;
        goto out;
    }
    if (!json_is_object(visits)) {
        *out = err_body("expected {\"MLB123\": {\"2024-01-15\": 5}}"), st = 400;
        goto out;
    }
    /* Check the whole body first so that a bad entry changes nothing. */
    const char *id;
    json_t *days;
    json_object_foreach(visits, id, days)
    {
        long long day;
        const char *d;
        json_t *n;
        if (!json_object_get(s->item_index, id) || !json_is_object(days)) {
            fail("%s: not an item of seller %lld (or not an object)", id, s->user_id);
            *out = err_body(g_err), st = 400;
            goto out;
        }
        json_object_foreach(days, d, n)
        {
            if (!date_parse(d, &day) || !json_is_integer(n) || json_integer_value(n) < 0 ||
                json_integer_value(n) > 1000000000) {
                fail("%s.%s: expected \"YYYY-MM-DD\": integer 0..1000000000", id, d);
                *out = err_body(g_err), st = 400;
                goto out;
            }
        }
    }
    if (!set_visits(s, visits, false, "visits")) {
        *out = err_body(g_err), st = 400;
        goto out;
    }
    *out = json_pack("{s:b}", "ok", 1);
out:
    pthread_mutex_unlock(&g_world.lock);
    return st;
}

unsigned world_set_visits_permission(long long user_id, json_t *body, json_t **out)
{
    json_t *g = json_object_get(body, "granted");
    if (!json_is_object(body) || !json_is_boolean(g) || json_object_size(body) != 1) {
        *out = err_body("expected {\"granted\": true|false}");
        return 400;
    }
    pthread_mutex_lock(&g_world.lock);
    struct seller *s = world_seller(user_id);
    unsigned st = 200;
    if (s) {
        s->visits_permission = json_is_true(g);
        *out = json_pack("{s:I, s:b}", "user_id", (json_int_t)s->user_id, "visits_permission",
                         s->visits_permission);
    } else {
        *out = err_body("unknown seller"), st = 404;
    }
    pthread_mutex_unlock(&g_world.lock);
    return st;
}

unsigned world_summary(json_t **out)
{
    pthread_mutex_lock(&g_world.lock);
    json_t *sellers = json_array();
    for (size_t i = 0; i < g_world.nsellers; i++) {
        const struct seller *s = &g_world.sellers[i];
        long long blocked = 0, missing = 0;
        for (size_t k = 0; k < s->nitems; k++) {
            blocked += s->items[k].policy_blocked;
            missing += s->items[k].missing && !s->items[k].policy_blocked;
        }
        json_array_append_new(
            sellers,
            json_pack("{s:I, s:s, s:I, s:I, s:I, s:I, s:b}", "user_id", (json_int_t)s->user_id,
                      "nickname", s->nickname, "items", (json_int_t)s->nitems, "policy_blocked",
                      (json_int_t)blocked, "missing", (json_int_t)missing, "orders",
                      (json_int_t)s->norders, "visits_permission", s->visits_permission));
    }
    *out = json_pack("{s:o, s:I, s:I, s:I}", "sellers", sellers, "seed", (json_int_t)g_world.seed,
                     "access_token_ttl_seconds", (json_int_t)g_world.access_ttl_s,
                     "scroll_ttl_seconds", (json_int_t)g_world.scroll_ttl_s);
    pthread_mutex_unlock(&g_world.lock);
    return 200;
}
