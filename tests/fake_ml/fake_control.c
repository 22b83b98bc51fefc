/* fake_control: what tests observe and steer — request statistics (counters, concurrency,
 * rate, a request log), fault rules, and the /__fake/ control API. */
#include "fake_ml.h"

#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_STATUS 600

/* ------------------------------------------------------------------ statistics */

struct log_entry {
    long long seq;
    long long t_ms;
    long long duration_ms;
    unsigned status;
    bool fault;
    char *method;
    char *path;
    char *query;
    json_t *params;
};

static struct {
    pthread_mutex_t lock;
    long long since_ms;
    long long total;
    long long by_ep[EP_COUNT];
    long long by_status[MAX_STATUS];
    long long by_ep_status[EP_COUNT][MAX_STATUS];
    long long in_flight, max_in_flight;
    /* start times (µs, monotonic) of the requests of the last second, a ring */
    long long *win;
    size_t whead, wn, wcap;
    long long max_per_second;
    long long max_orders_limit, max_multiget_ids, max_search_limit;
    long long counters[C_COUNT];
    long long seq;
    struct log_entry log[EP_COUNT][LOG_PER_ENDPOINT];
    size_t log_head[EP_COUNT], log_n[EP_COUNT];
} st = {.lock = PTHREAD_MUTEX_INITIALIZER};

static const char *const counter_names[C_COUNT] = {
    "expired_token_requests", "invalid_token_requests", "refreshes",
    "invalid_grants",         "invalid_clients",        "scan_pages",
    "scroll_errors",          "faults_served",          "partial_answers",
    "visits_forbidden",       "visits_future_endings",  "hooks_applied"};

static void log_entry_clear(struct log_entry *e)
{
    free(e->method);
    free(e->path);
    free(e->query);
    json_decref(e->params);
    memset(e, 0, sizeof *e);
}

/* Lock held. Keeps in_flight (requests still running will end later). */
static void stats_reset_locked(void)
{
    st.since_ms = now_ms();
    st.total = 0;
    memset(st.by_ep, 0, sizeof st.by_ep);
    memset(st.by_status, 0, sizeof st.by_status);
    memset(st.by_ep_status, 0, sizeof st.by_ep_status);
    st.max_in_flight = st.in_flight;
    st.whead = st.wn = 0;
    st.max_per_second = 0;
    st.max_orders_limit = st.max_multiget_ids = st.max_search_limit = 0;
    memset(st.counters, 0, sizeof st.counters);
    for (int ep = 0; ep < EP_COUNT; ep++) {
        for (size_t i = 0; i < LOG_PER_ENDPOINT; i++)
            log_entry_clear(&st.log[ep][i]);
        st.log_head[ep] = st.log_n[ep] = 0;
    }
}

void stats_init(void)
{
    pthread_mutex_lock(&st.lock);
    stats_reset_locked();
    pthread_mutex_unlock(&st.lock);
}

void stats_free(void)
{
    pthread_mutex_lock(&st.lock);
    stats_reset_locked();
    free(st.win);
    st.win = NULL;
    st.wcap = 0;
    pthread_mutex_unlock(&st.lock);
}

void stats_begin(enum endpoint ep)
{
    long long now = mono_us();
    pthread_mutex_lock(&st.lock);
    st.total++;
    st.by_ep[ep]++;
    st.in_flight++;
    if (st.in_flight > st.max_in_flight)
        st.max_in_flight = st.in_flight;
    /* Sliding window: the starts within the last second, (now - 1 s, now]. */
    while (st.wn > 0 && st.win[st.whead] <= now - 1000000) {
        st.whead = (st.whead + 1) % st.wcap;
        st.wn--;
    }
    if (st.wn == st.wcap) {
        size_t cap = st.wcap ? st.wcap * 2 : 1024;
        long long *w = xmalloc(cap * sizeof *w);
        for (size_t i = 0; i < st.wn; i++)
            w[i] = st.win[(st.whead + i) % st.wcap];
        free(st.win);
        st.win = w;
        st.wcap = cap;
        st.whead = 0;
    }
    st.win[(st.whead + st.wn) % st.wcap] = now;
    st.wn++;
    if ((long long)st.wn > st.max_per_second)
        st.max_per_second = (long long)st.wn;
    pthread_mutex_unlock(&st.lock);
}

static char *cap_copy(const char *s, size_t max)
{
    if (!s)
        return xstrdup("");
    size_t n = strlen(s);
    return xstrndup(s, n > max ? max : n);
}

void stats_end(enum endpoint ep, long long start_wall_ms, long long start_us, const char *method,
               const char *path, const char *query, json_t *params, unsigned status, bool fault,
               bool leave_in_flight)
{
    long long dur = (mono_us() - start_us) / 1000;
    pthread_mutex_lock(&st.lock);
    if (!leave_in_flight && st.in_flight > 0)
        st.in_flight--;
    if (status < MAX_STATUS) {
        st.by_status[status]++;
        st.by_ep_status[ep][status]++;
    }
    struct log_entry *e = &st.log[ep][(st.log_head[ep] + st.log_n[ep]) % LOG_PER_ENDPOINT];
    if (st.log_n[ep] == LOG_PER_ENDPOINT) {
        e = &st.log[ep][st.log_head[ep]];
        st.log_head[ep] = (st.log_head[ep] + 1) % LOG_PER_ENDPOINT;
    } else {
        st.log_n[ep]++;
    }
    log_entry_clear(e);
    e->seq = ++st.seq;
    e->t_ms = start_wall_ms;
    e->duration_ms = dur;
    e->status = status;
    e->fault = fault;
    e->method = cap_copy(method, 16);
    e->path = cap_copy(path, 512);
    e->query = cap_copy(query, 4096);
    e->params = json_incref(params);
    pthread_mutex_unlock(&st.lock);
}

void stats_in_flight_done(void)
{
    pthread_mutex_lock(&st.lock);
    if (st.in_flight > 0)
        st.in_flight--;
    pthread_mutex_unlock(&st.lock);
}

static void note_max(long long *slot, long long v)
{
    pthread_mutex_lock(&st.lock);
    if (v > *slot)
        *slot = v;
    pthread_mutex_unlock(&st.lock);
}

void stats_note_orders_limit(long long limit)
{
    note_max(&st.max_orders_limit, limit);
}

void stats_note_multiget_ids(long long n)
{
    note_max(&st.max_multiget_ids, n);
}

void stats_note_search_limit(long long limit)
{
    note_max(&st.max_search_limit, limit);
}

void stats_count(enum counter c)
{
    pthread_mutex_lock(&st.lock);
    st.counters[c]++;
    pthread_mutex_unlock(&st.lock);
}

static int entry_cmp(const void *a, const void *b)
{
    const struct log_entry *x = *(const struct log_entry *const *)a;
    const struct log_entry *y = *(const struct log_entry *const *)b;
    return x->seq < y->seq ? -1 : x->seq > y->seq;
}

static json_t *status_map(const long long *counts)
{
    json_t *o = json_object();
    for (unsigned s = 0; s < MAX_STATUS; s++)
        if (counts[s]) {
            char k[8];
            snprintf(k, sizeof k, "%u", s);
            json_object_set_new(o, k, json_integer(counts[s]));
        }
    return o;
}

/* log_ep: -2 = no log, -1 = all endpoints, else one endpoint. */
static json_t *stats_json(int log_ep)
{
    pthread_mutex_lock(&st.lock);
    json_t *j = json_object();
    json_object_set_new(j, "since_ms", json_integer(st.since_ms));
    json_object_set_new(j, "requests_total", json_integer(st.total));
    json_t *req = json_object(), *eps = json_object();
    for (int ep = 0; ep < EP_COUNT; ep++) {
        json_object_set_new(req, endpoint_name((enum endpoint)ep), json_integer(st.by_ep[ep]));
        json_object_set_new(eps, endpoint_name((enum endpoint)ep), status_map(st.by_ep_status[ep]));
    }
    json_object_set_new(j, "requests", req);
    json_object_set_new(j, "statuses", status_map(st.by_status));
    json_object_set_new(j, "endpoint_statuses", eps);
    json_object_set_new(j, "in_flight", json_integer(st.in_flight));
    json_object_set_new(j, "max_in_flight", json_integer(st.max_in_flight));
    json_object_set_new(j, "max_per_second", json_integer(st.max_per_second));
    json_object_set_new(j, "max_orders_limit", json_integer(st.max_orders_limit));
    json_object_set_new(j, "max_multiget_ids", json_integer(st.max_multiget_ids));
    json_object_set_new(j, "max_search_limit", json_integer(st.max_search_limit));
    for (int c = 0; c < C_COUNT; c++)
        json_object_set_new(j, counter_names[c], json_integer(st.counters[c]));
    if (log_ep != -2) {
        size_t n = 0;
        for (int ep = 0; ep < EP_COUNT; ep++)
            n += st.log_n[ep];
        const struct log_entry **all = xcalloc(n, sizeof *all);
        size_t k = 0;
        for (int ep = 0; ep < EP_COUNT; ep++) {
            if (log_ep >= 0 && ep != log_ep)
                continue;
            for (size_t i = 0; i < st.log_n[ep]; i++)
                all[k++] = &st.log[ep][(st.log_head[ep] + i) % LOG_PER_ENDPOINT];
        }
        qsort(all, k, sizeof *all, entry_cmp);
        json_t *log = json_array();
        for (size_t i = 0; i < k; i++) {
            const struct log_entry *e = all[i];
            int ep = 0;
            for (int x = 0; x < EP_COUNT; x++)
                if (e >= st.log[x] && e < st.log[x] + LOG_PER_ENDPOINT)
                    ep = x;
            json_array_append_new(log,
                                  json_pack("{s:I, s:I, s:I, s:s, s:s, s:s, s:s, s:o, s:i, s:b}",
                                            "seq", (json_int_t)e->seq, "t_ms", (json_int_t)e->t_ms,
                                            "duration_ms", (json_int_t)e->duration_ms, "endpoint",
                                            endpoint_name((enum endpoint)ep), "method", e->method,
                                            "path", e->path, "query", e->query, "params",
                                            e->params ? json_incref(e->params) : json_object(),
                                            "status", (int)e->status, "fault", e->fault));
        }
        free(all);
        json_object_set_new(j, "log", log);
    }
    pthread_mutex_unlock(&st.lock);
    return j;
}

/* ------------------------------------------------------------------ fault rules */

struct rule {
    int ep; /* -1 = any */
    unsigned status;
    char retry_after[64];
    long long count, every, latency_ms, drip_ms, size_bytes;
    int mode;
    char *body;
    char *location;
    unsigned omit;
    bool omit_absent;
    long long matched, fired;
    json_t *src; /* the rule as given, for GET /__fake/faults */
};

static struct {
    pthread_mutex_t lock;
    struct rule *rules;
    size_t n;
} fl = {.lock = PTHREAD_MUTEX_INITIALIZER};

static void rules_free(struct rule *r, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(r[i].body);
        free(r[i].location);
        json_decref(r[i].src);
    }
    free(r);
}

void faults_init(void)
{
}

void faults_free(void)
{
    pthread_mutex_lock(&fl.lock);
    rules_free(fl.rules, fl.n);
    fl.rules = NULL;
    fl.n = 0;
    pthread_mutex_unlock(&fl.lock);
}

static bool rule_int(const json_t *o, const char *key, long long min, long long max, long long *out,
                     char *err, size_t errlen, size_t ix)
{
    json_t *v = json_object_get(o, key);
    *out = 0;
    if (!v)
        return true;
    if (!json_is_integer(v) || json_integer_value(v) < min || json_integer_value(v) > max) {
        snprintf(err, errlen, "rule %zu: %s must be an integer in %lld..%lld", ix, key, min, max);
        return false;
    }
    *out = json_integer_value(v);
    return true;
}

/* mode "partial": the orders endpoints only; omit (default buyer and shipping) and
 * missing_as ("empty", the documented example's {}, or "absent"). */
static bool partial_parse(json_t *o, size_t ix, struct rule *r, char *err, size_t errlen)
{
    json_t *omit = json_object_get(o, "omit"), *as = json_object_get(o, "missing_as");
    if (r->mode != FAULT_MODE_PARTIAL) {
        if (omit || as) {
            snprintf(err, errlen, "rule %zu: omit and missing_as go with mode partial", ix);
            return false;
        }
        return true;
    }
    if (r->ep != EP_ORDERS_SEARCH && r->ep != EP_ORDERS_GET) {
        snprintf(err, errlen, "rule %zu: mode partial needs endpoint orders_search or orders_get",
                 ix);
        return false;
    }
    if (json_object_get(o, "status")) {
        snprintf(err, errlen, "rule %zu: mode partial answers 206 itself (no status)", ix);
        return false;
    }
    r->omit = MISSING_BUYER | MISSING_SHIPPING;
    if (omit) {
        r->omit = 0;
        size_t i;
        json_t *v;
        if (!json_is_array(omit) || json_array_size(omit) == 0)
            goto bad_omit;
        json_array_foreach(omit, i, v)
        {
            int bit = -1;
            for (int k = 0; k < MISSING_COUNT && json_is_string(v); k++)
                if (strcmp(json_string_value(v), missing_name(k)) == 0)
                    bit = k;
            if (bit < 0)
                goto bad_omit;
            r->omit |= 1u << bit;
        }
    }
    if (as && (!json_is_string(as) || (strcmp(json_string_value(as), "empty") != 0 &&
                                       strcmp(json_string_value(as), "absent") != 0))) {
        snprintf(err, errlen, "rule %zu: missing_as must be \"empty\" or \"absent\"", ix);
        return false;
    }
    r->omit_absent = as && strcmp(json_string_value(as), "absent") == 0;
    return true;
bad_omit:
    snprintf(err, errlen,
             "rule %zu: omit must be a non-empty array of buyer, feedback, mediations, seller, "
             "shipping",
             ix);
    return false;
}

static bool rule_parse(json_t *o, size_t ix, struct rule *r, char *err, size_t errlen)
{
    static const char *const keys[] = {
        "endpoint", "status",  "retry_after", "count",    "every", "latency_ms", "mode",
        "body",     "drip_ms", "size_bytes",  "location", "omit",  "missing_as", NULL};
    memset(r, 0, sizeof *r);
    if (!json_is_object(o)) {
        snprintf(err, errlen, "rule %zu: expected an object", ix);
        return false;
    }
    const char *k;
    json_t *v;
    json_object_foreach(o, k, v)
    {
        bool ok = k[0] == '_';
        for (size_t i = 0; keys[i]; i++)
            if (strcmp(k, keys[i]) == 0)
                ok = true;
        if (!ok) {
            snprintf(err, errlen, "rule %zu: unknown key \"%s\"", ix, k);
            return false;
        }
    }
    json_t *ep = json_object_get(o, "endpoint");
    r->ep = -1;
    if (ep && (!json_is_string(ep) || !endpoint_parse(json_string_value(ep), &r->ep))) {
        snprintf(err, errlen,
                 "rule %zu: endpoint must be one of oauth_token, users_me, items_search, "
                 "items_multiget, orders_search, orders_get, visits, any",
                 ix);
        return false;
    }
    long long status;
    if (!rule_int(o, "status", 200, 599, &status, err, errlen, ix) ||
        !rule_int(o, "count", 1, LLONG_MAX, &r->count, err, errlen, ix) ||
        !rule_int(o, "every", 1, LLONG_MAX, &r->every, err, errlen, ix) ||
        !rule_int(o, "latency_ms", 0, 600000, &r->latency_ms, err, errlen, ix) ||
        !rule_int(o, "drip_ms", 1, 60000, &r->drip_ms, err, errlen, ix) ||
        !rule_int(o, "size_bytes", 1, 1LL << 32, &r->size_bytes, err, errlen, ix))
        return false;
    r->status = (unsigned)status;
    if (r->count && r->every) {
        snprintf(err, errlen, "rule %zu: give count or every, not both", ix);
        return false;
    }
    json_t *ra = json_object_get(o, "retry_after");
    if (ra) {
        if (json_is_integer(ra) && json_integer_value(ra) >= 0) {
            snprintf(r->retry_after, sizeof r->retry_after, "%lld",
                     (long long)json_integer_value(ra));
        } else if (json_is_string(ra) && json_string_length(ra) > 0 &&
                   json_string_length(ra) < sizeof r->retry_after &&
                   strpbrk(json_string_value(ra), "\r\n") == NULL) {
            snprintf(r->retry_after, sizeof r->retry_after, "%s", json_string_value(ra));
        } else {
            snprintf(err, errlen,
                     "rule %zu: retry_after must be seconds (integer >= 0) or an HTTP date", ix);
            return false;
        }
    }
    json_t *mode = json_object_get(o, "mode");
    if (mode) {
        const char *m = json_is_string(mode) ? json_string_value(mode) : "";
        if (strcmp(m, "slow_drip") == 0)
            r->mode = FAULT_MODE_SLOW_DRIP;
        else if (strcmp(m, "oversized") == 0)
            r->mode = FAULT_MODE_OVERSIZED;
        else if (strcmp(m, "redirect_http") == 0)
            r->mode = FAULT_MODE_REDIRECT_HTTP;
        else if (strcmp(m, "partial") == 0)
            r->mode = FAULT_MODE_PARTIAL;
        else {
            snprintf(err, errlen,
                     "rule %zu: mode must be slow_drip, oversized, redirect_http or partial", ix);
            return false;
        }
    }
    if (!partial_parse(o, ix, r, err, errlen))
        return false;
    json_t *loc = json_object_get(o, "location");
    if (loc) {
        if (!json_is_string(loc) || strpbrk(json_string_value(loc), "\r\n")) {
            snprintf(err, errlen, "rule %zu: location must be a URL string", ix);
            return false;
        }
        r->location = xstrdup(json_string_value(loc));
    }
    json_t *body = json_object_get(o, "body");
    if (body)
        r->body = dump_json(body);
    if (!r->status && !r->mode && !r->latency_ms) {
        snprintf(err, errlen, "rule %zu: needs a status, a mode or latency_ms", ix);
        return false;
    }
    r->src = json_deep_copy(o);
    return true;
}

bool faults_install(const json_t *rules, char *errbuf, size_t errlen)
{
    if (!json_is_array(rules)) {
        snprintf(errbuf, errlen, "expected a JSON array of rules");
        return false;
    }
    size_t n = json_array_size(rules);
    struct rule *r = xcalloc(n, sizeof *r);
    for (size_t i = 0; i < n; i++) {
        if (!rule_parse(json_array_get(rules, i), i, &r[i], errbuf, errlen)) {
            rules_free(r, i + 1);
            return false;
        }
    }
    pthread_mutex_lock(&fl.lock);
    rules_free(fl.rules, fl.n);
    fl.rules = r;
    fl.n = n;
    pthread_mutex_unlock(&fl.lock);
    return true;
}

void faults_pick(enum endpoint ep, struct fault_action *a)
{
    memset(a, 0, sizeof *a);
    pthread_mutex_lock(&fl.lock);
    for (size_t i = 0; i < fl.n; i++) {
        struct rule *r = &fl.rules[i];
        if (r->ep != -1 && r->ep != (int)ep)
            continue;
        r->matched++;
        bool fires = r->count   ? r->matched <= r->count
                     : r->every ? r->matched % r->every == 0
                                : true;
        if (!fires || a->fired)
            continue;
        r->fired++;
        a->fired = true;
        a->status = r->status;
        memcpy(a->retry_after, r->retry_after, sizeof a->retry_after);
        a->latency_ms = r->latency_ms;
        a->mode = r->mode;
        a->body = r->body ? xstrdup(r->body) : NULL;
        a->location = r->location ? xstrdup(r->location) : NULL;
        a->omit = r->omit;
        a->omit_absent = r->omit_absent;
        a->drip_ms = r->drip_ms ? r->drip_ms : 200;
        a->size_bytes = r->size_bytes ? r->size_bytes : 20LL * 1024 * 1024;
    }
    pthread_mutex_unlock(&fl.lock);
    if (a->fired)
        stats_count(C_FAULTS_SERVED);
}

void fault_action_free(struct fault_action *a)
{
    free(a->body);
    free(a->location);
    memset(a, 0, sizeof *a);
}

static json_t *faults_json(void)
{
    pthread_mutex_lock(&fl.lock);
    json_t *arr = json_array();
    for (size_t i = 0; i < fl.n; i++)
        json_array_append_new(arr, json_pack("{s:O, s:I, s:I}", "rule", fl.rules[i].src, "matched",
                                             (json_int_t)fl.rules[i].matched, "fired",
                                             (json_int_t)fl.rules[i].fired));
    pthread_mutex_unlock(&fl.lock);
    return arr;
}

/* ------------------------------------------------------------------ the control API */

static void control_error(struct reply *out, unsigned status, const char *msg)
{
    reply_json(out, status, json_pack("{s:s}", "error", msg));
}

static json_t *config_json(void)
{
    return json_pack("{s:I, s:I, s:I, s:s, s:I}", "latency_ms", (json_int_t)latency_get(),
                     "scroll_ttl_seconds", (json_int_t)world_scroll_ttl_s(),
                     "access_token_ttl_seconds", (json_int_t)world_access_ttl_s(),
                     "visits_future_ending", world_visits_future_error() ? "error" : "accept",
                     "scroll_id_length", (json_int_t)world_scroll_id_length());
}

static void config_set(json_t *body, struct reply *out)
{
    static const char *const keys[] = {
        "latency_ms",       "scroll_ttl_seconds",   "access_token_ttl_seconds",
        "scroll_id_length", "visits_future_ending", NULL};
    static const long long max[] = {600000, 86400, 100LL * 365 * 86400, SCROLL_ID_MAX, 0};
    static const long long min[] = {0, 1, 1, SCROLL_ID_MIN, 0};
    if (!json_is_object(body)) {
        control_error(out, 400, "expected a JSON object");
        return;
    }
    const char *k;
    json_t *v;
    json_object_foreach(body, k, v)
    {
        size_t i;
        for (i = 0; keys[i] && strcmp(keys[i], k) != 0; i++)
            ;
        if (!keys[i]) {
            control_error(out, 400,
                          "unknown key (latency_ms, scroll_ttl_seconds, "
                          "access_token_ttl_seconds, scroll_id_length, visits_future_ending)");
            return;
        }
        if (strcmp(k, "visits_future_ending") == 0) {
            if (!json_is_string(v) || (strcmp(json_string_value(v), "accept") != 0 &&
                                       strcmp(json_string_value(v), "error") != 0)) {
                control_error(out, 400, "visits_future_ending: \"accept\" or \"error\"");
                return;
            }
        } else if (!json_is_integer(v) || json_integer_value(v) < min[i] ||
                   json_integer_value(v) > max[i]) {
            control_error(out, 400, "value out of range");
            return;
        }
    }
    if ((v = json_object_get(body, "latency_ms")))
        latency_set(json_integer_value(v));
    if ((v = json_object_get(body, "scroll_ttl_seconds")))
        world_set_scroll_ttl_s(json_integer_value(v));
    if ((v = json_object_get(body, "access_token_ttl_seconds")))
        world_set_access_ttl_s(json_integer_value(v));
    if ((v = json_object_get(body, "scroll_id_length")))
        world_set_scroll_id_length(json_integer_value(v));
    if ((v = json_object_get(body, "visits_future_ending")))
        world_set_visits_future_error(strcmp(json_string_value(v), "error") == 0);
    reply_json(out, 200, config_json());
}

/* "/__fake/sellers/{id}/{action}" → id and action. */
static bool seller_path(const char *rest, long long *id, const char **action)
{
    const char *p = rest + strlen("sellers/");
    const char *e = strchr(p, '/');
    if (!e || e == p || (size_t)(e - p) > 20)
        return false;
    char buf[24];
    memcpy(buf, p, (size_t)(e - p));
    buf[e - p] = '\0';
    *action = e + 1;
    return parse_ll(buf, 1, LLONG_MAX, id);
}

/* "{order_id}/{action}" under /__fake/sellers/{id}/orders/. 0 = not that shape. */
static unsigned order_action(long long seller, const char *rest, json_t *body, json_t **res)
{
    const char *slash = strchr(rest, '/');
    long long oid;
    char buf[24];
    if (!slash || slash == rest || (size_t)(slash - rest) >= sizeof buf || strchr(slash + 1, '/'))
        return 0;
    memcpy(buf, rest, (size_t)(slash - rest));
    buf[slash - rest] = '\0';
    if (!parse_ll(buf, 1, LLONG_MAX, &oid))
        return 0;
    return world_order_action(seller, oid, slash + 1, body, res);
}

void control_handle(const char *method, const char *path, const struct params *query,
                    const char *body, size_t body_len, struct reply *out)
{
    const char *rest = path + strlen("/__fake/");
    bool get = strcmp(method, "GET") == 0, post = strcmp(method, "POST") == 0,
         del = strcmp(method, "DELETE") == 0;
    json_t *j = NULL;
    if (post && body_len > 0) {
        json_error_t e;
        j = json_loadb(body ? body : "", body_len, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, &e);
        if (!j) {
            char msg[256];
            snprintf(msg, sizeof msg, "invalid JSON body: %s", e.text);
            control_error(out, 400, msg);
            return;
        }
    }
    if (strcmp(rest, "stats") == 0 && get) {
        int log_ep = -1;
        const char *lg = params_get(query, "log"), *ep = params_get(query, "endpoint");
        if (lg && strcmp(lg, "0") == 0)
            log_ep = -2;
        else if (ep && !endpoint_parse(ep, &log_ep)) {
            if (strcmp(ep, "other") == 0)
                log_ep = EP_OTHER;
            else {
                control_error(out, 400, "unknown endpoint");
                goto out;
            }
        }
        reply_json(out, 200, stats_json(log_ep));
    } else if (strcmp(rest, "reset-stats") == 0 && post) {
        pthread_mutex_lock(&st.lock);
        stats_reset_locked();
        pthread_mutex_unlock(&st.lock);
        reply_json(out, 200, json_pack("{s:b}", "ok", 1));
    } else if (strcmp(rest, "faults") == 0 && (get || post || del)) {
        if (post) {
            char err[256];
            if (!j || !faults_install(j, err, sizeof err)) {
                control_error(out, 400, j ? err : "expected a JSON array of rules");
                goto out;
            }
        } else if (del) {
            faults_free();
        }
        reply_json(out, 200, faults_json());
    } else if (strcmp(rest, "config") == 0 && (get || post)) {
        if (post)
            config_set(j, out);
        else
            reply_json(out, 200, config_json());
    } else if (strcmp(rest, "hooks") == 0 && (get || del)) {
        json_t *h = NULL;
        unsigned s = get ? world_hooks(&h) : world_hooks_clear(&h);
        reply_json(out, s, h);
    } else if (strcmp(rest, "world") == 0 && get) {
        json_t *w = NULL;
        unsigned s = world_summary(&w);
        reply_json(out, s, w);
    } else if (strncmp(rest, "sellers/", 8) == 0) {
        long long id;
        const char *action;
        json_t *res = NULL;
        unsigned s = 0;
        if (!seller_path(rest, &id, &action)) {
            control_error(out, 404, "expected /__fake/sellers/{user_id}/...");
            goto out;
        }
        if (strcmp(action, "tokens") == 0 && get)
            s = world_tokens(id, &res);
        else if (strcmp(action, "expire-access-token") == 0 && post)
            s = world_expire_access_token(id, &res);
        else if (strcmp(action, "revoke-refresh-token") == 0 && post)
            s = world_revoke_refresh_token(id, &res);
        else if (strcmp(action, "orders") == 0 && post)
            s = world_upsert_orders(id, j, &res);
        else if (strcmp(action, "items") == 0 && post)
            s = world_upsert_items(id, j, &res);
        else if (strcmp(action, "visits") == 0 && post)
            s = world_set_visits(id, j, &res);
        else if (strcmp(action, "visits-permission") == 0 && post)
            s = world_set_visits_permission(id, j, &res);
        else if (strncmp(action, "orders/", 7) == 0 && post)
            s = order_action(id, action + 7, j, &res);
        if (!s) {
            control_error(out, 404, "unknown control action or method");
            goto out;
        }
        reply_json(out, s, res);
    } else {
        control_error(out, 404, "unknown control path or method (see tests/fake_ml/README.md)");
    }
out:
    json_decref(j);
}
