/* job_sync_ml: see job_sync_ml.h. Database writes happen between HTTP batches (never while
 * requests are in flight), so a token refresh triggered by a 401 can use the job's own
 * connection; each write is its own short transaction (a page of orders with its items, a
 * chunk of listings or visits), so a failure keeps everything written before it. */
#include "jobsd/job_sync_ml.h"
#include "jobsd/db.h"
#include "jobsd/job_store.h"
#include "jobsd/log.h"
#include "jobsd/ml_client.h"
#include "jobsd/ml_parse.h"
#include "jobsd/token_crypt.h"
#include "jobsd/util.h"

#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MULTIGET_IDS      20
#define ORDERS_PAGE       50
#define ORDERS_OFFSET_CAP 10000
/* Pages are written together, up to this many orders per transaction (each order with its
 * items is still replaced atomically). */
#define ORDERS_WRITE_BATCH 1000
#define SCAN_LIMIT         100
#define VISITS_MAX_DAYS    150
#define VISITS_WRITE_ROWS  20000 /* visits rows per pipelined write */
#define MAX_ERRORS         50
#define WRITE_TIMEOUT_MS   60000

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
        if (strcmp(k, "tenantId") != 0 && strcmp(k, "daysBack") != 0 && strcmp(k, "include") != 0)
            return err_set(e, 400, "unknown_field",
                           "unknown field \"%.64s\" (allowed: tenantId, daysBack, include)", k);
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
    if (!t)
        return err_set(e, 400, "invalid_field", "tenantId is required");
    if (!util_uuid_normalize(json_string_value(t), tenant))
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

static int sync_resolve(const struct config *cfg, PGconn *c, json_t *body, struct job_request *req,
                        struct err *e)
{
    (void)cfg;
    char tenant[37];
    long long days;
    unsigned include;
    if (sync_parse(body, tenant, &days, &include, e) != 0)
        return -1;
    const char *p[] = {tenant};
    PGresult *r = db_query(c, "SELECT EXISTS (SELECT 1 FROM tenants WHERE id = $1)", 1, p, e);
    if (!r)
        return -1;
    bool exists = strcmp(PQgetvalue(r, 0, 0), "t") == 0;
    PQclear(r);
    if (!exists)
        return err_set(e, 404, "tenant_not_found", "tenantId %s does not exist", tenant);
    snprintf(req->tenant_id, sizeof req->tenant_id, "%s", tenant);
    util_fmt(req->dedupe_key, sizeof req->dedupe_key, "mercadolivre_sync:%s", tenant);
    json_t *parts = json_array();
    for (size_t i = 0; PARTS[i]; i++)
        if (include & (1u << i))
            json_array_append_new(parts, json_string(PARTS[i]));
    req->params = json_pack("{s:s, s:I, s:o}", "tenantId", tenant, "daysBack", (json_int_t)days,
                            "include", parts);
    if (!req->params)
        util_fatal("out of memory");
    return 0;
}

/* ------------------------------------------------------------------ the run */

struct sync {
    struct job_run *run;
    PGconn *c;
    char tenant[37];
    long long days_back;
    unsigned include;
    /* the connection being synced */
    char conn_id[37];
    long long seller_id;
    struct ml_auth auth;
    bool refreshed;
    struct token_crypt *crypt; /* TOKEN_ENCRYPTION_KEY (passthrough when unset) */
    json_t *errors;            /* of this connection */
    /* across the job */
    long long ml_ok;
    long long ml_failed;
    struct err worst; /* the most serious failure seen (503 beats 422) */
    long long records;
    long long db_ms; /* time spent writing, for the phase log lines */
    /* The write in flight (a pipelined transaction the server runs while requests go on). */
    bool writing;
    const char *write_step; /* "orders" or "visits" */
    json_t *write_counts;   /* the counters it will add to (borrowed) */
    long long write_rows;   /* visits rows sent */
};

/* A debug line per phase: how long it took and how much of it was database writes. */
static void phase_done(struct sync *s, const char *phase, long long t0, long long db0)
{
    if (!log_enabled(LOG_DEBUG))
        return;
    char total[24], db[24], ok[24];
    util_fmt(total, sizeof total, "%lld", util_mono_ms() - t0);
    util_fmt(db, sizeof db, "%lld", s->db_ms - db0);
    util_fmt(ok, sizeof ok, "%lld", s->ml_ok);
    log_event(LOG_DEBUG, "sync phase done", "jobLogId", s->run->id, "phase", phase, "ms", total,
              "dbMs", db, "requestsOk", ok, NULL);
}

static void progress(struct sync *s, const char *phase)
{
    if (s->run->progress)
        s->run->progress(s->run->progress_ctx, phase);
}

static bool cancelled(const struct sync *s)
{
    return s->run->cancel && *s->run->cancel;
}

/* Adds an error of a step, merged with earlier ones of the same step and code. */
static void add_error(struct sync *s, const char *step, const struct err *e)
{
    size_t i;
    json_t *x;
    json_array_foreach(s->errors, i, x)
    {
        if (strcmp(json_string_value(json_object_get(x, "step")), step) == 0 &&
            strcmp(json_string_value(json_object_get(x, "code")), e->code) == 0) {
            json_object_set_new(x, "count",
                                json_integer(json_integer_value(json_object_get(x, "count")) + 1));
            return;
        }
    }
    if (json_array_size(s->errors) < MAX_ERRORS) {
        char *msg = util_utf8_clean(e->message);
        json_array_append_new(s->errors, json_pack("{s:s, s:s, s:s, s:i}", "step", step, "code",
                                                   e->code, "message", msg, "count", 1));
        free(msg);
    }
    if (e->http_status == 503 || !err_is_set(&s->worst))
        s->worst = *e;
}

/* Classifies a finished request: 1 = 2xx, 0 = a final HTTP answer the caller handles,
 * -1 = failed (error recorded). */
static int outcome(struct sync *s, const char *step, struct ml_request *r)
{
    if (err_is_set(&r->err)) {
        s->ml_failed++;
        add_error(s, step, &r->err);
        return -1;
    }
    if (r->status >= 200 && r->status < 300) {
        s->ml_ok++;
        return 1;
    }
    return 0;
}

static void http_error(struct sync *s, const char *step, struct ml_request *r)
{
    struct ml_error me;
    ml_parse_error(r->body, r->len, &me);
    struct err e;
    if (r->status == 401)
        err_set(&e, 422, "reauth_required",
                "Mercado Livre refused the access token even after a refresh (%s)",
                me.message[0] ? me.message : "401");
    else
        err_set(&e, 503, "ml_unavailable", "Mercado Livre answered %ld to %s (%s)", r->status, step,
                me.error[0] ? me.error : me.message);
    s->ml_failed++;
    add_error(s, step, &e);
}

static void finish_write(struct sync *s);

/* ---- tokens */

/* Returns a valid access token for the connection. With failed_token (after a 401): a new
 * one unless another worker already replaced that token. The connection row is locked for
 * the whole refresh, so one refresh happens per connection however many workers and
 * instances try, and the rotated pair is committed in the transaction that used the old. */
static int ensure_token(struct sync *s, const char *failed_token, char *out, size_t cap,
                        struct err *e)
{
    PGconn *c = s->c;
    finish_write(s);
    long long timeout = s->run->cfg->ml_http_timeout_ms * 6 + 30000;
    if (db_begin(c, timeout, e) != 0)
        return -1;
    const char *p1[] = {s->conn_id};
    PGresult *r = db_query(c,
                           "SELECT coalesce(access_token, ''), coalesce(refresh_token, ''), "
                           " coalesce(expires_at > now() + interval '5 minutes', false), status "
                           "FROM marketplace_connections WHERE id = $1 FOR UPDATE",
                           1, p1, e);
    if (!r || PQntuples(r) != 1) {
        if (r) {
            PQclear(r);
            err_set(e, 422, "no_active_connection", "the connection disappeared");
        }
        db_rollback(c);
        return -1;
    }
    char access[512] = "", refresh[512] = "";
    char *a = token_crypt_open(s->crypt, PQgetvalue(r, 0, 0), s->conn_id, "access_token", e);
    char *b =
        a ? token_crypt_open(s->crypt, PQgetvalue(r, 0, 1), s->conn_id, "refresh_token", e) : NULL;
    bool fresh = strcmp(PQgetvalue(r, 0, 2), "t") == 0;
    bool active = strcmp(PQgetvalue(r, 0, 3), "active") == 0;
    PQclear(r);
    if (a && b) {
        snprintf(access, sizeof access, "%s", a);
        snprintf(refresh, sizeof refresh, "%s", b);
    }
    if (a) {
        OPENSSL_cleanse(a, strlen(a));
        free(a);
    }
    if (b) {
        OPENSSL_cleanse(b, strlen(b));
        free(b);
    }
    int rc = -1;
    if (err_is_set(e))
        goto out;
    if (!active) {
        err_set(e, 422, "reauth_required", "the Mercado Livre connection needs to be reconnected");
        goto out;
    }
    bool replaced = failed_token && access[0] && strcmp(access, failed_token) != 0;
    if (access[0] && ((fresh && !failed_token) || (replaced && fresh))) {
        snprintf(out, cap, "%s", access);
        rc = db_commit(c, e);
        goto out_done;
    }
    if (!refresh[0]) {
        err_set(e, 422, "reauth_required", "no refresh token is stored for this connection");
        goto out;
    }
    struct ml_token tok;
    struct ml_error me;
    if (ml_refresh_token(s->run->ml, refresh, &tok, &me, e) != 0) {
        if (strcmp(e->code, "reauth_required") == 0) {
            /* Only invalid_grant ends here: the connection needs the seller. */
            const char *p[] = {s->conn_id, "invalid_grant",
                               me.message[0] ? me.message : e->message};
            struct err e2;
            err_clear(&e2);
            if (db_exec(c,
                        "UPDATE marketplace_connections SET status = 'reauth_required', "
                        " last_error_code = $2, last_error_message = $3, last_error_at = now(), "
                        " updated_at = now() WHERE id = $1",
                        3, p, &e2) != 0 ||
                db_commit(c, &e2) != 0) {
                db_rollback(c);
                *e = e2;
            } else {
                log_event(LOG_WARN, LOG_JOB_TAG "Mercado Livre connection needs reauthorisation",
                          "tenantId", s->tenant, "connectionId", s->conn_id, NULL);
            }
            goto out_done;
        }
        goto out; /* transient: the connection stays active */
    }
    char expires[24];
    util_fmt(expires, sizeof expires, "%lld", tok.expires_in);
    char *sealed_access = token_crypt_seal(s->crypt, tok.access_token, s->conn_id, "access_token");
    char *sealed_refresh =
        token_crypt_seal(s->crypt, tok.refresh_token, s->conn_id, "refresh_token");
    const char *p4[] = {s->conn_id, sealed_access, sealed_refresh, expires};
    bool stored =
        db_exec(c,
                "UPDATE marketplace_connections SET access_token = $2, refresh_token = $3, "
                " expires_at = now() + make_interval(secs => $4::int), last_error_code = NULL, "
                " last_error_message = NULL, last_error_at = NULL, updated_at = now() "
                "WHERE id = $1",
                4, p4, e) == 0 &&
        db_commit(c, e) == 0;
    free(sealed_access);
    free(sealed_refresh);
    if (!stored) {
        /* The new pair was issued but not stored: the old refresh token is spent. This is
         * the one window a crash can lose a rotation in; it is as short as a COMMIT. */
        log_event(LOG_ERROR, LOG_JOB_TAG "could not store a rotated Mercado Livre token",
                  "connectionId", s->conn_id, "error", e->message, NULL);
        OPENSSL_cleanse(&tok, sizeof tok);
        goto out;
    }
    snprintf(out, cap, "%s", tok.access_token);
    OPENSSL_cleanse(&tok, sizeof tok);
    s->refreshed = true;
    rc = 0;
    goto out_done;
out:
    db_rollback(c);
out_done:
    OPENSSL_cleanse(access, sizeof access);
    OPENSSL_cleanse(refresh, sizeof refresh);
    return rc;
}

static int on_401(void *ctx, const char *failed, char *out, size_t cap, struct err *e)
{
    return ensure_token(ctx, failed, out, cap, e);
}

/* ---- writes */

static int write_tx(struct sync *s, const char *sql, int n, const char *const *params,
                    PGresult **res, struct err *e)
{
    finish_write(s);
    long long t0 = util_mono_ms();
    if (db_begin(s->c, WRITE_TIMEOUT_MS, e) != 0)
        return -1;
    PGresult *r = db_query(s->c, sql, n, params, e);
    if (!r || db_commit(s->c, e) != 0) {
        PQclear(r);
        db_rollback(s->c);
        s->db_ms += util_mono_ms() - t0;
        return -1;
    }
    s->db_ms += util_mono_ms() - t0;
    if (res)
        *res = r;
    else
        PQclear(r);
    return 0;
}

static long long count_col(PGresult *r, int col)
{
    return util_i64_or(PQgetvalue(r, 0, col), 0);
}

static const char UPSERT_LISTINGS[] =
    "WITH x AS (SELECT DISTINCT ON (external_id) * FROM jsonb_to_recordset($3::jsonb) AS x("
    "  external_id text, title text, status text, price numeric, currency text, "
    "  available_quantity int, sold_quantity int, permalink text, category_id text, "
    "  listing_type_id text, external_updated_at timestamptz)), "
    "up AS (INSERT INTO listings (tenant_id, connection_id, marketplace, external_id, title, "
    "  status, access_status, price, currency, available_quantity, sold_quantity, permalink, "
    "  category_id, listing_type_id, external_updated_at, last_synced_at) "
    "  SELECT $1, $2, 'mercadolivre', external_id, title, status, 'accessible', "
    "    round(price, 2), currency, available_quantity, sold_quantity, permalink, category_id, "
    "    listing_type_id, external_updated_at, now() FROM x "
    "  ON CONFLICT (tenant_id, marketplace, external_id) DO UPDATE SET "
    "    connection_id = EXCLUDED.connection_id, title = EXCLUDED.title, status = EXCLUDED.status, "
    "    access_status = 'accessible', price = EXCLUDED.price, currency = EXCLUDED.currency, "
    "    available_quantity = EXCLUDED.available_quantity, "
    "    sold_quantity = EXCLUDED.sold_quantity, permalink = EXCLUDED.permalink, "
    "    category_id = EXCLUDED.category_id, listing_type_id = EXCLUDED.listing_type_id, "
    "    external_updated_at = EXCLUDED.external_updated_at, last_synced_at = now(), "
    "    updated_at = now() RETURNING 1), "
    "blocked AS (INSERT INTO listings (tenant_id, connection_id, marketplace, external_id, status, "
    "  access_status, last_synced_at) "
    "  SELECT DISTINCT $1::uuid, $2::uuid, 'mercadolivre', b, 'unknown', 'blocked_by_policy', "
    "now() "
    "  FROM jsonb_array_elements_text($4::jsonb) b "
    "  ON CONFLICT (tenant_id, marketplace, external_id) DO UPDATE SET "
    "    access_status = 'blocked_by_policy', last_synced_at = now(), updated_at = now() "
    "  RETURNING 1) "
    "SELECT (SELECT count(*) FROM up), (SELECT count(*) FROM blocked)";

/* Orders of one page with their items, in one statement: unknown listings get a minimal row
 * first so no sale is lost; each order's items are replaced. */
static const char UPSERT_ORDERS_LISTINGS[] =
    "INSERT INTO listings (tenant_id, connection_id, marketplace, external_id, status) "
    "SELECT DISTINCT $1::uuid, $2::uuid, 'mercadolivre', i->>'listing_external_id', 'unknown' "
    "FROM jsonb_array_elements($3::jsonb) o, jsonb_array_elements(o->'items') i "
    "ON CONFLICT (tenant_id, marketplace, external_id) DO NOTHING";

static const char UPSERT_ORDERS[] =
    "WITH src AS (SELECT DISTINCT ON (external_id) * FROM jsonb_to_recordset($3::jsonb) AS x("
    "  external_id bigint, status text, external_status text, total_amount numeric, "
    "  paid_amount numeric, currency text, buyer_id bigint, ordered_at timestamptz, "
    "  closed_at timestamptz, paid_at timestamptz, external_updated_at timestamptz, "
    "  items jsonb)), "
    "up AS (INSERT INTO orders (tenant_id, connection_id, marketplace, external_id, status, "
    "  external_status, total_amount, paid_amount, currency, buyer_id, ordered_at, closed_at, "
    "  paid_at, external_updated_at) "
    "  SELECT $1, $2, 'mercadolivre', external_id, status, external_status, "
    "    round(total_amount, 2), round(paid_amount, 2), currency, buyer_id, ordered_at, "
    "    closed_at, paid_at, external_updated_at FROM src "
    "  ON CONFLICT (tenant_id, marketplace, external_id) DO UPDATE SET "
    "    connection_id = EXCLUDED.connection_id, status = EXCLUDED.status, "
    "    external_status = EXCLUDED.external_status, total_amount = EXCLUDED.total_amount, "
    "    paid_amount = EXCLUDED.paid_amount, currency = EXCLUDED.currency, "
    "    buyer_id = EXCLUDED.buyer_id, ordered_at = EXCLUDED.ordered_at, "
    "    closed_at = EXCLUDED.closed_at, paid_at = EXCLUDED.paid_at, "
    "    external_updated_at = EXCLUDED.external_updated_at, updated_at = now() "
    "  RETURNING id, external_id), "
    "del AS (DELETE FROM order_items oi USING up WHERE oi.tenant_id = $1 AND oi.order_id = up.id "
    "  RETURNING 1), "
    "ins AS (INSERT INTO order_items (tenant_id, order_id, listing_id, listing_external_id, "
    "  variation_id, title, quantity, unit_price, full_unit_price) "
    "  SELECT $1, up.id, l.id, it.listing_external_id, it.variation_id, it.title, it.quantity, "
    "    round(it.unit_price, 2), round(it.full_unit_price, 2) "
    "  FROM src JOIN up ON up.external_id = src.external_id "
    "  CROSS JOIN LATERAL jsonb_to_recordset(src.items) AS it(listing_external_id text, "
    "    variation_id bigint, title text, quantity int, unit_price numeric, "
    "    full_unit_price numeric) "
    "  LEFT JOIN listings l ON l.tenant_id = $1 AND l.marketplace = 'mercadolivre' "
    "    AND l.external_id = it.listing_external_id "
    "  RETURNING 1) "
    "SELECT (SELECT count(*) FROM up), (SELECT count(*) FROM ins), (SELECT count(*) FROM del)";

static const char UPSERT_VISITS[] =
    "WITH x AS (SELECT * FROM jsonb_to_recordset($2::jsonb) AS x(listing_id uuid, date date, "
    "  visits int)) "
    "INSERT INTO listing_visits_daily (tenant_id, listing_id, date, visits, fetched_at) "
    "SELECT $1, listing_id, date, visits, now() FROM x "
    "ON CONFLICT (tenant_id, listing_id, date) DO UPDATE SET visits = EXCLUDED.visits, "
    "  fetched_at = EXCLUDED.fetched_at";

/* ---- writes that overlap with requests */

static void bump(json_t *counts, const char *key, long long n)
{
    json_object_set_new(counts, key,
                        json_integer(json_integer_value(json_object_get(counts, key)) + n));
}

/* Collects the write in flight, if any. Called before any other use of the connection. */
static void finish_write(struct sync *s)
{
    if (!s->writing)
        return;
    s->writing = false;
    long long t0 = util_mono_ms();
    PGresult *res[2] = {NULL, NULL};
    struct err e;
    err_clear(&e);
    bool orders = strcmp(s->write_step, "orders") == 0;
    if (db_tx_wait(s->c, orders ? 2 : 1, res, &e) != 0) {
        add_error(s, s->write_step, &e);
    } else if (orders) {
        long long up = count_col(res[1], 0);
        bump(s->write_counts, "upserted", up);
        bump(s->write_counts, "items", count_col(res[1], 1));
        s->records += up;
    } else {
        bump(s->write_counts, "days", s->write_rows);
        s->records += s->write_rows;
    }
    PQclear(res[0]);
    PQclear(res[1]);
    s->db_ms += util_mono_ms() - t0;
}

static void send_write(struct sync *s, const char *step, const struct db_stmt *stmts, size_t n,
                       json_t *counts, long long rows)
{
    finish_write(s);
    struct err e;
    err_clear(&e);
    if (db_tx_send(s->c, WRITE_TIMEOUT_MS, stmts, n, &e) != 0) {
        add_error(s, step, &e);
        return;
    }
    s->writing = true;
    s->write_step = step;
    s->write_counts = counts;
    s->write_rows = rows;
}

/* ---- listings */

static void url_escape(const char *in, char *out, size_t cap)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t o = 0;
    for (const unsigned char *p = (const unsigned char *)in; *p && o + 4 < cap; p++) {
        if ((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') ||
            *p == '-' || *p == '_' || *p == '.' || *p == '~') {
            out[o++] = (char)*p;
        } else {
            out[o++] = '%';
            out[o++] = hex[*p >> 4];
            out[o++] = hex[*p & 15];
        }
    }
    out[o] = '\0';
}

/* Every item id of the seller, with search_type=scan (no 1,000-result cap). NULL on failure. */
static json_t *discover(struct sync *s)
{
    json_t *all = json_array();
    char scroll[256] = "";
    for (int page = 0; page < 1000000; page++) {
        if (cancelled(s))
            break;
        char path[700], esc[600];
        url_escape(scroll, esc, sizeof esc);
        util_fmt(path, sizeof path, "/users/%lld/items/search?search_type=scan&limit=%d%s%s",
                 s->seller_id, SCAN_LIMIT, scroll[0] ? "&scroll_id=" : "", esc);
        struct ml_request r;
        memset(&r, 0, sizeof r);
        r.path_query = path;
        (void)ml_run(s->run->ml, &r, 1, &s->auth, s->run->cancel);
        int o = outcome(s, "listings", &r);
        if (o == 0)
            http_error(s, "listings", &r);
        if (o != 1) {
            ml_request_clear(&r);
            json_decref(all);
            return NULL;
        }
        struct err e;
        err_clear(&e);
        long long total;
        json_t *ids = ml_parse_search(r.body, r.len, scroll, sizeof scroll, &total, &e);
        ml_request_clear(&r);
        if (!ids) {
            add_error(s, "listings", &e);
            json_decref(all);
            return NULL;
        }
        size_t n = json_array_size(ids);
        json_array_extend(all, ids);
        json_decref(ids);
        if (n == 0 || !scroll[0])
            break;
    }
    return all;
}

static void sync_listings(struct sync *s, json_t *counts)
{
    progress(s, "listings: discovering items");
    json_t *ids = discover(s);
    if (!ids)
        return;
    size_t n = json_array_size(ids);
    json_object_set_new(counts, "discovered", json_integer((json_int_t)n));
    size_t nreq = (n + MULTIGET_IDS - 1) / MULTIGET_IDS;
    struct ml_request *reqs = util_calloc(nreq ? nreq : 1, sizeof *reqs);
    const char **chunk_ids = util_calloc(n ? n : 1, sizeof *chunk_ids);
    for (size_t i = 0; i < n; i++)
        chunk_ids[i] = json_string_value(json_array_get(ids, i));
    for (size_t q = 0; q < nreq; q++) {
        char path[2048];
        size_t len = (size_t)snprintf(path, sizeof path, "/items?ids=");
        for (size_t i = q * MULTIGET_IDS; i < n && i < (q + 1) * MULTIGET_IDS; i++) {
            char esc[160];
            url_escape(chunk_ids[i], esc, sizeof esc);
            len += (size_t)snprintf(path + len, sizeof path - len, "%s%s",
                                    i > q * MULTIGET_IDS ? "," : "", esc);
        }
        snprintf(path + len, sizeof path - len,
                 "&attributes=id,title,status,sub_status,price,currency_id,available_quantity,"
                 "sold_quantity,permalink,category_id,listing_type_id,last_updated");
        reqs[q].path_query = util_strdup(path);
    }
    progress(s, "listings: fetching details");
    (void)ml_run(s->run->ml, reqs, nreq, &s->auth, s->run->cancel);
    json_t *items = json_array();
    json_t *blocked = json_array();
    for (size_t q = 0; q < nreq; q++) {
        int o = outcome(s, "listings", &reqs[q]);
        if (o == 0)
            http_error(s, "listings", &reqs[q]);
        if (o == 1) {
            size_t first = q * MULTIGET_IDS;
            size_t count = n - first < MULTIGET_IDS ? n - first : MULTIGET_IDS;
            struct err e;
            err_clear(&e);
            json_t *els =
                ml_parse_multiget(reqs[q].body, reqs[q].len, chunk_ids + first, count, &e);
            if (!els)
                add_error(s, "listings", &e);
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
                    add_error(s, "listings", &ee);
                }
            }
            json_decref(els);
        }
        ml_request_clear(&reqs[q]);
        free(reqs[q].path_query);
    }
    free(reqs);
    free(chunk_ids);
    json_decref(ids);
    char *items_text = json_dumps(items, JSON_COMPACT);
    char *blocked_text = json_dumps(blocked, JSON_COMPACT);
    const char *p[] = {s->tenant, s->conn_id, items_text, blocked_text};
    PGresult *r = NULL;
    struct err e;
    err_clear(&e);
    if (write_tx(s, UPSERT_LISTINGS, 4, p, &r, &e) == 0) {
        json_object_set_new(counts, "upserted", json_integer(count_col(r, 0)));
        json_object_set_new(counts, "blocked", json_integer(count_col(r, 1)));
        s->records += count_col(r, 0);
        PQclear(r);
    } else {
        add_error(s, "listings", &e);
    }
    free(items_text);
    free(blocked_text);
    json_decref(items);
    json_decref(blocked);
}

/* ---- orders */

static void iso_hour(long long epoch, char *out, size_t cap)
{
    time_t t = (time_t)epoch;
    struct tm tm;
    gmtime_r(&t, &tm);
    /* Years are 4 digits here (the range is within the last 365 days). */
    snprintf(out, cap, "%04d-%02d-%02dT%02d:00:00.000-00:00", (tm.tm_year + 1900) % 10000,
             (tm.tm_mon + 1) % 100, tm.tm_mday % 100, tm.tm_hour % 100);
}

static char *orders_path(const struct sync *s, long long from, long long to, long long offset)
{
    char f[64], t[64], path[512];
    iso_hour(from, f, sizeof f);
    iso_hour(to, t, sizeof t);
    util_fmt(path, sizeof path,
             "/orders/search?seller=%lld&order.date_created.from=%s&order.date_created.to=%s"
             "&sort=date_asc&limit=%d&offset=%lld",
             s->seller_id, f, t, ORDERS_PAGE, offset);
    return util_strdup(path);
}

/* Sends a batch of orders (with their items and any unknown listings) as one pipelined
 * transaction; the counts are added when it is collected. */
static void write_orders(struct sync *s, json_t *orders, json_t *counts)
{
    if (json_array_size(orders) == 0)
        return;
    char *text = json_dumps(orders, JSON_COMPACT);
    const char *p[] = {s->tenant, s->conn_id, text};
    const struct db_stmt stmts[] = {{UPSERT_ORDERS_LISTINGS, 3, p}, {UPSERT_ORDERS, 3, p}};
    long long t0 = util_mono_ms();
    send_write(s, "orders", stmts, 2, counts, 0);
    s->db_ms += util_mono_ms() - t0;
    free(text);
}

static void add_fetched(json_t *counts, size_t n)
{
    json_object_set_new(
        counts, "fetched",
        json_integer(json_integer_value(json_object_get(counts, "fetched")) + (json_int_t)n));
}

struct orders_batch {
    struct sync *s;
    json_t *counts;
    json_t *pending; /* parsed orders not written yet */
};

/* Each page as it arrives: parsed, queued, written (pipelined) every ORDERS_WRITE_BATCH. */
static void on_orders_page(void *ctx, size_t i, struct ml_request *r)
{
    (void)i;
    struct orders_batch *ob = ctx;
    struct sync *s = ob->s;
    int o = outcome(s, "orders", r);
    if (o == 0)
        http_error(s, "orders", r);
    if (o == 1) {
        struct err e;
        err_clear(&e);
        long long total;
        json_t *p = ml_parse_orders(r->body, r->len, &total, &e);
        if (p) {
            add_fetched(ob->counts, json_array_size(p));
            json_array_extend(ob->pending, p);
            json_decref(p);
            if (json_array_size(ob->pending) >= ORDERS_WRITE_BATCH) {
                write_orders(s, ob->pending, ob->counts);
                json_decref(ob->pending);
                ob->pending = json_array();
            }
        } else {
            add_error(s, "orders", &e);
        }
    }
    ml_request_clear(r);
}

/* Fetches [from, to) (hour-aligned epoch seconds); splits the range while it holds more than
 * the API can page through. */
static void fetch_orders(struct sync *s, long long from, long long to, json_t *counts, int depth)
{
    if (cancelled(s))
        return;
    struct ml_request first;
    memset(&first, 0, sizeof first);
    first.path_query = orders_path(s, from, to, 0);
    (void)ml_run(s->run->ml, &first, 1, &s->auth, s->run->cancel);
    int o = outcome(s, "orders", &first);
    if (o == 0)
        http_error(s, "orders", &first);
    json_t *page = NULL;
    long long total = -1;
    if (o == 1) {
        struct err e;
        err_clear(&e);
        page = ml_parse_orders(first.body, first.len, &total, &e);
        if (!page)
            add_error(s, "orders", &e);
    }
    ml_request_clear(&first);
    free(first.path_query);
    if (!page)
        return;
    if (total > ORDERS_OFFSET_CAP && to - from > 3600 && depth < 40) {
        /* The API pages through 10,000 results at most: halve the range on an hour
         * boundary (its date filters are truncated to the hour). */
        json_decref(page);
        long long mid = from + ((to - from) / 2 / 3600) * 3600;
        if (mid <= from)
            mid = from + 3600;
        fetch_orders(s, from, mid, counts, depth + 1);
        fetch_orders(s, mid, to, counts, depth + 1);
        return;
    }
    if (total > ORDERS_OFFSET_CAP) {
        struct err e;
        err_set(&e, 503, "ml_unavailable",
                "more than %d orders in one hour: only the first %d were fetched",
                ORDERS_OFFSET_CAP, ORDERS_OFFSET_CAP);
        add_error(s, "orders", &e);
    }
    add_fetched(counts, json_array_size(page));
    json_t *pending = page;
    long long last = total < ORDERS_OFFSET_CAP ? total : ORDERS_OFFSET_CAP;
    size_t nreq = last > ORDERS_PAGE ? (size_t)((last - 1) / ORDERS_PAGE) : 0;
    if (nreq == 0) {
        write_orders(s, pending, counts);
        json_decref(pending);
        return;
    }
    struct ml_request *reqs = util_calloc(nreq, sizeof *reqs);
    for (size_t i = 0; i < nreq; i++)
        reqs[i].path_query = orders_path(s, from, to, (long long)(i + 1) * ORDERS_PAGE);
    struct orders_batch ob = {s, counts, pending};
    (void)ml_run_each(s->run->ml, reqs, nreq, &s->auth, s->run->cancel, on_orders_page, &ob);
    for (size_t i = 0; i < nreq; i++) {
        ml_request_clear(&reqs[i]);
        free(reqs[i].path_query);
    }
    free(reqs);
    write_orders(s, ob.pending, counts);
    json_decref(ob.pending);
}

static void sync_orders(struct sync *s, json_t *counts)
{
    progress(s, "orders: fetching");
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
        add_error(s, "orders", &e);
        return;
    }
    long long from = count_col(r, 0), to = count_col(r, 1);
    PQclear(r);
    fetch_orders(s, from, to, counts, 0);
    finish_write(s);
}

/* ---- visits */

struct visits_batch {
    struct sync *s;
    PGresult *listings; /* id, external_id */
    json_t *counts;
    json_t *rows;    /* rows not written yet */
    json_t *blocked; /* listing ids answered with a PolicyAgent 403 */
    long long ok;    /* listings fetched */
};

static void flush_visits(struct visits_batch *vb)
{
    struct sync *s = vb->s;
    size_t n = json_array_size(vb->rows);
    if (n == 0)
        return;
    char *text = json_dumps(vb->rows, JSON_COMPACT);
    const char *p[] = {s->tenant, text};
    const struct db_stmt stmt = {UPSERT_VISITS, 2, p};
    long long t0 = util_mono_ms();
    send_write(s, "visits", &stmt, 1, vb->counts, (long long)n);
    s->db_ms += util_mono_ms() - t0;
    free(text);
    json_decref(vb->rows);
    vb->rows = json_array();
}

/* Each listing's answer as it arrives. A failed fetch writes nothing: known values are never
 * replaced by NULL or 0. */
static void on_visits(void *ctx, size_t i, struct ml_request *r)
{
    struct visits_batch *vb = ctx;
    struct sync *s = vb->s;
    const char *listing = PQgetvalue(vb->listings, (int)i, 0);
    int o = outcome(s, "visits", r);
    if (o == 0) {
        if (r->status == 403)
            json_array_append_new(vb->blocked, json_string(listing));
        else if (r->status != 404)
            http_error(s, "visits", r);
    } else if (o == 1) {
        struct err pe;
        err_clear(&pe);
        json_t *v = ml_parse_visits(r->body, r->len, &pe);
        if (!v) {
            add_error(s, "visits", &pe);
        } else {
            vb->ok++;
            size_t j;
            json_t *d;
            json_array_foreach(v, j, d)
            {
                json_object_set_new(d, "listing_id", json_string(listing));
                json_array_append(vb->rows, d);
            }
            json_decref(v);
            if (json_array_size(vb->rows) >= VISITS_WRITE_ROWS)
                flush_visits(vb);
        }
    }
    ml_request_clear(r);
}

static void sync_visits(struct sync *s, json_t *counts, json_t *warnings)
{
    progress(s, "visits: fetching");
    finish_write(s);
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
        add_error(s, "visits", &e);
        return;
    }
    /* The window is [ending - last, ending): ending tomorrow (UTC) includes today's partial
     * count, which the next sync replaces. */
    long long last = s->days_back < VISITS_MAX_DAYS ? s->days_back : VISITS_MAX_DAYS;
    if (s->days_back > VISITS_MAX_DAYS)
        json_array_append_new(warnings,
                              json_string("visits are limited to the last 150 days by the API"));
    size_t n = (size_t)PQntuples(r);
    struct ml_request *reqs = util_calloc(n ? n : 1, sizeof *reqs);
    for (size_t i = 0; i < n; i++) {
        char esc[160], path[400];
        url_escape(PQgetvalue(r, (int)i, 1), esc, sizeof esc);
        util_fmt(path, sizeof path, "/items/%s/visits/time_window?last=%lld&unit=day&ending=%s",
                 esc, last, PQgetvalue(r, 0, 2));
        reqs[i].path_query = util_strdup(path);
    }
    struct visits_batch vb = {s, r, counts, json_array(), json_array(), 0};
    (void)ml_run_each(s->run->ml, reqs, n, &s->auth, s->run->cancel, on_visits, &vb);
    flush_visits(&vb);
    finish_write(s);
    for (size_t i = 0; i < n; i++) {
        ml_request_clear(&reqs[i]);
        free(reqs[i].path_query);
    }
    free(reqs);
    if (json_array_size(vb.blocked) > 0) {
        char *bt = json_dumps(vb.blocked, JSON_COMPACT);
        const char *pb[] = {s->tenant, bt};
        if (write_tx(s,
                     "UPDATE listings SET access_status = 'blocked_by_policy', updated_at = now() "
                     "WHERE tenant_id = $1 AND id IN (SELECT b::uuid FROM "
                     "jsonb_array_elements_text($2::jsonb) b)",
                     2, pb, NULL, &e) != 0)
            add_error(s, "visits", &e);
        free(bt);
    }
    json_decref(vb.rows);
    json_decref(vb.blocked);
    PQclear(r);
    json_object_set_new(counts, "listings", json_integer(vb.ok));
}

/* ---- one connection */

static json_t *sync_connection(struct sync *s, json_t *warnings)
{
    s->refreshed = false;
    s->errors = json_array();
    json_t *listings = json_pack("{s:i, s:i, s:i}", "discovered", 0, "upserted", 0, "blocked", 0);
    json_t *orders = json_pack("{s:i, s:i, s:i}", "fetched", 0, "upserted", 0, "items", 0);
    json_t *visits = json_pack("{s:i, s:i}", "listings", 0, "days", 0);
    memset(&s->auth, 0, sizeof s->auth);
    s->auth.refresh = on_401;
    s->auth.ctx = s;
    struct err e;
    err_clear(&e);
    progress(s, "checking the access token");
    bool fatal = ensure_token(s, NULL, s->auth.token, sizeof s->auth.token, &e) != 0;
    if (fatal) {
        add_error(s, "token", &e);
    } else {
        long long t0 = util_mono_ms(), d0 = s->db_ms;
        if ((s->include & SYNC_LISTINGS) && !cancelled(s)) {
            sync_listings(s, listings);
            phase_done(s, "listings", t0, d0);
        }
        t0 = util_mono_ms();
        d0 = s->db_ms;
        if ((s->include & SYNC_ORDERS) && !cancelled(s)) {
            sync_orders(s, orders);
            phase_done(s, "orders", t0, d0);
        }
        t0 = util_mono_ms();
        d0 = s->db_ms;
        if ((s->include & SYNC_VISITS) && !cancelled(s)) {
            sync_visits(s, visits, warnings);
            phase_done(s, "visits", t0, d0);
        }
        finish_write(s);
        if (err_is_set(&s->auth.refresh_err))
            add_error(s, "token", &s->auth.refresh_err);
        const char *p[] = {s->conn_id};
        err_clear(&e);
        if (db_exec(s->c,
                    "UPDATE marketplace_connections SET last_synced_at = now(), updated_at = now() "
                    "WHERE id = $1",
                    1, p, &e) != 0)
            add_error(s, "token", &e);
    }
    OPENSSL_cleanse(s->auth.token, sizeof s->auth.token);
    return json_pack("{s:I, s:b, s:o, s:o, s:o, s:o}", "sellerId", (json_int_t)s->seller_id,
                     "tokenRefreshed", s->refreshed, "listings", listings, "orders", orders,
                     "visits", visits, "errors", s->errors);
}

static json_t *sync_run_with(struct job_run *run, struct token_crypt *crypt, struct err *e)
{
    struct sync s;
    memset(&s, 0, sizeof s);
    s.run = run;
    s.c = run->conn;
    if (!run->ml || !util_uuid_normalize(run->tenant_id, s.tenant)) {
        err_set(e, 500, "internal_error", "job %s has an invalid stored request", run->id);
        return NULL;
    }
    s.crypt = crypt;
    s.days_back = (long long)json_integer_value(json_object_get(run->params, "daysBack"));
    if (s.days_back < 1 || s.days_back > 365)
        s.days_back = 30;
    size_t i;
    json_t *v;
    json_array_foreach(json_object_get(run->params, "include"), i, v)
    {
        for (size_t p = 0; PARTS[p]; p++)
            if (json_string_value(v) && strcmp(json_string_value(v), PARTS[p]) == 0)
                s.include |= 1u << p;
    }
    if (!s.include)
        s.include = SYNC_LISTINGS | SYNC_ORDERS | SYNC_VISITS;

    const char *p[] = {s.tenant};
    PGresult *r = db_query(s.c,
                           "SELECT id, seller_id, status FROM marketplace_connections "
                           "WHERE tenant_id = $1 AND provider = 'mercadolivre' ORDER BY seller_id",
                           1, p, e);
    if (!r)
        return NULL;
    int n = PQntuples(r), active = 0;
    bool reauth = false;
    for (int k = 0; k < n; k++) {
        if (strcmp(PQgetvalue(r, k, 2), "active") == 0)
            active++;
        else if (strcmp(PQgetvalue(r, k, 2), "reauth_required") == 0)
            reauth = true;
    }
    if (active == 0) {
        PQclear(r);
        if (reauth)
            err_set(e, 422, "reauth_required",
                    "every Mercado Livre connection of tenant %s needs to be reconnected",
                    s.tenant);
        else
            err_set(e, 422, "no_active_connection",
                    "tenant %s has no active Mercado Livre connection", s.tenant);
        return NULL;
    }
    json_t *connections = json_array();
    json_t *warnings = json_array();
    int failed_connections = 0;
    for (int k = 0; k < n && !cancelled(&s); k++) {
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
    if (cancelled(&s)) {
        json_decref(connections);
        json_decref(warnings);
        err_set(e, 503, "interrupted", "the sync was cancelled");
        return NULL;
    }
    /* Nothing could be done at all: the failure itself is the answer (503 or 422). */
    if (failed_connections == active && err_is_set(&s.worst)) {
        json_decref(connections);
        json_decref(warnings);
        *e = s.worst;
        if (e->http_status == 503 && strcmp(e->code, "ml_unavailable") == 0 && e->retry_after <= 0)
            e->retry_after = 60;
        return NULL;
    }
    bool partial = err_is_set(&s.worst);
    json_t *result =
        json_pack("{s:b, s:s, s:i, s:I, s:I, s:o, s:o}", "success", !partial, "jobLogId", run->id,
                  "duration", 0, "daysBack", (json_int_t)s.days_back, "recordsProcessed",
                  (json_int_t)s.records, "connections", connections, "warnings", warnings);
    long long duration = 0;
    struct err partial_err;
    err_clear(&partial_err);
    if (partial)
        err_set(&partial_err, 200, s.worst.code,
                "the sync finished with errors (see connections[].errors): %s", s.worst.message);
    int rc = partial ? job_store_finish_partial(s.c, run->id, run->worker_id, s.records, result,
                                                &partial_err, &duration, e)
                     : job_store_finish_success(s.c, run->id, run->worker_id, s.records, result,
                                                &duration, e);
    if (rc != 0) {
        json_decref(result);
        return NULL;
    }
    json_object_set_new(result, "duration", json_integer(duration));
    return result;
}

static json_t *sync_run(struct job_run *run, struct err *e)
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
    "usage: jobsd sync-mercadolivre --tenant ID [--days-back N] [--include "
    "listings,orders,visits]\n"
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
    {"--days-back", "daysBack", JOB_OPTION_INTEGER, false},
    {"--include",   "include",  JOB_OPTION_LIST,    false},
    {NULL, NULL, JOB_OPTION_STRING, false},
};
/* clang-format on */

const struct job_kind job_sync_ml_kind = {
    .type = "mercadolivre_sync",
    .name = "sync-mercadolivre",
    .synopsis = "--tenant ID [--days-back N] [--include listings,orders,visits]",
    .summary = "pull listings, orders and visits from Mercado Livre",
    .usage = USAGE,
    .options = OPTIONS,
    .resolve = sync_resolve,
    .run = sync_run,
    .present = sync_present,
};
