/* fake_api: the Mercado Livre endpoints, with the real API's bodies and limits
 * (the project brief's ML_API.md; README.md "Endpoints" lists every rule implemented here). */
#include "fake_world.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define MAX_SCROLLS 4096

/* ------------------------------------------------------------------ bodies */

static void reply_forbidden(struct reply *out)
{
    reply_json(out, 403,
               json_pack("{s:i, s:s, s:s, s:s}", "status", 403, "error", "access_denied", "message",
                         "access to the requested resource is forbidden", "code", "FORBIDDEN"));
}

static json_t *policy_agent_body(void)
{
    return json_pack("{s:s, s:s, s:s, s:i}", "code", "PA_UNAUTHORIZED_RESULT_FROM_POLICIES",
                     "blocked_by", "PolicyAgent", "message",
                     "At least one policy returned UNAUTHORIZED.", "status", 403);
}

static void reply_bad_request(struct reply *out, const char *message)
{
    reply_error(out, 400, "bad_request", message);
}

static void oauth_error(struct reply *out, const char *error, const char *message)
{
    reply_error(out, 400, error, message);
}

/* ------------------------------------------------------------------ auth */

/* The seller owning the bearer token, or NULL with a 401 in out (visits: the PolicyAgent 403,
 * which the Visits page documents for "an invalid or expired access token"). world.lock
 * held. */
static struct seller *authenticate(const char *authz, enum endpoint ep, struct reply *out)
{
    const char *tok = NULL;
    if (authz && strncasecmp(authz, "Bearer ", 7) == 0) {
        tok = authz + 7;
        while (*tok == ' ')
            tok++;
    }
    struct seller *s = NULL;
    if (tok && *tok)
        for (size_t i = 0; i < g_world.nsellers && !s; i++)
            if (g_world.sellers[i].access_token &&
                strcmp(g_world.sellers[i].access_token, tok) == 0)
                s = &g_world.sellers[i];
    if (s && now_ms() < s->access_expires_ms)
        return s;
    stats_count(s ? C_EXPIRED_TOKEN : C_INVALID_TOKEN);
    if (ep == EP_VISITS) {
        stats_count(C_VISITS_FORBIDDEN);
        reply_json(out, 403, policy_agent_body());
    } else {
        reply_error(out, 401, "not_found", "invalid_token");
    }
    return NULL;
}

/* ------------------------------------------------------------------ POST /oauth/token */

static const char *form_get(const struct params *form, const struct params *query, const char *key)
{
    const char *v = params_get(form, key);
    return v ? v : params_get(query, key);
}

static void oauth_token(const struct api_request *rq, struct reply *out)
{
    struct params form = {0};
    if (!rq->content_type ||
        strncasecmp(rq->content_type, "application/x-www-form-urlencoded", 33) == 0)
        params_parse(&form, rq->body ? rq->body : "", rq->body_len);
    const char *grant = form_get(&form, rq->query, "grant_type");
    const char *cid = form_get(&form, rq->query, "client_id");
    const char *secret = form_get(&form, rq->query, "client_secret");
    const char *rt = form_get(&form, rq->query, "refresh_token");
    if (grant)
        json_object_set_new(rq->log_params, "grant_type", json_string(grant));
    if (cid)
        json_object_set_new(rq->log_params, "client_id", json_string(cid));
    if (rt)
        json_object_set_new(rq->log_params, "refresh_token", json_string(rt));

    pthread_mutex_lock(&g_world.lock);
    if (!grant || !*grant) {
        oauth_error(out, "invalid_request", "the grant_type parameter is required");
        goto out;
    }
    if (strcmp(grant, "refresh_token") != 0 && strcmp(grant, "authorization_code") != 0) {
        oauth_error(out, "unsupported_grant_type", "the grant_type is not supported");
        goto out;
    }
    bool client_ok = false;
    for (size_t i = 0; cid && secret && i < g_world.nclients; i++)
        if (strcmp(g_world.clients[i].id, cid) == 0 &&
            strcmp(g_world.clients[i].secret, secret) == 0)
            client_ok = true;
    if (!client_ok) {
        stats_count(C_INVALID_CLIENT);
        oauth_error(out, "invalid_client", "invalid client_id or client_secret");
        goto out;
    }
    if (strcmp(grant, "authorization_code") == 0) {
        /* The fake never issues authorization codes: any code is unknown. */
        stats_count(C_INVALID_GRANT);
        oauth_error(out, "invalid_grant",
                    "Error validating grant. Your authorization code or refresh token may be "
                    "expired or it was already used");
        goto out;
    }
    if (!rt || !*rt) {
        oauth_error(out, "invalid_request", "the refresh_token parameter is required");
        goto out;
    }
    struct seller *s = NULL;
    for (size_t i = 0; i < g_world.nsellers && !s; i++) {
        struct seller *c = &g_world.sellers[i];
        if (c->refresh_token && strcmp(c->refresh_token, rt) == 0 && strcmp(c->client_id, cid) == 0)
            s = c;
    }
    if (!s) {
        stats_count(C_INVALID_GRANT);
        oauth_error(out, "invalid_grant",
                    "Error validating grant. Your authorization code or refresh token may be "
                    "expired or it was already used");
        goto out;
    }
    world_rotate_tokens(s);
    stats_count(C_REFRESH);
    reply_json(out, 200,
               json_pack("{s:s, s:s, s:I, s:s, s:I, s:s}", "access_token", s->access_token,
                         "token_type", "bearer", "expires_in", (json_int_t)g_world.access_ttl_s,
                         "scope", "offline_access read write", "user_id", (json_int_t)s->user_id,
                         "refresh_token", s->refresh_token));
out:
    pthread_mutex_unlock(&g_world.lock);
    params_free(&form);
}

/* ------------------------------------------------------------------ GET /users/me */

static void users_me(const struct seller *s, struct reply *out)
{
    char email[96], link[128];
    snprintf(email, sizeof email, "test_user_%lld@testuser.com", s->user_id);
    snprintf(link, sizeof link, "http://perfil.mercadolivre.com.br/%s", s->nickname);
    json_t *j = json_pack(
        "{s:I, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:[s, s], s:s, s:s,"
        " s:{s:s, s:n, s:{s:I, s:I, s:I, s:s}}, s:{s:s}}",
        "id", (json_int_t)s->user_id, "nickname", s->nickname, "registration_date",
        "2019-03-12T10:22:18.000-04:00", "first_name", "Test", "last_name", "User", "country_id",
        "BR", "email", email, "user_type", "normal", "tags", "normal", "test_user", "site_id",
        "MLB", "permalink", link, "seller_reputation", "level_id", "5_green", "power_seller_status",
        "transactions", "total", (json_int_t)1200, "completed", (json_int_t)1150, "canceled",
        (json_int_t)50, "period", "historic", "status", "site_status", "active");
    if (!j)
        fatal("json_pack failed (users/me)");
    reply_json(out, 200, j);
}

/* ------------------------------------------------------------------ items search */

/* Is status in the comma-separated filter (NULL = no filter)? */
static bool status_matches(const char *filter, const char *status)
{
    if (!filter || !*filter)
        return true;
    size_t n = strlen(status);
    const char *p = filter;
    for (;;) {
        const char *c = strchr(p, ',');
        size_t l = c ? (size_t)(c - p) : strlen(p);
        if (l == n && memcmp(p, status, n) == 0)
            return true;
        if (!c)
            return false;
        p = c + 1;
    }
}

static bool path_user_id(const char *path, long long *uid)
{
    /* /users/{id}/items/search */
    const char *p = path + strlen("/users/");
    const char *e = strchr(p, '/');
    if (!e || e == p || (size_t)(e - p) > 20)
        return false;
    char buf[24];
    memcpy(buf, p, (size_t)(e - p));
    buf[e - p] = '\0';
    return parse_ll(buf, 1, LLONG_MAX, uid);
}

static void scroll_drop(size_t i)
{
    free(g_world.scrolls[i].status_filter);
    free(g_world.scrolls[i].id);
    g_world.scrolls[i] = g_world.scrolls[--g_world.nscrolls];
}

static struct scroll *scroll_new(size_t seller, const char *filter)
{
    long long now = now_ms();
    for (size_t i = 0; i < g_world.nscrolls;)
        if (g_world.scrolls[i].issued_ms + g_world.scroll_ttl_s * 1000 <= now)
            scroll_drop(i);
        else
            i++;
    if (g_world.nscrolls == MAX_SCROLLS) {
        size_t oldest = 0;
        for (size_t i = 1; i < g_world.nscrolls; i++)
            if (g_world.scrolls[i].issued_ms < g_world.scrolls[oldest].issued_ms)
                oldest = i;
        scroll_drop(oldest);
    }
    if (g_world.nscrolls == g_world.capscrolls) {
        g_world.capscrolls = g_world.capscrolls ? g_world.capscrolls * 2 : 16;
        g_world.scrolls = xrealloc(g_world.scrolls, g_world.capscrolls * sizeof *g_world.scrolls);
    }
    struct scroll *sc = &g_world.scrolls[g_world.nscrolls++];
    memset(sc, 0, sizeof *sc);
    sc->seller = seller;
    sc->status_filter = filter ? xstrdup(filter) : NULL;
    return sc;
}

/* Gives the scroll a new id (the previous one stops working). The shape of the documented
 * example (ML's "Items y búsquedas"): base64("apicore-items"), base64("ds-apicore-items-01")
 * and a base64 Elasticsearch scroll id ("\rqueryAndFetch\x01..."), whose length grows with
 * the shards it spans; scroll_id_length characters in all. The last segment is standard
 * base64, so it contains '+' and '/' (and '=' padding): a client must URL-encode the id. */
static void scroll_reissue(struct scroll *sc)
{
    static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    static const char head[] = "YXBpY29yZS1pdGVtcw==:ZHMtYXBpY29yZS1pdGVtcy0wMQ==:"
                               "DXF1ZXJ5QW5kRmV0Y2gB";
    g_world.scroll_serial++;
    size_t len = (size_t)g_world.scroll_id_length, hl = sizeof head - 1;
    char *id = xmalloc(len + 1);
    memcpy(id, head, hl);
    struct rng r = {mix64(g_world.seed ^ 0x5c7011ULL) ^ mix64(g_world.scroll_serial)};
    for (size_t i = hl; i < len - 2; i++)
        id[i] = b64[rng_next(&r) % 64];
    /* Always one of each character that needs encoding, whatever the draw. */
    id[hl + 3] = '+';
    id[hl + 7] = '/';
    id[len - 2] = '=';
    id[len - 1] = '=';
    id[len] = '\0';
    free(sc->id);
    sc->id = id;
    sc->issued_ms = now_ms();
}

static void items_search(const struct api_request *rq, struct seller *s, struct reply *out)
{
    long long uid;
    if (!path_user_id(rq->path, &uid)) {
        reply_bad_request(out, "Invalid user id");
        return;
    }
    if (uid != s->user_id) {
        reply_forbidden(out);
        return;
    }
    const char *stype = params_get(rq->query, "search_type");
    bool scan = false;
    if (stype && strcmp(stype, "scan") == 0)
        scan = true;
    else if (stype && *stype) {
        reply_bad_request(out, "Invalid search_type. Valid values: scan");
        return;
    }
    long long limit = 50, offset = 0;
    const char *ls = params_get(rq->query, "limit"), *os = params_get(rq->query, "offset");
    if (ls && !parse_ll(ls, 0, LLONG_MAX, &limit)) {
        reply_bad_request(out, "Invalid limit. The limit must be a non-negative integer");
        return;
    }
    stats_note_search_limit(limit);
    if (limit > 100) {
        reply_bad_request(out, "Invalid limit. The limit must be lower or equal than 100");
        return;
    }
    if (os && !parse_ll(os, 0, LLONG_MAX, &offset)) {
        reply_bad_request(out, "Invalid offset. The offset must be a non-negative integer");
        return;
    }
    const char *filter = params_get(rq->query, "status");
    size_t seller_ix = (size_t)(s - g_world.sellers);
    struct scroll *sc = NULL;
    if (scan) {
        if (offset != 0) {
            reply_bad_request(out, "The offset parameter is not allowed with search_type=scan");
            return;
        }
        const char *sid = params_get(rq->query, "scroll_id");
        if (sid) {
            for (size_t i = 0; i < g_world.nscrolls && !sc; i++)
                if (g_world.scrolls[i].id && strcmp(g_world.scrolls[i].id, sid) == 0)
                    sc = &g_world.scrolls[i];
            if (sc && sc->issued_ms + g_world.scroll_ttl_s * 1000 <= now_ms()) {
                scroll_drop((size_t)(sc - g_world.scrolls));
                sc = NULL;
            }
            if (!sc || sc->seller != seller_ix) {
                stats_count(C_SCROLL_ERRORS);
                reply_bad_request(out, "Invalid scroll_id: it expired or is not the latest one "
                                       "returned for this scan");
                return;
            }
            filter = sc->status_filter;
        } else {
            sc = scroll_new(seller_ix, filter);
        }
        offset = (long long)sc->pos;
        stats_count(C_SCAN_PAGES);
    } else if (offset + limit > 1000) {
        reply_bad_request(out, "Invalid offset and limit: offset + limit must be lower or equal "
                               "than 1000. Use search_type=scan to get more results");
        return;
    }
    json_t *results = json_array();
    long long total = 0;
    for (size_t i = 0; i < s->nitems; i++) {
        const struct item *it = &s->items[i];
        if (!status_matches(filter, it->status))
            continue;
        if (total >= offset && total < offset + limit)
            json_array_append_new(results, json_string(it->id));
        total++;
    }
    json_t *paging = json_pack("{s:I, s:I, s:I}", "total", (json_int_t)total, "offset",
                               (json_int_t)offset, "limit", (json_int_t)limit);
    char sid[32];
    snprintf(sid, sizeof sid, "%lld", s->user_id);
    json_t *j =
        json_pack("{s:s, s:n, s:o, s:o, s:[{s:s, s:s}], s:[{s:s, s:s}, {s:s, s:s}]}", "seller_id",
                  sid, "query", "paging", paging, "results", results, "orders", "id",
                  "stop_time_asc", "name", "Order by stop time ascending", "available_orders", "id",
                  "stop_time_asc", "name", "Order by stop time ascending", "id", "stop_time_desc",
                  "name", "Order by stop time descending");
    if (!j)
        fatal("json_pack failed (items search)");
    if (sc) {
        sc->pos += json_array_size(results);
        if (json_array_size(results) == 0 && g_world.scan_end_null)
            json_object_set_new(j, "results", json_null());
        scroll_reissue(sc);
        json_object_set_new(j, "scroll_id", json_string(sc->id));
    }
    reply_json(out, 200, j);
}

/* ------------------------------------------------------------------ GET /items?ids= */

static bool in_csv(const char *csv, const char *key)
{
    return csv && status_matches(csv, key);
}

static void items_multiget(const struct api_request *rq, struct reply *out)
{
    const char *ids = params_get(rq->query, "ids");
    if (!ids || !*ids) {
        reply_bad_request(out, "The parameter 'ids' is required");
        return;
    }
    /* Split on commas; empty elements are ignored. */
    const char *toks[1024];
    size_t lens[1024];
    long long n = 0;
    for (const char *p = ids;;) {
        const char *c = strchr(p, ',');
        size_t l = c ? (size_t)(c - p) : strlen(p);
        if (l > 0) {
            if (n < 1024) {
                toks[n] = p;
                lens[n] = l;
            }
            n++;
        }
        if (!c)
            break;
        p = c + 1;
    }
    stats_note_multiget_ids(n);
    if (n > 20) {
        char msg[160];
        snprintf(msg, sizeof msg,
                 "The parameter 'ids' only allows 20 elements. You exceeded this value by "
                 "sending %lld elements",
                 n);
        reply_json(out, 400, json_pack("{s:s, s:s}", "error", "bad_request", "message", msg));
        return;
    }
    if (n == 0) {
        reply_bad_request(out, "The parameter 'ids' is required");
        return;
    }
    const char *attrs = params_get(rq->query, "attributes");
    if (attrs && !*attrs)
        attrs = NULL;
    const char *key = g_world.multiget_status_code_key ? "status_code" : "code";
    struct sbuf b = {0};
    sb_adds(&b, "[");
    for (long long i = 0; i < n; i++) {
        char id[128];
        snprintf(id, sizeof id, "%.*s", (int)(lens[i] < 100 ? lens[i] : 100), toks[i]);
        if (i > 0)
            sb_adds(&b, ",");
        const struct item *it = world_item(id, NULL);
        if (it && it->policy_blocked) {
            json_t *pa = policy_agent_body();
            char *e = dump_json(pa);
            json_decref(pa);
            sb_addf(&b, "{\"%s\":403,\"body\":%s}", key, e);
            free(e);
            continue;
        }
        if (!it || it->missing) {
            sb_addf(&b,
                    "{\"%s\":404,\"body\":{\"message\":\"Item not found\",\"error\":"
                    "\"not_found\",\"status\":404}}",
                    key);
            continue;
        }
        sb_addf(&b, "{\"%s\":200,\"body\":", key);
        if (attrs) {
            json_t *full = json_loads(it->json, 0, NULL);
            json_t *part = json_object();
            const char *k;
            json_t *v;
            json_object_foreach(full, k, v)
            {
                if (in_csv(attrs, k))
                    json_object_set(part, k, v);
            }
            char *e = dump_json(part);
            sb_adds(&b, e);
            free(e);
            json_decref(part);
            json_decref(full);
        } else {
            sb_adds(&b, it->json);
        }
        sb_adds(&b, "}");
    }
    sb_adds(&b, "]");
    out->status = 200;
    free(out->body);
    out->body = sb_take(&b, &out->len);
}

/* ------------------------------------------------------------------ visits */

static void visits(const struct api_request *rq, struct seller *caller, struct reply *out)
{
    /* /items/{id}/visits/time_window */
    const char *p = rq->path + strlen("/items/");
    const char *e = strchr(p, '/');
    char *id = url_decode(p, (size_t)(e - p), false);
    const char *unit = params_get(rq->query, "unit"), *ls = params_get(rq->query, "last"),
               *es = params_get(rq->query, "ending");
    long long last, ending;
    /* An app without the seller's visits permission: the same 403 (Visits page: "does not have
     * the required permissions"). */
    if (!caller->visits_permission) {
        stats_count(C_VISITS_FORBIDDEN);
        reply_json(out, 403, policy_agent_body());
        goto out;
    }
    if (!unit || strcmp(unit, "day") != 0) {
        reply_bad_request(out, "Invalid unit. Valid values: day");
        goto out;
    }
    if (!ls || !parse_ll(ls, 1, LLONG_MAX, &last)) {
        reply_bad_request(out, "Invalid last. It must be a positive integer");
        goto out;
    }
    if (last > VISITS_MAX_DAYS) {
        if (g_world.visits_over_max_error) {
            reply_bad_request(out, "invalid time window, should be smaller or equal to 150 days");
            goto out;
        }
        last = VISITS_MAX_DAYS;
    }
    /* ending: "YYYY-MM-DD ... Defaults to current date and time" (Visits page); the window is
     * [ending - last, ending), whole UTC days. */
    long long today = floor_div(now_ms(), 86400000LL);
    if (es) {
        if (!date_parse(es, &ending)) {
            reply_bad_request(out, "invalid date format for ending date");
            goto out;
        }
    } else {
        ending = today;
    }
    char used[DATE_BUF];
    date_format(ending, used);
    json_object_set_new(rq->log_params, "ending_used", json_string(used));
    if (ending > today) {
        /* Undocumented: the fake accepts it, or refuses it with visits_future_ending=error. */
        stats_count(C_VISITS_FUTURE_ENDINGS);
        if (g_world.visits_future_error) {
            reply_bad_request(out, "invalid ending date: it is after today (UTC)");
            goto out;
        }
    }
    struct seller *owner = NULL;
    const struct item *it = id ? world_item(id, &owner) : NULL;
    /* A policy-blocked item is blocked even when it is also flagged missing. */
    if (it && it->policy_blocked) {
        reply_json(out, 403, policy_agent_body());
        goto out;
    }
    if (!it || it->missing) {
        reply_error(out, 404, "not_found", "Item not found");
        goto out;
    }
    struct sbuf b = {0}, r = {0};
    long long sum = 0;
    for (long long d = ending - last; d < ending; d++) {
        long long n = world_visits(owner, it, d);
        char ds[DATE_BUF];
        date_format(d, ds);
        sb_addf(&r,
                "%s{\"date\":\"%sT00:00:00Z\",\"total\":%lld,\"visits_detail\":[{\"company\":"
                "\"mercadolibre\",\"quantity\":%lld}]}",
                r.len ? "," : "", ds, n, n);
        sum += n;
    }
    char from[DATE_BUF], to[DATE_BUF];
    date_format(ending - last, from);
    date_format(ending, to);
    sb_addf(&b,
            "{\"item_id\":\"%s\",\"date_from\":\"%sT00:00:00Z\",\"date_to\":\"%sT00:00:00Z\","
            "\"total_visits\":%lld,\"last\":%lld,\"unit\":\"day\",\"results\":[",
            it->id, from, to, sum, last);
    if (r.len)
        sb_add(&b, r.data, r.len);
    sb_adds(&b, "]}");
    sb_free(&r);
    out->status = 200;
    free(out->body);
    out->body = sb_take(&b, &out->len);
out:
    free(id);
}

/* ------------------------------------------------------------------ dispatch */

void api_handle(const struct api_request *rq, struct reply *out)
{
    if (rq->endpoint == EP_OTHER) {
        reply_error(out, 404, "not_found", "Resource not found");
        return;
    }
    const char *want = rq->endpoint == EP_OAUTH_TOKEN ? "POST" : "GET";
    if (strcmp(rq->method, want) != 0) {
        reply_error(out, 405, "method_not_allowed", "Method not allowed");
        return;
    }
    if (rq->endpoint == EP_OAUTH_TOKEN) {
        oauth_token(rq, out);
        return;
    }
    pthread_mutex_lock(&g_world.lock);
    struct seller *s = authenticate(rq->authorization, rq->endpoint, out);
    if (s) {
        switch (rq->endpoint) {
        case EP_USERS_ME:
            users_me(s, out);
            break;
        case EP_ITEMS_SEARCH:
            items_search(rq, s, out);
            break;
        case EP_ITEMS_MULTIGET:
            items_multiget(rq, out);
            break;
        case EP_ORDERS_SEARCH:
            orders_search(rq, s, out);
            break;
        case EP_ORDERS_GET:
            orders_get(rq, s, out);
            break;
        case EP_VISITS:
            visits(rq, s, out);
            break;
        default:
            reply_error(out, 404, "not_found", "Resource not found");
            break;
        }
    }
    pthread_mutex_unlock(&g_world.lock);
}
