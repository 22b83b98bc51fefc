/* End-to-end tests of the HTTP contract (SPEC section 2, 1.1 and 1.2 validation, 1.3
 * 202/Prefer): a real `jobsd serve` on a real PostgreSQL, spoken to with raw HTTP so every
 * byte of the framing, headers and body is under the test's control. Field validation is
 * checked here once per error code and once for its order on each job route; its catalogue
 * is the tables of tests/unit/test_rebuild_parse.c, test_sync_parse.c and
 * tests/integration/test_job_resolve.c.
 *
 * Three groups, each with its own jobsd:
 *  - http_requests: default configuration; routing, framing, authentication, media type,
 *    JSON, field validation and its order, error envelope, X-Request-Id, health. Its
 *    teardown checks that the whole malformed-input sweep wrote nothing.
 *  - http_limits_and_keys: MAX_BODY_BYTES=2048 and INTERNAL_JOBS_KEY_PREVIOUS; 413, chunked
 *    bodies over the limit, a body exactly at the limit, key rotation. Its teardown checks
 *    that nothing was written.
 *  - http_jobs: the success paths (200, 202, Prefer, GET /api/v1/jobs/{id}) and /readyz. Its
 *    teardown checks that only the deliberate runs added job_logs rows, all successful.
 * Every group's teardown then stops its jobsd and checks that it exits 0 with a log free of
 * keys; a failed teardown check fails the program (tgroup_run). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testdb.h"
#include "testfx.h"
#include "testgroup.h"
#include "testhttp.h"
#include "testproc.h"
#include "testtime.h"

#define REBUILD   "/api/v1/jobs/rebuild-daily-metrics"
#define SYNC      "/api/v1/jobs/sync-mercadolivre"
#define JSON_TYPE "application/json; charset=utf-8"
/* A tenant that exists (created in main) and one that does not. */
#define TENANT    "3f1c2a5e-8b7d-4c6e-9a1b-2c3d4e5f6a7b"
#define TENANT_UC "3F1C2A5E-8B7D-4C6E-9A1B-2C3D4E5F6A7B"
#define NOBODY    "00000000-0000-4000-8000-00000000abcd"
#define KEY_HDR   "X-Internal-Key: " TEST_KEY "\r\n"
#define CT_JSON   "Content-Type: application/json\r\n"
/* Wrong keys: same length as TEST_KEY with the last byte changed, and an obvious one. */
#define WRONG_KEY_NEAR "test-internal-key-0123456789abcdef-012345678X"
#define WRONG_KEY_FAR  "sentinel-wrong-key-must-never-be-echoed-0000"
#define BEARER_SECRET  "sentinel-bearer-value-must-never-be-logged-1"

static struct testdb db;
static struct jobsd_proc proc;
static long long base_jobs, base_metrics;

/* ------------------------------------------------------------------ helpers */

static long long count_jobs(void)
{
    return tdb_int(db.conn, "SELECT count(*) FROM job_logs");
}

static long long count_metrics(void)
{
    return tdb_int(db.conn, "SELECT count(*) FROM listing_metrics_daily");
}

static void send_raw(const char *data, struct th_response *r)
{
    if (!th_raw(proc.port, data, strlen(data), r, 10000))
        fail_msg("no HTTP response to:\n%s", data);
}

static void send_req(const char *method, const char *path, const char *headers, const char *body,
                     struct th_response *r)
{
    if (!th_request(proc.port, method, path, headers, body, r))
        fail_msg("no HTTP response to %s %s", method, path);
}

/* POST to the rebuild route with the current key and Content-Type: application/json. */
static void post_rebuild(const char *body, struct th_response *r)
{
    if (!th_post_job(proc.port, REBUILD, TEST_KEY, body, NULL, r))
        fail_msg("no HTTP response to POST %s %s", REBUILD, body);
}

static bool is_request_id(const char *s)
{
    size_t n = s ? strlen(s) : 0;
    if (n < 1 || n > 64)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!strchr("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._-", s[i]))
            return false;
    return true;
}

static bool is_uuid(const char *s)
{
    if (!s || strlen(s) != 36)
        return false;
    for (size_t i = 0; i < 36; i++) {
        if (i == 8 || i == 13 || i == 18 || i == 23) {
            if (s[i] != '-')
                return false;
        } else if (!strchr("0123456789abcdef", s[i])) {
            return false;
        }
    }
    return true;
}

/* RFC 3339 UTC with milliseconds: 2024-01-31T06:00:01.234Z */
static bool is_timestamp_ms(const char *s)
{
    static const char shape[] = "dddd-dd-ddTdd:dd:dd.dddZ";
    if (!s || strlen(s) != sizeof shape - 1)
        return false;
    for (size_t i = 0; shape[i]; i++) {
        if (shape[i] == 'd' ? (s[i] < '0' || s[i] > '9') : s[i] != shape[i])
            return false;
    }
    return true;
}

static void check_header(const struct th_response *r, const char *name, const char *want)
{
    char *v = th_header(r, name);
    if (!v)
        fail_msg("response has no %s header:\n%s", name, r->headers ? r->headers : "");
    if (strcmp(v, want) != 0) {
        print_error("%s: got \"%s\", want \"%s\"\n", name, v, want);
        free(v);
        fail();
    }
    free(v);
}

/* Every response: a valid X-Request-Id (the caller's or a new one). */
static void check_request_id(const struct th_response *r)
{
    char *rid = th_header(r, "X-Request-Id");
    if (!is_request_id(rid))
        fail_msg("missing or invalid X-Request-Id in:\n%s", r->headers ? r->headers : "");
    free(rid);
}

static void check_status(const struct th_response *r, int status)
{
    if (r->status != status)
        fail_msg("status %d, want %d; body: %s", r->status, status, r->body ? r->body : "");
    check_request_id(r);
}

/* The error envelope of SPEC section 2, exactly: {success:false, error:{code, message},
 * requestId}, served as application/json; charset=utf-8, requestId = X-Request-Id. The message
 * contains needle when needle is not NULL. */
static void check_error(const struct th_response *r, int status, const char *code,
                        const char *needle)
{
    if (r->status != status || strcmp(th_error_code(r), code) != 0)
        fail_msg("got %d %s, want %d %s; body: %s", r->status, th_error_code(r), status, code,
                 r->body ? r->body : "");
    check_request_id(r);
    check_header(r, "Content-Type", JSON_TYPE);
    json_t *j = r->json;
    assert_true(json_is_object(j));
    if (json_object_size(j) != 3)
        fail_msg("error body has extra or missing members: %s", r->body);
    assert_true(json_is_false(json_object_get(j, "success")));
    json_t *e = json_object_get(j, "error");
    assert_true(json_is_object(e));
    assert_int_equal(json_object_size(e), 2);
    assert_true(json_is_string(json_object_get(e, "code")));
    const char *msg = json_string_value(json_object_get(e, "message"));
    assert_non_null(msg);
    assert_true(msg[0] != '\0');
    const char *rid = json_string_value(json_object_get(j, "requestId"));
    char *hdr = th_header(r, "X-Request-Id");
    assert_non_null(rid);
    assert_non_null(hdr);
    assert_string_equal(rid, hdr);
    free(hdr);
    if (needle && !strstr(msg, needle))
        fail_msg("message \"%s\" does not mention \"%s\"", msg, needle);
}

/* The response and the process's log never contain a secret. */
static void check_no_secret(const struct th_response *r)
{
    static const char *const secrets[] = {TEST_KEY,      TEST_KEY_PREVIOUS, WRONG_KEY_NEAR,
                                          WRONG_KEY_FAR, BEARER_SECRET,     NULL};
    for (size_t i = 0; secrets[i]; i++) {
        if ((r->headers && strstr(r->headers, secrets[i])) ||
            (r->body && strstr(r->body, secrets[i])))
            fail_msg("a key was echoed in the response: %s", secrets[i]);
    }
}

/* The last response of expect_job_error: kept until the next call (or the group's end) so
 * a failed assertion, which leaves the function, does not leak it. */
static struct th_response last;

static void expect_job_error(const char *path, const char *body, int status, const char *code,
                             const char *needle)
{
    th_free(&last);
    if (!th_post_job(proc.port, path, TEST_KEY, body, NULL, &last))
        fail_msg("no HTTP response to POST %s %s", path, body);
    const char *msg =
        json_string_value(json_object_get(json_object_get(last.json, "error"), "message"));
    if (last.status != status || strcmp(th_error_code(&last), code) != 0 ||
        (needle && (!msg || !strstr(msg, needle))))
        print_error("request body: %s\n", body);
    check_error(&last, status, code, needle);
    th_free(&last);
}

static void expect_rebuild_error(const char *body, int status, const char *code, const char *needle)
{
    expect_job_error(REBUILD, body, status, code, needle);
}

static bool jobsd_alive(void)
{
    struct th_response r;
    bool ok = th_request(proc.port, "GET", "/healthz", NULL, NULL, &r) && r.status == 200;
    th_free(&r);
    return ok;
}

static int start_with(const char *const *env)
{
    if (!jobsd_start(&proc, db.url, env))
        return -1;
    base_jobs = count_jobs();
    base_metrics = count_metrics();
    return 0;
}

static int group_start_default(void **state)
{
    (void)state;
    return start_with(NULL);
}

static int group_start_limits(void **state)
{
    (void)state;
    static const char *const env[] = {"MAX_BODY_BYTES=2048",
                                      "INTERNAL_JOBS_KEY_PREVIOUS=" TEST_KEY_PREVIOUS, NULL};
    return start_with(env);
}

/* ------------------------------------------------------------------ group teardowns */

/* What a whole group must leave behind, checked once it ran: every problem is printed and
 * makes the teardown fail, which fails the program (tgroup_run); jobsd is stopped whatever
 * the checks found. */

/* job_logs rows the group added: want of them. */
static bool jobs_added(long long want)
{
    long long n = count_jobs() - base_jobs;
    if (n == want)
        return true;
    print_error("the group added %lld job_logs row(s), want %lld\n", n, want);
    return false;
}

static bool metrics_added(long long want)
{
    long long n = count_metrics() - base_metrics;
    if (n == want)
        return true;
    print_error("the group added %lld listing_metrics_daily row(s), want %lld\n", n, want);
    return false;
}

/* Stops the group's jobsd: exit 0 (a clean shutdown, and under ASan no leak), no key in its
 * log, libmicrohttpd's messages through jobsd's logger (which it only guarantees when the
 * logger is its first option: one event per line). */
static bool stopped_clean(void)
{
    th_free(&last);
    if (proc.pid <= 0) {
        print_error("the group's jobsd is not running (it did not start)\n");
        return false;
    }
    bool ok = true;
    int code = jobsd_stop(&proc, 30000);
    if (code != 0) {
        print_error("jobsd exited with %d at SIGTERM, want 0\n", code);
        ok = false;
    }
    static const char *const secrets[] = {TEST_KEY,      TEST_KEY_PREVIOUS, WRONG_KEY_NEAR,
                                          WRONG_KEY_FAR, BEARER_SECRET,     NULL};
    for (size_t i = 0; secrets[i]; i++) {
        if (jobsd_log_contains(&proc, secrets[i])) {
            print_error("the log of jobsd contains a key: %s\n", secrets[i]);
            ok = false;
        }
    }
    if (jobsd_log_contains(&proc, "is not the first option")) {
        print_error("libmicrohttpd's logger is not its first option\n");
        ok = false;
    }
    return ok;
}

/* http_requests: the malformed-input sweep wrote nothing at all. */
static int requests_end(void **state)
{
    (void)state;
    bool ok = jobs_added(0);
    ok = metrics_added(0) && ok;
    long long jobs = count_jobs();
    if (jobs != 0) {
        print_error("job_logs has %lld row(s) after the sweep, want none\n", jobs);
        ok = false;
    }
    bool stopped = stopped_clean();
    return ok && stopped ? 0 : -1;
}

/* http_limits_and_keys: nothing written either. */
static int limits_end(void **state)
{
    (void)state;
    bool ok = jobs_added(0);
    ok = metrics_added(0) && ok;
    bool stopped = stopped_clean();
    return ok && stopped ? 0 : -1;
}

/* http_jobs: only the deliberate valid requests added job_logs rows (3 synchronous runs,
 * respond-async, wait=0, the huge wait, the deduplicated one), and every one of them ended
 * in success. */
static int jobs_end(void **state)
{
    (void)state;
    bool ok = jobs_added(7);
    long long failed = tdb_int(db.conn, "SELECT count(*) FROM job_logs WHERE status <> 'success'");
    if (failed != 0) {
        print_error("%lld job(s) did not end in success\n", failed);
        ok = false;
    }
    bool stopped = stopped_clean();
    return ok && stopped ? 0 : -1;
}

/* ================================================================== http_requests */

static void test_unknown_path_404(void **state)
{
    (void)state;
    static const char *const paths[] = {"/",
                                        "/nope",
                                        "/Healthz",
                                        "/healthz/",
                                        "/api/v1/jobs",
                                        "/api/v1/jobs/",
                                        "/api/v1/jobs/a/b",
                                        "/api/v1/jobs/rebuild-daily-metrics/x",
                                        "/api/v2/jobs/rebuild-daily-metrics",
                                        NULL};
    static const char *const methods[] = {"GET", "POST", "DELETE", NULL};
    for (size_t i = 0; paths[i]; i++) {
        for (size_t m = 0; methods[m]; m++) {
            struct th_response r;
            /* No key: 404 comes before authentication. */
            send_req(methods[m], paths[i], NULL, NULL, &r);
            check_error(&r, 404, "not_found", NULL);
            th_free(&r);
        }
    }
}

/* Bytes that are not UTF-8 in the path (percent-decoded by libmicrohttpd) or a multi-byte
 * character cut by the message's length limit must not take the daemon down. */
static void test_unknown_path_with_non_utf8_bytes(void **state)
{
    (void)state;
    char longpath[256];
    memset(longpath, 'a', sizeof longpath);
    longpath[0] = '/';
    memcpy(longpath + 199, "\xc3\xa9", 2); /* "é" straddling byte 200 of the message */
    longpath[201] = '\0';
    static const char *const paths[] = {"/%ff", "/%c3", "/x%80y", "/%ed%a0%80", NULL};
    for (size_t i = 0; paths[i]; i++) {
        struct th_response r;
        send_req("GET", paths[i], NULL, NULL, &r);
        check_error(&r, 404, "not_found", NULL);
        th_free(&r);
    }
    struct th_response r;
    send_req("GET", longpath, NULL, NULL, &r);
    check_error(&r, 404, "not_found", NULL);
    th_free(&r);
    assert_true(jobsd_alive());
}

static void test_wrong_method_405_with_allow(void **state)
{
    (void)state;
    static const struct {
        const char *method, *path, *allow;
    } cases[] = {
        {"GET", REBUILD, "POST"},
        {"PUT", REBUILD, "POST"},
        {"DELETE", REBUILD, "POST"},
        {"PATCH", REBUILD, "POST"},
        {"HEAD", REBUILD, "POST"},
        {"POST", "/healthz", "GET, HEAD"},
        {"POST", "/readyz", "GET, HEAD"},
        {"POST", "/api/v1/jobs/" NOBODY, "GET, HEAD"},
        {"DELETE", "/api/v1/jobs/" NOBODY, "GET, HEAD"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct th_response r;
        /* No key and a body that is not JSON: 405 comes before authentication and 415. */
        send_req(cases[i].method, cases[i].path, "Content-Type: text/plain\r\n",
                 strcmp(cases[i].method, "HEAD") == 0 ? NULL : "not json", &r);
        check_status(&r, 405);
        check_header(&r, "Allow", cases[i].allow);
        if (strcmp(cases[i].method, "HEAD") != 0)
            check_error(&r, 405, "method_not_allowed", cases[i].method);
        th_free(&r);
    }
}

static void test_405_comes_before_framing(void **state)
{
    (void)state;
    struct th_response r;
    send_raw("PUT " REBUILD " HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
             "Content-Length: 2\r\nContent-Length: 3\r\n\r\n{} ",
             &r);
    check_error(&r, 405, "method_not_allowed", NULL);
    check_header(&r, "Allow", "POST");
    th_free(&r);
}

/* Framing errors, without a key (framing comes before authentication) and with one. */
static void test_bad_framing_400_before_auth(void **state)
{
    (void)state;
    static const char *const framings[] = {
        "Content-Length: 2\r\nContent-Length: 2\r\n\r\n{}",
        "Content-Length: 2\r\ncontent-length: 2\r\n\r\n{}",
        "Content-Length: 2\r\nContent-Length: 3\r\n\r\n{} ",
        "Content-Length: 20000000\r\nContent-Length: 20000000\r\n\r\n",
        "Transfer-Encoding: chunked\r\nContent-Length: 2\r\n\r\n2\r\n{}\r\n0\r\n\r\n",
        "Content-Length: 2\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n",
        "Transfer-Encoding: gzip\r\n\r\n",
        "Transfer-Encoding: gzip, chunked\r\n\r\n",
        "Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
        "Transfer-Encoding: identity\r\n\r\n{}",
        NULL};
    static const char *const auth[] = {"", KEY_HDR, "X-Internal-Key: " WRONG_KEY_FAR "\r\n", NULL};
    for (size_t i = 0; framings[i]; i++) {
        for (size_t a = 0; auth[a]; a++) {
            char req[1024];
            snprintf(req, sizeof req,
                     "POST " REBUILD " HTTP/1.1\r\nHost: x\r\nConnection: close\r\n%s" CT_JSON "%s",
                     auth[a], framings[i]);
            struct th_response r;
            send_raw(req, &r);
            if (r.status != 400)
                print_error("request:\n%s\n", req);
            check_error(&r, 400, "bad_framing", NULL);
            check_no_secret(&r);
            th_free(&r);
        }
    }
    /* Also on a route without a guard, and on the either-credential route. */
    static const char *const paths[] = {"/healthz", "/api/v1/jobs/" NOBODY, NULL};
    for (size_t i = 0; paths[i]; i++) {
        char req[512];
        snprintf(req, sizeof req,
                 "GET %s HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
                 "Content-Length: 0\r\nContent-Length: 1\r\n\r\n",
                 paths[i]);
        struct th_response r;
        send_raw(req, &r);
        check_error(&r, 400, "bad_framing", NULL);
        th_free(&r);
    }
}

/* Missing, empty, wrong, repeated: 401 and the very same body (the same X-Request-Id is sent
 * so the bodies can be compared byte for byte). */
static void test_unauthorized_401_same_body(void **state)
{
    (void)state;
    static const char *const keys[] = {
        "",
        "X-Internal-Key:\r\n",
        "X-Internal-Key: \r\n",
        "X-Internal-Key: " WRONG_KEY_NEAR "\r\n",
        "X-Internal-Key: " WRONG_KEY_FAR "\r\n",
        "X-Internal-Key: x\r\n",
        "X-Internal-Key: " TEST_KEY "x\r\n",
        "X-Internal-Key: " TEST_KEY_PREVIOUS "\r\n", /* not configured on this instance */
        KEY_HDR KEY_HDR,                             /* repeated, even when both are right */
        KEY_HDR "X-Internal-Key: " WRONG_KEY_FAR "\r\n",
        "X-Internal-Key: " WRONG_KEY_FAR "\r\n" KEY_HDR,
        "Authorization: Bearer " TEST_KEY "\r\n", /* the rebuild route takes only the key */
        "Authorization: Bearer " BEARER_SECRET "\r\n",
        NULL};
    char *first = NULL;
    for (size_t i = 0; keys[i]; i++) {
        char headers[512];
        snprintf(headers, sizeof headers, "%sX-Request-Id: same-id-for-all\r\n" CT_JSON, keys[i]);
        struct th_response r;
        send_req("POST", REBUILD, headers, "{\"tenantId\": \"" TENANT "\"}", &r);
        check_error(&r, 401, "unauthorized", NULL);
        check_header(&r, "X-Request-Id", "same-id-for-all");
        check_no_secret(&r);
        if (!first)
            first = strdup(r.body);
        else if (strcmp(first, r.body) != 0)
            fail_msg("401 bodies differ:\n%s\n%s", first, r.body);
        th_free(&r);
    }
    free(first);
    assert_true(jobsd_log_contains(
        &proc, "[INTERNAL-JOB] request method=POST path=/api/v1/jobs/rebuild-daily-metrics "
               "status=401"));
    assert_true(jobsd_log_contains(&proc, "reason=missing"));
}

static void test_header_name_case_insensitive_key_accepted(void **state)
{
    (void)state;
    struct th_response r;
    send_req("POST", REBUILD, "x-internal-key: " TEST_KEY "\r\n" CT_JSON,
             "{\"tenantId\": \"" NOBODY "\"}", &r);
    check_error(&r, 404, "tenant_not_found", "tenantId");
    th_free(&r);
}

/* An unauthenticated request never gets 400, 413, 415 or 500. */
static void test_unauthenticated_never_400_413_415(void **state)
{
    (void)state;
    static const struct {
        const char *headers, *body;
    } reqs[] = {
        {CT_JSON, "{bad"},                            /* malformed JSON */
        {CT_JSON, "{\"a\": 1, \"a\": 2}"},            /* duplicate keys */
        {CT_JSON, "[]"},                              /* not an object */
        {CT_JSON, "{\"form\": \"2024-01-01\"}"},      /* unknown field */
        {CT_JSON, "{\"tenantId\": 5}"},               /* wrong type */
        {"Content-Type: text/plain\r\n", "{}"},       /* media type */
        {"", "{}"},                                   /* no media type */
        {"Content-Type: text/plain\r\n", "\xff\xfe"}, /* not even text */
    };
    for (size_t i = 0; i < sizeof reqs / sizeof reqs[0]; i++) {
        struct th_response r;
        send_req("POST", REBUILD, reqs[i].headers, reqs[i].body, &r);
        check_error(&r, 401, "unauthorized", NULL);
        th_free(&r);
    }
    struct th_response cr;
    send_raw("POST " REBUILD " HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
             "Content-Type: text/plain\r\nTransfer-Encoding: chunked\r\n\r\n4\r\n{bad\r\n0\r\n\r\n",
             &cr);
    check_error(&cr, 401, "unauthorized", NULL);
    th_free(&cr);
    /* 20 MB announced, only the headers sent: 401 at once, not 413 and not a wait. */
    static const char *const ctypes[] = {CT_JSON, "Content-Type: text/plain\r\n", "", NULL};
    for (size_t i = 0; ctypes[i]; i++) {
        char req[512];
        snprintf(req, sizeof req,
                 "POST " REBUILD " HTTP/1.1\r\nHost: x\r\nConnection: close\r\n%s"
                 "Content-Length: 20000000\r\n\r\n",
                 ctypes[i]);
        long long t0 = t_now_ms();
        struct th_response r;
        send_raw(req, &r);
        long long ms = t_now_ms() - t0;
        check_error(&r, 401, "unauthorized", NULL);
        if (ms >= 2000)
            fail_msg("401 took %lld ms", ms);
        th_free(&r);
    }
    /* Expect: 100-continue: refused without inviting the body. */
    struct th_response r;
    send_raw("POST " REBUILD " HTTP/1.1\r\nHost: x\r\nConnection: close\r\n" CT_JSON
             "Expect: 100-continue\r\nContent-Length: 20000000\r\n\r\n",
             &r);
    check_error(&r, 401, "unauthorized", NULL);
    th_free(&r);
    assert_true(jobsd_alive());
}

static void test_413_authenticated_before_415(void **state)
{
    (void)state;
    /* Default MAX_BODY_BYTES (65536): 65537 announced is too large, whatever the type. */
    static const char *const ctypes[] = {CT_JSON, "Content-Type: text/plain\r\n", "", NULL};
    for (size_t i = 0; ctypes[i]; i++) {
        char req[512];
        snprintf(req, sizeof req,
                 "POST " REBUILD " HTTP/1.1\r\nHost: x\r\nConnection: close\r\n" KEY_HDR "%s"
                 "Content-Length: 65537\r\n\r\n",
                 ctypes[i]);
        struct th_response r;
        send_raw(req, &r);
        check_error(&r, 413, "body_too_large", "MAX_BODY_BYTES");
        th_free(&r);
    }
}

static void test_415_media_type(void **state)
{
    (void)state;
    static const char *const refused[] = {"Content-Type: text/plain\r\n",
                                          "",
                                          "Content-Type: application/jsonx\r\n",
                                          "Content-Type: application/json-patch+json\r\n",
                                          "Content-Type: text/json\r\n",
                                          "Content-Type: application/x-www-form-urlencoded\r\n",
                                          "Content-Type: multipart/form-data; boundary=x\r\n",
                                          NULL};
    /* A valid body, then an invalid one: 415 comes before the JSON parse. */
    static const char *const bodies[] = {"{\"tenantId\": \"" NOBODY "\"}", "{bad", NULL};
    for (size_t i = 0; refused[i]; i++) {
        for (size_t b = 0; bodies[b]; b++) {
            char headers[256];
            snprintf(headers, sizeof headers, KEY_HDR "%s", refused[i]);
            struct th_response r;
            send_req("POST", REBUILD, headers, bodies[b], &r);
            check_error(&r, 415, "unsupported_media_type", "Content-Type");
            th_free(&r);
        }
    }
    /* A chunked body is checked once complete. */
    struct th_response r;
    send_raw("POST " REBUILD " HTTP/1.1\r\nHost: x\r\nConnection: close\r\n" KEY_HDR
             "Content-Type: text/plain\r\nTransfer-Encoding: chunked\r\n\r\n"
             "2\r\n{}\r\n0\r\n\r\n",
             &r);
    check_error(&r, 415, "unsupported_media_type", NULL);
    th_free(&r);
}

static void test_json_media_types_accepted(void **state)
{
    (void)state;
    static const char *const accepted[] = {"Content-Type: application/json\r\n",
                                           "Content-Type: application/json; charset=utf-8\r\n",
                                           "Content-Type: application/json;charset=UTF-8\r\n",
                                           "Content-Type: Application/JSON\r\n",
                                           "Content-Type: APPLICATION/JSON ; charset=utf-8\r\n",
                                           NULL};
    for (size_t i = 0; accepted[i]; i++) {
        char headers[256];
        snprintf(headers, sizeof headers, KEY_HDR "%s", accepted[i]);
        struct th_response r;
        /* Reaches the last check: the tenant. */
        send_req("POST", REBUILD, headers, "{\"tenantId\": \"" NOBODY "\"}", &r);
        check_error(&r, 404, "tenant_not_found", NOBODY);
        th_free(&r);
    }
    /* A chunked JSON body is read. */
    struct th_response r;
    send_raw("POST " REBUILD " HTTP/1.1\r\nHost: x\r\nConnection: close\r\n" KEY_HDR CT_JSON
             "Transfer-Encoding: chunked\r\n\r\n"
             "d\r\n{\"tenantId\": \r\n27\r\n\"" NOBODY "\"}\r\n0\r\n\r\n",
             &r);
    check_error(&r, 404, "tenant_not_found", NULL);
    th_free(&r);
}

/* No bytes = {} whatever the Content-Type: then tenantId is missing. */
static void test_empty_body_is_empty_object(void **state)
{
    (void)state;
    static const char *const reqs[] = {
        "Content-Type: text/plain\r\nContent-Length: 0\r\n\r\n",
        "Content-Type: image/png\r\nContent-Length: 0\r\n\r\n",
        "Content-Length: 0\r\n\r\n",
        CT_JSON "Content-Length: 0\r\n\r\n",
        "\r\n", /* no Content-Length at all */
        "Content-Type: text/plain\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
        NULL};
    for (size_t i = 0; reqs[i]; i++) {
        char req[512];
        snprintf(req, sizeof req,
                 "POST " REBUILD " HTTP/1.1\r\nHost: x\r\nConnection: close\r\n" KEY_HDR "%s",
                 reqs[i]);
        struct th_response r;
        send_raw(req, &r);
        check_error(&r, 400, "invalid_field", "tenantId");
        th_free(&r);
    }
}

static void test_invalid_json_400_with_line_and_column(void **state)
{
    (void)state;
    static const char *const bodies[] = {"{\"tenantId\": }",
                                         "{bad",
                                         "{",
                                         "{\"tenantId\": \"" TENANT "\",}",
                                         "{\"tenantId\": '" TENANT "'}",
                                         "{} {}",
                                         "{}x",
                                         "   ",
                                         "{\"tenantId\": \"\xff\"}",
                                         "{\"tenantId\": \"\\u0000\"}",
                                         "{\"daysBack\": NaN}",
                                         NULL};
    for (size_t i = 0; bodies[i]; i++) {
        expect_rebuild_error(bodies[i], 400, "invalid_json", "line");
        expect_rebuild_error(bodies[i], 400, "invalid_json", "column");
    }
    /* The position is the real one. */
    expect_rebuild_error("{\n  \"tenantId\": \"" TENANT "\",\n  bad\n}", 400, "invalid_json",
                         "line 3");
    assert_true(jobsd_alive());
}

static void test_duplicate_keys_400_invalid_json(void **state)
{
    (void)state;
    expect_rebuild_error("{\"tenantId\": \"" TENANT "\", \"tenantId\": \"" TENANT "\"}", 400,
                         "invalid_json", "tenantId");
    expect_rebuild_error("{\"tenantId\": \"" NOBODY "\", \"daysBack\": 1, \"daysBack\": 2}", 400,
                         "invalid_json", NULL);
    /* A duplicate also wins over an unknown field (parsing comes first). */
    expect_rebuild_error("{\"form\": 1, \"form\": 1}", 400, "invalid_json", NULL);
}

/* Field validation (SPEC 1.1, 1.2) over HTTP: one body per error code on each job route and
 * one case of the order of the checks. The catalogues are tables nearer the code that decides
 * them: tests/unit/test_rebuild_parse.c and test_sync_parse.c (the checks of the body) and
 * tests/integration/test_job_resolve.c (the window rules and the tenant, on a database). */

/* A field longer than the message quotes, cut inside its multi-byte character ("%.64s" and
 * "%.40s" in the messages): the error is still a JSON envelope naming the field. */
#define LONG_NAME "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\xc3\xa9"
#define LONG_ID   "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\xc3\xa9"

static void test_rebuild_body_one_case_per_code(void **state)
{
    (void)state;
    /* a JSON value that is not an object (the HTTP layer hands any JSON value over) */
    expect_rebuild_error("42", 400, "invalid_body", "JSON object");
    expect_rebuild_error("{\"" LONG_NAME "\": 1}", 400, "unknown_field", "aaaaaaaa");
    expect_rebuild_error("{\"tenantId\": \"" LONG_ID "\"}", 400, "invalid_field",
                         "tenantId must be a UUID");
    expect_rebuild_error("{\"tenantId\": \"" NOBODY "\"}", 404, "tenant_not_found", "tenantId");
    assert_true(jobsd_alive());
}

/* A rule decided on the database (from after to) comes before the unknown tenant. */
static void test_rebuild_validation_order(void **state)
{
    (void)state;
    expect_rebuild_error("{\"tenantId\": \"" NOBODY
                         "\", \"from\": \"2024-02-01\", \"to\": \"2024-01-31\"}",
                         400, "invalid_field", "from (2024-02-01) is after to");
}

static void test_sync_body_one_case_per_code(void **state)
{
    (void)state;
    expect_job_error(SYNC, "\"" TENANT "\"", 400, "invalid_body", "JSON object");
    /* a field of the rebuild is not one of the sync's */
    expect_job_error(SYNC, "{\"tenantId\": \"" TENANT "\", \"from\": \"2024-01-01\"}", 400,
                     "unknown_field", "\"from\"");
    expect_job_error(SYNC, "{\"tenantId\": \"" TENANT "\", \"include\": [\"orderz\"]}", 400,
                     "invalid_field", "include");
    expect_job_error(SYNC, "{\"tenantId\": \"" NOBODY "\"}", 404, "tenant_not_found", "tenantId");
}

/* Every 400 comes before the unknown tenant. */
static void test_sync_validation_order(void **state)
{
    (void)state;
    expect_job_error(SYNC, "{\"tenantId\": \"" NOBODY "\", \"daysBack\": 366}", 400,
                     "invalid_field", "daysBack");
}

static void test_error_envelope_and_request_id(void **state)
{
    (void)state;
    static const char id64[] = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ._";
    static const char id65[] = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ._-";
    assert_int_equal(strlen(id64), 64);
    static const char *const good[] = {"a", "req-1.A_b", id64, NULL};
    static const char *const bad[] = {id65,          "has space",  "abc/def", "a:b",
                                      "caf\xc3\xa9", "\"quoted\"", "a,b",     NULL};
    /* A few routes and outcomes: 200, 404, 405, 401, 400. */
    static const struct {
        const char *method, *path, *headers, *body;
        int status;
    } reqs[] = {
        {"GET", "/healthz", "", NULL, 200},
        {"GET", "/nope", "", NULL, 404},
        {"GET", REBUILD, "", NULL, 405},
        {"POST", REBUILD, CT_JSON, "{}", 401},
        {"POST", REBUILD, KEY_HDR CT_JSON, "{}", 400},
    };
    for (size_t q = 0; q < sizeof reqs / sizeof reqs[0]; q++) {
        for (size_t i = 0; good[i]; i++) {
            char headers[512];
            snprintf(headers, sizeof headers, "%sX-Request-Id: %s\r\n", reqs[q].headers, good[i]);
            struct th_response r;
            send_req(reqs[q].method, reqs[q].path, headers, reqs[q].body, &r);
            check_status(&r, reqs[q].status);
            check_header(&r, "X-Request-Id", good[i]);
            check_header(&r, "Content-Type", JSON_TYPE);
            if (reqs[q].status >= 400) {
                check_error(&r, reqs[q].status, th_error_code(&r), NULL);
                assert_string_equal(json_string_value(json_object_get(r.json, "requestId")),
                                    good[i]);
            }
            th_free(&r);
        }
        char seen[2][80] = {"", ""};
        for (size_t i = 0; bad[i]; i++) {
            char headers[512];
            snprintf(headers, sizeof headers, "%sX-Request-Id: %s\r\n", reqs[q].headers, bad[i]);
            struct th_response r;
            send_req(reqs[q].method, reqs[q].path, headers, reqs[q].body, &r);
            check_status(&r, reqs[q].status);
            char *rid = th_header(&r, "X-Request-Id");
            assert_non_null(rid);
            if (strcmp(rid, bad[i]) == 0)
                fail_msg("invalid X-Request-Id \"%s\" was echoed as \"%s\"", bad[i], rid);
            /* Each replacement is new. */
            assert_true(strcmp(rid, seen[0]) != 0 && strcmp(rid, seen[1]) != 0);
            snprintf(seen[i % 2], sizeof seen[0], "%s", rid);
            if (reqs[q].status >= 400) {
                check_error(&r, reqs[q].status, th_error_code(&r), NULL);
                assert_string_equal(json_string_value(json_object_get(r.json, "requestId")), rid);
            }
            free(rid);
            th_free(&r);
        }
        /* No header, an empty one: a new id. */
        struct th_response r;
        send_req(reqs[q].method, reqs[q].path, reqs[q].headers, reqs[q].body, &r);
        check_status(&r, reqs[q].status);
        th_free(&r);
        char headers[512];
        snprintf(headers, sizeof headers, "%sX-Request-Id:\r\n", reqs[q].headers);
        send_req(reqs[q].method, reqs[q].path, headers, reqs[q].body, &r);
        check_status(&r, reqs[q].status);
        th_free(&r);
    }
}

static void test_health_endpoints(void **state)
{
    (void)state;
    struct th_response r;
    send_req("GET", "/healthz", NULL, NULL, &r);
    check_status(&r, 200);
    check_header(&r, "Content-Type", JSON_TYPE);
    assert_string_equal(r.body, "{\"status\":\"ok\"}");
    th_free(&r);
    /* A key is not needed and not harmful. */
    send_req("GET", "/healthz?probe=1", "X-Internal-Key: " WRONG_KEY_FAR "\r\n", NULL, &r);
    check_status(&r, 200);
    th_free(&r);
    send_req("HEAD", "/healthz", NULL, NULL, &r);
    check_status(&r, 200);
    assert_int_equal(r.body_len, 0);
    th_free(&r);
    send_req("GET", "/readyz", NULL, NULL, &r);
    check_status(&r, 200);
    check_header(&r, "Content-Type", JSON_TYPE);
    assert_string_equal(json_string_value(json_object_get(r.json, "status")), "ready");
    th_free(&r);
}

/* GET /api/v1/jobs/{id}: the key when present, else the JWT, which is not configured. */
static void test_get_job_auth_and_not_found(void **state)
{
    (void)state;
    struct th_response r;
    send_req("GET", "/api/v1/jobs/" NOBODY, NULL, NULL, &r);
    check_error(&r, 503, "jwt_not_configured", "JWT");
    th_free(&r);
    send_req("GET", "/api/v1/jobs/" NOBODY, "Authorization: Bearer " BEARER_SECRET "\r\n", NULL,
             &r);
    check_error(&r, 503, "jwt_not_configured", NULL);
    check_no_secret(&r);
    th_free(&r);
    /* A key that is present is checked (and a wrong one is not rescued by a bearer token). */
    static const char *const bad[] = {
        "X-Internal-Key: " WRONG_KEY_NEAR "\r\n", "X-Internal-Key:\r\n", KEY_HDR KEY_HDR,
        "X-Internal-Key: " WRONG_KEY_FAR "\r\nAuthorization: Bearer " BEARER_SECRET "\r\n", NULL};
    for (size_t i = 0; bad[i]; i++) {
        send_req("GET", "/api/v1/jobs/" NOBODY, bad[i], NULL, &r);
        check_error(&r, 401, "unauthorized", NULL);
        check_no_secret(&r);
        th_free(&r);
    }
    /* With the key: unknown or malformed ids are job_not_found (never 400). */
    static const char *const ids[] = {
        NOBODY,
        "00000000-0000-4000-8000-00000000ABCD",
        "not-a-uuid",
        "%ff",
        "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa%c3%a9",
        "1",
        NULL};
    for (size_t i = 0; ids[i]; i++) {
        char path[256];
        snprintf(path, sizeof path, "/api/v1/jobs/%s", ids[i]);
        send_req("GET", path, KEY_HDR, NULL, &r);
        check_error(&r, 404, "job_not_found", NULL);
        th_free(&r);
    }
    assert_true(jobsd_alive());
}

/* ================================================================== http_limits_and_keys */

/* 20 MB announced, only the headers sent: 413 at once (the body is never awaited). */
/* The per-connection memory (32 KiB) bounds the request line and headers: 16 KB of
 * headers, a 4 KB bearer token among them, is served; one 40 KB header is 431. */
static void test_header_sizes(void **state)
{
    (void)state;
    char *req = malloc(64 * 1024);
    assert_non_null(req);
    size_t n = (size_t)snprintf(req, 1024,
                                "GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
                                "Authorization: Bearer ");
    memset(req + n, 'a', 4000);
    n += 4000;
    for (int h = 0; h < 12; h++) {
        n += (size_t)snprintf(req + n, 64, "\r\nX-Pad-%02d: ", h);
        memset(req + n, 'p', 1000);
        n += 1000;
    }
    memcpy(req + n, "\r\n\r\n", 5);
    n += 4;
    struct th_response r;
    if (!th_raw(proc.port, req, n, &r, 10000))
        fail_msg("no answer to a request with 16 KB of headers");
    assert_int_equal(r.status, 200);
    th_free(&r);

    n = (size_t)snprintf(req, 1024,
                         "GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
                         "X-Big: ");
    memset(req + n, 'b', 40000);
    n += 40000;
    memcpy(req + n, "\r\n\r\n", 5);
    n += 4;
    if (!th_raw(proc.port, req, n, &r, 10000))
        fail_msg("no answer to a 40 KB header");
    assert_int_equal(r.status, 431);
    th_free(&r);
    free(req);
}

static void test_413_from_content_length_without_body(void **state)
{
    (void)state;
    static const char *const ctypes[] = {CT_JSON, "Content-Type: text/plain\r\n", NULL};
    for (size_t i = 0; ctypes[i]; i++) {
        char req[512];
        snprintf(req, sizeof req,
                 "POST " REBUILD " HTTP/1.1\r\nHost: x\r\nConnection: close\r\n" KEY_HDR
                 "%sContent-Length: 20000000\r\n\r\n",
                 ctypes[i]);
        long long t0 = t_now_ms();
        struct th_response r;
        if (!th_raw(proc.port, req, strlen(req), &r, 5000))
            fail_msg("no answer to a 20 MB Content-Length");
        long long ms = t_now_ms() - t0;
        check_error(&r, 413, "body_too_large", "2048");
        if (ms >= 2000)
            fail_msg("413 took %lld ms", ms);
        th_free(&r);
    }
    /* Also with Expect: 100-continue, and on the either-credential route. */
    struct th_response r;
    send_raw("POST " REBUILD " HTTP/1.1\r\nHost: x\r\nConnection: close\r\n" KEY_HDR CT_JSON
             "Expect: 100-continue\r\nContent-Length: 20000000\r\n\r\n",
             &r);
    check_error(&r, 413, "body_too_large", NULL);
    th_free(&r);
    send_raw("GET /api/v1/jobs/" NOBODY " HTTP/1.1\r\nHost: x\r\nConnection: close\r\n" KEY_HDR
             "Content-Length: 20000000\r\n\r\n",
             &r);
    check_error(&r, 413, "body_too_large", NULL);
    th_free(&r);
    /* Without a key it is 401, never 413. */
    send_raw("POST " REBUILD " HTTP/1.1\r\nHost: x\r\nConnection: close\r\n" CT_JSON
             "Content-Length: 20000000\r\n\r\n",
             &r);
    check_error(&r, 401, "unauthorized", NULL);
    th_free(&r);
}

/* A body of limit + 1 bytes, declared and sent. */
static void test_413_one_byte_over(void **state)
{
    (void)state;
    char body[2050];
    memset(body, ' ', 2049);
    body[0] = '{';
    body[2048] = '}';
    body[2049] = '\0';
    struct th_response r;
    post_rebuild(body, &r);
    check_error(&r, 413, "body_too_large", NULL);
    th_free(&r);
}

/* Builds {"tenantId": "<NOBODY>"} padded with spaces to exactly n bytes. */
static char *padded_body(size_t n)
{
    static const char head[] = "{\"tenantId\": \"" NOBODY "\"";
    char *b = malloc(n + 1);
    assert_non_null(b);
    memset(b, ' ', n);
    memcpy(b, head, sizeof head - 1);
    b[n - 1] = '}';
    b[n] = '\0';
    return b;
}

static void test_body_exactly_at_limit_accepted(void **state)
{
    (void)state;
    char *body = padded_body(2048);
    struct th_response r;
    post_rebuild(body, &r);
    check_error(&r, 404, "tenant_not_found", NULL); /* reached the last validation step */
    th_free(&r);
    /* The same as a chunked body (two chunks). */
    size_t cap = 4096;
    char *req = malloc(cap);
    int n = snprintf(req, cap,
                     "POST " REBUILD " HTTP/1.1\r\nHost: x\r\nConnection: close\r\n" KEY_HDR CT_JSON
                     "Transfer-Encoding: chunked\r\n\r\n400\r\n%.1024s\r\n400\r\n%s\r\n0\r\n\r\n",
                     body, body + 1024);
    assert_true(n > 0 && (size_t)n < cap);
    send_raw(req, &r);
    check_error(&r, 404, "tenant_not_found", NULL);
    th_free(&r);
    free(req);
    free(body);
}

static bool log_has_chunked_close(void *ctx)
{
    (void)ctx;
    return jobsd_log_contains(&proc, "chunked request body over MAX_BODY_BYTES");
}

/* A chunked body that passes MAX_BODY_BYTES: the connection is closed (no 2xx, nothing
 * written), and the server goes on serving. */
static void test_chunked_over_limit_closes(void **state)
{
    (void)state;
    long long jobs = count_jobs();
    static const size_t sizes[] = {2049, 4096, 200000};
    for (size_t k = 0; k < sizeof sizes / sizeof sizes[0]; k++) {
        size_t total = sizes[k];
        char *body = padded_body(total);
        size_t cap = total * 2 + 1024;
        char *req = malloc(cap);
        int n =
            snprintf(req, cap,
                     "POST " REBUILD " HTTP/1.1\r\nHost: x\r\nConnection: close\r\n" KEY_HDR CT_JSON
                     "Transfer-Encoding: chunked\r\n\r\n");
        for (size_t off = 0; off < total; off += 1000) {
            size_t len = total - off < 1000 ? total - off : 1000;
            n += snprintf(req + n, cap - (size_t)n, "%zx\r\n%.*s\r\n", len, (int)len, body + off);
        }
        n += snprintf(req + n, cap - (size_t)n, "0\r\n\r\n");
        struct th_response r;
        bool got = th_raw(proc.port, req, (size_t)n, &r, 10000);
        if (got && r.status != 0 && r.status != 413)
            fail_msg("a chunked body of %zu bytes got %d: %s", total, r.status, r.body);
        th_free(&r);
        free(req);
        free(body);
    }
    assert_true(t_wait_until(log_has_chunked_close, NULL, 5000));
    assert_true(jobsd_alive());
    assert_int_equal(count_jobs(), jobs);
}

static void test_previous_key_accepted(void **state)
{
    (void)state;
    struct th_response r;
    assert_true(th_post_job(proc.port, REBUILD, TEST_KEY_PREVIOUS, "{\"tenantId\": \"" NOBODY "\"}",
                            NULL, &r));
    check_error(&r, 404, "tenant_not_found", NULL);
    check_no_secret(&r);
    th_free(&r);
    send_req("GET", "/api/v1/jobs/" NOBODY, "X-Internal-Key: " TEST_KEY_PREVIOUS "\r\n", NULL, &r);
    check_error(&r, 404, "job_not_found", NULL);
    th_free(&r);
    /* The current key still works, a wrong one does not, and two keys are refused. */
    post_rebuild("{\"tenantId\": \"" NOBODY "\"}", &r);
    check_error(&r, 404, "tenant_not_found", NULL);
    th_free(&r);
    send_req("POST", REBUILD, "X-Internal-Key: " WRONG_KEY_NEAR "\r\n" CT_JSON, "{}", &r);
    check_error(&r, 401, "unauthorized", NULL);
    th_free(&r);
    send_req("POST", REBUILD, KEY_HDR "X-Internal-Key: " TEST_KEY_PREVIOUS "\r\n" CT_JSON, "{}",
             &r);
    check_error(&r, 401, "unauthorized", NULL);
    th_free(&r);
    assert_true(jobsd_log_contains(&proc, "INTERNAL_JOBS_KEY_PREVIOUS"));
}

/* ================================================================== http_jobs */

static char async_id[40];

struct job_wait {
    const char *id;
    const char *status;
    json_t *job; /* the last GET body */
};

static json_t *get_job(const char *id, int *status)
{
    char path[128];
    snprintf(path, sizeof path, "/api/v1/jobs/%s", id);
    struct th_response r;
    send_req("GET", path, KEY_HDR, NULL, &r);
    *status = r.status;
    json_t *j = json_incref(r.json);
    th_free(&r);
    return j;
}

static bool job_has_status(void *ctx)
{
    struct job_wait *w = ctx;
    int st;
    json_decref(w->job);
    w->job = get_job(w->id, &st);
    const char *s = json_string_value(json_object_get(w->job, "status"));
    return st == 200 && s && strcmp(s, w->status) == 0;
}

static void check_rebuild_200(const struct th_response *r, const char *from, const char *to,
                              long long days, long long listings)
{
    check_status(r, 200);
    check_header(r, "Content-Type", JSON_TYPE);
    json_t *j = r->json;
    assert_true(json_is_object(j));
    static const char *const ints[] = {"duration",
                                       "daysProcessed",
                                       "rowsUpserted",
                                       "rowsUnchanged",
                                       "rowsDeleted",
                                       "listingsProcessed",
                                       NULL};
    assert_true(json_is_true(json_object_get(j, "success")));
    assert_true(is_uuid(json_string_value(json_object_get(j, "jobLogId"))));
    for (size_t i = 0; ints[i]; i++) {
        json_t *v = json_object_get(j, ints[i]);
        if (!json_is_integer(v) || json_integer_value(v) < 0)
            fail_msg("%s missing or not a count in %s", ints[i], r->body);
    }
    assert_true(json_is_false(json_object_get(j, "deduplicated")));
    assert_int_equal(json_integer_value(json_object_get(j, "daysProcessed")), days);
    assert_int_equal(json_integer_value(json_object_get(j, "listingsProcessed")), listings);
    assert_int_equal(json_integer_value(json_object_get(j, "rowsUpserted")) +
                         json_integer_value(json_object_get(j, "rowsUnchanged")),
                     days * listings);
    json_t *range = json_object_get(j, "dateRange");
    assert_true(json_is_object(range));
    assert_string_equal(json_string_value(json_object_get(range, "from")), from);
    assert_string_equal(json_string_value(json_object_get(range, "to")), to);
    assert_true(json_is_string(json_object_get(range, "maxDateAfterRebuild")));
}

static void test_rebuild_200_full_body(void **state)
{
    (void)state;
    long long jobs = count_jobs();
    struct th_response r;
    /* Upper-case tenant id; the caller's user agent and request id are kept. */
    send_req("POST", REBUILD,
             KEY_HDR CT_JSON "User-Agent: e2e-test/1.0\r\nX-Request-Id: rebuild-200\r\n",
             "{\"tenantId\": \"" TENANT_UC "\", \"from\": \"2024-01-01\", \"to\": \"2024-01-31\"}",
             &r);
    check_rebuild_200(&r, "2024-01-01", "2024-01-31", 31, 2);
    check_header(&r, "X-Request-Id", "rebuild-200");
    json_t *j = r.json;
    assert_int_equal(json_integer_value(json_object_get(j, "rowsUpserted")), 62);
    assert_int_equal(json_integer_value(json_object_get(j, "rowsUnchanged")), 0);
    assert_int_equal(json_integer_value(json_object_get(j, "rowsDeleted")), 0);
    /* MAX(date) of the tenant's rows after the commit: 2024-01-31 unless another test of the
     * group already rebuilt a later window. */
    char *max_date = tdb_value(db.conn, "SELECT max(date)::text FROM listing_metrics_daily WHERE "
                                        "tenant_id = '" TENANT "'");
    assert_non_null(max_date);
    assert_true(strcmp(max_date, "2024-01-31") >= 0);
    assert_string_equal(
        json_string_value(json_object_get(json_object_get(j, "dateRange"), "maxDateAfterRebuild")),
        max_date);
    free(max_date);
    const char *id = json_string_value(json_object_get(j, "jobLogId"));
    assert_int_equal(count_jobs(), jobs + 1);
    assert_int_equal(tdb_int(db.conn,
                             "SELECT count(*) FROM job_logs WHERE id = '%s' AND status = 'success' "
                             "AND tenant_id = '" TENANT "' AND trigger = 'http' "
                             "AND records_processed = 62 "
                             "AND metadata->>'userAgent' = 'e2e-test/1.0' "
                             "AND metadata->>'requestId' = 'rebuild-200'",
                             id),
                     1);
    assert_int_equal(tdb_int(db.conn,
                             "SELECT count(*) FROM listing_metrics_daily WHERE tenant_id = "
                             "'" TENANT "' AND date BETWEEN '2024-01-01' AND '2024-01-31'"),
                     62);
    th_free(&r);

    /* Again: a new run, nothing to change. */
    post_rebuild("{\"tenantId\": \"" TENANT "\", \"from\": \"2024-01-01\", \"to\": \"2024-01-31\"}",
                 &r);
    check_rebuild_200(&r, "2024-01-01", "2024-01-31", 31, 2);
    assert_int_equal(json_integer_value(json_object_get(r.json, "rowsUpserted")), 0);
    assert_int_equal(json_integer_value(json_object_get(r.json, "rowsUnchanged")), 62);
    th_free(&r);

    /* A timestamp is converted to its date in JOBS_TIMEZONE (02:00Z = 23:00 the day before). */
    post_rebuild("{\"tenantId\": \"" TENANT "\", \"to\": \"2024-01-31T02:00:00Z\", \"daysBack\": "
                 "2}",
                 &r);
    check_rebuild_200(&r, "2024-01-29", "2024-01-30", 2, 2);
    th_free(&r);
    assert_int_equal(count_jobs(), jobs + 3);
}

static void check_accepted(const struct th_response *r, const char *applied, bool deduplicated,
                           char *id_out)
{
    check_status(r, 202);
    check_header(r, "Content-Type", JSON_TYPE);
    if (applied)
        check_header(r, "Preference-Applied", applied);
    json_t *j = r->json;
    assert_true(json_is_object(j));
    assert_int_equal(json_object_size(j), 5);
    assert_true(json_is_true(json_object_get(j, "success")));
    const char *id = json_string_value(json_object_get(j, "jobLogId"));
    assert_true(is_uuid(id));
    const char *st = json_string_value(json_object_get(j, "status"));
    assert_non_null(st);
    assert_true(strcmp(st, "queued") == 0 || strcmp(st, "running") == 0);
    assert_true(json_is_boolean(json_object_get(j, "deduplicated")));
    assert_int_equal(json_is_true(json_object_get(j, "deduplicated")), deduplicated);
    char url[80];
    snprintf(url, sizeof url, "/api/v1/jobs/%s", id);
    assert_string_equal(json_string_value(json_object_get(j, "statusUrl")), url);
    check_header(r, "Location", url);
    snprintf(id_out, 40, "%s", id);
}

static void check_job_view(const json_t *job, const char *id, const char *status)
{
    assert_true(json_is_object(job));
    assert_string_equal(json_string_value(json_object_get(job, "id")), id);
    assert_string_equal(json_string_value(json_object_get(job, "tenantId")), TENANT);
    assert_string_equal(json_string_value(json_object_get(job, "jobType")), "metrics_aggregation");
    assert_string_equal(json_string_value(json_object_get(job, "status")), status);
    assert_true(is_timestamp_ms(json_string_value(json_object_get(job, "createdAt"))));
    assert_true(json_is_integer(json_object_get(job, "attempts")));
    assert_true(json_is_object(json_object_get(job, "metadata")));
    static const char *const members[] = {"startedAt",        "completedAt",  "durationMs",
                                          "recordsProcessed", "errorMessage", NULL};
    for (size_t i = 0; members[i]; i++)
        if (!json_object_get(job, members[i]))
            fail_msg("job view lacks %s", members[i]);
    json_t *meta = json_object_get(job, "metadata");
    assert_string_equal(json_string_value(json_object_get(meta, "trigger")), "http");
    assert_true(json_is_object(json_object_get(meta, "request")));
}

static void test_prefer_respond_async_202_then_get(void **state)
{
    (void)state;
    long long jobs = count_jobs();
    struct th_response r;
    assert_true(th_post_job(proc.port, REBUILD, TEST_KEY,
                            "{\"tenantId\": \"" TENANT
                            "\", \"from\": \"2024-02-01\", \"to\": \"2024-02-29\"}",
                            "Prefer: respond-async\r\n", &r));
    check_accepted(&r, "respond-async", false, async_id);
    th_free(&r);
    assert_int_equal(count_jobs(), jobs + 1);

    struct job_wait w = {async_id, "success", NULL};
    assert_true(t_wait_until(job_has_status, &w, 60000));
    check_job_view(w.job, async_id, "success");
    json_t *job = w.job;
    assert_int_equal(json_integer_value(json_object_get(job, "attempts")), 1);
    assert_true(is_timestamp_ms(json_string_value(json_object_get(job, "startedAt"))));
    assert_true(is_timestamp_ms(json_string_value(json_object_get(job, "completedAt"))));
    assert_true(json_is_integer(json_object_get(job, "durationMs")));
    assert_int_equal(json_integer_value(json_object_get(job, "recordsProcessed")), 58);
    assert_true(json_is_null(json_object_get(job, "errorMessage")));
    assert_null(json_object_get(job, "error"));
    json_t *result = json_object_get(job, "result");
    assert_true(json_is_object(result));
    assert_true(json_is_true(json_object_get(result, "success")));
    assert_string_equal(json_string_value(json_object_get(result, "jobLogId")), async_id);
    assert_int_equal(json_integer_value(json_object_get(result, "daysProcessed")), 29);
    assert_string_equal(
        json_string_value(json_object_get(json_object_get(result, "dateRange"), "from")),
        "2024-02-01");
    json_decref(w.job);

    /* The id in upper case names the same job; the response is JSON with a request id. */
    char upper[40];
    snprintf(upper, sizeof upper, "%s", async_id);
    for (char *c = upper; *c; c++)
        if (*c >= 'a' && *c <= 'f')
            *c = (char)(*c - 'a' + 'A');
    char path[80];
    snprintf(path, sizeof path, "/api/v1/jobs/%s", upper);
    send_req("GET", path, KEY_HDR, NULL, &r);
    check_status(&r, 200);
    check_header(&r, "Content-Type", JSON_TYPE);
    assert_string_equal(json_string_value(json_object_get(r.json, "id")), async_id);
    th_free(&r);
    /* Without a key the JWT is asked for, and it is not configured. */
    snprintf(path, sizeof path, "/api/v1/jobs/%s", async_id);
    send_req("GET", path, NULL, NULL, &r);
    check_error(&r, 503, "jwt_not_configured", NULL);
    th_free(&r);
}

static void test_prefer_wait0_202(void **state)
{
    (void)state;
    struct th_response r;
    char id[40];
    assert_true(th_post_job(proc.port, REBUILD, TEST_KEY,
                            "{\"tenantId\": \"" TENANT
                            "\", \"from\": \"2024-03-01\", \"to\": \"2024-03-05\"}",
                            "Prefer: wait=0\r\n", &r));
    check_accepted(&r, "wait=0", false, id);
    th_free(&r);
    struct job_wait w = {id, "success", NULL};
    assert_true(t_wait_until(job_has_status, &w, 60000));
    json_decref(w.job);
}

/* A wait too large to represent saturates (it is then capped by SYNC_WAIT_SECONDS): the
 * request waits for the job instead of ignoring the preference. */
static void test_prefer_huge_wait_saturates(void **state)
{
    (void)state;
    struct th_response r;
    assert_true(th_post_job(proc.port, REBUILD, TEST_KEY,
                            "{\"tenantId\": \"" TENANT
                            "\", \"from\": \"2024-03-06\", \"to\": \"2024-03-07\"}",
                            "Prefer: respond-async, wait=99999999999999999999999\r\n", &r));
    check_rebuild_200(&r, "2024-03-06", "2024-03-07", 2, 2);
    check_header(&r, "Preference-Applied", "wait=100");
    th_free(&r);
}

/* With the tenant's rebuild lock held by the test, a job stays running: a second request is
 * attached to it (deduplicated), a wait=1 answers 202 after about a second, and the job view
 * has no result until it succeeds. */
static void test_dedupe_and_wait_timeout(void **state)
{
    (void)state;
    tdb_exec(db.conn, "SELECT pg_advisory_lock(hashtextextended('jobsd:metrics:" TENANT "', 0))");
    static const char body[] =
        "{\"tenantId\": \"" TENANT "\", \"from\": \"2024-04-01\", \"to\": \"2024-04-02\"}";
    long long jobs = count_jobs();
    struct th_response r;
    char id[40], id2[40], id3[40];
    assert_true(th_post_job(proc.port, REBUILD, TEST_KEY, body, "Prefer: respond-async\r\n", &r));
    check_accepted(&r, "respond-async", false, id);
    th_free(&r);
    struct job_wait w = {id, "running", NULL};
    assert_true(t_wait_until(job_has_status, &w, 30000));
    check_job_view(w.job, id, "running");
    assert_null(json_object_get(w.job, "result"));
    json_decref(w.job);

    /* Same window as daysBack: the same identity. */
    assert_true(th_post_job(proc.port, REBUILD, TEST_KEY,
                            "{\"tenantId\": \"" TENANT "\", \"to\": \"2024-04-02\", \"daysBack\": "
                            "2}",
                            "Prefer: respond-async\r\n", &r));
    check_accepted(&r, "respond-async", true, id2);
    assert_string_equal(id2, id);
    assert_string_equal(json_string_value(json_object_get(r.json, "status")), "running");
    th_free(&r);

    long long t0 = t_now_ms();
    assert_true(th_post_job(proc.port, REBUILD, TEST_KEY, body, "Prefer: wait=1\r\n", &r));
    long long ms = t_now_ms() - t0;
    check_accepted(&r, "wait=1", true, id3);
    assert_string_equal(id3, id);
    if (ms < 900 || ms > 10000)
        fail_msg("wait=1 answered after %lld ms", ms);
    th_free(&r);
    assert_int_equal(count_jobs(), jobs + 1);

    tdb_exec(db.conn, "SELECT pg_advisory_unlock(hashtextextended('jobsd:metrics:" TENANT "', 0))");
    struct job_wait done = {id, "success", NULL};
    assert_true(t_wait_until(job_has_status, &done, 60000));
    assert_true(json_is_object(json_object_get(done.job, "result")));
    json_decref(done.job);
}

static int release_tenant_lock(void **state)
{
    (void)state;
    tdb_exec(db.conn, "SELECT pg_advisory_unlock_all()");
    return 0;
}

static char saved_checksum[256];

static void test_readyz_503_on_checksum_mismatch(void **state)
{
    (void)state;
    char *sum = tdb_value(db.conn, "SELECT checksum FROM schema_migrations WHERE version = 1");
    assert_non_null(sum);
    snprintf(saved_checksum, sizeof saved_checksum, "%s", sum);
    free(sum);
    tdb_exec(db.conn, "UPDATE schema_migrations SET checksum = 'tampered' WHERE version = 1");
    struct th_response r;
    send_req("GET", "/readyz", NULL, NULL, &r);
    check_error(&r, 503, "database_unavailable", NULL);
    char *ra = th_header(&r, "Retry-After");
    assert_non_null(ra);
    long long secs = strtoll(ra, NULL, 10);
    assert_true(secs > 0);
    free(ra);
    th_free(&r);
    /* /healthz does not look at the database. */
    assert_true(jobsd_alive());
    tdb_execf(db.conn, "UPDATE schema_migrations SET checksum = '%s' WHERE version = 1",
              saved_checksum);
    saved_checksum[0] = '\0';
    send_req("GET", "/readyz", NULL, NULL, &r);
    check_status(&r, 200);
    th_free(&r);
}

static int restore_checksum(void **state)
{
    (void)state;
    if (saved_checksum[0])
        tdb_execf(db.conn, "UPDATE schema_migrations SET checksum = '%s' WHERE version = 1",
                  saved_checksum);
    saved_checksum[0] = '\0';
    return 0;
}

/* ================================================================== main */

int main(void)
{
    testdb_create(&db, "http");
    fx_tenant(db.conn, TENANT);
    fx_listing(db.conn, TENANT, "MLB1", "active");
    const char *l2 = fx_listing(db.conn, TENANT, "MLB2", "paused");
    char listing2[40];
    snprintf(listing2, sizeof listing2, "%s", l2);
    fx_listing(db.conn, TENANT, "MLB3", "deleted"); /* no sales: does not qualify */
    const char *order = fx_order(db.conn, TENANT, 1001, "paid", "2024-01-10T15:00:00Z");
    fx_item(db.conn, TENANT, order, listing2, 2, "10.00");
    fx_visits(db.conn, TENANT, listing2, "2024-01-10", 20);

    const struct CMUnitTest requests[] = {
        cmocka_unit_test(test_unknown_path_404),
        cmocka_unit_test(test_unknown_path_with_non_utf8_bytes),
        cmocka_unit_test(test_wrong_method_405_with_allow),
        cmocka_unit_test(test_405_comes_before_framing),
        cmocka_unit_test(test_bad_framing_400_before_auth),
        cmocka_unit_test(test_unauthorized_401_same_body),
        cmocka_unit_test(test_header_name_case_insensitive_key_accepted),
        cmocka_unit_test(test_unauthenticated_never_400_413_415),
        cmocka_unit_test(test_413_authenticated_before_415),
        cmocka_unit_test(test_415_media_type),
        cmocka_unit_test(test_json_media_types_accepted),
        cmocka_unit_test(test_empty_body_is_empty_object),
        cmocka_unit_test(test_invalid_json_400_with_line_and_column),
        cmocka_unit_test(test_duplicate_keys_400_invalid_json),
        cmocka_unit_test(test_rebuild_body_one_case_per_code),
        cmocka_unit_test(test_rebuild_validation_order),
        cmocka_unit_test(test_sync_body_one_case_per_code),
        cmocka_unit_test(test_sync_validation_order),
        cmocka_unit_test(test_error_envelope_and_request_id),
        cmocka_unit_test(test_health_endpoints),
        cmocka_unit_test(test_get_job_auth_and_not_found),
    };
    const struct CMUnitTest limits[] = {
        cmocka_unit_test(test_header_sizes),
        cmocka_unit_test(test_413_from_content_length_without_body),
        cmocka_unit_test(test_413_one_byte_over),
        cmocka_unit_test(test_body_exactly_at_limit_accepted),
        cmocka_unit_test(test_chunked_over_limit_closes),
        cmocka_unit_test(test_previous_key_accepted),
    };
    const struct CMUnitTest jobs[] = {
        cmocka_unit_test(test_rebuild_200_full_body),
        cmocka_unit_test(test_prefer_respond_async_202_then_get),
        cmocka_unit_test(test_prefer_wait0_202),
        cmocka_unit_test(test_prefer_huge_wait_saturates),
        cmocka_unit_test_teardown(test_dedupe_and_wait_timeout, release_tenant_lock),
        cmocka_unit_test_teardown(test_readyz_503_on_checksum_mismatch, restore_checksum),
    };
    int failed = 0;
    failed += tgroup_run("http_requests", requests, group_start_default, requests_end);
    failed += tgroup_run("http_limits_and_keys", limits, group_start_limits, limits_end);
    failed += tgroup_run("http_jobs", jobs, group_start_default, jobs_end);
    testdb_drop(&db);
    return failed == 0 ? 0 : 1;
}
