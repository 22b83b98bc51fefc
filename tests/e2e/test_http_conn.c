/* End-to-end tests of what bounds slow and idle connections (issue 19 item 7; README
 * "Connections: limits and deadlines"; the full-size figures are bench/slow.sh's):
 *  - a client trickling its headers one byte at a time is closed HEADER_TIMEOUT_SECONDS after
 *    it connected (libmicrohttpd's inactivity timeout never fires on it);
 *  - MAX_CONNECTIONS such clients do not keep another client waiting past that deadline;
 *  - under pressure (half of MAX_CONNECTIONS open) an idle keep-alive connection is closed
 *    after 2 s, and not before pressure;
 *  - by default one address holds at most PER_IP_CONNECTIONS=32 connections.
 * Two jobsd: the defaults, and HEADER_TIMEOUT_SECONDS=1 with MAX_CONNECTIONS=8. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "testdb.h"
#include "testgroup.h"
#include "testhttp.h"
#include "testproc.h"
#include "testtime.h"

static struct testdb db;
static struct jobsd_proc dflt, tight;

#define TIGHT_MAX 8

static int setup(void **state)
{
    (void)state;
    testdb_create(&db, "httpconn");
    static const char *const env[] = {"HEADER_TIMEOUT_SECONDS=1", "MAX_CONNECTIONS=8",
                                      "PER_IP_CONNECTIONS=0", "HTTP_THREADS=1", NULL};
    if (!jobsd_start(&dflt, db.url, NULL))
        return -1;
    return jobsd_start(&tight, db.url, env) ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    int rc1 = jobsd_stop(&dflt, 20000);
    int rc2 = jobsd_stop(&tight, 20000);
    testdb_drop(&db);
    return rc1 == 0 && rc2 == 0 ? 0 : -1;
}

/* Has the server closed fd (end of input or reset)? Waits up to ms. Data is discarded. */
static bool closed_within(int fd, long long ms)
{
    long long deadline = t_now_ms() + ms;
    for (;;) {
        long long left = deadline - t_now_ms();
        if (left <= 0)
            return false;
        struct pollfd pfd = {fd, POLLIN, 0};
        if (poll(&pfd, 1, (int)left) <= 0)
            continue;
        char buf[4096];
        ssize_t n = recv(fd, buf, sizeof buf, MSG_DONTWAIT);
        if (n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR))
            return true;
    }
}

static const char PART[] = "GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: ";

/* A byte every 200 ms for ms; false when the server closed the connection meanwhile. */
static bool trickle(int fd, long long ms)
{
    long long end = t_now_ms() + ms;
    while (t_now_ms() < end) {
        if (send(fd, "a", 1, MSG_NOSIGNAL) != 1)
            return false;
        if (closed_within(fd, 200))
            return false;
    }
    return true;
}

static void test_trickling_headers_are_cut(void **state)
{
    (void)state;
    int fd = th_connect(tight.port);
    assert_true(fd >= 0);
    long long t0 = t_now_ms();
    assert_true(th_send_all(fd, PART, sizeof PART - 1));
    bool alive = trickle(fd, 4000 * t_scale());
    long long took = t_now_ms() - t0;
    close(fd);
    if (alive)
        fail_msg("a client trickling its headers was still connected after %lld ms "
                 "(HEADER_TIMEOUT_SECONDS=1)",
                 took);
    if (took < 900)
        fail_msg("closed after %lld ms, before HEADER_TIMEOUT_SECONDS=1", took);
}

/* MAX_CONNECTIONS trickling clients, then one more client: served once the deadline passed. */
static void test_full_of_tricklers_still_serves(void **state)
{
    (void)state;
    int fds[TIGHT_MAX];
    for (int i = 0; i < TIGHT_MAX; i++) {
        fds[i] = th_connect(tight.port);
        assert_true(fds[i] >= 0);
        assert_true(th_send_all(fds[i], PART, sizeof PART - 1));
    }
    t_sleep_ms(200);
    long long t0 = t_now_ms();
    struct th_response r;
    assert_true(th_request(tight.port, "GET", "/healthz", NULL, NULL, &r));
    long long took = t_now_ms() - t0;
    assert_int_equal(r.status, 200);
    th_free(&r);
    for (int i = 0; i < TIGHT_MAX; i++)
        close(fds[i]);
    if (took > 3000 * t_scale())
        fail_msg("GET /healthz took %lld ms while %d clients trickled", took, TIGHT_MAX);
}

/* A kept-alive connection that served one request. */
static int keep_alive_conn(unsigned port)
{
    int fd = th_connect(port);
    assert_true(fd >= 0);
    static const char req[] = "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n";
    assert_true(th_send_all(fd, req, sizeof req - 1));
    char buf[2048] = "";
    size_t n = 0;
    while (!strstr(buf, "{\"status\"") && n < sizeof buf - 1) {
        struct pollfd pfd = {fd, POLLIN, 0};
        assert_true(poll(&pfd, 1, (int)(5000 * t_scale())) == 1);
        ssize_t got = recv(fd, buf + n, sizeof buf - 1 - n, 0);
        assert_true(got > 0);
        n += (size_t)got;
        buf[n] = '\0';
    }
    return fd;
}

static void test_idle_keep_alive_shortened_under_pressure(void **state)
{
    (void)state;
    int k = keep_alive_conn(tight.port);
    /* No pressure: idle 2.5 s and still open (the idle timeout is 30 s). */
    if (closed_within(k, 2500))
        fail_msg("an idle keep-alive connection was closed within 2.5 s without pressure");
    /* Half of MAX_CONNECTIONS open (with k): idle keep-alive connections go after 2 s. */
    int fds[TIGHT_MAX / 2];
    for (int i = 0; i < TIGHT_MAX / 2; i++) {
        fds[i] = th_connect(tight.port);
        assert_true(fds[i] >= 0);
    }
    bool cut = closed_within(k, 1500 * t_scale());
    close(k);
    for (int i = 0; i < TIGHT_MAX / 2; i++)
        close(fds[i]);
    if (!cut)
        fail_msg("an idle keep-alive connection stayed open under pressure");
}

static bool served_again(void *ctx)
{
    (void)ctx;
    struct th_response r;
    static const char req[] = "GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
    if (!th_raw(dflt.port, req, sizeof req - 1, &r, 2000))
        return false;
    bool ok = r.status == 200;
    th_free(&r);
    return ok;
}

/* The default per-address limit: 32 connections from 127.0.0.1, the 33rd is closed at once. */
static void test_per_address_limit_by_default(void **state)
{
    (void)state;
    int fds[33];
    for (int i = 0; i < 32; i++) {
        fds[i] = th_connect(dflt.port);
        assert_true(fds[i] >= 0);
    }
    t_sleep_ms(300); /* accepted by now */
    fds[32] = th_connect(dflt.port);
    assert_true(fds[32] >= 0);
    bool refused = closed_within(fds[32], 2000 * t_scale());
    bool first_open = !closed_within(fds[0], 10);
    for (int i = 0; i < 33; i++)
        close(fds[i]);
    if (!refused)
        fail_msg("a 33rd connection from one address was kept (PER_IP_CONNECTIONS=32)");
    assert_true(first_open);
    /* Once libmicrohttpd has seen them go, the address is served again. */
    assert_true(t_wait_until(served_again, NULL, 3000));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_trickling_headers_are_cut),
        cmocka_unit_test(test_full_of_tricklers_still_serves),
        cmocka_unit_test(test_idle_keep_alive_shortened_under_pressure),
        cmocka_unit_test(test_per_address_limit_by_default),
    };
    return tgroup_run("http_conn", tests, setup, teardown);
}
