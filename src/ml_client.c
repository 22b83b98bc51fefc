/* ml_client: see ml_client.h. */
#include "jobsd/ml_client.h"
#include "jobsd/buf.h"
#include "jobsd/log.h"
#include "jobsd/util.h"

#include <curl/curl.h>
#include <openssl/crypto.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define RETRY_AFTER_CAP_MS 60000
#define BACKOFF_CAP_MS     30000
/* A request counts against the rate window from the moment it is handed to libcurl; the
 * server sees it a little later, so starts are spaced by one second plus this margin. */
#define RATE_MARGIN_MS 25

struct ml_client {
    char *base_url;
    bool allow_http;
    long long max_rps;
    int concurrency;
    long long timeout_ms;
    char *client_id;
    char *client_secret;
    size_t max_response;
    int max_attempts;
    long long backoff_base_ms;

    /* Connections, DNS answers and TLS sessions shared by every batch of every thread: a
     * sync's many small batches reuse warm connections instead of opening new ones. */
    CURLSH *share;
    pthread_mutex_t share_locks[CURL_LOCK_DATA_LAST];

    pthread_mutex_t lock;
    long long *starts; /* ring of the last max_rps start times (mono ms) */
    size_t next;       /* ring position of the oldest entry */
    size_t filled;
    int in_flight;
    struct ml_client_stats stats;
};

/* ------------------------------------------------------------------ setup */

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

/* libcurl's global state, set up once before the first client (thread-safe since 7.84). */
static pthread_once_t g_curl_once = PTHREAD_ONCE_INIT;

static void curl_init_once(void)
{
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != 0)
        util_fatal("libcurl initialisation failed");
}

const char *ml_client_library_version(void)
{
    pthread_once(&g_curl_once, curl_init_once);
    const curl_version_info_data *v = curl_version_info(CURLVERSION_NOW);
    return v ? v->version : "?";
}

struct ml_client *ml_client_new(const struct ml_client_config *cfg, struct err *e)
{
    pthread_once(&g_curl_once, curl_init_once);
    bool https = strncmp(cfg->base_url, "https://", 8) == 0;
    bool http_ok = loopback_http(cfg->base_url);
    if (!https && !http_ok) {
        err_set(e, 400, "invalid_config",
                "ML_API_BASE_URL must be https:// (plain http only on loopback, for tests)");
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
    if (c->client_secret) {
        OPENSSL_cleanse(c->client_secret, strlen(c->client_secret));
        free(c->client_secret);
    }
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

/* Takes an in-flight slot and a place in the rate window when both are free; otherwise
 * returns how long to wait (ms) before trying again (0 = a slot is busy: wait for one). */
static bool admit(struct ml_client *c, long long now, long long *wait_ms)
{
    bool ok = false;
    *wait_ms = 0;
    pthread_mutex_lock(&c->lock);
    if (c->in_flight < c->concurrency) {
        size_t cap = (size_t)c->max_rps;
        if (c->filled < cap) {
            c->starts[(c->next + c->filled) % cap] = now;
            c->filled++;
            ok = true;
        } else {
            long long oldest = c->starts[c->next];
            long long ready = oldest + 1000 + RATE_MARGIN_MS;
            if (now >= ready) {
                c->starts[c->next] = now;
                c->next = (c->next + 1) % cap;
                ok = true;
            } else {
                *wait_ms = ready - now;
            }
        }
        if (ok) {
            c->in_flight++;
            c->stats.requests++;
        }
    }
    pthread_mutex_unlock(&c->lock);
    return ok;
}

static void release(struct ml_client *c)
{
    pthread_mutex_lock(&c->lock);
    c->in_flight--;
    pthread_mutex_unlock(&c->lock);
}

static void count_status(struct ml_client *c, long status, bool transport_error, bool retry)
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

/* Exponential backoff with jitter, or Retry-After when the server said (both capped). */
static long long backoff_ms(const struct ml_client *c, int attempt, long long retry_after_s)
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

/* ------------------------------------------------------------------ one transfer */

struct transfer {
    struct ml_client *c;
    struct ml_request *req;
    CURL *easy;
    struct curl_slist *headers;
    struct buf body;
    char errbuf[CURL_ERROR_SIZE];
    bool too_big;
};

static size_t on_data(char *p, size_t size, size_t nmemb, void *ud)
{
    struct transfer *t = ud;
    size_t n = size * nmemb;
    if (!buf_append(&t->body, p, n)) {
        t->too_big = true;
        return 0; /* aborts the transfer */
    }
    return n;
}

static CURL *make_easy(struct ml_client *c, struct transfer *t, const char *path, const char *token,
                       const char *form)
{
    CURL *e = curl_easy_init();
    if (!e)
        util_fatal("curl_easy_init failed");
    char url[2048];
    util_fmt(url, sizeof url, "%s%s", c->base_url, path);
    curl_easy_setopt(e, CURLOPT_URL, url);
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
    struct curl_slist *h = curl_slist_append(NULL, "Accept: application/json");
    if (token) {
        char auth[600];
        util_fmt(auth, sizeof auth, "Authorization: Bearer %s", token);
        h = curl_slist_append(h, auth);
        OPENSSL_cleanse(auth, sizeof auth);
    }
    if (form) {
        h = curl_slist_append(h, "Content-Type: application/x-www-form-urlencoded");
        curl_easy_setopt(e, CURLOPT_POST, 1L);
        curl_easy_setopt(e, CURLOPT_COPYPOSTFIELDS, form);
    }
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, h);
    t->headers = h;
    t->errbuf[0] = '\0';
    return e;
}

static void transfer_free(struct transfer *t)
{
    if (t->easy)
        curl_easy_cleanup(t->easy);
    curl_slist_free_all(t->headers);
    buf_free(&t->body);
    t->easy = NULL;
    t->headers = NULL;
}

/* ------------------------------------------------------------------ batches */

enum state { PENDING, ACTIVE, DONE };

struct job {
    enum state state;
    long long not_before;
    bool retried_401;
    struct transfer t;
};

static bool retryable(long status, CURLcode rc, bool too_big)
{
    if (too_big)
        return false;
    if (rc != CURLE_OK)
        return rc == CURLE_OPERATION_TIMEDOUT || rc == CURLE_COULDNT_CONNECT ||
               rc == CURLE_RECV_ERROR || rc == CURLE_SEND_ERROR || rc == CURLE_GOT_NOTHING ||
               rc == CURLE_PARTIAL_FILE || rc == CURLE_COULDNT_RESOLVE_HOST;
    return status == 429 || status >= 500;
}

static void fail_final(struct ml_request *r, long status, CURLcode rc, bool too_big,
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

int ml_run(struct ml_client *c, struct ml_request *reqs, size_t n, struct ml_auth *auth,
           const volatile int *cancel)
{
    return ml_run_each(c, reqs, n, auth, cancel, NULL, NULL);
}

int ml_run_each(struct ml_client *c, struct ml_request *reqs, size_t n, struct ml_auth *auth,
                const volatile int *cancel,
                void (*on_done)(void *ctx, size_t i, struct ml_request *r), void *ctx)
{
    if (n == 0)
        return 0;
    struct job *jobs = util_calloc(n, sizeof *jobs);
    CURLM *multi = curl_multi_init();
    if (!multi)
        util_fatal("curl_multi_init failed");
    size_t done = 0;
    int active = 0;
    size_t scan_from = 0; /* requests are started in order */
    int rc = 0;
    for (size_t i = 0; i < n; i++) {
        reqs[i].status = 0;
        reqs[i].attempts = 0;
        err_clear(&reqs[i].err);
        ml_request_clear(&reqs[i]);
    }
    while (done < n) {
        if (cancel && *cancel) {
            rc = -1;
            break;
        }
        long long now = util_mono_ms();
        long long wake = now + 100;
        /* Start what the limits allow. */
        for (size_t i = scan_from; i < n && active < c->concurrency; i++) {
            struct job *j = &jobs[i];
            if (j->state != PENDING)
                continue;
            if (j->not_before > now) {
                if (j->not_before < wake)
                    wake = j->not_before;
                continue;
            }
            long long wait;
            if (!admit(c, now, &wait)) {
                if (wait > 0 && now + wait < wake)
                    wake = now + wait;
                break;
            }
            memset(&j->t, 0, sizeof j->t);
            j->t.c = c;
            j->t.req = &reqs[i];
            buf_init(&j->t.body, c->max_response);
            j->t.easy = make_easy(c, &j->t, reqs[i].path_query, auth ? auth->token : NULL, NULL);
            reqs[i].attempts++;
            curl_multi_add_handle(multi, j->t.easy);
            j->state = ACTIVE;
            active++;
        }
        while (scan_from < n && jobs[scan_from].state == DONE)
            scan_from++;
        int running = 0;
        curl_multi_perform(multi, &running);
        CURLMsg *msg;
        int left;
        bool finished_any = false;
        while ((msg = curl_multi_info_read(multi, &left)) != NULL) {
            finished_any = true;
            if (msg->msg != CURLMSG_DONE)
                continue;
            struct transfer *t = NULL;
            curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&t);
            struct job *j = (struct job *)(void *)((char *)t - offsetof(struct job, t));
            struct ml_request *r = t->req;
            CURLcode res = msg->data.result;
            long status = 0;
            curl_easy_getinfo(t->easy, CURLINFO_RESPONSE_CODE, &status);
            curl_off_t retry_after = 0;
            curl_easy_getinfo(t->easy, CURLINFO_RETRY_AFTER, &retry_after);
            curl_multi_remove_handle(multi, t->easy);
            release(c);
            active--;
            r->status = res == CURLE_OK ? status : 0;
            now = util_mono_ms();
            bool again = false;
            if (res == CURLE_OK && status == 401 && auth && !j->retried_401) {
                /* One forced refresh per batch, then one retry per request. */
                j->retried_401 = true;
                if (!auth->refreshed && auth->refresh) {
                    auth->refreshed = true;
                    char fresh[512];
                    if (auth->refresh(auth->ctx, auth->token, fresh, sizeof fresh,
                                      &auth->refresh_err) == 0) {
                        snprintf(auth->token, sizeof auth->token, "%s", fresh);
                        OPENSSL_cleanse(fresh, sizeof fresh);
                    }
                }
                again = !err_is_set(&auth->refresh_err);
                if (!again)
                    r->err = auth->refresh_err;
            } else if (retryable(status, res, t->too_big) && r->attempts < c->max_attempts) {
                again = true;
                j->not_before = now + backoff_ms(c, r->attempts, (long long)retry_after);
            }
            count_status(c, status, res != CURLE_OK, again);
            if (again) {
                transfer_free(t);
                j->state = PENDING;
                if ((size_t)(j - jobs) < scan_from)
                    scan_from = (size_t)(j - jobs);
                continue;
            }
            if (res == CURLE_OK && !t->too_big) {
                r->len = t->body.len;
                r->body = buf_take(&t->body);
            } else {
                fail_final(r, status, res, t->too_big, t->errbuf);
            }
            if (res == CURLE_OK && !t->too_big && (status == 429 || status >= 500))
                fail_final(r, status, res, false, t->errbuf);
            transfer_free(t);
            j->state = DONE;
            done++;
            if (on_done)
                on_done(ctx, (size_t)(j - jobs), r);
        }
        if (done >= n)
            break;
        /* A slot just freed up: start the next request now rather than after a poll. */
        if (finished_any)
            continue;
        long long timeout = wake - util_mono_ms();
        if (timeout < 1)
            timeout = 1;
        if (timeout > 100)
            timeout = 100;
        curl_multi_poll(multi, NULL, 0, (int)timeout, NULL);
    }
    /* Cancelled: abandon what is left. */
    for (size_t i = 0; i < n; i++) {
        struct job *j = &jobs[i];
        if (j->state == ACTIVE) {
            curl_multi_remove_handle(multi, j->t.easy);
            release(c);
            transfer_free(&j->t);
        }
        if (j->state != DONE)
            err_set(&reqs[i].err, 503, "interrupted", "the sync was cancelled");
    }
    curl_multi_cleanup(multi);
    free(jobs);
    return rc;
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
    if (!form_append(&form, "grant_type", "refresh_token") ||
        !form_append(&form, "client_id", c->client_id) ||
        !form_append(&form, "client_secret", c->client_secret) ||
        !form_append(&form, "refresh_token", refresh_token)) {
        buf_free(&form);
        return err_set(e, 500, "internal_error", "token request too large");
    }
    int result = -1;
    for (int attempt = 1;; attempt++) {
        long long wait;
        while (!admit(c, util_mono_ms(), &wait))
            util_sleep_ms(wait > 0 ? wait : 10, NULL);
        struct transfer t;
        memset(&t, 0, sizeof t);
        buf_init(&t.body, c->max_response);
        t.easy = make_easy(c, &t, "/oauth/token", NULL, buf_str(&form));
        CURLcode res = curl_easy_perform(t.easy);
        long status = 0;
        curl_off_t retry_after = 0;
        curl_easy_getinfo(t.easy, CURLINFO_RESPONSE_CODE, &status);
        curl_easy_getinfo(t.easy, CURLINFO_RETRY_AFTER, &retry_after);
        release(c);
        bool again =
            retryable(res == CURLE_OK ? status : 0, res, t.too_big) && attempt < c->max_attempts;
        count_status(c, status, res != CURLE_OK, again);
        if (again) {
            transfer_free(&t);
            util_sleep_ms(backoff_ms(c, attempt, (long long)retry_after), NULL);
            continue;
        }
        if (res != CURLE_OK || status == 429 || status >= 500 || t.too_big) {
            struct ml_request r;
            memset(&r, 0, sizeof r);
            r.attempts = attempt;
            fail_final(&r, status, res, t.too_big, t.errbuf);
            *e = r.err;
        } else if (status >= 200 && status < 300) {
            result = ml_parse_token(t.body.data, t.body.len, out, e);
        } else {
            ml_parse_error(t.body.data, t.body.len, mlerr);
            if (strcmp(mlerr->error, "invalid_grant") == 0)
                err_set(e, 422, "reauth_required",
                        "Mercado Livre refused the refresh token (invalid_grant): the seller must "
                        "reconnect the account");
            else if (strcmp(mlerr->error, "invalid_client") == 0 ||
                     strcmp(mlerr->error, "unauthorized_client") == 0)
                err_set(e, 422, "ml_not_configured",
                        "Mercado Livre refused ML_CLIENT_ID/ML_CLIENT_SECRET (%s)", mlerr->error);
            else
                err_set(e, 503, "ml_unavailable",
                        "Mercado Livre's token endpoint answered %ld (%s)", status,
                        mlerr->error[0] ? mlerr->error : "no error code");
        }
        transfer_free(&t);
        break;
    }
    OPENSSL_cleanse(form.data, form.len);
    buf_free(&form);
    return result;
}
