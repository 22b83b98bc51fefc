/* End-to-end tests of monitoring under hostile requests (issue 19, items 1, 2 and 5): a
 * client cannot blind the logs or /metrics, nor hold a connection with query parameters.
 *  - A 1,500-byte User-Agent of control bytes on a job route with a bad key: the access line
 *    keeps its [INTERNAL-JOB] tag, path, status, reason, address and request id.
 *  - 300 invented methods do not exhaust /metrics: a later response is still counted, under
 *    method "other"; a 405 is counted under its route; durations have sub-millisecond
 *    resolution; queued and running jobs are separate gauges.
 *  - About 500 query parameters get 414 at once (libmicrohttpd 0.9.75 would exhaust the
 *    connection's memory pool and hold it until the timeout). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "testdb.h"
#include "testgroup.h"
#include "testhttp.h"
#include "testproc.h"
#include "testtime.h"

#define REBUILD "/api/v1/jobs/rebuild-daily-metrics"
#define KEY_HDR "X-Internal-Key: " TEST_KEY "\r\n"

static struct testdb db;
static struct jobsd_proc proc;

static int setup(void **state)
{
    (void)state;
    return jobsd_setup_one(&db, &proc, "obs_hostile");
}

static int teardown(void **state)
{
    (void)state;
    return jobsd_teardown_one(&db, &proc);
}

/* ------------------------------------------------------------------ helpers */

/* The first line of the log containing needle (caller frees), or NULL. */
static char *log_line_with(const char *needle)
{
    FILE *f = fopen(proc.log_path, "r");
    if (!f)
        return NULL;
    size_t cap = 65536;
    char *line = malloc(cap);
    assert_non_null(line);
    char *found = NULL;
    while (fgets(line, (int)cap, f)) {
        if (strstr(line, needle)) {
            found = strdup(line);
            break;
        }
    }
    fclose(f);
    free(line);
    return found;
}

static bool log_has(void *needle)
{
    char *l = log_line_with(needle);
    free(l);
    return l != NULL;
}

/* GET /metrics with the key: the body (caller frees). */
static char *scrape(void)
{
    struct th_response r;
    assert_true(th_request(proc.port, "GET", "/metrics", KEY_HDR, NULL, &r));
    assert_int_equal(r.status, 200);
    char *body = strdup(r.body);
    th_free(&r);
    assert_non_null(body);
    return body;
}

/* The value of the sample line "series value", or -1 when absent. */
static double sample(const char *body, const char *series)
{
    size_t n = strlen(series);
    for (const char *p = body; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : NULL)
        if (strncmp(p, series, n) == 0 && p[n] == ' ')
            return strtod(p + n + 1, NULL);
    return -1;
}

/* The sum of every sample of a family whose labels contain want (NULL: all). */
static double family_sum(const char *body, const char *name, const char *want)
{
    double sum = 0;
    size_t n = strlen(name);
    for (const char *p = body; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : NULL) {
        if (strncmp(p, name, n) != 0 || (p[n] != '{' && p[n] != ' '))
            continue;
        const char *sp = strchr(p, ' ');
        char labels[512];
        snprintf(labels, sizeof labels, "%.*s", (int)(sp - p), p);
        if (!want || strstr(labels, want))
            sum += strtod(sp + 1, NULL);
    }
    return sum;
}

/* A promtool-free check of the text format 0.0.4: every line a comment or a sample
 * `name{k="v",...} value`; a family's # TYPE before its samples and its samples together;
 * label values escaped; names and label names of [a-zA-Z_:][a-zA-Z0-9_:]*. */
static void check_exposition(const char *body)
{
    char families[128][96];
    size_t nfam = 0;
    char current[96] = "";
    const char *p = body;
    while (*p) {
        const char *end = strchr(p, '\n');
        assert_non_null(end); /* every line ends with a newline */
        char line[1024];
        assert_true((size_t)(end - p) < sizeof line);
        snprintf(line, sizeof line, "%.*s", (int)(end - p), p);
        p = end + 1;
        if (strncmp(line, "# HELP ", 7) == 0)
            continue;
        if (strncmp(line, "# TYPE ", 7) == 0) {
            char name[96], type[32];
            assert_int_equal(sscanf(line + 7, "%95s %31s", name, type), 2);
            for (size_t i = 0; i < nfam; i++)
                if (strcmp(families[i], name) == 0)
                    fail_msg("family %s declared twice", name);
            assert_true(nfam < 128);
            snprintf(families[nfam++], sizeof families[0], "%s", name);
            snprintf(current, sizeof current, "%s", name);
            continue;
        }
        assert_true(line[0] != '#');
        size_t i = strspn(line, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_:");
        assert_true(i > 0);
        char name[96];
        snprintf(name, sizeof name, "%.*s", (int)i, line);
        /* A histogram's samples are its family's name plus a suffix. */
        size_t cl = strlen(current);
        if (!(strncmp(name, current, cl) == 0 &&
              (name[cl] == '\0' || strcmp(name + cl, "_bucket") == 0 ||
               strcmp(name + cl, "_sum") == 0 || strcmp(name + cl, "_count") == 0)))
            fail_msg("sample %s outside its family (current: %s)", name, current);
        if (line[i] == '{') {
            i++;
            while (line[i] != '}') {
                size_t k = strspn(
                    line + i, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_");
                assert_true(k > 0);
                i += k;
                assert_int_equal(line[i], '=');
                assert_int_equal(line[i + 1], '"');
                i += 2;
                while (line[i] != '"') {
                    assert_true(line[i] != '\0');
                    if (line[i] == '\\') {
                        assert_non_null(strchr("\\\"n", line[i + 1]));
                        i++;
                    }
                    i++;
                }
                i++;
                if (line[i] == ',')
                    i++;
                else
                    assert_int_equal(line[i], '}');
            }
            i++;
        }
        assert_int_equal(line[i], ' ');
        char *num_end;
        strtod(line + i + 1, &num_end);
        if (*num_end != '\0')
            fail_msg("bad sample value: %s", line);
    }
}

/* ------------------------------------------------------------------ item 1: logs */

/* A request with a User-Agent of ua_len bytes `fill` and a wrong key on a job route, answered
 * `status`: its access line must keep every field (want) and cut only the long value. */
static void long_user_agent_case(char fill, size_t ua_len, const char *rid_value, int status,
                                 const char *const *want, size_t nwant)
{
    char *req = malloc(ua_len + 512);
    assert_non_null(req);
    int n = snprintf(req, 512,
                     "POST " REBUILD " HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
                     "X-Internal-Key: wrong-key\r\nX-Request-Id: %s\r\n"
                     "Content-Length: 0\r\nUser-Agent: ",
                     rid_value);
    assert_true(n > 0 && n < 512);
    memset(req + n, fill, ua_len);
    memcpy(req + n + ua_len, "\r\n\r\n", 5);
    struct th_response r;
    assert_true(th_raw(proc.port, req, strlen(req), &r, 10000));
    assert_int_equal(r.status, status);
    th_free(&r);
    free(req);
    char rid[96];
    snprintf(rid, sizeof rid, "requestId=%s", rid_value);
    assert_true(t_wait_until(log_has, rid, 5000));
    char *line = log_line_with(rid);
    assert_non_null(line);
    for (size_t i = 0; i < nwant; i++)
        if (!strstr(line, want[i]))
            fail_msg("access line lacks \"%s\":\n%s", want[i], line);
    assert_null(strstr(line, "(log line truncated)"));
    free(line);
}

/* The attack of the issue: 1,500 control bytes (each escaped to \u0001, 9,000 bytes in the
 * line) used to replace the whole line with "(log line truncated)". Control bytes in a field
 * value are now refused as framing (http_wire.c), and that answer's line keeps its fields. */
static void test_long_user_agent_keeps_the_access_line(void **state)
{
    (void)state;
    const char *ctl[] = {"info [INTERNAL-JOB] request method=POST path=" REBUILD " status=400 ",
                         " remote=127.0.0.1 "};
    long_user_agent_case('\x01', 1500, "obs-long-ua-1", 400, ctl, 2);
    /* A long value the framing accepts reaches authentication: the 401 keeps its reason. */
    const char *printable[] = {
        "info [INTERNAL-JOB] request method=POST path=" REBUILD " status=401 ",
        " remote=127.0.0.1 ", " reason=invalid", "(truncated ", " userAgent=\"AAAA"};
    long_user_agent_case('A', 9000, "obs-long-ua-2", 401, printable, 5);
}

/* ------------------------------------------------------------------ item 2: /metrics */

/* 300 invented methods (each a 405 on /healthz) used to create 300 series and fill the table:
 * the first-ever 503 on a job route was then never counted. */
static void test_invented_methods_do_not_exhaust_series(void **state)
{
    (void)state;
    for (int i = 0; i < 300; i++) {
        char method[24];
        snprintf(method, sizeof method, "M%d", 1515011940 + i);
        struct th_response r;
        assert_true(th_request(proc.port, method, "/healthz", NULL, NULL, &r));
        assert_int_equal(r.status, 405);
        th_free(&r);
    }
    /* JWT_SECRET is not set: 503 jwt_not_configured, on a job route. */
    struct th_response r;
    assert_true(th_request(proc.port, "GET", "/api/v1/jobs/status", "Authorization: Bearer x\r\n",
                           NULL, &r));
    assert_int_equal(r.status, 503);
    th_free(&r);
    char *b = scrape();
    check_exposition(b);
    assert_true(sample(b, "jobsd_http_requests_total{route=\"/api/v1/jobs/status\",method=\"GET\","
                          "status=\"503\"}") == 1);
    assert_true(sample(b, "jobsd_http_requests_total{route=\"/healthz\",method=\"other\","
                          "status=\"405\"}") >= 300);
    assert_null(strstr(b, "method=\"M1"));
    assert_true(sample(b, "jobsd_metrics_dropped_total") == 0);
    /* Every method label is from the closed set. */
    static const char *const known[] = {"GET\"",    "HEAD\"",    "POST\"",  "PUT\"",
                                        "DELETE\"", "OPTIONS\"", "PATCH\"", "other\""};
    for (const char *p = strstr(b, "method=\""); p; p = strstr(p + 1, "method=\"")) {
        bool ok = false;
        for (size_t i = 0; i < sizeof known / sizeof known[0]; i++)
            ok = ok || strncmp(p + 8, known[i], strlen(known[i])) == 0;
        if (!ok)
            fail_msg("method label outside the closed set: %.40s", p);
    }
    free(b);
}

/* A 405 is counted under the route whose path matched, not "unmatched". */
static void test_405_carries_its_route(void **state)
{
    (void)state;
    struct th_response r;
    assert_true(th_request(proc.port, "DELETE", "/api/v1/jobs/0b8c5f1e-0000-4000-8000-000000000001",
                           KEY_HDR, NULL, &r));
    assert_int_equal(r.status, 405);
    th_free(&r);
    char *b = scrape();
    assert_true(sample(b, "jobsd_http_requests_total{route=\"/api/v1/jobs/{id}\",method=\"DELETE\","
                          "status=\"405\"}") == 1);
    assert_true(sample(b, "jobsd_http_requests_total{route=\"unmatched\",method=\"DELETE\","
                          "status=\"405\"}") == -1);
    free(b);
}

/* /healthz answers in well under a millisecond: whole milliseconds summed to 0. */
static void test_durations_below_a_millisecond(void **state)
{
    (void)state;
    for (int i = 0; i < 5; i++) {
        struct th_response r;
        assert_true(th_request(proc.port, "GET", "/healthz", NULL, NULL, &r));
        assert_int_equal(r.status, 200);
        th_free(&r);
    }
    char *b = scrape();
    check_exposition(b);
    double sum = sample(b, "jobsd_http_request_duration_seconds_sum{route=\"/healthz\"}");
    double count = sample(b, "jobsd_http_request_duration_seconds_count{route=\"/healthz\"}");
    assert_true(count >= 5);
    if (!(sum > 0))
        fail_msg("sum of %g /healthz durations is %g", count, sum);
    assert_true(sample(b, "jobsd_http_request_duration_seconds_bucket{route=\"/healthz\","
                          "le=\"0.0001\"}") >= 0);
    free(b);
}

/* Running jobs are not in the queue: two running rows (their heartbeat in the future, so the
 * reaper leaves them) are jobsd_jobs_running, and jobsd_jobs_in_queue stays 0. */
static void test_running_jobs_are_not_queued(void **state)
{
    (void)state;
    tdb_exec(db.conn, "INSERT INTO job_logs (job_type, status, dedupe_key, worker_id, "
                      "heartbeat_at, started_at) VALUES "
                      "('metrics_aggregation', 'running', 'obs-run-1', 'elsewhere', "
                      " now() + interval '1 hour', now()), "
                      "('metrics_aggregation', 'running', 'obs-run-2', 'elsewhere', "
                      " now() + interval '1 hour', now())");
    char *b = scrape();
    check_exposition(b);
    assert_true(sample(b, "jobsd_jobs_running{job_type=\"metrics_aggregation\"}") == 2);
    assert_true(family_sum(b, "jobsd_jobs_in_queue", "job_type=\"metrics_aggregation\"") == 0);
    assert_true(sample(b, "jobsd_jobs_in_queue{job_type=\"metrics_aggregation\","
                          "status=\"queued\"}") == 0);
    free(b);
    tdb_exec(db.conn, "DELETE FROM job_logs WHERE dedupe_key LIKE 'obs-run-%'");
}

/* ------------------------------------------------------------------ item 5: query */

/* "GET path?p0=0&p1=1...&p{n-1}=... HTTP/1.1" with the key, keep-alive unless close (caller
 * frees). */
static char *many_params_request(const char *path, int n, bool close)
{
    size_t cap = (size_t)n * 16 + 512;
    char *req = malloc(cap);
    assert_non_null(req);
    size_t len = (size_t)snprintf(req, cap, "GET %s", path);
    for (int i = 0; i < n; i++)
        len += (size_t)snprintf(req + len, cap - len, "%cp%d=%d", i ? '&' : '?', i, i);
    snprintf(req + len, cap - len,
             " HTTP/1.1\r\nHost: x\r\n%s" KEY_HDR "X-Request-Id: obs-params-%d\r\n\r\n",
             close ? "Connection: close\r\n" : "", n);
    return req;
}

/* Sends a keep-alive request and reads until the server closes: the bytes (caller frees),
 * *closed_ms the time to the close, or -1 when it was still open after wait_ms. */
static char *read_until_close(const char *req, long long wait_ms, long long *closed_ms)
{
    int fd = th_connect(proc.port);
    assert_true(fd >= 0);
    long long t0 = t_now_ms();
    assert_true(th_send_all(fd, req, strlen(req)));
    size_t cap = 65536, len = 0;
    char *buf = calloc(1, cap);
    assert_non_null(buf);
    *closed_ms = -1;
    for (;;) {
        long long left = t0 + wait_ms - t_now_ms();
        if (left <= 0)
            break;
        struct pollfd pfd = {fd, POLLIN, 0};
        if (poll(&pfd, 1, (int)left) <= 0)
            break;
        ssize_t got = read(fd, buf + len, cap - 1 - len);
        if (got <= 0) {
            *closed_ms = t_now_ms() - t0;
            break;
        }
        len += (size_t)got;
        if (len >= cap - 1)
            break;
    }
    close(fd);
    return buf;
}

/* About 500 query parameters: 414 uri_too_long at once and the connection closed (it used to
 * get no answer, libmicrohttpd's pool exhausted, until the 30 s timeout). */
static void test_many_query_params_get_414_at_once(void **state)
{
    (void)state;
    const int counts[] = {500, 65, 3000};
    const char *paths[] = {"/healthz", "/api/v1/jobs/status", "/no-such-path"};
    for (size_t i = 0; i < sizeof counts / sizeof counts[0]; i++) {
        char *req = many_params_request(paths[i], counts[i], true);
        struct th_response r;
        long long t0 = t_now_ms();
        if (!th_raw(proc.port, req, strlen(req), &r, 5000))
            fail_msg("%d params: no answer within 5 s", counts[i]);
        long long took = t_now_ms() - t0;
        assert_int_equal(r.status, 414);
        assert_string_equal(th_error_code(&r), "uri_too_long");
        char *rid = th_header(&r, "X-Request-Id");
        assert_non_null(rid);
        free(rid);
        th_free(&r);
        if (took > 2000)
            fail_msg("%d params: answered after %lld ms", counts[i], took);
        free(req);
        /* Keep-alive asked, the connection is closed all the same, at once. */
        req = many_params_request(paths[i], counts[i], false);
        long long closed_ms;
        char *got = read_until_close(req, 2000, &closed_ms);
        if (strncmp(got, "HTTP/1.1 414 ", 13) != 0 || closed_ms < 0)
            fail_msg("%d params, keep-alive: closed after %lld ms, got:\n%.200s", counts[i],
                     closed_ms, got);
        free(got);
        free(req);
    }
    /* Counted under the route, logged as any answer. */
    char *b = scrape();
    assert_true(sample(b, "jobsd_http_requests_total{route=\"/healthz\",method=\"GET\","
                          "status=\"414\"}") == 2);
    free(b);
    static char rid[] = "requestId=obs-params-500";
    assert_true(t_wait_until(log_has, rid, 5000));
    char *line = log_line_with(rid);
    assert_non_null(line);
    assert_non_null(strstr(line, " path=/healthz status=414 "));
    free(line);
}

/* Every method and path: a POST with a body on a job route (answered before the body is
 * read), a method the path does not have, HEAD (no body). */
static void test_414_on_every_method(void **state)
{
    (void)state;
    char q[1024];
    size_t len = 0;
    for (int i = 0; i < 100; i++)
        len += (size_t)snprintf(q + len, sizeof q - len, "%sx", i ? "&" : "?");
    /* method, path, extra headers, body */
    const char *const reqs[][4] = {
        {"POST", REBUILD, "Content-Type: application/json\r\nContent-Length: 2\r\n", "{}"},
        {"DELETE", "/healthz", "", ""},
        {"HEAD", "/metrics", "", ""}};
    for (size_t i = 0; i < sizeof reqs / sizeof reqs[0]; i++) {
        char req[2048];
        int n = snprintf(req, sizeof req,
                         "%s %s%s HTTP/1.1\r\nHost: x\r\nConnection: close\r\n" KEY_HDR "%s\r\n%s",
                         reqs[i][0], reqs[i][1], q, reqs[i][2], reqs[i][3]);
        assert_true(n > 0 && (size_t)n < sizeof req);
        struct th_response r;
        assert_true(th_raw(proc.port, req, strlen(req), &r, 2000));
        assert_int_equal(r.status, 414);
        if (i < 2)
            assert_string_equal(th_error_code(&r), "uri_too_long");
        else
            assert_int_equal(r.body_len, 0);
        th_free(&r);
    }
}

/* Up to the limit, parameters are the handler's business: 64 on /healthz is a 200. */
static void test_query_params_up_to_the_limit(void **state)
{
    (void)state;
    char *req = many_params_request("/healthz", 64, true);
    struct th_response r;
    assert_true(th_raw(proc.port, req, strlen(req), &r, 5000));
    assert_int_equal(r.status, 200);
    th_free(&r);
    free(req);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_long_user_agent_keeps_the_access_line),
        cmocka_unit_test(test_invented_methods_do_not_exhaust_series),
        cmocka_unit_test(test_405_carries_its_route),
        cmocka_unit_test(test_durations_below_a_millisecond),
        cmocka_unit_test(test_running_jobs_are_not_queued),
        cmocka_unit_test(test_many_query_params_get_414_at_once),
        cmocka_unit_test(test_414_on_every_method),
        cmocka_unit_test(test_query_params_up_to_the_limit),
    };
    return tgroup_run("obs_hostile", tests, setup, teardown);
}
