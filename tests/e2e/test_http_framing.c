/* End-to-end tests of the header lines RFC 9112 says to reject (sections 5.1 and 5.2, 2.2;
 * RFC 9110 section 5.5): whitespace before the colon, obsolete line folding, a NUL or a bare
 * CR in a field, bare-LF line endings. Each is answered 400 bad_framing with Connection:
 * close, and the bytes after it (here a second request hidden where a body would be) are
 * never parsed as a request: the test sends everything on one socket, reads until the server
 * closes, and counts exactly one response. Well-formed requests around them (keep-alive,
 * empty and padded values, no header at all) are still served: the check has no false
 * positive on what clients send. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
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
static struct jobsd_proc proc;

/* The request hidden in the "body": answered 404 if it is ever parsed as a request. */
#define SMUGGLED     "GET /smuggled HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
#define SMUGGLED_LEN "54"

static int setup(void **state)
{
    (void)state;
    return jobsd_setup_one(&db, &proc, "framing");
}

static int teardown(void **state)
{
    (void)state;
    return jobsd_teardown_one(&db, &proc);
}

/* Sends len bytes on a new connection and reads everything until the server closes (or 10 s
 * pass: then the test fails, the server kept the connection). Returns the bytes (caller
 * frees), NUL-terminated. */
static char *exchange(const char *data, size_t len, size_t *out_len)
{
    int fd = th_connect(proc.port);
    assert_true(fd >= 0);
    assert_true(th_send_all(fd, data, len));
    size_t cap = 65536, n = 0;
    char *buf = malloc(cap + 1);
    assert_non_null(buf);
    long long deadline = t_now_ms() + 10000 * t_scale();
    for (;;) {
        long long left = deadline - t_now_ms();
        if (left <= 0)
            fail_msg("the server kept the connection open after: %.*s", (int)n, buf);
        struct pollfd pfd = {fd, POLLIN, 0};
        if (poll(&pfd, 1, (int)left) <= 0)
            continue;
        ssize_t got = recv(fd, buf + n, cap - n, 0);
        if (got <= 0)
            break;
        n += (size_t)got;
        assert_true(n < cap);
    }
    close(fd);
    buf[n] = '\0';
    *out_len = n;
    return buf;
}

static size_t count_responses(const char *all)
{
    size_t k = 0;
    for (const char *p = all; (p = strstr(p, "HTTP/1.1 ")) != NULL; p++)
        if (p == all || p[-1] == '\n' || p[-1] == '}')
            k++;
    return k;
}

/* One response, 400 bad_framing, Connection: close, nothing parsed after it. */
static void expect_rejected(const char *what, const char *data, size_t len)
{
    size_t n;
    char *all = exchange(data, len, &n);
    if (count_responses(all) != 1 || strncmp(all, "HTTP/1.1 400 ", 13) != 0 ||
        !strstr(all, "\"bad_framing\"") || !strstr(all, "\r\nConnection: close\r\n") ||
        strstr(all, "smuggled"))
        fail_msg("%s: want one 400 bad_framing with Connection: close, got %zu response(s):\n%s",
                 what, count_responses(all), all);
    free(all);
    /* Once more through the recording client, for the contract stage. */
    struct th_response r;
    assert_true(th_raw(proc.port, data, len, &r, 10000));
    assert_int_equal(r.status, 400);
    th_free(&r);
}

#define REJECT(what, literal) expect_rejected(what, literal, sizeof(literal) - 1)

static void test_whitespace_before_colon(void **state)
{
    (void)state;
    REJECT("space before the colon",
           "GET /healthz HTTP/1.1\r\nHost: x\r\nContent-Length : " SMUGGLED_LEN
           "\r\n\r\n" SMUGGLED);
    REJECT("tab before the colon",
           "GET /healthz HTTP/1.1\r\nHost: x\r\nContent-Length\t: " SMUGGLED_LEN
           "\r\n\r\n" SMUGGLED);
    REJECT("space before the colon (Transfer-Encoding)",
           "GET /healthz HTTP/1.1\r\nHost: x\r\nTransfer-Encoding : chunked\r\n\r\n"
           "0\r\n\r\n" SMUGGLED);
    REJECT("space in a name", "GET /healthz HTTP/1.1\r\nHost: x\r\nX Y: z\r\n\r\n" SMUGGLED);
}

static void test_obsolete_line_folding(void **state)
{
    (void)state;
    REJECT("folded Content-Length",
           "GET /healthz HTTP/1.1\r\nHost: x\r\nContent-Length:\r\n " SMUGGLED_LEN
           "\r\n\r\n" SMUGGLED);
    REJECT("folded Transfer-Encoding",
           "GET /healthz HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chun\r\n\tked\r\n\r\n"
           "0\r\n\r\n" SMUGGLED);
    REJECT("folded other header",
           "GET /healthz HTTP/1.1\r\nHost: x\r\nX-Folded: a\r\n b\r\n\r\n" SMUGGLED);
}

static void test_nul_in_a_field(void **state)
{
    (void)state;
    /* The metrics route takes the internal key: with junk after a NUL it is not the key. */
    REJECT("NUL after the key", "GET /metrics HTTP/1.1\r\nHost: x\r\nX-Internal-Key: " TEST_KEY
                                "\0junk\r\n\r\n" SMUGGLED);
    REJECT("NUL in Content-Length",
           "GET /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: 0\0" SMUGGLED_LEN
           "\r\n\r\n" SMUGGLED);
    /* A NUL in a name hides the colon: libmicrohttpd answers its own 400 page and closes. */
    static const char name[] = "GET /healthz HTTP/1.1\r\nHost: x\r\nX-A\0b: c\r\n\r\n" SMUGGLED;
    size_t n;
    char *all = exchange(name, sizeof name - 1, &n);
    if (count_responses(all) != 1 || strncmp(all, "HTTP/1.1 400 ", 13) != 0 ||
        strstr(all, "smuggled"))
        fail_msg("NUL in a name: want one 400, got:\n%s", all);
    free(all);
}

static void test_bare_cr(void **state)
{
    (void)state;
    REJECT("bare CR in a value", "GET /healthz HTTP/1.1\r\nHost: x\r\nX-A: b\rc\r\n\r\n" SMUGGLED);
    REJECT("bare CR ending a line",
           "GET /healthz HTTP/1.1\r\nHost: x\rContent-Length: " SMUGGLED_LEN "\r\n\r\n" SMUGGLED);
}

static void test_bare_lf(void **state)
{
    (void)state;
    REJECT("bare LF everywhere",
           "GET /healthz HTTP/1.1\nHost: x\nContent-Length: " SMUGGLED_LEN "\n\n" SMUGGLED);
    REJECT("bare LF after the request line", "GET /healthz HTTP/1.1\nHost: x\r\n\r\n" SMUGGLED);
    REJECT("bare LF after a header", "GET /healthz HTTP/1.1\r\nHost: x\nX-A: b\r\n\r\n" SMUGGLED);
    REJECT("bare LF ending the block", "GET /healthz HTTP/1.1\r\nHost: x\r\n\n" SMUGGLED);
}

/* Refused before routing would keep the documented order (404 → 405 → framing 400): an
 * unknown path is still 404, but the connection is closed all the same. */
static void test_unknown_path_still_closes(void **state)
{
    (void)state;
    static const char req[] =
        "GET /nope HTTP/1.1\r\nHost: x\r\nContent-Length : " SMUGGLED_LEN "\r\n\r\n" SMUGGLED;
    size_t n;
    char *all = exchange(req, sizeof req - 1, &n);
    if (count_responses(all) != 1 || strncmp(all, "HTTP/1.1 404 ", 13) != 0 ||
        !strstr(all, "\r\nConnection: close\r\n"))
        fail_msg("want one 404 with Connection: close, got:\n%s", all);
    free(all);
}

/* What clients send is still served, two requests on one connection included. */
static void test_well_formed_still_served(void **state)
{
    (void)state;
    static const char two[] = "GET /healthz HTTP/1.1\r\nHost: x\r\nX-Empty:\r\nX-Pad:   v  \r\n"
                              "X-Tab:\tv\r\nAccept: */*\r\n\r\n"
                              "GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
    size_t n;
    char *all = exchange(two, sizeof two - 1, &n);
    if (count_responses(all) != 2 || strncmp(all, "HTTP/1.1 200 ", 13) != 0 ||
        !strstr(all + 13, "HTTP/1.1 200 "))
        fail_msg("want two 200 on one connection, got:\n%s", all);
    free(all);
    struct th_response r;
    static const char bare[] = "GET /healthz HTTP/1.0\r\n\r\n";
    assert_true(th_raw(proc.port, bare, sizeof bare - 1, &r, 10000));
    assert_int_equal(r.status, 200);
    th_free(&r);
    static const char key[] =
        "GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\nX-Internal-Key: " TEST_KEY
        "\r\n\r\n";
    assert_true(th_raw(proc.port, key, sizeof key - 1, &r, 10000));
    assert_int_equal(r.status, 200);
    th_free(&r);
    /* Sent a few bytes at a time: the header block is parsed as it arrives. */
    static const char slow[] = "GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
                               "User-Agent: a-slow-client/1.0\r\nAccept: application/json\r\n\r\n";
    assert_true(th_raw_ex(proc.port, slow, sizeof slow - 1, TH_TRICKLE, &r, 10000));
    assert_int_equal(r.status, 200);
    th_free(&r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_well_formed_still_served),
        cmocka_unit_test(test_whitespace_before_colon),
        cmocka_unit_test(test_obsolete_line_folding),
        cmocka_unit_test(test_nul_in_a_field),
        cmocka_unit_test(test_bare_cr),
        cmocka_unit_test(test_bare_lf),
        cmocka_unit_test(test_unknown_path_still_closes),
    };
    return tgroup_run("http_framing", tests, setup, teardown);
}
