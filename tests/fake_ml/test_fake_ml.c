/* test_fake_ml: the fake Mercado Livre API against the behaviours ML_API.md asks of it, over
 * raw HTTP (FAKE_ML_BIN, FAKE_ML_SCENARIOS set by ctest). It starts and stops the fake itself
 * (a small process helper below, which also sees how it fails to start) and speaks to it with
 * the tests' raw HTTP/1.1 client (tests/support/testhttp.h); nothing of jobsd is linked. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <jansson.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "testgroup.h"
#include "testhttp.h"
#include "testtime.h"

#define SELLER     2210987654LL
#define SELLER_S   "2210987654"
#define CLIENT_ID  "5511223344556677"
#define CLIENT_SEC "small-client-secret"
#define BIG_ORDER  9007199254740993LL /* 2^53 + 1: must survive as an integer */
#define ORDER_2330 "2024-01-15T23:30:00.000-03:00"

/* ------------------------------------------------------------------ helpers */

static void die(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    exit(1);
}

static const char *env_or_die(const char *name)
{
    const char *v = getenv(name);
    if (!v || !*v)
        die("%s is not set (ctest sets it)", name);
    return v;
}

static char *scenario_path(const char *name)
{
    static char buf[4][1024];
    static int slot;
    char *p = buf[slot++ % 4];
    snprintf(p, 1024, "%s/%s", env_or_die("FAKE_ML_SCENARIOS"), name);
    return p;
}

struct fake {
    pid_t pid;
    unsigned port;
};

/* Starts fake_ml with args (NULL-terminated) and reads its "listening" line. Returns false
 * when it exits instead; *exit_code then holds its exit status. */
static bool fake_start(struct fake *f, const char *const *args, int *exit_code, char *err,
                       size_t errlen)
{
    int out[2];
    if (pipe(out) != 0)
        die("pipe: %s", strerror(errno));
    /* stderr goes to a file: read only when the fake failed to start. */
    char errpath[256];
    const char *tmp = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
    snprintf(errpath, sizeof errpath, "%s/fake_ml_stderr_XXXXXX", tmp);
    int efd = mkstemp(errpath);
    if (efd < 0)
        die("mkstemp: %s", strerror(errno));
    unlink(errpath);
    /* The command line, built before fork: the child only calls execv. */
    const char *bin = env_or_die("FAKE_ML_BIN");
    char *argv[32];
    size_t argc = 0;
    argv[argc++] = strdup("fake_ml");
    for (size_t i = 0; args[i] && argc < 31; i++)
        argv[argc++] = strdup(args[i]);
    argv[argc] = NULL;
    for (size_t i = 0; i < argc; i++)
        if (!argv[i])
            die("out of memory");
    pid_t pid = fork();
    if (pid < 0)
        die("fork: %s", strerror(errno));
    if (pid == 0) {
        dup2(out[1], STDOUT_FILENO);
        dup2(efd, STDERR_FILENO);
        close(out[0]);
        close(out[1]);
        close(efd);
        execv(bin, argv);
        _exit(127);
    }
    for (size_t i = 0; i < argc; i++)
        free(argv[i]);
    close(out[1]);
    char line[256] = "";
    size_t got = 0;
    long long end = t_now_ms() + 30000;
    bool ok = false, eof = false;
    while (t_now_ms() < end && got < sizeof line - 1) {
        struct pollfd p = {out[0], POLLIN, 0};
        if (poll(&p, 1, 100) <= 0)
            continue;
        ssize_t r = read(out[0], line + got, sizeof line - 1 - got);
        if (r <= 0) {
            eof = true; /* it exited (or closed stdout): reap it below */
            break;
        }
        got += (size_t)r;
        line[got] = '\0';
        if (strchr(line, '\n')) {
            ok = true;
            break;
        }
    }
    close(out[0]);
    unsigned port = 0;
    const char *prefix = "fake_ml listening port=";
    if (ok && strncmp(line, prefix, strlen(prefix)) == 0) {
        char *endp = NULL;
        long v = strtol(line + strlen(prefix), &endp, 10);
        if (endp && *endp == '\n' && v > 0 && v <= 65535)
            port = (unsigned)v;
    }
    if (port > 0) {
        close(efd);
        f->pid = pid;
        f->port = port;
        return true;
    }
    int status = 0;
    if (!eof)
        kill(pid, SIGKILL); /* no line within 30 s, or a wrong one */
    waitpid(pid, &status, 0);
    if (exit_code)
        *exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    if (err && errlen > 0) {
        ssize_t n = pread(efd, err, errlen - 1, 0);
        err[n > 0 ? n : 0] = '\0';
    }
    close(efd);
    f->pid = 0;
    return false;
}

/* SIGTERM, then waits; returns the exit code (-1 on timeout). */
static int fake_stop(struct fake *f)
{
    if (f->pid <= 0)
        return -1;
    kill(f->pid, SIGTERM);
    long long end = t_now_ms() + 20000;
    int status = 0;
    while (waitpid(f->pid, &status, WNOHANG) != f->pid) {
        if (t_now_ms() > end) {
            kill(f->pid, SIGKILL);
            waitpid(f->pid, NULL, 0);
            f->pid = 0;
            return -1;
        }
        t_sleep_ms(10);
    }
    f->pid = 0;
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

/* A request from parts over the shared raw client (tests/support/testhttp.h); token may be
 * NULL (no Authorization), ctype NULL = JSON when there is a body. */
static void http(unsigned port, const char *method, const char *path, const char *token,
                 const char *body, const char *ctype, struct th_response *r)
{
    char headers[1024] = "";
    int n = 0;
    if (token)
        n = snprintf(headers, sizeof headers, "Authorization: Bearer %s\r\n", token);
    if (body && n >= 0 && (size_t)n < sizeof headers)
        n += snprintf(headers + n, sizeof headers - (size_t)n, "Content-Type: %s\r\n",
                      ctype ? ctype : "application/json");
    if (n < 0 || (size_t)n >= sizeof headers)
        fail_msg("headers too long for %s %s", method, path);
    if (!th_request(port, method, path, headers, body, r))
        fail_msg("no HTTP response for %s %s", method, path);
}

/* The first value of a response header, or NULL (static buffer, valid until the next call). */
static const char *header(const struct th_response *r, const char *name)
{
    static char val[512];
    char *v = th_header(r, name);
    if (!v)
        return NULL;
    snprintf(val, sizeof val, "%s", v);
    free(v);
    return val;
}

static const char *jstr(const json_t *o, const char *key)
{
    const char *s = json_string_value(json_object_get(o, key));
    return s ? s : "";
}

static long long jint(const json_t *o, const char *key)
{
    json_t *v = json_object_get(o, key);
    if (!json_is_integer(v))
        fail_msg("%s is not an integer", key);
    return (long long)json_integer_value(v);
}

/* Percent-encodes all but the unreserved characters (scroll ids carry '+', '/', '=' and ':');
 * caller frees. */
static char *url_enc(const char *s)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t n = strlen(s);
    char *out = malloc(3 * n + 1), *o = out;
    if (!out)
        die("out of memory");
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
            c == '-' || c == '_' || c == '.' || c == '~') {
            *o++ = (char)c;
        } else {
            *o++ = '%';
            *o++ = hex[c >> 4];
            *o++ = hex[c & 15];
        }
    }
    *o = '\0';
    return out;
}

static void utc_date(time_t t, char out[16])
{
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(out, 16, "%Y-%m-%d", &tm);
}

/* ------------------------------------------------------------------ the shared fake */

static struct fake g_fake;

static unsigned P(void)
{
    return g_fake.port;
}

/* The seller's current access token (tokens rotate during the tests). */
static char *access_token(void)
{
    struct th_response r;
    http(P(), "GET", "/__fake/sellers/" SELLER_S "/tokens", NULL, NULL, NULL, &r);
    assert_int_equal(r.status, 200);
    char *t = strdup(jstr(r.json, "access_token"));
    th_free(&r);
    return t;
}

static char *refresh_token(void)
{
    struct th_response r;
    http(P(), "GET", "/__fake/sellers/" SELLER_S "/tokens", NULL, NULL, NULL, &r);
    assert_int_equal(r.status, 200);
    char *t = strdup(jstr(r.json, "refresh_token"));
    th_free(&r);
    return t;
}

static void api_get(const char *path, struct th_response *r)
{
    char *tok = access_token();
    http(P(), "GET", path, tok, NULL, NULL, r);
    free(tok);
}

static json_t *stats(const char *query)
{
    char path[256];
    snprintf(path, sizeof path, "/__fake/stats%s", query ? query : "");
    struct th_response r;
    http(P(), "GET", path, NULL, NULL, NULL, &r);
    assert_int_equal(r.status, 200);
    json_t *j = json_incref(r.json);
    th_free(&r);
    return j;
}

static void control_post(const char *path, const char *body, int want)
{
    struct th_response r;
    http(P(), "POST", path, NULL, body, NULL, &r);
    if (r.status != want)
        fail_msg("%s -> %d (%s), wanted %d", path, r.status, r.body, want);
    th_free(&r);
}

static int fake_delete_faults(void)
{
    struct th_response r;
    http(P(), "DELETE", "/__fake/faults", NULL, NULL, NULL, &r);
    int st = r.status;
    th_free(&r);
    return st;
}

static void refresh(const char *client_id, const char *secret, const char *rt,
                    struct th_response *r)
{
    char body[1024];
    snprintf(body, sizeof body, "grant_type=refresh_token&client_id=%s&client_secret=%s%s%s",
             client_id, secret, rt ? "&refresh_token=" : "", rt ? rt : "");
    http(P(), "POST", "/oauth/token", NULL, body, "application/x-www-form-urlencoded", r);
}

static int group_setup(void **state)
{
    (void)state;
    const char *args[] = {"--scenario", scenario_path("small.json"), NULL};
    char err[4096];
    int code = 0;
    if (!fake_start(&g_fake, args, &code, err, sizeof err)) {
        fprintf(stderr, "fake_ml did not start (exit %d): %s\n", code, err);
        return -1;
    }
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    /* A clean exit 0 also means no leak: LeakSanitizer would change the exit code. */
    int code = fake_stop(&g_fake);
    if (code != 0) {
        fprintf(stderr, "fake_ml exited with %d after SIGTERM\n", code);
        return -1;
    }
    return 0;
}

/* ------------------------------------------------------------------ auth and tokens */

static void test_users_me_and_invalid_tokens(void **state)
{
    (void)state;
    json_t *before = stats("?log=0");
    long long invalid0 = jint(before, "invalid_token_requests");
    json_decref(before);
    struct th_response r;
    api_get("/users/me", &r);
    assert_int_equal(r.status, 200);
    assert_true(jint(r.json, "id") == SELLER);
    assert_string_equal(jstr(r.json, "site_id"), "MLB");
    assert_string_equal(jstr(r.json, "nickname"), "LOJA_TESTE_SMALL");
    assert_non_null(strstr(header(&r, "Content-Type"), "application/json"));
    th_free(&r);

    const char *bad[] = {NULL, "not-a-token", ""};
    for (size_t i = 0; i < 3; i++) {
        http(P(), "GET", "/users/me", bad[i], NULL, NULL, &r);
        assert_int_equal(r.status, 401);
        assert_string_equal(r.body,
                            "{\"message\":\"invalid_token\",\"error\":\"not_found\",\"status\":401,"
                            "\"cause\":[]}");
        th_free(&r);
    }
    json_t *after = stats("?log=0");
    assert_int_equal(jint(after, "invalid_token_requests"), invalid0 + 3);
    json_decref(after);

    /* Unknown paths and wrong methods. */
    api_get("/users/me/", &r);
    assert_int_equal(r.status, 404);
    th_free(&r);
    http(P(), "POST", "/users/me", NULL, "{}", NULL, &r);
    assert_int_equal(r.status, 405);
    th_free(&r);
}

static void test_refresh_rotation_and_reuse(void **state)
{
    (void)state;
    char *old_at = access_token(), *old_rt = refresh_token();
    json_t *s0 = stats("?log=0");
    struct th_response r;
    refresh(CLIENT_ID, CLIENT_SEC, old_rt, &r);
    assert_int_equal(r.status, 200);
    const char *at = jstr(r.json, "access_token"), *rt = jstr(r.json, "refresh_token");
    assert_string_not_equal(at, old_at);
    assert_string_not_equal(rt, old_rt);
    assert_string_equal(jstr(r.json, "token_type"), "bearer");
    assert_string_equal(jstr(r.json, "scope"), "offline_access read write");
    assert_int_equal(jint(r.json, "expires_in"), 21600);
    assert_true(jint(r.json, "user_id") == SELLER);
    char *new_at = strdup(at), *new_rt = strdup(rt);
    th_free(&r);

    /* The rotation is visible through the control API. */
    char *cur = access_token(), *cur_rt = refresh_token();
    assert_string_equal(cur, new_at);
    assert_string_equal(cur_rt, new_rt);
    free(cur);
    free(cur_rt);

    /* The previous access token stopped working; the new one works. */
    http(P(), "GET", "/users/me", old_at, NULL, NULL, &r);
    assert_int_equal(r.status, 401);
    th_free(&r);
    http(P(), "GET", "/users/me", new_at, NULL, NULL, &r);
    assert_int_equal(r.status, 200);
    th_free(&r);

    /* Re-using the consumed refresh token: invalid_grant with `message`, no error_description. */
    refresh(CLIENT_ID, CLIENT_SEC, old_rt, &r);
    assert_int_equal(r.status, 400);
    assert_string_equal(jstr(r.json, "error"), "invalid_grant");
    assert_string_equal(jstr(r.json, "message"),
                        "Error validating grant. Your authorization code or refresh token may be "
                        "expired or it was already used");
    assert_int_equal(jint(r.json, "status"), 400);
    assert_true(json_is_array(json_object_get(r.json, "cause")));
    assert_null(json_object_get(r.json, "error_description"));
    th_free(&r);
    /* ... and it did not disturb the current tokens. */
    cur = access_token();
    assert_string_equal(cur, new_at);
    free(cur);

    json_t *s1 = stats("?log=0");
    assert_int_equal(jint(s1, "refreshes"), jint(s0, "refreshes") + 1);
    assert_int_equal(jint(s1, "invalid_grants"), jint(s0, "invalid_grants") + 1);
    json_decref(s0);
    json_decref(s1);
    free(old_at);
    free(old_rt);
    free(new_at);
    free(new_rt);
}

struct race {
    char rt[256];
    int status;
    pthread_barrier_t *barrier;
};

static void *race_refresh(void *arg)
{
    struct race *x = arg;
    pthread_barrier_wait(x->barrier);
    struct th_response r;
    refresh(CLIENT_ID, CLIENT_SEC, x->rt, &r);
    x->status = r.status;
    th_free(&r);
    return NULL;
}

/* Two workers refreshing with the same token: exactly one wins (the SSIA race). */
static void test_refresh_race_one_winner(void **state)
{
    (void)state;
    char *rt = refresh_token();
    pthread_barrier_t b;
    pthread_barrier_init(&b, NULL, 4);
    struct race x[4];
    pthread_t th[4];
    for (int i = 0; i < 4; i++) {
        snprintf(x[i].rt, sizeof x[i].rt, "%s", rt);
        x[i].barrier = &b;
        pthread_create(&th[i], NULL, race_refresh, &x[i]);
    }
    int ok = 0, grant = 0;
    for (int i = 0; i < 4; i++) {
        pthread_join(th[i], NULL);
        ok += x[i].status == 200;
        grant += x[i].status == 400;
    }
    pthread_barrier_destroy(&b);
    assert_int_equal(ok, 1);
    assert_int_equal(grant, 3);
    free(rt);
}

static void test_invalid_client_and_bad_requests(void **state)
{
    (void)state;
    char *rt = refresh_token();
    json_t *s0 = stats("?log=0");
    struct th_response r;
    refresh(CLIENT_ID, "wrong-secret", rt, &r);
    assert_int_equal(r.status, 400);
    assert_string_equal(jstr(r.json, "error"), "invalid_client");
    th_free(&r);
    refresh("9999999999", CLIENT_SEC, rt, &r);
    assert_int_equal(r.status, 400);
    assert_string_equal(jstr(r.json, "error"), "invalid_client");
    th_free(&r);
    http(P(), "POST", "/oauth/token", NULL, "client_id=1", "application/x-www-form-urlencoded", &r);
    assert_int_equal(r.status, 400);
    assert_string_equal(jstr(r.json, "error"), "invalid_request");
    th_free(&r);
    http(P(), "POST", "/oauth/token", NULL, "grant_type=password",
         "application/x-www-form-urlencoded", &r);
    assert_int_equal(r.status, 400);
    assert_string_equal(jstr(r.json, "error"), "unsupported_grant_type");
    th_free(&r);
    json_t *s1 = stats("?log=0");
    assert_int_equal(jint(s1, "invalid_clients"), jint(s0, "invalid_clients") + 2);
    assert_int_equal(jint(s1, "refreshes"), jint(s0, "refreshes"));
    json_decref(s0);
    json_decref(s1);
    /* The refresh token is still valid: failed client checks consume nothing. */
    char *rt2 = refresh_token();
    assert_string_equal(rt, rt2);
    free(rt);
    free(rt2);
}

static void test_expired_access_token(void **state)
{
    (void)state;
    char *at = access_token();
    json_t *s0 = stats("?log=0");
    control_post("/__fake/sellers/" SELLER_S "/expire-access-token", NULL, 200);
    struct th_response r;
    http(P(), "GET", "/users/me", at, NULL, NULL, &r);
    assert_int_equal(r.status, 401);
    assert_string_equal(jstr(r.json, "message"), "invalid_token");
    th_free(&r);
    json_t *s1 = stats("?log=0");
    assert_int_equal(jint(s1, "expired_token_requests"), jint(s0, "expired_token_requests") + 1);
    assert_int_equal(jint(s1, "invalid_token_requests"), jint(s0, "invalid_token_requests"));
    json_decref(s0);
    json_decref(s1);
    /* The refresh token still works and brings a valid access token. */
    char *rt = refresh_token();
    refresh(CLIENT_ID, CLIENT_SEC, rt, &r);
    assert_int_equal(r.status, 200);
    char *at2 = strdup(jstr(r.json, "access_token"));
    th_free(&r);
    http(P(), "GET", "/users/me", at2, NULL, NULL, &r);
    assert_int_equal(r.status, 200);
    th_free(&r);
    free(at);
    free(at2);
    free(rt);
}

/* ------------------------------------------------------------------ items search */

static void test_scan_paging_to_the_end(void **state)
{
    (void)state;
    struct th_response r;
    json_t *seen = json_object();
    char scroll[256] = "";
    char prev[256] = "";
    int pages = 0;
    for (;;) {
        char path[1024];
        if (scroll[0]) {
            char *enc = url_enc(scroll);
            snprintf(path, sizeof path,
                     "/users/" SELLER_S "/items/search?search_type=scan&limit=7&scroll_id=%s", enc);
            free(enc);
        } else
            snprintf(path, sizeof path,
                     "/users/" SELLER_S "/items/search?search_type=scan&limit=7");
        api_get(path, &r);
        assert_int_equal(r.status, 200);
        assert_int_equal(jint(json_object_get(r.json, "paging"), "total"), 30);
        const char *sid = jstr(r.json, "scroll_id");
        /* Production's shape and length (ML's example), with characters to encode. */
        assert_int_equal(strlen(sid), 114);
        assert_memory_equal(sid, "YXBpY29yZS1pdGVtcw==:ZHMtYXBpY29yZS1pdGVtcy0wMQ==:", 50);
        assert_non_null(strchr(sid, '+'));
        assert_non_null(strchr(sid, '/'));
        assert_string_not_equal(sid, scroll); /* a new scroll_id per page */
        snprintf(prev, sizeof prev, "%s", scroll);
        snprintf(scroll, sizeof scroll, "%s", sid);
        json_t *res = json_object_get(r.json, "results");
        size_t n = json_array_size(res);
        pages++;
        for (size_t i = 0; i < n; i++)
            json_object_set_new(seen, json_string_value(json_array_get(res, i)), json_true());
        th_free(&r);
        if (n == 0)
            break;
        assert_true(n <= 7);
        assert_true(pages < 20);
    }
    assert_int_equal(pages, 6); /* 7+7+7+7+2, then an empty page */
    assert_int_equal(json_object_size(seen), 30);
    assert_non_null(json_object_get(seen, "MLB1100000007")); /* blocked: still listed */
    assert_non_null(json_object_get(seen, "MLB1100000013")); /* missing: still listed */
    json_decref(seen);

    /* A superseded scroll_id is refused. */
    char path[1024];
    char *enc = url_enc(prev);
    snprintf(path, sizeof path,
             "/users/" SELLER_S "/items/search?search_type=scan&limit=7&scroll_id=%s", enc);
    free(enc);
    api_get(path, &r);
    assert_int_equal(r.status, 400);
    assert_string_equal(jstr(r.json, "error"), "bad_request");
    th_free(&r);
    /* The latest one sent without encoding: its '+' arrives as a space, and it is refused. */
    snprintf(path, sizeof path,
             "/users/" SELLER_S "/items/search?search_type=scan&limit=7&scroll_id=%s", scroll);
    api_get(path, &r);
    assert_int_equal(r.status, 400);
    th_free(&r);
    /* limit > 100 in scan mode. */
    api_get("/users/" SELLER_S "/items/search?search_type=scan&limit=101", &r);
    assert_int_equal(r.status, 400);
    th_free(&r);
    /* Status filter. */
    api_get("/users/" SELLER_S "/items/search?search_type=scan&limit=100&status=paused", &r);
    assert_int_equal(r.status, 200);
    assert_int_equal(json_array_size(json_object_get(r.json, "results")), 2);
    th_free(&r);
}

static void test_scroll_expiry(void **state)
{
    (void)state;
    control_post("/__fake/config", "{\"scroll_ttl_seconds\": 1}", 200);
    struct th_response r;
    api_get("/users/" SELLER_S "/items/search?search_type=scan&limit=5", &r);
    assert_int_equal(r.status, 200);
    char sid[256];
    snprintf(sid, sizeof sid, "%s", jstr(r.json, "scroll_id"));
    th_free(&r);
    /* The behaviour under test is time itself: wait out the 1 s lifetime. */
    t_sleep_ms(1300);
    char path[1024];
    char *enc = url_enc(sid);
    snprintf(path, sizeof path,
             "/users/" SELLER_S "/items/search?search_type=scan&limit=5&scroll_id=%s", enc);
    free(enc);
    api_get(path, &r);
    assert_int_equal(r.status, 400);
    th_free(&r);
    control_post("/__fake/config", "{\"scroll_ttl_seconds\": 300}", 200);
    json_t *s = stats("?endpoint=items_search");
    assert_true(jint(s, "scroll_errors") >= 1);
    json_t *log = json_object_get(s, "log");
    json_t *last = json_array_get(log, json_array_size(log) - 1);
    assert_string_equal(jstr(json_object_get(last, "params"), "scroll_id"), sid);
    assert_int_equal(jint(last, "status"), 400);
    json_decref(s);
}

static void test_offset_paging_limits(void **state)
{
    (void)state;
    struct th_response r;
    api_get("/users/" SELLER_S "/items/search", &r);
    assert_int_equal(r.status, 200);
    assert_int_equal(jint(json_object_get(r.json, "paging"), "limit"), 50);
    assert_int_equal(json_array_size(json_object_get(r.json, "results")), 30);
    assert_null(json_object_get(r.json, "scroll_id"));
    assert_string_equal(jstr(r.json, "seller_id"), SELLER_S);
    th_free(&r);
    api_get("/users/" SELLER_S "/items/search?offset=10&limit=5", &r);
    assert_int_equal(r.status, 200);
    assert_string_equal(json_string_value(json_array_get(json_object_get(r.json, "results"), 0)),
                        "MLB1100000011");
    th_free(&r);
    /* offset + limit may reach 1,000 but not pass it, whatever the total. */
    api_get("/users/" SELLER_S "/items/search?offset=950&limit=50", &r);
    assert_int_equal(r.status, 200);
    assert_int_equal(json_array_size(json_object_get(r.json, "results")), 0);
    th_free(&r);
    const char *bad[] = {"offset=960&limit=50", "offset=1000&limit=1", "limit=101",
                         "offset=-1",           "limit=abc",           "search_type=foo"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char path[256];
        snprintf(path, sizeof path, "/users/" SELLER_S "/items/search?%s", bad[i]);
        api_get(path, &r);
        if (r.status != 400)
            fail_msg("%s -> %d", bad[i], r.status);
        assert_string_equal(jstr(r.json, "error"), "bad_request");
        th_free(&r);
    }
    /* Another seller's listing. */
    api_get("/users/123456/items/search", &r);
    assert_int_equal(r.status, 403);
    assert_string_equal(jstr(r.json, "error"), "access_denied");
    th_free(&r);
}

/* ------------------------------------------------------------------ multiget */

static void test_multiget(void **state)
{
    (void)state;
    struct th_response r;
    char path[2048] = "/items?ids=";
    for (int i = 1; i <= 21; i++) {
        size_t used = strlen(path);
        snprintf(path + used, sizeof path - used, "%sMLB%d", i > 1 ? "," : "", 1100000000 + i);
    }
    api_get(path, &r);
    assert_int_equal(r.status, 400);
    assert_string_equal(jstr(r.json, "error"), "bad_request");
    assert_string_equal(jstr(r.json, "message"),
                        "The parameter 'ids' only allows 20 elements. You exceeded this value by "
                        "sending 21 elements");
    th_free(&r);
    size_t used = strlen(path);
    snprintf(path + used, sizeof path - used, "%s", ",MLB1,MLB2,MLB3,MLB4");
    api_get(path, &r);
    assert_int_equal(r.status, 400);
    assert_non_null(strstr(jstr(r.json, "message"), "by sending 25 elements"));
    th_free(&r);

    api_get("/items?ids=MLB1100000001,MLB1100000007,MLB1100000013,MLB42", &r);
    assert_int_equal(r.status, 200);
    assert_true(json_is_array(r.json));
    assert_int_equal(json_array_size(r.json), 4);
    json_t *e0 = json_array_get(r.json, 0), *e1 = json_array_get(r.json, 1),
           *e2 = json_array_get(r.json, 2), *e3 = json_array_get(r.json, 3);
    assert_int_equal(jint(e0, "code"), 200);
    json_t *item = json_object_get(e0, "body");
    assert_string_equal(jstr(item, "id"), "MLB1100000001");
    assert_true(jint(item, "seller_id") == SELLER);
    assert_true(json_is_number(json_object_get(item, "price")));
    assert_non_null(json_object_get(item, "available_quantity"));
    assert_int_equal(jint(e1, "code"), 403);
    json_t *pa = json_object_get(e1, "body");
    assert_string_equal(jstr(pa, "code"), "PA_UNAUTHORIZED_RESULT_FROM_POLICIES");
    assert_string_equal(jstr(pa, "blocked_by"), "PolicyAgent");
    assert_string_equal(jstr(pa, "message"), "At least one policy returned UNAUTHORIZED.");
    assert_int_equal(jint(pa, "status"), 403);
    for (int k = 0; k < 2; k++) {
        json_t *e = k ? e3 : e2;
        assert_int_equal(jint(e, "code"), 404);
        assert_string_equal(jstr(json_object_get(e, "body"), "message"), "Item not found");
        assert_string_equal(jstr(json_object_get(e, "body"), "error"), "not_found");
    }
    th_free(&r);

    /* attributes= is honoured. */
    api_get("/items?ids=MLB1100000002&attributes=id,status", &r);
    assert_int_equal(r.status, 200);
    assert_int_equal(json_object_size(json_object_get(json_array_get(r.json, 0), "body")), 2);
    th_free(&r);

    json_t *s = stats("?log=0");
    assert_true(jint(s, "max_multiget_ids") >= 25);
    json_decref(s);
}

/* ------------------------------------------------------------------ orders */

static json_t *orders(const char *query, int want_status)
{
    char path[1024];
    snprintf(path, sizeof path, "/orders/search?seller=" SELLER_S "%s", query);
    struct th_response r;
    api_get(path, &r);
    if (r.status != want_status)
        fail_msg("%s -> %d %s", path, r.status, r.body);
    json_t *j = json_incref(r.json);
    th_free(&r);
    return j;
}

static bool has_order_at(const json_t *page, const char *date_created)
{
    json_t *res = json_object_get(page, "results");
    for (size_t i = 0; i < json_array_size(res); i++)
        if (strcmp(jstr(json_array_get(res, i), "date_created"), date_created) == 0)
            return true;
    return false;
}

static void test_orders_limits(void **state)
{
    (void)state;
    json_t *j = orders("&limit=52", 400);
    char *s = json_dumps(j, JSON_COMPACT | JSON_PRESERVE_ORDER);
    assert_string_equal(s, "{\"message\":\"Limit must be a lower or equal than 51\",\"error\":"
                           "\"limit.maximum_exceeded\",\"status\":400,\"cause\":[]}");
    free(s);
    json_decref(j);
    j = orders("&limit=51", 200);
    assert_int_equal(json_array_size(json_object_get(j, "results")),
                     45); /* every order but the 5 cancelled */
    assert_int_equal(jint(json_object_get(j, "paging"), "limit"), 51);
    json_decref(j);
    j = orders("", 200);
    assert_int_equal(jint(json_object_get(j, "paging"), "limit"), 50);
    json_decref(j);
    j = orders("&offset=10000", 400);
    assert_string_equal(jstr(j, "error"), "bad_request");
    json_decref(j);
    j = orders("&offset=9999", 200);
    assert_int_equal(json_array_size(json_object_get(j, "results")), 0);
    assert_int_equal(jint(json_object_get(j, "paging"), "total"), 45); /* 50 - 5 cancelled */
    json_decref(j);
    j = orders("&sort=price", 400);
    json_decref(j);
    j = orders("&order.date_created.from=yesterday", 400);
    json_decref(j);
    json_t *st = stats("?log=0");
    assert_true(jint(st, "max_orders_limit") >= 52);
    json_decref(st);
    /* Another seller. */
    struct th_response r;
    api_get("/orders/search?seller=123", &r);
    assert_int_equal(r.status, 403);
    th_free(&r);
    api_get("/orders/search", &r);
    assert_int_equal(r.status, 400);
    th_free(&r);
}

static void test_orders_paging_total_and_ids(void **state)
{
    (void)state;
    json_t *ids = json_object();
    bool big = false;
    for (int off = 0; off < 50; off += 10) {
        char q[512];
        snprintf(q, sizeof q,
                 "&order.date_created.from=2024-01-01T00:00:00.000-03:00"
                 "&order.date_created.to=2024-02-01T00:00:00.000-03:00&limit=10&offset=%d"
                 "&order.status=cancelled,paid,confirmed,payment_required,payment_in_process,"
                 "partially_refunded,invalid,pending_cancel,partially_paid",
                 off);
        json_t *j = orders(q, 200);
        json_t *paging = json_object_get(j, "paging");
        assert_int_equal(jint(paging, "total"), 50);
        assert_int_equal(jint(paging, "offset"), off);
        json_t *res = json_object_get(j, "results");
        assert_int_equal(json_array_size(res), 10);
        for (size_t i = 0; i < json_array_size(res); i++) {
            json_t *o = json_array_get(res, i);
            long long id = jint(o, "id");
            big |= id == BIG_ORDER;
            char k[32];
            snprintf(k, sizeof k, "%lld", id);
            json_object_set_new(ids, k, json_true());
            assert_true(jint(json_object_get(o, "seller"), "id") == SELLER);
            assert_true(json_array_size(json_object_get(o, "order_items")) >= 1);
        }
        json_decref(j);
    }
    assert_true(big);
    assert_int_equal(json_object_size(ids), 50);
    json_decref(ids);
    /* date_desc puts the last date_closed of January (2024-02-01T00:14:59.999) first. */
    json_t *j = orders("&sort=date_desc&limit=1", 200);
    assert_string_equal(jstr(json_array_get(json_object_get(j, "results"), 0), "date_created"),
                        "2024-01-31T23:59:59.999-03:00");
    json_decref(j);
    j = orders("&limit=1", 200);
    assert_string_equal(jstr(json_array_get(json_object_get(j, "results"), 0), "date_created"),
                        "2024-01-01T00:00:00.000-03:00");
    json_decref(j);
    /* Status filter. */
    j = orders("&order.status=cancelled", 200);
    assert_int_equal(jint(json_object_get(j, "paging"), "total"), 5);
    json_decref(j);
}

static void test_orders_hour_truncation(void **state)
{
    (void)state;
    struct {
        const char *from, *to;
        bool has_2330; /* the order at 2024-01-15T23:30:00.000-03:00 (02:30Z on the 16th) */
        bool has_2300; /* the order at exactly 23:00:00.000-03:00 */
    } cases[] = {
        /* from 23:45 is truncated to 23:00: the 23:30 order is in (and 23:00, inclusive) */
        {"2024-01-15T23:45:00.000-03:00", "2024-01-16T00:00:00.000-03:00", true, true},
        /* to 23:59:59.999 is truncated to 23:00:00: the 23:30 order is out, 23:00 in */
        {"2024-01-15T00:00:00.000-03:00", "2024-01-15T23:59:59.999-03:00", false, true},
        {"2024-01-15T00:00:00Z", "2024-01-16T02:59:59.999Z", false, true},
        {"2024-01-15T00:00:00.000-00:00", "2024-01-16T02:59:59-00:00", false, true},
        {"2024-01-15T00:00:00.000-04:00", "2024-01-15T22:59:59.000-04:00", false, true},
        {"2024-01-16T00:00:00Z", "2024-01-16T02:45:00Z", false, true},
        /* a one-minute window without milliseconds becomes [23:00, 23:00] */
        {"2024-01-15T23:59:00-03:00", "2024-01-15T23:59:59-03:00", false, true},
        /* from truncated to 23:00 (Manaus 22:00), to 00:00 São Paulo: both in */
        {"2024-01-15T22:10:00-04:00", "2024-01-16T03:00:00.000Z", true, true},
        /* the next hour on its own: neither */
        {"2024-01-16T00:00:00.000-03:00", "2024-01-16T00:10:00.000-03:00", false, false},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char q[256];
        snprintf(q, sizeof q, "&order.date_created.from=%s&order.date_created.to=%s&limit=50",
                 cases[i].from, cases[i].to);
        json_t *j = orders(q, 200);
        if (has_order_at(j, ORDER_2330) != cases[i].has_2330 ||
            has_order_at(j, "2024-01-15T23:00:00.000-03:00") != cases[i].has_2300)
            fail_msg("case %zu (%s .. %s): 23:30 %d, 23:00 %d", i, cases[i].from, cases[i].to,
                     has_order_at(j, ORDER_2330), has_order_at(j, "2024-01-15T23:00:00.000-03:00"));
        json_decref(j);
    }
    /* A URL-encoded offset works the same; the log shows the decoded parameters. */
    json_t *j = orders("&order.date_created.from=2024-01-15T23%3A45%3A00.000-03%3A00"
                       "&order.date_created.to=2024-01-16T00%3A00%3A00.000-03%3A00",
                       200);
    assert_true(has_order_at(j, ORDER_2330));
    json_decref(j);
    json_t *s = stats("?endpoint=orders_search");
    json_t *log = json_object_get(s, "log");
    json_t *last = json_array_get(log, json_array_size(log) - 1);
    assert_string_equal(jstr(last, "endpoint"), "orders_search");
    assert_string_equal(jstr(json_object_get(last, "params"), "order.date_created.from"),
                        "2024-01-15T23:45:00.000-03:00");
    assert_non_null(strstr(jstr(last, "query"), "23%3A45"));
    json_decref(s);
}

#define CANCELLED_0105 2000007100024524LL /* cancelled, created 2024-01-05T22:26:17.625-03:00 */
#define UNPAID_0111    2000007100058744LL /* payment_required: no date_closed */

static bool has_id(const json_t *page, long long id)
{
    json_t *res = json_object_get(page, "results");
    for (size_t i = 0; i < json_array_size(res); i++)
        if (jint(json_array_get(res, i), "id") == id)
            return true;
    return false;
}

/* "si realizas la búsqueda como vendedor, filtras órdenes canceladas": every seller search,
 * with or without date filters, unless order.status asks for cancelled. */
static void test_orders_cancelled_left_out(void **state)
{
    (void)state;
    json_t *j = orders("&limit=50", 200);
    assert_int_equal(jint(json_object_get(j, "paging"), "total"), 45);
    json_t *res = json_object_get(j, "results");
    for (size_t i = 0; i < json_array_size(res); i++)
        assert_string_not_equal(jstr(json_array_get(res, i), "status"), "cancelled");
    json_decref(j);
    j = orders("&limit=50&order.status=cancelled", 200);
    assert_int_equal(jint(json_object_get(j, "paging"), "total"), 5);
    res = json_object_get(j, "results");
    for (size_t i = 0; i < json_array_size(res); i++)
        assert_string_equal(jstr(json_array_get(res, i), "status"), "cancelled");
    json_decref(j);
    /* A documented comma-separated list. */
    j = orders("&limit=1&order.status=paid,cancelled", 200);
    assert_int_equal(jint(json_object_get(j, "paging"), "total"), 40);
    json_decref(j);
    j = orders("&limit=1&order.status=paid", 200);
    assert_int_equal(jint(json_object_get(j, "paging"), "total"), 35);
    json_decref(j);
    /* With date filters too: created in its hour, or last updated in its hour. */
    const char *windows[] = {"&order.date_created.from=2024-01-05T22:00:00.000-03:00"
                             "&order.date_created.to=2024-01-05T23:00:00.000-03:00",
                             "&order.date_last_updated.from=2024-01-06T17:00:00.000-03:00"
                             "&order.date_last_updated.to=2024-01-06T18:00:00.000-03:00"};
    for (size_t w = 0; w < 2; w++) {
        char q[512];
        snprintf(q, sizeof q, "%s&limit=50", windows[w]);
        j = orders(q, 200);
        assert_false(has_id(j, CANCELLED_0105));
        json_decref(j);
        snprintf(q, sizeof q, "%s&limit=50&order.status=cancelled", windows[w]);
        j = orders(q, 200);
        assert_true(has_id(j, CANCELLED_0105));
        assert_int_equal(jint(json_object_get(j, "paging"), "total"), 1);
        json_decref(j);
    }
}

/* order.date_last_updated.*: on date_last_updated (else last_updated), hour-truncated. */
static void test_orders_last_updated_filter(void **state)
{
    (void)state;
    /* 2000007100073694: created 2024-01-14T22:23:52.578-03:00, last updated
     * 2024-01-15T00:26:52.578-03:00, the only update in that hour. */
    struct {
        const char *from, *to;
        bool in;
    } cases[] = {
        {"2024-01-15T00:59:00.000-03:00", "2024-01-15T01:59:59.999-03:00", true},
        {"2024-01-15T00:00:00.000-03:00", "2024-01-15T00:59:59.999-03:00", false},
        {"2024-01-15T03:00:00Z", "2024-01-15T04:00:00Z", true},
        {"2024-01-14T23:30:00-04:00", "2024-01-15T00:00:00.000-04:00", true},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char q[256];
        snprintf(q, sizeof q,
                 "&order.date_last_updated.from=%s&order.date_last_updated.to=%s&limit=50",
                 cases[i].from, cases[i].to);
        json_t *j = orders(q, 200);
        if (has_id(j, 2000007100073694LL) != cases[i].in)
            fail_msg("case %zu: %d", i, has_id(j, 2000007100073694LL));
        assert_int_equal(jint(json_object_get(j, "paging"), "total"), cases[i].in ? 1 : 0);
        json_decref(j);
    }
    /* The created filter does not see it there. */
    json_t *j = orders("&order.date_created.from=2024-01-15T00:00:00.000-03:00"
                       "&order.date_created.to=2024-01-15T01:00:00.000-03:00",
                       200);
    assert_false(has_id(j, 2000007100073694LL));
    json_decref(j);
    j = orders("&order.date_last_updated.from=yesterday", 400);
    json_decref(j);
}

static void test_orders_get(void **state)
{
    (void)state;
    json_t *s0 = stats("?log=0");
    struct th_response r;
    char path[64];
    snprintf(path, sizeof path, "/orders/%lld", BIG_ORDER);
    api_get(path, &r);
    assert_int_equal(r.status, 200);
    assert_true(jint(r.json, "id") == BIG_ORDER);
    assert_true(jint(json_object_get(r.json, "seller"), "id") == SELLER);
    /* The same order as the search serves. */
    json_t *page = orders("&order.date_created.from=2024-01-19T11:00:00.000-03:00"
                          "&order.date_created.to=2024-01-19T12:00:00.000-03:00",
                          200);
    char *a = json_dumps(r.json, JSON_COMPACT | JSON_SORT_KEYS),
         *b = json_dumps(json_array_get(json_object_get(page, "results"), 0),
                         JSON_COMPACT | JSON_SORT_KEYS);
    assert_string_equal(a, b);
    free(a);
    free(b);
    json_decref(page);
    th_free(&r);
    /* A cancelled order: the search's filter does not apply to the order itself. */
    snprintf(path, sizeof path, "/orders/%lld", CANCELLED_0105);
    api_get(path, &r);
    assert_int_equal(r.status, 200);
    assert_string_equal(jstr(r.json, "status"), "cancelled");
    th_free(&r);
    /* date_closed: null until the first confirmed/paid; set for a confirmed order. */
    snprintf(path, sizeof path, "/orders/%lld", UNPAID_0111);
    api_get(path, &r);
    assert_true(json_is_null(json_object_get(r.json, "date_closed")));
    th_free(&r);
    api_get("/orders/2000007100055269", &r);
    assert_string_equal(jstr(r.json, "status"), "confirmed");
    assert_true(json_is_string(json_object_get(r.json, "date_closed")));
    th_free(&r);
    api_get("/orders/1", &r);
    assert_int_equal(r.status, 404);
    assert_string_equal(r.body, "{\"message\":\"Order not found\",\"error\":\"order_not_found\","
                                "\"status\":404,\"cause\":[]}");
    th_free(&r);
    api_get("/orders/12x", &r);
    assert_int_equal(r.status, 400);
    assert_string_equal(jstr(r.json, "error"), "invalid_order_id");
    th_free(&r);
    http(P(), "GET", path, "not-a-token", NULL, NULL, &r);
    assert_int_equal(r.status, 401);
    th_free(&r);
    /* Fault rules can target it. */
    control_post("/__fake/faults",
                 "[{\"endpoint\": \"orders_get\", \"status\": 503, \"count\": 1}]", 200);
    api_get(path, &r);
    assert_int_equal(r.status, 503);
    th_free(&r);
    api_get(path, &r);
    assert_int_equal(r.status, 200);
    th_free(&r);
    assert_int_equal(fake_delete_faults(), 200);
    json_t *s1 = stats("?log=0");
    assert_int_equal(jint(json_object_get(s1, "requests"), "orders_get"),
                     jint(json_object_get(s0, "requests"), "orders_get") + 9);
    json_decref(s0);
    json_decref(s1);
}

/* "Orders podrá devolver el código http 206 ... X-Content-Missing". */
static void test_orders_partial_206(void **state)
{
    (void)state;
    json_t *s0 = stats("?log=0");
    control_post("/__fake/faults",
                 "[{\"endpoint\": \"orders_search\", \"mode\": \"partial\", \"count\": 1}]", 200);
    struct th_response r;
    api_get("/orders/search?seller=" SELLER_S "&limit=5", &r);
    assert_int_equal(r.status, 206);
    assert_string_equal(header(&r, "X-Content-Missing"), "buyer, shipping");
    json_t *res = json_object_get(r.json, "results");
    assert_int_equal(json_array_size(res), 5);
    for (size_t i = 0; i < 5; i++) {
        json_t *o = json_array_get(res, i);
        /* As the documented example: the missing objects are empty. */
        assert_true(json_is_object(json_object_get(o, "buyer")));
        assert_int_equal(json_object_size(json_object_get(o, "buyer")), 0);
        assert_int_equal(json_object_size(json_object_get(o, "shipping")), 0);
        assert_true(jint(o, "id") > 0);
        assert_true(json_array_size(json_object_get(o, "order_items")) >= 1);
    }
    assert_int_equal(jint(json_object_get(r.json, "paging"), "total"), 45);
    th_free(&r);
    api_get("/orders/search?seller=" SELLER_S "&limit=5", &r);
    assert_int_equal(r.status, 200);
    assert_null(header(&r, "X-Content-Missing"));
    assert_true(
        jint(json_object_get(json_array_get(json_object_get(r.json, "results"), 0), "buyer"),
             "id") > 0);
    th_free(&r);
    control_post("/__fake/faults",
                 "[{\"endpoint\": \"orders_get\", \"mode\": \"partial\", \"omit\": [\"buyer\", "
                 "\"feedback\"], \"missing_as\": \"absent\", \"every\": 2}]",
                 200);
    char path[64];
    snprintf(path, sizeof path, "/orders/%lld", BIG_ORDER);
    for (int i = 0; i < 4; i++) {
        api_get(path, &r);
        if (i % 2 == 0) {
            assert_int_equal(r.status, 200);
            assert_non_null(json_object_get(r.json, "buyer"));
        } else {
            assert_int_equal(r.status, 206);
            assert_string_equal(header(&r, "X-Content-Missing"), "buyer, feedback");
            assert_null(json_object_get(r.json, "buyer"));
            assert_null(json_object_get(r.json, "feedback"));
            assert_non_null(json_object_get(r.json, "shipping"));
        }
        th_free(&r);
    }
    const char *bad[] = {
        "[{\"endpoint\": \"visits\", \"mode\": \"partial\"}]",
        "[{\"mode\": \"partial\"}]",
        "[{\"endpoint\": \"orders_get\", \"mode\": \"partial\", \"status\": 206}]",
        "[{\"endpoint\": \"orders_get\", \"mode\": \"partial\", \"omit\": [\"payments\"]}]",
        "[{\"endpoint\": \"orders_get\", \"mode\": \"partial\", \"omit\": []}]",
        "[{\"endpoint\": \"orders_get\", \"mode\": \"partial\", \"missing_as\": \"null\"}]",
        "[{\"endpoint\": \"orders_get\", \"status\": 500, \"omit\": [\"buyer\"]}]",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        control_post("/__fake/faults", bad[i], 400);
    assert_int_equal(fake_delete_faults(), 200);
    json_t *s1 = stats("?log=0");
    assert_int_equal(jint(s1, "partial_answers"), jint(s0, "partial_answers") + 3);
    json_decref(s0);
    json_decref(s1);
}

/* ------------------------------------------------------------------ visits */

static void test_visits(void **state)
{
    (void)state;
    struct th_response r;
    api_get("/items/MLB1100000001/visits/time_window?last=31&unit=day&ending=2024-02-01", &r);
    assert_int_equal(r.status, 200);
    assert_string_equal(jstr(r.json, "item_id"), "MLB1100000001");
    assert_string_equal(jstr(r.json, "date_from"), "2024-01-01T00:00:00Z");
    assert_string_equal(jstr(r.json, "date_to"), "2024-02-01T00:00:00Z");
    assert_string_equal(jstr(r.json, "unit"), "day");
    assert_int_equal(jint(r.json, "last"), 31);
    json_t *res = json_object_get(r.json, "results");
    assert_int_equal(json_array_size(res), 31);
    long long sum = 0;
    int zeros = 0;
    for (size_t i = 0; i < 31; i++) {
        json_t *d = json_array_get(res, i);
        char want[32];
        snprintf(want, sizeof want, "2024-01-%02zuT00:00:00Z", i + 1);
        assert_string_equal(jstr(d, "date"), want);
        long long t = jint(d, "total");
        sum += t;
        zeros += t == 0;
        assert_int_equal(jint(json_array_get(json_object_get(d, "visits_detail"), 0), "quantity"),
                         t);
    }
    assert_true(zeros >= 5); /* every 6th day is an explicit zero */
    assert_int_equal(jint(r.json, "total_visits"), sum);
    th_free(&r);

    /* Days without data are zero days, not absent. */
    api_get("/items/MLB1100000004/visits/time_window?last=5&unit=day&ending=2024-01-13", &r);
    assert_int_equal(r.status, 200);
    res = json_object_get(r.json, "results");
    assert_int_equal(json_array_size(res), 5);
    long long want[] = {0, 0, 5, 0, 7};
    for (size_t i = 0; i < 5; i++)
        assert_int_equal(jint(json_array_get(res, i), "total"), want[i]);
    th_free(&r);

    /* last > 150 is capped to 150. */
    api_get("/items/MLB1100000002/visits/time_window?last=400&unit=day&ending=2024-02-01", &r);
    assert_int_equal(r.status, 200);
    assert_int_equal(jint(r.json, "last"), 150);
    assert_int_equal(json_array_size(json_object_get(r.json, "results")), 150);
    assert_string_equal(jstr(r.json, "date_from"), "2023-09-04T00:00:00Z");
    th_free(&r);

    const char *bad[] = {"last=5&unit=week", "last=0&unit=day", "unit=day",
                         "last=5&unit=day&ending=2024-13-01"};
    for (size_t i = 0; i < 4; i++) {
        char path[256];
        snprintf(path, sizeof path, "/items/MLB1100000001/visits/time_window?%s", bad[i]);
        api_get(path, &r);
        if (r.status != 400)
            fail_msg("%s -> %d", bad[i], r.status);
        th_free(&r);
    }
    api_get("/items/MLB1100000007/visits/time_window?last=5&unit=day", &r);
    assert_int_equal(r.status, 403);
    assert_string_equal(jstr(r.json, "blocked_by"), "PolicyAgent");
    th_free(&r);
    api_get("/items/MLB1100000013/visits/time_window?last=5&unit=day", &r);
    assert_int_equal(r.status, 404);
    th_free(&r);
    api_get("/items/MLB777/visits/time_window?last=5&unit=day", &r);
    assert_int_equal(r.status, 404);
    th_free(&r);

    /* The control API sets counts. */
    control_post("/__fake/sellers/" SELLER_S "/visits", "{\"MLB1100000004\": {\"2024-01-09\": 3}}",
                 200);
    api_get("/items/MLB1100000004/visits/time_window?last=5&unit=day&ending=2024-01-13", &r);
    assert_int_equal(jint(json_array_get(json_object_get(r.json, "results"), 1), "total"), 3);
    th_free(&r);
    control_post("/__fake/sellers/" SELLER_S "/visits", "{\"MLB0\": {\"2024-01-09\": 3}}", 400);
}

#define POLICY_AGENT_BODY                                                                          \
    "{\"code\":\"PA_UNAUTHORIZED_RESULT_FROM_POLICIES\",\"blocked_by\":\"PolicyAgent\","           \
    "\"message\":"                                                                                 \
    "\"At least one policy returned UNAUTHORIZED.\",\"status\":403}"

/* Visits page: 403 PA_UNAUTHORIZED_RESULT_FROM_POLICIES "when the access token is invalid,
 * expired, or does not have the required permissions". */
static void test_visits_forbidden_for_tokens_and_permission(void **state)
{
    (void)state;
    const char *path = "/items/MLB1100000001/visits/time_window?last=3&unit=day";
    json_t *s0 = stats("?log=0");
    struct th_response r;
    http(P(), "GET", path, "not-a-token", NULL, NULL, &r);
    assert_int_equal(r.status, 403);
    assert_string_equal(r.body, POLICY_AGENT_BODY);
    th_free(&r);
    http(P(), "GET", path, NULL, NULL, NULL, &r);
    assert_int_equal(r.status, 403);
    th_free(&r);
    /* The same token on another endpoint: the usual 401. */
    http(P(), "GET", "/users/me", "not-a-token", NULL, NULL, &r);
    assert_int_equal(r.status, 401);
    th_free(&r);
    /* An expired token: 403 too, counted as expired. */
    char *at = access_token();
    control_post("/__fake/sellers/" SELLER_S "/expire-access-token", NULL, 200);
    http(P(), "GET", path, at, NULL, NULL, &r);
    assert_int_equal(r.status, 403);
    assert_string_equal(jstr(r.json, "code"), "PA_UNAUTHORIZED_RESULT_FROM_POLICIES");
    th_free(&r);
    free(at);
    json_t *s1 = stats("?log=0");
    assert_int_equal(jint(s1, "invalid_token_requests"), jint(s0, "invalid_token_requests") + 3);
    assert_int_equal(jint(s1, "expired_token_requests"), jint(s0, "expired_token_requests") + 1);
    assert_int_equal(jint(s1, "visits_forbidden"), jint(s0, "visits_forbidden") + 3);
    json_decref(s1);
    char *rt = refresh_token();
    refresh(CLIENT_ID, CLIENT_SEC, rt, &r);
    assert_int_equal(r.status, 200);
    th_free(&r);
    free(rt);
    api_get(path, &r);
    assert_int_equal(r.status, 200);
    th_free(&r);
    /* An app without the seller's visits permission: every visits request, any item. */
    control_post("/__fake/sellers/" SELLER_S "/visits-permission", "{\"granted\": false}", 200);
    const char *paths[] = {path, "/items/MLB1100000013/visits/time_window?last=3&unit=day",
                           "/items/MLB1100000002/visits/time_window?last=3&unit=week"};
    for (size_t i = 0; i < 3; i++) {
        api_get(paths[i], &r);
        assert_int_equal(r.status, 403);
        assert_string_equal(r.body, POLICY_AGENT_BODY);
        th_free(&r);
    }
    api_get("/items?ids=MLB1100000001", &r);
    assert_int_equal(r.status, 200);
    th_free(&r);
    http(P(), "GET", "/__fake/world", NULL, NULL, NULL, &r);
    assert_true(json_is_false(json_object_get(json_array_get(json_object_get(r.json, "sellers"), 0),
                                              "visits_permission")));
    th_free(&r);
    control_post("/__fake/sellers/" SELLER_S "/visits-permission", "{\"granted\": true}", 200);
    control_post("/__fake/sellers/" SELLER_S "/visits-permission", "{\"granted\": 1}", 400);
    control_post("/__fake/sellers/1/visits-permission", "{\"granted\": true}", 404);
    api_get(path, &r);
    assert_int_equal(r.status, 200);
    th_free(&r);
    json_t *s2 = stats("?log=0");
    assert_int_equal(jint(s2, "visits_forbidden"), jint(s0, "visits_forbidden") + 6);
    json_decref(s0);
    json_decref(s2);
}

static const char *last_ending_used(void)
{
    static char used[16];
    json_t *s = stats("?endpoint=visits");
    json_t *log = json_object_get(s, "log");
    json_t *last = json_array_get(log, json_array_size(log) - 1);
    snprintf(used, sizeof used, "%s", jstr(json_object_get(last, "params"), "ending_used"));
    json_decref(s);
    return used;
}

/* ending: YYYY-MM-DD, "Defaults to current date and time"; the window [ending - last,
 * ending); a future ending is undocumented: accepted, or 400 with visits_future_ending. */
static void test_visits_ending(void **state)
{
    (void)state;
    char today[16], tomorrow[16], want[40];
    time_t t0 = time(NULL);
    utc_date(t0, today);
    utc_date(t0 + 86400, tomorrow);
    struct th_response r;
    api_get("/items/MLB1100000001/visits/time_window?last=2&unit=day", &r);
    assert_int_equal(r.status, 200);
    snprintf(want, sizeof want, "%sT00:00:00Z", today);
    if (strcmp(jstr(r.json, "date_to"), want) != 0) /* midnight passed: the next day */
        utc_date(time(NULL), today);
    snprintf(want, sizeof want, "%sT00:00:00Z", today);
    assert_string_equal(jstr(r.json, "date_to"), want);
    assert_int_equal(json_array_size(json_object_get(r.json, "results")), 2);
    th_free(&r);
    assert_string_equal(last_ending_used(), today);
    json_t *s0 = stats("?log=0");
    char path[128];
    snprintf(path, sizeof path, "/items/MLB1100000001/visits/time_window?last=2&unit=day&ending=%s",
             tomorrow);
    api_get(path, &r);
    assert_int_equal(r.status, 200);
    th_free(&r);
    assert_string_equal(last_ending_used(), tomorrow);
    control_post("/__fake/config", "{\"visits_future_ending\": \"error\"}", 200);
    http(P(), "GET", "/__fake/config", NULL, NULL, NULL, &r);
    assert_string_equal(jstr(r.json, "visits_future_ending"), "error");
    th_free(&r);
    api_get(path, &r);
    assert_int_equal(r.status, 400);
    assert_string_equal(jstr(r.json, "error"), "bad_request");
    assert_string_equal(jstr(r.json, "message"), "invalid ending date: it is after today (UTC)");
    th_free(&r);
    snprintf(path, sizeof path, "/items/MLB1100000001/visits/time_window?last=2&unit=day&ending=%s",
             today);
    api_get(path, &r);
    assert_int_equal(r.status, 200);
    th_free(&r);
    control_post("/__fake/config", "{\"visits_future_ending\": \"accept\"}", 200);
    control_post("/__fake/config", "{\"visits_future_ending\": \"maybe\"}", 400);
    json_t *s1 = stats("?log=0");
    assert_int_equal(jint(s1, "visits_future_endings"), jint(s0, "visits_future_endings") + 2);
    json_decref(s0);
    json_decref(s1);
    api_get("/items/MLB1100000001/visits/time_window?last=2&unit=day&ending=2024-1-31", &r);
    assert_int_equal(r.status, 400);
    assert_string_equal(jstr(r.json, "message"), "invalid date format for ending date");
    th_free(&r);
}

/* Scan scroll ids as long as production's (114, the documented example) and longer. */
static void test_scroll_id_length(void **state)
{
    (void)state;
    control_post("/__fake/config", "{\"scroll_id_length\": 300}", 200);
    control_post("/__fake/config", "{\"scroll_id_length\": 89}", 400);
    control_post("/__fake/config", "{\"scroll_id_length\": 4097}", 400);
    struct th_response r;
    http(P(), "GET", "/__fake/config", NULL, NULL, NULL, &r);
    assert_int_equal(jint(r.json, "scroll_id_length"), 300);
    th_free(&r);
    char *sid = NULL;
    int seen = 0, pages = 0;
    for (;;) {
        char path[2048];
        char *enc = sid ? url_enc(sid) : NULL;
        snprintf(path, sizeof path, "/users/" SELLER_S "/items/search?search_type=scan&limit=9%s%s",
                 enc ? "&scroll_id=" : "", enc ? enc : "");
        free(enc);
        api_get(path, &r);
        assert_int_equal(r.status, 200);
        free(sid);
        sid = strdup(jstr(r.json, "scroll_id"));
        assert_int_equal(strlen(sid), 300);
        size_t n = json_array_size(json_object_get(r.json, "results"));
        seen += (int)n;
        th_free(&r);
        assert_true(++pages < 10);
        if (n == 0)
            break;
    }
    free(sid);
    assert_int_equal(seen, 30);
    control_post("/__fake/config", "{\"scroll_id_length\": 114}", 200);
}

/* ------------------------------------------------------------------ faults */

static void test_fault_retry_after(void **state)
{
    (void)state;
    json_t *s0 = stats("?log=0");
    control_post("/__fake/faults",
                 "[{\"endpoint\": \"users_me\", \"status\": 429, \"retry_after\": 7, \"count\": 2},"
                 " {\"endpoint\": \"orders_search\", \"status\": 503, \"every\": 2}]",
                 200);
    struct th_response r;
    for (int i = 0; i < 2; i++) {
        api_get("/users/me", &r);
        assert_int_equal(r.status, 429);
        assert_non_null(header(&r, "Retry-After"));
        assert_string_equal(header(&r, "Retry-After"), "7");
        assert_string_equal(jstr(r.json, "error"), "local_rate_limited");
        assert_int_equal(jint(r.json, "status"), 429);
        assert_true(json_is_array(json_object_get(r.json, "cause")));
        th_free(&r);
    }
    api_get("/users/me", &r);
    assert_int_equal(r.status, 200);
    th_free(&r);
    int want[] = {200, 503, 200, 503};
    for (int i = 0; i < 4; i++) {
        api_get("/orders/search?seller=" SELLER_S "&limit=1", &r);
        assert_int_equal(r.status, want[i]);
        if (r.status == 503) {
            assert_null(header(&r, "Retry-After"));
            assert_int_equal(jint(r.json, "status"), 503);
        }
        th_free(&r);
    }
    json_t *s1 = stats("?log=0");
    assert_int_equal(jint(s1, "faults_served"), jint(s0, "faults_served") + 4);
    json_decref(s0);
    json_decref(s1);
    /* Bad rules are refused and change nothing; DELETE clears. */
    control_post("/__fake/faults", "[{\"endpoint\": \"nope\", \"status\": 500}]", 400);
    control_post("/__fake/faults", "[{\"status\": 500, \"count\": 1, \"every\": 2}]", 400);
    struct th_response d;
    http(P(), "DELETE", "/__fake/faults", NULL, NULL, NULL, &d);
    assert_int_equal(d.status, 200);
    assert_int_equal(json_array_size(d.json), 0);
    th_free(&d);
    api_get("/orders/search?seller=" SELLER_S "&limit=1", &r);
    assert_int_equal(r.status, 200);
    th_free(&r);
}

static void test_fault_modes(void **state)
{
    (void)state;
    struct th_response r;
    control_post("/__fake/faults", "[{\"endpoint\": \"users_me\", \"mode\": \"redirect_http\"}]",
                 200);
    api_get("/users/me?x=1", &r);
    assert_int_equal(r.status, 302);
    char want[128];
    snprintf(want, sizeof want, "http://127.0.0.1:%u/users/me?x=1", P());
    assert_string_equal(header(&r, "Location"), want);
    th_free(&r);

    control_post("/__fake/faults", "[{\"endpoint\": \"users_me\", \"mode\": \"oversized\"}]", 200);
    api_get("/users/me", &r);
    assert_int_equal(r.status, 200);
    assert_string_equal(header(&r, "Content-Length"), "20971520");
    assert_int_equal(r.body_len, 20971520);
    assert_memory_equal(r.body, "{\"padding\":\"xxx", 15);
    th_free(&r);

    /* Slow drip: the body comes one byte per 200 ms. */
    control_post("/__fake/faults",
                 "[{\"endpoint\": \"users_me\", \"mode\": \"slow_drip\", \"status\": 503}]", 200);
    char *tok = access_token();
    char req[512];
    int n = snprintf(req, sizeof req,
                     "GET /users/me HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\n\r\n", tok);
    free(tok);
    int fd = th_connect(P());
    assert_true(fd >= 0);
    assert_true(th_send_all(fd, req, (size_t)n));
    char buf[4096];
    size_t got = 0;
    long long start = t_now_ms();
    while (t_now_ms() - start < 1500) {
        struct pollfd p = {fd, POLLIN, 0};
        if (poll(&p, 1, 50) > 0) {
            ssize_t k = recv(fd, buf + got, sizeof buf - 1 - got, 0);
            if (k <= 0)
                break;
            got += (size_t)k;
        }
    }
    buf[got] = '\0';
    close(fd);
    assert_non_null(strstr(buf, "HTTP/1.1 503"));
    const char *body = strstr(buf, "\r\n\r\n");
    assert_non_null(body);
    size_t body_bytes = strlen(body + 4);
    /* ~7 bytes in 1.5 s (allow scheduling slack), never the whole ~90-byte body */
    assert_true(body_bytes >= 1 && body_bytes <= 9);
    control_post("/__fake/faults", "[]", 200);

    /* Latency from a rule. */
    control_post("/__fake/faults", "[{\"endpoint\": \"any\", \"latency_ms\": 300, \"count\": 1}]",
                 200);
    long long t0 = t_now_ms();
    api_get("/users/me", &r);
    assert_int_equal(r.status, 200);
    assert_true(t_now_ms() - t0 >= 290);
    th_free(&r);
    control_post("/__fake/faults", "[]", 200);
}

/* ------------------------------------------------------------------ counters */

struct worker {
    const char *token;
    pthread_barrier_t *barrier;
    int status;
};

static void *get_me(void *arg)
{
    struct worker *w = arg;
    pthread_barrier_wait(w->barrier);
    struct th_response r;
    http(P(), "GET", "/users/me", w->token, NULL, NULL, &r);
    w->status = r.status;
    th_free(&r);
    return NULL;
}

static bool idle(void)
{
    json_t *s = stats("?log=0");
    bool ok = jint(s, "in_flight") == 0;
    json_decref(s);
    return ok;
}

static void test_counters_in_flight_and_rate(void **state)
{
    (void)state;
    enum { N = 12 };
    /* The slow-drip connection of an earlier test may still be winding down. */
    long long end = t_now_ms() + 10000;
    while (!idle() && t_now_ms() < end)
        t_sleep_ms(20);
    assert_true(idle());
    char *tok = access_token();
    control_post("/__fake/config", "{\"latency_ms\": 600}", 200);
    control_post("/__fake/reset-stats", NULL, 200);
    pthread_barrier_t b;
    pthread_barrier_init(&b, NULL, N);
    pthread_t th[N];
    struct worker w[N];
    for (int i = 0; i < N; i++) {
        w[i] = (struct worker){tok, &b, 0};
        pthread_create(&th[i], NULL, get_me, &w[i]);
    }
    for (int i = 0; i < N; i++) {
        pthread_join(th[i], NULL);
        assert_int_equal(w[i].status, 200);
    }
    pthread_barrier_destroy(&b);
    control_post("/__fake/config", "{\"latency_ms\": 0}", 200);
    json_t *s = stats("?log=0");
    assert_int_equal(jint(s, "max_in_flight"), N);
    assert_int_equal(jint(s, "in_flight"), 0);
    assert_int_equal(jint(s, "max_per_second"), N);
    assert_int_equal(jint(s, "requests_total"), N);
    assert_int_equal(jint(json_object_get(s, "requests"), "users_me"), N);
    assert_int_equal(jint(json_object_get(s, "statuses"), "200"), N);
    json_decref(s);

    /* Sequential requests do not overlap; 1.1 s apart they never share a second. */
    control_post("/__fake/reset-stats", NULL, 200);
    struct th_response r;
    for (int i = 0; i < 2; i++) {
        if (i)
            t_sleep_ms(1100);
        http(P(), "GET", "/users/me", tok, NULL, NULL, &r);
        assert_int_equal(r.status, 200);
        th_free(&r);
    }
    s = stats(NULL);
    assert_int_equal(jint(s, "max_in_flight"), 1);
    assert_int_equal(jint(s, "max_per_second"), 1);
    json_t *log = json_object_get(s, "log");
    assert_int_equal(json_array_size(log), 2);
    assert_string_equal(jstr(json_array_get(log, 0), "endpoint"), "users_me");
    assert_int_equal(jint(json_array_get(log, 0), "status"), 200);
    assert_true(jint(json_array_get(log, 1), "t_ms") - jint(json_array_get(log, 0), "t_ms") >=
                1000);
    json_decref(s);
    free(tok);
}

static void test_body_limit(void **state)
{
    (void)state;
    const char req[] = "POST /oauth/token HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
                       "Content-Type: application/x-www-form-urlencoded\r\n"
                       "Content-Length: 2000000\r\n\r\n";
    struct th_response r;
    assert_true(th_raw(P(), req, sizeof req - 1, &r, 60000));
    assert_int_equal(r.status, 413);
    th_free(&r);
    json_t *s = stats("?log=0");
    assert_int_equal(jint(s, "in_flight"), 0);
    json_decref(s);
}

/* ------------------------------------------------------------------ other instances */

static void test_control_upserts(void **state)
{
    (void)state;
    /* A private instance: these changes must not leak into the other tests. */
    struct fake saved = g_fake;
    const char *args[] = {"--scenario", scenario_path("small.json"), NULL};
    assert_true(fake_start(&g_fake, args, NULL, NULL, 0));
    control_post("/__fake/sellers/" SELLER_S "/orders",
                 "[{\"id\": 9007199254740993, \"status\": \"cancelled\"},"
                 " {\"id\": 2000007199999999, \"date_created\": \"2024-01-20T12:00:00.000-03:00\","
                 "  \"order_items\": [{\"item\": {\"id\": \"MLB1100000002\"}, \"quantity\": 2,"
                 "  \"unit_price\": 10.5}]}]",
                 200);
    json_t *j = orders("&limit=50&order.date_created.from=2024-01-20T12:00:00.000-03:00"
                       "&order.date_created.to=2024-01-20T12:00:00.000-03:00",
                       200);
    json_t *o = json_array_get(json_object_get(j, "results"), 0);
    assert_true(jint(o, "id") == 2000007199999999LL);
    assert_true(json_real_value(json_object_get(o, "total_amount")) == 21.0);
    json_decref(j);
    j = orders("&limit=1&offset=0&order.status=cancelled", 200);
    assert_int_equal(jint(json_object_get(j, "paging"), "total"), 6);
    json_decref(j);
    j = orders("&limit=1", 200);
    assert_int_equal(jint(json_object_get(j, "paging"), "total"), 45); /* 51 - 6 cancelled */
    json_decref(j);
    /* The patched order kept its other fields and moved last_updated. */
    struct th_response r;
    api_get("/orders/search?seller=" SELLER_S "&order.status=cancelled&limit=50", &r);
    bool found = false;
    for (size_t i = 0; i < json_array_size(json_object_get(r.json, "results")); i++) {
        json_t *x = json_array_get(json_object_get(r.json, "results"), i);
        if (jint(x, "id") == BIG_ORDER) {
            found = true;
            assert_true(json_array_size(json_object_get(x, "order_items")) >= 1);
            assert_string_not_equal(jstr(x, "last_updated"), jstr(x, "date_created"));
            assert_true(strncmp(jstr(x, "last_updated"), "2024", 4) != 0);
        }
    }
    assert_true(found);
    th_free(&r);
    /* A bad order changes nothing. */
    control_post("/__fake/sellers/" SELLER_S "/orders",
                 "[{\"id\": 1, \"date_created\": \"2024-01-20T12:00:00.000-03:00\"},"
                 " {\"id\": 2, \"date_created\": \"yesterday\"}]",
                 400);
    j = orders("&limit=1", 200);
    assert_int_equal(jint(json_object_get(j, "paging"), "total"), 45);
    json_decref(j);

    /* Items: unblock one, add one. */
    control_post("/__fake/sellers/" SELLER_S "/items",
                 "[{\"id\": \"MLB1100000007\", \"policy_blocked\": false, \"price\": 12.34},"
                 " {\"id\": \"MLB1100000031\", \"title\": \"Novo\", \"status\": \"active\"}]",
                 200);
    api_get("/items?ids=MLB1100000007,MLB1100000031", &r);
    assert_int_equal(jint(json_array_get(r.json, 0), "code"), 200);
    json_t *body = json_object_get(json_array_get(r.json, 0), "body");
    assert_true(json_number_value(json_object_get(body, "price")) == 12.34);
    assert_string_equal(jstr(body, "title"), "Garrafa Termica 1L 7"); /* kept */
    assert_int_equal(jint(json_array_get(r.json, 1), "code"), 200);
    th_free(&r);
    api_get("/users/" SELLER_S "/items/search?limit=1", &r);
    assert_int_equal(jint(json_object_get(r.json, "paging"), "total"), 31);
    th_free(&r);
    /* Revoked refresh token → invalid_grant. */
    char *rt = refresh_token();
    control_post("/__fake/sellers/" SELLER_S "/revoke-refresh-token", NULL, 200);
    refresh(CLIENT_ID, CLIENT_SEC, rt, &r);
    assert_int_equal(r.status, 400);
    assert_string_equal(jstr(r.json, "error"), "invalid_grant");
    th_free(&r);
    free(rt);
    assert_int_equal(fake_stop(&g_fake), 0);
    g_fake = saved;
}

/* The orders of a private instance: POST the control path, the answer's JSON. */
static json_t *control_json(const char *path, const char *body, int want)
{
    struct th_response r;
    http(P(), "POST", path, NULL, body, NULL, &r);
    if (r.status != want)
        fail_msg("%s -> %d (%s), wanted %d", path, r.status, r.body, want);
    json_t *j = json_incref(r.json);
    th_free(&r);
    return j;
}

static json_t *order_action(long long id, const char *action, const char *body, int want)
{
    char path[160];
    snprintf(path, sizeof path, "/__fake/sellers/" SELLER_S "/orders/%lld/%s", id, action);
    return control_json(path, body, want);
}

static struct fake g_saved;

static void private_start(void)
{
    g_saved = g_fake;
    const char *args[] = {"--scenario", scenario_path("small.json"), NULL};
    assert_true(fake_start(&g_fake, args, NULL, NULL, 0));
}

static void private_stop(void)
{
    assert_int_equal(fake_stop(&g_fake), 0);
    g_fake = g_saved;
}

/* The ids of a page, in order, as "a,b,c". */
static void page_ids(const json_t *page, char *out, size_t cap)
{
    out[0] = '\0';
    json_t *res = json_object_get(page, "results");
    size_t n = 0;
    for (size_t i = 0; i < json_array_size(res); i++)
        n += (size_t)snprintf(out + n, n < cap ? cap - n : 0, "%s%lld", i ? "," : "",
                              jint(json_array_get(res, i), "id"));
}

#define WIN_1220                                                                                   \
    "&order.date_created.from=2023-12-20T00:00:00.000-03:00"                                       \
    "&order.date_created.to=2023-12-21T00:00:00.000-03:00"

/* A seller's search sorts by date_closed (date_created while it is null); the control API's
 * changes: pay, partial-refund, refund, cancel, close. */
static void test_order_sort_and_changes(void **state)
{
    (void)state;
    private_start();
    /* A: created 10:00, closed 18:00. B: created 12:00, closed 13:00. C: created 11:00,
     * payment_required, so no date_closed: it sorts at 11:00. */
    control_post("/__fake/sellers/" SELLER_S "/orders",
                 "[{\"id\": 2000009000000001, \"date_created\": \"2023-12-20T10:00:00.000-03:00\","
                 "  \"date_closed\": \"2023-12-20T18:00:00.000-03:00\"},"
                 " {\"id\": 2000009000000002, \"date_created\": \"2023-12-20T12:00:00.000-03:00\","
                 "  \"date_closed\": \"2023-12-20T13:00:00.000-03:00\"},"
                 " {\"id\": 2000009000000003, \"date_created\": \"2023-12-20T11:00:00.000-03:00\","
                 "  \"status\": \"payment_required\", \"order_items\": [{\"item\": {\"id\": "
                 "\"MLB1100000001\"}, \"unit_price\": 20}], \"payments\": [], \"tags\": "
                 "[\"not_paid\"]}]",
                 200);
    char ids[256];
    json_t *j = orders(WIN_1220, 200);
    page_ids(j, ids, sizeof ids);
    assert_string_equal(ids, "2000009000000003,2000009000000002,2000009000000001");
    assert_true(json_is_null(
        json_object_get(json_array_get(json_object_get(j, "results"), 0), "date_closed")));
    json_decref(j);
    j = orders(WIN_1220 "&sort=date_desc", 200);
    page_ids(j, ids, sizeof ids);
    assert_string_equal(ids, "2000009000000001,2000009000000002,2000009000000003");
    json_decref(j);
    /* order.date_closed.*: an order without date_closed matches no bound. */
    j = orders("&order.date_closed.from=2023-12-20T11:00:00.000-03:00"
               "&order.date_closed.to=2023-12-20T14:00:00.000-03:00",
               200);
    page_ids(j, ids, sizeof ids);
    assert_string_equal(ids, "2000009000000002");
    json_decref(j);

    /* pay: paid, an approved payment now, date_closed now: C moves to the end. */
    json_t *o = order_action(2000009000000003LL, "pay", NULL, 200);
    assert_string_equal(jstr(o, "status"), "paid");
    assert_true(strncmp(jstr(o, "date_closed"), "2023", 4) != 0);
    assert_string_equal(jstr(o, "date_closed"), jstr(o, "last_updated"));
    assert_string_equal(jstr(o, "date_last_updated"), jstr(o, "last_updated"));
    json_t *pay = json_array_get(json_object_get(o, "payments"), 0);
    assert_string_equal(jstr(pay, "status"), "approved");
    assert_string_equal(jstr(pay, "status_detail"), "accredited");
    assert_string_equal(jstr(pay, "date_approved"), jstr(o, "date_closed"));
    assert_true(json_number_value(json_object_get(pay, "transaction_amount")) == 20.0);
    assert_true(json_number_value(json_object_get(o, "paid_amount")) == 20.0);
    assert_string_equal(json_string_value(json_array_get(json_object_get(o, "tags"), 0)), "paid");
    json_decref(o);
    j = orders(WIN_1220, 200);
    page_ids(j, ids, sizeof ids);
    assert_string_equal(ids, "2000009000000002,2000009000000001,2000009000000003");
    json_decref(j);
    json_decref(order_action(2000009000000003LL, "pay", NULL, 409));

    /* partial-refund: partially_refunded, the amount in payments[].transaction_amount_refunded
     * (accumulating), the payment still approved. */
    json_decref(order_action(2000009000000003LL, "partial-refund", "{\"amount\": 5.5}", 200));
    o = order_action(2000009000000003LL, "partial-refund", "{\"amount\": 4.5}", 200);
    assert_string_equal(jstr(o, "status"), "partially_refunded");
    pay = json_array_get(json_object_get(o, "payments"), 0);
    assert_true(json_number_value(json_object_get(pay, "transaction_amount_refunded")) == 10.0);
    assert_string_equal(jstr(pay, "status"), "approved");
    assert_string_equal(jstr(pay, "status_detail"), "partially_refunded");
    json_decref(o);
    const char *bad[] = {"{\"amount\": 10}",    "{\"amount\": -1}",          "{}",
                         "{\"amount\": \"1\"}", "{\"amount\": 1, \"x\": 1}", "[1]"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        json_decref(order_action(2000009000000003LL, "partial-refund", bad[i], 400));

    /* refund (full): ML has no "refunded" order status; the order is cancelled, its payment
     * refunded, and the seller's search no longer lists it. */
    o = order_action(2000009000000003LL, "refund", NULL, 200);
    assert_string_equal(jstr(o, "status"), "cancelled");
    assert_true(json_is_object(json_object_get(o, "cancel_detail")));
    pay = json_array_get(json_object_get(o, "payments"), 0);
    assert_string_equal(jstr(pay, "status"), "refunded");
    assert_true(json_number_value(json_object_get(pay, "transaction_amount_refunded")) == 20.0);
    json_decref(o);
    j = orders(WIN_1220, 200);
    page_ids(j, ids, sizeof ids);
    assert_string_equal(ids, "2000009000000002,2000009000000001");
    json_decref(j);
    j = orders(WIN_1220 "&order.status=cancelled", 200);
    page_ids(j, ids, sizeof ids);
    assert_string_equal(ids, "2000009000000003");
    json_decref(j);
    json_decref(order_action(2000009000000003LL, "refund", NULL, 409));
    json_decref(order_action(2000009000000003LL, "cancel", NULL, 409));

    /* cancel: with the caller's cancel_detail; an unpaid order's pending payment is
     * cancelled. */
    o = order_action(
        2000009000000002LL, "cancel",
        "{\"cancel_detail\": {\"group\": \"buyer\", \"code\": \"x\", \"description\":"
        " \"y\", \"requested_by\": \"buyer\", \"date\": \"2023-12-21T00:00:00.000-03:00\"}}",
        200);
    assert_string_equal(jstr(json_object_get(o, "cancel_detail"), "group"), "buyer");
    json_decref(o);
    o = order_action(UNPAID_0111, "cancel", NULL, 200);
    assert_string_equal(jstr(o, "status"), "cancelled");
    assert_string_equal(jstr(json_object_get(o, "cancel_detail"), "requested_by"), "seller");
    pay = json_array_get(json_object_get(o, "payments"), 0);
    assert_string_equal(jstr(pay, "status"), "cancelled");
    assert_true(json_is_null(json_object_get(o, "date_closed"))); /* never closed */
    json_decref(o);

    /* close: date_closed given (or now); A sorts by it. */
    o = order_action(2000009000000001LL, "close",
                     "{\"date_closed\": \"2023-12-20T09:00:00.000-03:00\"}", 200);
    assert_string_equal(jstr(o, "date_closed"), "2023-12-20T09:00:00.000-03:00");
    json_decref(o);
    json_decref(order_action(2000009000000001LL, "close", "{\"date_closed\": \"soon\"}", 400));

    /* The generic upsert sets a null date_closed when the status reaches confirmed/paid. */
    control_post("/__fake/sellers/" SELLER_S "/orders",
                 "[{\"id\": 2000009000000004, \"date_created\": \"2023-12-20T15:00:00.000-03:00\","
                 "  \"status\": \"payment_in_process\"}]",
                 200);
    control_post("/__fake/sellers/" SELLER_S "/orders",
                 "[{\"id\": 2000009000000004, \"status\": \"paid\"}]", 200);
    struct th_response r;
    api_get("/orders/2000009000000004", &r);
    assert_true(json_is_string(json_object_get(r.json, "date_closed")));
    th_free(&r);

    /* Errors. */
    json_decref(order_action(2000009000000001LL, "explode", NULL, 404));
    json_decref(order_action(1, "pay", NULL, 404));
    json_decref(control_json("/__fake/sellers/1/orders/2000009000000001/pay", NULL, 404));
    json_decref(order_action(2000009000000001LL, "close", "{\"on_page\": 0}", 400));
    json_decref(
        order_action(2000009000000001LL, "close", "{\"on_page\": 1, \"on_offset\": 0}", 400));
    http(P(), "GET", "/__fake/sellers/" SELLER_S "/orders/2000009000000001/pay", NULL, NULL, NULL,
         &r);
    assert_int_equal(r.status, 404);
    th_free(&r);
    private_stop();
}

/* "An order moves during the pass": a change applied when a page has been served. */
static void test_order_moves_while_paging(void **state)
{
    (void)state;
    private_start();
    const long long moving = 2000007100019681LL;  /* payment_in_process, 7th by date_created */
    const long long skipped = 2000007100047290LL; /* 11th: the first of page 2 before the move */
    json_t *h = order_action(moving, "pay", "{\"on_page\": 1}", 202);
    assert_false(json_is_true(json_object_get(h, "applied")));
    assert_int_equal(jint(h, "on_page"), 1);
    json_decref(h);
    int seen_moving = 0, seen_skipped = 0, rows = 0;
    json_t *distinct = json_object();
    for (int off = 0; off < 50; off += 10) {
        char q[64];
        snprintf(q, sizeof q, "&limit=10&offset=%d", off);
        json_t *j = orders(q, 200);
        assert_int_equal(jint(json_object_get(j, "paging"), "total"), 45);
        json_t *res = json_object_get(j, "results");
        for (size_t i = 0; i < json_array_size(res); i++) {
            long long id = jint(json_array_get(res, i), "id");
            char k[32];
            snprintf(k, sizeof k, "%lld", id);
            json_object_set_new(distinct, k, json_true());
            seen_moving += id == moving;
            seen_skipped += id == skipped;
            rows++;
        }
        if (off == 0) /* the first page shows the order where it was */
            assert_true(has_id(j, moving));
        json_decref(j);
    }
    /* It was paid after page 1, got a date_closed of now and moved to the end: a naive pager
     * sees it twice and never sees the order that slid into its place on page 1. */
    assert_int_equal(rows, 45);
    assert_int_equal(seen_moving, 2);
    assert_int_equal(seen_skipped, 0);
    assert_int_equal(json_object_size(distinct), 44);
    json_decref(distinct);
    struct th_response r;
    http(P(), "GET", "/__fake/hooks", NULL, NULL, NULL, &r);
    json_t *h0 = json_array_get(r.json, 0);
    assert_true(json_is_true(json_object_get(h0, "applied")));
    assert_int_equal(jint(h0, "pages_seen"), 1);
    assert_string_equal(jstr(json_object_get(h0, "result"), "status"), "paid");
    th_free(&r);

    /* on_offset: applied once the page at that offset has been served. */
    h = order_action(skipped, "cancel", "{\"on_offset\": 20}", 202);
    json_decref(h);
    json_t *j = orders("&limit=10&offset=10", 200);
    json_decref(j);
    http(P(), "GET", "/__fake/hooks", NULL, NULL, NULL, &r);
    assert_false(json_is_true(json_object_get(json_array_get(r.json, 1), "applied")));
    th_free(&r);
    j = orders("&limit=10&offset=20", 200);
    json_decref(j);
    j = orders("&limit=1", 200);
    assert_int_equal(jint(json_object_get(j, "paging"), "total"), 44);
    json_decref(j);
    json_t *st = stats("?log=0");
    assert_int_equal(jint(st, "hooks_applied"), 2);
    json_decref(st);
    http(P(), "DELETE", "/__fake/hooks", NULL, NULL, NULL, &r);
    assert_int_equal(r.status, 200);
    assert_int_equal(json_array_size(r.json), 0);
    th_free(&r);
    private_stop();
}

static char *write_temp(const char *text)
{
    static char path[256];
    const char *tmp = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
    snprintf(path, sizeof path, "%s/fake_ml_test_XXXXXX", tmp);
    int fd = mkstemp(path);
    if (fd < 0)
        die("mkstemp: %s", strerror(errno));
    size_t n = strlen(text);
    if (write(fd, text, n) != (ssize_t)n)
        die("write: %s", strerror(errno));
    close(fd);
    return strdup(path);
}

static char *orders_dump(unsigned port, const char *token)
{
    struct th_response r;
    char *out = malloc(1);
    out[0] = '\0';
    size_t len = 0;
    for (int off = 0; off < 300; off += 50) {
        char path[256];
        snprintf(path, sizeof path,
                 "/orders/search?seller=77&limit=50&offset=%d"
                 "&order.status=paid,cancelled,payment_in_process",
                 off);
        http(port, "GET", path, token, NULL, NULL, &r);
        assert_int_equal(r.status, 200);
        out = realloc(out, len + r.body_len + 1);
        memcpy(out + len, r.body, r.body_len + 1);
        len += r.body_len;
        th_free(&r);
    }
    return out;
}

static void test_generators_deterministic(void **state)
{
    (void)state;
    char *path = write_temp(
        "{\"seed\": 5, \"generate_until\": \"2024-03-01T00:00:00.000Z\","
        " \"clients\": [{\"client_id\": \"c\", \"client_secret\": \"s\"}],"
        " \"sellers\": [{\"user_id\": 77, \"access_token\": \"T\", \"refresh_token\": \"R\","
        "  \"generate_items\": {\"count\": 150, \"policy_blocked_every\": 10, \"missing_every\": "
        "15},"
        "  \"generate_orders\": {\"count\": 300, \"days\": 10, \"unknown_item_every\": 100},"
        "  \"generate_visits\": {\"days\": 20, \"max\": 9}}]}");
    const char *a1[] = {"--scenario", path, NULL};
    const char *a2[] = {"--scenario", path, "--seed", "6", NULL};
    struct fake f1, f2, f3;
    assert_true(fake_start(&f1, a1, NULL, NULL, 0));
    assert_true(fake_start(&f2, a1, NULL, NULL, 0));
    assert_true(fake_start(&f3, a2, NULL, NULL, 0));
    char *d1 = orders_dump(f1.port, "T"), *d2 = orders_dump(f2.port, "T"),
         *d3 = orders_dump(f3.port, "T");
    assert_string_equal(d1, d2);
    assert_string_not_equal(d1, d3);
    /* Orders lie in the 10 days before generate_until; unknown items appear. */
    json_t *j = json_loads(strstr(d1, "{\"query\""), JSON_DISABLE_EOF_CHECK, NULL);
    assert_int_equal(jint(json_object_get(j, "paging"), "total"), 300);
    json_t *first = json_array_get(json_object_get(j, "results"), 0);
    assert_true(strcmp(jstr(first, "date_created"), "2024-02-19T") > 0);
    /* An order still waiting for its payment has no date_closed (nor an approval date). */
    int unclosed = 0;
    for (size_t i = 0; i < json_array_size(json_object_get(j, "results")); i++) {
        json_t *o = json_array_get(json_object_get(j, "results"), i);
        bool waiting = strcmp(jstr(o, "status"), "payment_in_process") == 0;
        assert_true(json_is_null(json_object_get(o, "date_closed")) == waiting);
        json_t *pay = json_array_get(json_object_get(o, "payments"), 0);
        assert_true(json_is_null(json_object_get(pay, "date_approved")) == waiting);
        unclosed += waiting;
    }
    assert_true(unclosed >= 1);
    json_decref(j);
    assert_non_null(strstr(d1, "\"MLB8000000099\""));
    free(d1);
    free(d2);
    free(d3);
    struct th_response r;
    http(f1.port, "GET", "/users/77/items/search?search_type=scan&limit=100", "T", NULL, NULL, &r);
    assert_int_equal(jint(json_object_get(r.json, "paging"), "total"), 150);
    th_free(&r);
    /* generated item i (1-based) is MLB(1000000000 + i - 1): i=10 blocked, i=15 missing,
     * i=30 both (blocked wins) */
    http(f1.port, "GET",
         "/items?ids=MLB1000000008,MLB1000000009,MLB1000000014,MLB1000000029&attributes=id", "T",
         NULL, NULL, &r);
    assert_int_equal(jint(json_array_get(r.json, 0), "code"), 200);
    assert_int_equal(jint(json_array_get(r.json, 1), "code"), 403);
    assert_int_equal(jint(json_array_get(r.json, 2), "code"), 404);
    assert_int_equal(jint(json_array_get(r.json, 3), "code"), 403);
    th_free(&r);
    http(f1.port, "GET", "/__fake/world", NULL, NULL, NULL, &r);
    json_t *w = json_array_get(json_object_get(r.json, "sellers"), 0);
    assert_int_equal(jint(w, "items"), 150);
    assert_int_equal(jint(w, "policy_blocked"), 15);
    assert_int_equal(jint(w, "missing"), 5); /* 10 flagged, 5 of them also blocked */
    assert_int_equal(jint(w, "orders"), 300);
    th_free(&r);
    /* Generated visits: the 20 days before 2024-03-01, zero days included, 0 outside. */
    http(f1.port, "GET",
         "/items/MLB1000000001/visits/time_window?last=30&unit=day&ending=2024-03-01", "T", NULL,
         NULL, &r);
    json_t *res = json_object_get(r.json, "results");
    assert_int_equal(json_array_size(res), 30);
    for (size_t i = 0; i < 10; i++)
        assert_int_equal(jint(json_array_get(res, i), "total"), 0);
    long long sum = 0;
    for (size_t i = 10; i < 30; i++) {
        long long t = jint(json_array_get(res, i), "total");
        assert_true(t >= 0 && t <= 9);
        sum += t;
    }
    assert_true(sum > 0);
    th_free(&r);
    assert_int_equal(fake_stop(&f1), 0);
    assert_int_equal(fake_stop(&f2), 0);
    assert_int_equal(fake_stop(&f3), 0);
    unlink(path);
    free(path);
}

/* --rebase 2024-02-01: small.json's January becomes the 31 days before today. */
static void test_rebase_to_today(void **state)
{
    (void)state;
    time_t t0 = time(NULL);
    const char *args[] = {"--scenario", scenario_path("small.json"), "--rebase", "2024-02-01",
                          NULL};
    struct fake f;
    assert_true(fake_start(&f, args, NULL, NULL, 0));
    time_t t1 = time(NULL);
    const char *tok = "APP_USR-5511223344556677-010124-aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa-2210987654";
    struct th_response r;
    http(f.port, "GET", "/orders/search?seller=" SELLER_S "&sort=date_desc&limit=1", tok, NULL,
         NULL, &r);
    assert_int_equal(r.status, 200);
    assert_int_equal(jint(json_object_get(r.json, "paging"), "total"), 45);
    const char *dc = jstr(json_array_get(json_object_get(r.json, "results"), 0), "date_created");
    char y0[16], y1[16];
    utc_date(t0 - 86400, y0);
    utc_date(t1 - 86400, y1);
    if (strncmp(dc, y0, 10) != 0 && strncmp(dc, y1, 10) != 0)
        fail_msg("last order %s, expected yesterday (%s)", dc, y1);
    assert_string_equal(dc + 10, "T23:59:59.999-03:00");
    th_free(&r);
    /* Visits moved with the orders: January 10 and 12 are today-22 and today-20. */
    http(f.port, "GET", "/items/MLB1100000004/visits/time_window?last=31&unit=day", tok, NULL, NULL,
         &r);
    assert_int_equal(r.status, 200);
    json_t *res = json_object_get(r.json, "results");
    assert_int_equal(json_array_size(res), 31);
    assert_int_equal(jint(json_array_get(res, 9), "total"), 5);
    assert_int_equal(jint(json_array_get(res, 11), "total"), 7);
    assert_int_equal(jint(r.json, "total_visits"), 12);
    th_free(&r);
    assert_int_equal(fake_stop(&f), 0);
}

static void test_bad_scenarios_refused(void **state)
{
    (void)state;
    const char *bad[] = {
        "{\"sellers\": [], \"bogus\": 1}",
        "{\"sellers\": [{\"user_id\": 1, \"items\": [{\"id\": \"bad id\"}]}]}",
        "{\"sellers\": [{\"user_id\": 1, \"orders\": [{\"id\": 5, \"date_created\": \"x\"}]}]}",
        "{\"sellers\": [{\"user_id\": 1, \"generate_items\": {\"count\": -1}}]}",
        "{\"sellers\": [], \"faults\": [{\"status\": 429, \"endpoint\": \"?\"}]}",
        "{\"sellers\": [",
        "{\"sellers\": [], \"visits_future_ending\": \"maybe\"}",
        "{\"sellers\": [], \"scroll_id_length\": 10}",
        "{\"sellers\": [{\"user_id\": 1, \"visits_permission\": \"no\"}]}",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char *path = write_temp(bad[i]);
        const char *args[] = {"--scenario", path, NULL};
        struct fake f;
        int code = -1;
        char err[2048];
        bool started = fake_start(&f, args, &code, err, sizeof err);
        if (started)
            fake_stop(&f);
        assert_false(started);
        assert_int_equal(code, 2);
        assert_non_null(strstr(err, "fake_ml:"));
        unlink(path);
        free(path);
    }
    const char *args[] = {"--scenario", scenario_path("small.json"), "--port", "70000", NULL};
    struct fake f;
    int code = -1;
    assert_false(fake_start(&f, args, &code, NULL, 0));
    assert_int_equal(code, 2);
}

/* Two sellers: another seller's order, a seller without the visits permission, and the
 * scenario's scroll_id_length and visits_future_ending. */
static void test_two_sellers_scenario(void **state)
{
    (void)state;
    char *path = write_temp(
        "{\"clients\": [{\"client_id\": \"c\", \"client_secret\": \"s\"}],"
        " \"scroll_id_length\": 300, \"visits_future_ending\": \"error\","
        " \"sellers\": ["
        "  {\"user_id\": 77, \"access_token\": \"T\", \"refresh_token\": \"R\","
        "   \"items\": [{\"id\": \"MLB77\"}],"
        "   \"orders\": [{\"id\": 7701, \"date_created\": \"2024-01-10T10:00:00.000-03:00\"}]},"
        "  {\"user_id\": 88, \"access_token\": \"U\", \"refresh_token\": \"R8\","
        "   \"visits_permission\": false, \"items\": [{\"id\": \"MLB88\"}],"
        "   \"orders\": [{\"id\": 8801, \"date_created\": \"2024-01-10T10:00:00.000-03:00\"}]}]}");
    const char *args[] = {"--scenario", path, NULL};
    struct fake f;
    assert_true(fake_start(&f, args, NULL, NULL, 0));
    struct th_response r;
    http(f.port, "GET", "/orders/8801", "T", NULL, NULL, &r);
    assert_int_equal(r.status, 403);
    assert_string_equal(jstr(r.json, "error"), "not_owned_order");
    th_free(&r);
    http(f.port, "GET", "/orders/8801", "U", NULL, NULL, &r);
    assert_int_equal(r.status, 200);
    th_free(&r);
    http(f.port, "GET", "/items/MLB77/visits/time_window?last=2&unit=day", "T", NULL, NULL, &r);
    assert_int_equal(r.status, 200);
    th_free(&r);
    /* Seller 88's app has no visits permission: even a visits call on 77's item. */
    http(f.port, "GET", "/items/MLB77/visits/time_window?last=2&unit=day", "U", NULL, NULL, &r);
    assert_int_equal(r.status, 403);
    assert_string_equal(jstr(r.json, "blocked_by"), "PolicyAgent");
    th_free(&r);
    char tomorrow[16], q[128];
    utc_date(time(NULL) + 86400, tomorrow);
    snprintf(q, sizeof q, "/items/MLB77/visits/time_window?last=2&unit=day&ending=%s", tomorrow);
    http(f.port, "GET", q, "T", NULL, NULL, &r);
    assert_int_equal(r.status, 400);
    th_free(&r);
    http(f.port, "GET", "/users/77/items/search?search_type=scan", "T", NULL, NULL, &r);
    assert_int_equal(strlen(jstr(r.json, "scroll_id")), 300);
    th_free(&r);
    http(f.port, "GET", "/__fake/config", NULL, NULL, NULL, &r);
    assert_string_equal(jstr(r.json, "visits_future_ending"), "error");
    assert_int_equal(jint(r.json, "scroll_id_length"), 300);
    th_free(&r);
    assert_int_equal(fake_stop(&f), 0);
    unlink(path);
    free(path);
}

static void test_other_scenarios_load(void **state)
{
    (void)state;
    const char *names[] = {"demo.json", "bench.json"};
    for (size_t i = 0; i < 2; i++) {
        const char *args[] = {"--scenario", scenario_path(names[i]), NULL};
        struct fake f;
        char err[2048];
        int code = 0;
        if (!fake_start(&f, args, &code, err, sizeof err))
            fail_msg("%s did not load (exit %d): %s", names[i], code, err);
        struct th_response r;
        http(f.port, "GET", "/__fake/world", NULL, NULL, NULL, &r);
        assert_int_equal(r.status, 200);
        json_t *s = json_array_get(json_object_get(r.json, "sellers"), 0);
        if (i == 0) {
            assert_int_equal(jint(s, "items"), 300);
            assert_int_equal(jint(s, "orders"), 600);
        } else {
            assert_int_equal(jint(s, "items"), 5000);
            assert_int_equal(jint(s, "orders"), 20000);
        }
        th_free(&r);
        assert_int_equal(fake_stop(&f), 0);
    }
}

int main(void)
{
    const struct CMUnitTest shared[] = {
        cmocka_unit_test(test_users_me_and_invalid_tokens),
        cmocka_unit_test(test_refresh_rotation_and_reuse),
        cmocka_unit_test(test_refresh_race_one_winner),
        cmocka_unit_test(test_invalid_client_and_bad_requests),
        cmocka_unit_test(test_expired_access_token),
        cmocka_unit_test(test_scan_paging_to_the_end),
        cmocka_unit_test(test_scroll_expiry),
        cmocka_unit_test(test_offset_paging_limits),
        cmocka_unit_test(test_multiget),
        cmocka_unit_test(test_orders_limits),
        cmocka_unit_test(test_orders_paging_total_and_ids),
        cmocka_unit_test(test_orders_hour_truncation),
        cmocka_unit_test(test_orders_cancelled_left_out),
        cmocka_unit_test(test_orders_last_updated_filter),
        cmocka_unit_test(test_orders_get),
        cmocka_unit_test(test_orders_partial_206),
        cmocka_unit_test(test_visits),
        cmocka_unit_test(test_visits_forbidden_for_tokens_and_permission),
        cmocka_unit_test(test_visits_ending),
        cmocka_unit_test(test_scroll_id_length),
        cmocka_unit_test(test_fault_retry_after),
        cmocka_unit_test(test_fault_modes),
        cmocka_unit_test(test_counters_in_flight_and_rate),
        cmocka_unit_test(test_body_limit),
        cmocka_unit_test(test_control_upserts),
        cmocka_unit_test(test_order_sort_and_changes),
        cmocka_unit_test(test_order_moves_while_paging),
    };
    const struct CMUnitTest standalone[] = {
        cmocka_unit_test(test_generators_deterministic),
        cmocka_unit_test(test_rebase_to_today),
        cmocka_unit_test(test_bad_scenarios_refused),
        cmocka_unit_test(test_two_sellers_scenario),
        cmocka_unit_test(test_other_scenarios_load),
    };
    int failed = tgroup_run("fake_ml", shared, group_setup, group_teardown);
    failed += cmocka_run_group_tests_name("fake_ml_scenarios", standalone, NULL, NULL);
    return failed ? 1 : 0;
}
