/* ml_client: see ml_client.h. The client itself, the process-wide limits, one transfer (the
 * libcurl options every request gets) and the OAuth refresh; batches are ml_batch.c, which
 * reaches the limits and transfers through ml_client_private.h. */
#include "jobsd/ml_client.h"
#include "jobsd/buf.h"
#include "jobsd/util.h"
#include "ml_client_private.h"

#include <curl/curl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#define RETRY_AFTER_CAP_MS 60000
#define BACKOFF_CAP_MS     30000
/* A request counts against the rate window from the moment it is handed to libcurl; the
 * server sees it a little later, and that delay varies (a new connection, a busy machine), so
 * the n-th start waits for the (n - share)-th plus one second and this margin. 25 ms let a
 * fleet whose shares add up to exactly ML_MAX_RPS be seen 1-2 over by the fake on a loaded
 * machine; 100 ms costs 9 % of the throughput and held (tests/chaos/test_chaos_rate.c). */
#define RATE_MARGIN_MS 100
/* How long a token refresh waits for a share of the fleet's limit at least (see
 * ml_refresh_token). */
#define SHARE_WAIT_MAX_MS 125000

/* ------------------------------------------------------------------ setup */

/* libcurl's global state, set up once for the process by the first client (curl_global_init
 * is thread-safe since libcurl 7.84; pthread_once keeps its result). Never cleaned up: it
 * lives as long as the process. */
static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static CURLcode curl_init_result = CURLE_FAILED_INIT;

static void curl_init_once(void)
{
    curl_init_result = curl_global_init(CURL_GLOBAL_DEFAULT);
}

const char *ml_client_library_version(void)
{
    const curl_version_info_data *v = curl_version_info(CURLVERSION_NOW);
    return v && v->version ? v->version : "?";
}

static bool loopback_http(const char *url)
{
    static const char *prefixes[] = {"http://127.0.0.1", "http://localhost", "http://[::1]"};
    for (size_t i = 0; i < 3; i++) {
        size_t n = strlen(prefixes[i]);
        if (strncmp(url, prefixes[i], n) == 0 && (url[n] == '\0' || url[n] == ':' || url[n] == '/'))
            return true;
    }
    return false;
}

static void share_lock(CURL *h, curl_lock_data data, curl_lock_access access, void *ud)
{
    (void)h;
    (void)access;
    struct ml_client *c = ud;
    pthread_mutex_lock(&c->share_locks[data]);
}

static void share_unlock(CURL *h, curl_lock_data data, void *ud)
{
    (void)h;
    struct ml_client *c = ud;
    pthread_mutex_unlock(&c->share_locks[data]);
}

struct ml_client *ml_client_new(const struct ml_client_config *cfg, struct err *e)
{
    bool https = strncmp(cfg->base_url, "https://", 8) == 0;
    bool http_ok = loopback_http(cfg->base_url);
    if (!https && !http_ok) {
        err_set(e, 400, "invalid_config",
                "ML_API_BASE_URL must be https:// (plain http only on loopback, for tests)");
        return NULL;
    }
    pthread_once(&curl_once, curl_init_once);
    if (curl_init_result != CURLE_OK) {
        err_set(e, 500, "internal_error", "libcurl initialisation failed: %s",
                curl_easy_strerror(curl_init_result));
        return NULL;
    }
    struct ml_client *c = util_calloc(1, sizeof *c);
    c->base_url = util_strdup(cfg->base_url);
    size_t n = strlen(c->base_url);
    while (n > 0 && c->base_url[n - 1] == '/')
        c->base_url[--n] = '\0';
    c->allow_http = http_ok;
    c->max_rps = cfg->max_rps > 0 ? cfg->max_rps : 5;
    c->concurrency = cfg->concurrency > 0 ? cfg->concurrency : 4;
    c->timeout_ms = cfg->timeout_ms > 0 ? cfg->timeout_ms : 30000;
    c->client_id = util_strdup(cfg->client_id);
    c->client_secret = util_strdup(cfg->client_secret);
    c->max_response = cfg->max_response_bytes ? cfg->max_response_bytes : (size_t)16 << 20;
    c->max_attempts = cfg->max_attempts > 0 ? cfg->max_attempts : 5;
    c->backoff_base_ms = cfg->backoff_base_ms > 0 ? cfg->backoff_base_ms : 500;
    c->starts = util_calloc((size_t)c->max_rps, sizeof *c->starts);
    c->rps_share = c->max_rps;
    c->concurrency_share = c->concurrency;
    pthread_mutex_init(&c->lock, NULL);
    for (int i = 0; i < CURL_LOCK_DATA_LAST; i++)
        pthread_mutex_init(&c->share_locks[i], NULL);
    c->share = curl_share_init();
    if (!c->share)
        util_fatal("curl_share_init failed");
    curl_share_setopt(c->share, CURLSHOPT_LOCKFUNC, share_lock);
    curl_share_setopt(c->share, CURLSHOPT_UNLOCKFUNC, share_unlock);
    curl_share_setopt(c->share, CURLSHOPT_USERDATA, c);
    curl_share_setopt(c->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_CONNECT);
    curl_share_setopt(c->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_DNS);
    curl_share_setopt(c->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_SSL_SESSION);
    return c;
}

void ml_client_free(struct ml_client *c)
{
    if (!c)
        return;
    util_wipe_str(c->client_secret);
    free(c->client_secret);
    free(c->client_id);
    free(c->base_url);
    free(c->starts);
    curl_share_cleanup(c->share);
    for (int i = 0; i < CURL_LOCK_DATA_LAST; i++)
        pthread_mutex_destroy(&c->share_locks[i]);
    pthread_mutex_destroy(&c->lock);
    free(c);
}

bool ml_client_can_refresh(const struct ml_client *c)
{
    return c->client_id && c->client_secret;
}

void ml_client_stats(struct ml_client *c, struct ml_client_stats *out)
{
    pthread_mutex_lock(&c->lock);
    *out = c->stats;
    pthread_mutex_unlock(&c->lock);
}

void ml_request_clear(struct ml_request *r)
{
    free(r->body);
    r->body = NULL;
    r->len = 0;
}

/* ------------------------------------------------------------------ limits */

/* Paused (outside the share's validity): how long until it may start again, at most 100 ms
 * (a new share may come sooner); 0 when it may start now. */
static long long paused_for(const struct ml_client *c, long long now)
{
    if (now < c->valid_from)
        return c->valid_from - now < 100 ? c->valid_from - now : 100;
    if ((c->valid_until && now >= c->valid_until) || c->rps_share <= 0)
        return 100;
    return 0;
}

bool ml_client_admit(struct ml_client *c, long long now, long long *wait_ms)
{
    bool ok = false;
    *wait_ms = 0;
    pthread_mutex_lock(&c->lock);
    long long paused = paused_for(c, now);
    if (paused > 0) {
        *wait_ms = paused;
    } else if (c->in_flight < c->concurrency_share) {
        /* At most `limit` starts in any second (plus the margin): the limit-th most recent
         * start must be that old. The ring holds the last max_rps starts, so any share up to
         * max_rps is judged on the starts already made, whenever it changed. */
        size_t cap = (size_t)c->max_rps, limit = (size_t)c->rps_share;
        if (c->filled < limit) {
            ok = true;
        } else {
            long long nth = c->starts[(c->head + cap - limit) % cap];
            long long ready = nth + 1000 + RATE_MARGIN_MS;
            if (now >= ready)
                ok = true;
            else
                *wait_ms = ready - now;
        }
        if (ok) {
            c->starts[c->head] = now;
            c->head = (c->head + 1) % cap;
            if (c->filled < cap)
                c->filled++;
            c->in_flight++;
            c->stats.requests++;
        }
    }
    pthread_mutex_unlock(&c->lock);
    return ok;
}

long long ml_client_quiet_at(struct ml_client *c)
{
    pthread_mutex_lock(&c->lock);
    size_t cap = (size_t)c->max_rps;
    long long last = c->filled ? c->starts[(c->head + cap - 1) % cap] : -1;
    pthread_mutex_unlock(&c->lock);
    return last < 0 ? 0 : last + 1000 + RATE_MARGIN_MS;
}

void ml_client_set_share(struct ml_client *c, long long rps, int concurrency, long long valid_from,
                         long long valid_until)
{
    pthread_mutex_lock(&c->lock);
    c->rps_share = rps < 0 ? 0 : rps > c->max_rps ? c->max_rps : rps;
    c->concurrency_share = concurrency < 1                ? 1
                           : concurrency > c->concurrency ? c->concurrency
                                                          : concurrency;
    c->valid_from = valid_from;
    c->valid_until = valid_until;
    pthread_mutex_unlock(&c->lock);
}

void ml_client_share(struct ml_client *c, long long *rps, int *concurrency)
{
    pthread_mutex_lock(&c->lock);
    *rps = c->rps_share;
    *concurrency = c->concurrency_share;
    pthread_mutex_unlock(&c->lock);
}

void ml_client_release(struct ml_client *c)
{
    pthread_mutex_lock(&c->lock);
    c->in_flight--;
    pthread_mutex_unlock(&c->lock);
}

void ml_client_count(struct ml_client *c, long status, bool transport_error, bool retry)
{
    pthread_mutex_lock(&c->lock);
    if (transport_error)
        c->stats.transport_errors++;
    else if (status == 429)
        c->stats.status_429++;
    else if (status >= 500)
        c->stats.status_5xx++;
    else if (status >= 400)
        c->stats.status_4xx++;
    else if (status >= 200 && status < 300)
        c->stats.status_2xx++;
    if (retry)
        c->stats.retries++;
    pthread_mutex_unlock(&c->lock);
}

long long ml_client_backoff_ms(const struct ml_client *c, int attempt, long long retry_after_s)
{
    if (retry_after_s > 0) {
        long long ms = retry_after_s * 1000;
        return ms > RETRY_AFTER_CAP_MS ? RETRY_AFTER_CAP_MS : ms;
    }
    long long b = c->backoff_base_ms;
    for (int i = 1; i < attempt && b < BACKOFF_CAP_MS; i++)
        b *= 2;
    if (b > BACKOFF_CAP_MS)
        b = BACKOFF_CAP_MS;
    unsigned r;
    util_random_bytes(&r, sizeof r);
    return b / 2 + (long long)(r % (unsigned)(b / 2 + 1));
}

bool ml_client_retryable(long status, CURLcode rc, bool too_big)
{
    if (too_big)
        return false;
    if (rc != CURLE_OK)
        return rc == CURLE_OPERATION_TIMEDOUT || rc == CURLE_COULDNT_CONNECT ||
               rc == CURLE_RECV_ERROR || rc == CURLE_SEND_ERROR || rc == CURLE_GOT_NOTHING ||
               rc == CURLE_PARTIAL_FILE || rc == CURLE_COULDNT_RESOLVE_HOST;
    return status == 429 || status >= 500;
}

void ml_client_fail_final(struct ml_request *r, long status, CURLcode rc, bool too_big,
                          const char *errbuf)
{
    if (too_big)
        err_set(&r->err, 503, "ml_unavailable", "Mercado Livre answer larger than the limit");
    else if (rc != CURLE_OK)
        err_set(&r->err, 503, "ml_unavailable", "Mercado Livre unreachable after %d attempts: %s",
                r->attempts, errbuf[0] ? errbuf : curl_easy_strerror(rc));
    else if (status == 429)
        err_set(&r->err, 503, "ml_unavailable",
                "Mercado Livre kept rate-limiting (429) after %d attempts", r->attempts);
    else if (status >= 500)
        err_set(&r->err, 503, "ml_unavailable", "Mercado Livre answered %ld after %d attempts",
                status, r->attempts);
    if (r->err.http_status == 503)
        r->err.retry_after = 60;
}

/* ------------------------------------------------------------------ one transfer */

static size_t on_data(char *p, size_t size, size_t nmemb, void *ud)
{
    struct ml_transfer *t = ud;
    size_t n = size * nmemb;
    if (!buf_append(&t->body, p, n)) {
        t->too_big = true;
        return 0; /* aborts the transfer */
    }
    return n;
}

/* The options every request gets: https only (http on loopback for tests), no redirects,
 * verified TLS, timeouts, a capped body, the shared connection cache. */
static void set_common_options(struct ml_client *c, struct ml_transfer *t, CURL *e)
{
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, c->allow_http ? "http,https" : "https");
    curl_easy_setopt(e, CURLOPT_REDIR_PROTOCOLS_STR, "https");
    curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS,
                     (long)(c->timeout_ms < 10000 ? c->timeout_ms : 10000));
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, (long)c->timeout_ms);
    curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, 1L);
    curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, 2L);
    curl_easy_setopt(e, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)c->max_response);
    curl_easy_setopt(e, CURLOPT_ACCEPT_ENCODING, "");
    curl_easy_setopt(e, CURLOPT_USERAGENT, "jobsd/0.1");
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_data);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, t);
    curl_easy_setopt(e, CURLOPT_ERRORBUFFER, t->errbuf);
    curl_easy_setopt(e, CURLOPT_PRIVATE, t);
    curl_easy_setopt(e, CURLOPT_SHARE, c->share);
}

void ml_client_transfer_open(struct ml_client *c, struct ml_transfer *t, const char *path,
                             const char *token, const char *form)
{
    memset(t, 0, sizeof *t);
    buf_init(&t->body, c->max_response);
    CURL *e = curl_easy_init();
    if (!e)
        util_fatal("curl_easy_init failed");
    size_t base_len = strlen(c->base_url), path_len = strlen(path);
    char *url = util_xmalloc(base_len + path_len + 1);
    memcpy(url, c->base_url, base_len);
    memcpy(url + base_len, path, path_len + 1);
    curl_easy_setopt(e, CURLOPT_URL, url); /* copied by libcurl */
    free(url);
    set_common_options(c, t, e);
    struct curl_slist *h = curl_slist_append(NULL, "Accept: application/json");
    if (token) {
        char auth[600];
        util_fmt(auth, sizeof auth, "Authorization: Bearer %s", token);
        h = curl_slist_append(h, auth);
        util_wipe(auth, sizeof auth);
    }
    if (form) {
        h = curl_slist_append(h, "Content-Type: application/x-www-form-urlencoded");
        curl_easy_setopt(e, CURLOPT_POST, 1L);
        curl_easy_setopt(e, CURLOPT_COPYPOSTFIELDS, form);
    }
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, h);
    t->headers = h;
    t->easy = e;
}

void ml_client_transfer_close(struct ml_transfer *t)
{
    if (t->easy)
        curl_easy_cleanup(t->easy);
    curl_slist_free_all(t->headers);
    buf_free(&t->body);
    t->easy = NULL;
    t->headers = NULL;
}

/* ------------------------------------------------------------------ OAuth */

/* application/x-www-form-urlencoded value. */
static bool form_append(struct buf *b, const char *key, const char *value)
{
    static const char hex[] = "0123456789ABCDEF";
    bool ok =
        buf_append_str(b, b->len ? "&" : "") && buf_append_str(b, key) && buf_append_str(b, "=");
    for (const unsigned char *p = (const unsigned char *)value; ok && *p; p++) {
        if ((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') ||
            *p == '-' || *p == '_' || *p == '.' || *p == '~') {
            ok = buf_append(b, p, 1);
        } else {
            char enc[3] = {'%', hex[*p >> 4], hex[*p & 15]};
            ok = buf_append(b, enc, 3);
        }
    }
    return ok;
}

/* What a final answer of the token endpoint means: 0 with out for a 2xx, else -1 with e. */
static MUSTCHECK int token_answer(struct ml_transfer *t, CURLcode res, long status, int attempts,
                                  struct ml_token *out, struct ml_error *mlerr, struct err *e)
{
    if (res != CURLE_OK || status == 429 || status >= 500 || t->too_big) {
        struct ml_request r;
        memset(&r, 0, sizeof r);
        r.attempts = attempts;
        ml_client_fail_final(&r, status, res, t->too_big, t->errbuf);
        *e = r.err;
        return -1;
    }
    if (status >= 200 && status < 300)
        return ml_parse_token(t->body.data, t->body.len, out, e);
    ml_parse_error(t->body.data, t->body.len, mlerr);
    if (strcmp(mlerr->error, "invalid_grant") == 0)
        return err_set(e, 422, "reauth_required",
                       "Mercado Livre refused the refresh token (invalid_grant): the seller must "
                       "reconnect the account");
    if (strcmp(mlerr->error, "invalid_client") == 0 ||
        strcmp(mlerr->error, "unauthorized_client") == 0)
        return err_set(e, 422, "ml_not_configured",
                       "Mercado Livre refused ML_CLIENT_ID/ML_CLIENT_SECRET (%s)", mlerr->error);
    return err_set(e, 503, "ml_unavailable", "Mercado Livre's token endpoint answered %ld (%s)",
                   status, mlerr->error[0] ? mlerr->error : "no error code");
}

int ml_refresh_token(struct ml_client *c, const char *refresh_token, struct ml_token *out,
                     struct ml_error *mlerr, struct err *e)
{
    memset(mlerr, 0, sizeof *mlerr);
    if (!ml_client_can_refresh(c))
        return err_set(e, 422, "ml_not_configured",
                       "the access token must be refreshed but ML_CLIENT_ID/ML_CLIENT_SECRET "
                       "are not configured");
    struct buf form;
    buf_init(&form, 8192);
    int result = -1;
    if (!form_append(&form, "grant_type", "refresh_token") ||
        !form_append(&form, "client_id", c->client_id) ||
        !form_append(&form, "client_secret", c->client_secret) ||
        !form_append(&form, "refresh_token", refresh_token)) {
        err_set(e, 500, "internal_error", "token request too large");
        goto out;
    }
    for (int attempt = 1;; attempt++) {
        /* Waiting for a slot is bounded: a newcomer gets its share within two heartbeats
         * (INSTANCE_HEARTBEAT_SECONDS at most 60) and a second; paused for longer than that
         * and the request's own timeout (no share of the fleet's limit: its heartbeat cannot
         * reach the database), the refresh fails as Mercado Livre being unavailable. */
        long long wait,
            gave_up = util_mono_ms() +
                      (c->timeout_ms > SHARE_WAIT_MAX_MS ? c->timeout_ms : SHARE_WAIT_MAX_MS);
        while (!ml_client_admit(c, util_mono_ms(), &wait)) {
            if (util_mono_ms() >= gave_up) {
                err_set(e, 503, "ml_unavailable",
                        "no share of the Mercado Livre limit in time: the token was not "
                        "refreshed");
                goto out;
            }
            util_sleep_ms(wait > 0 ? wait : 10, NULL);
        }
        struct ml_transfer t;
        ml_client_transfer_open(c, &t, "/oauth/token", NULL, buf_str(&form));
        CURLcode res = curl_easy_perform(t.easy);
        long status = 0;
        curl_off_t retry_after = 0;
        curl_easy_getinfo(t.easy, CURLINFO_RESPONSE_CODE, &status);
        curl_easy_getinfo(t.easy, CURLINFO_RETRY_AFTER, &retry_after);
        ml_client_release(c);
        bool again = ml_client_retryable(res == CURLE_OK ? status : 0, res, t.too_big) &&
                     attempt < c->max_attempts;
        ml_client_count(c, status, res != CURLE_OK, again);
        if (again) {
            ml_client_transfer_close(&t);
            util_sleep_ms(ml_client_backoff_ms(c, attempt, (long long)retry_after), NULL);
            continue;
        }
        result = token_answer(&t, res, status, attempt, out, mlerr, e);
        util_wipe(t.body.data, t.body.len); /* the new tokens */
        ml_client_transfer_close(&t);
        break;
    }
out:
    util_wipe(form.data, form.len);
    buf_free(&form);
    return result;
}
