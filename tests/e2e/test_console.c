/* End-to-end tests of the operator console's static files (issue 21): GET and HEAD of
 * /console, /console/app.js and /console/app.css from a real jobsd, without credentials: the
 * right media type, the strict Content-Security-Policy, revalidation caching (ETag, no-cache,
 * 304 on If-None-Match), no inline script or style and nothing from another origin in the
 * page, and all three together under 150 KB. The page's behaviour in a browser is
 * tests/browser/console.test.mjs (scripts/test.sh's browser stage). */
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

#define CSP                                                                                        \
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "              \
    "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

static struct testdb db;
static struct jobsd_proc proc;

static int setup(void **state)
{
    (void)state;
    return jobsd_setup_one(&db, &proc, "console");
}

static int teardown(void **state)
{
    (void)state;
    return jobsd_teardown_one(&db, &proc);
}

static void assert_header(const struct th_response *r, const char *name, const char *want)
{
    char *v = th_header(r, name);
    if (!v || strcmp(v, want) != 0)
        fail_msg("%s: got \"%s\", want \"%s\"", name, v ? v : "(absent)", want);
    free(v);
}

static const struct {
    const char *path;
    const char *ctype;
    const char *marker;
} ASSETS[] = {
    {"/console", "text/html; charset=utf-8", "<script src=\"/console/app.js\""},
    {"/console/app.js", "text/javascript; charset=utf-8", "/operator/fleet"},
    {"/console/app.css", "text/css; charset=utf-8", ":focus-visible"},
};

/* Each file: 200 without credentials, its media type, the CSP and the caching headers, its
 * content; HEAD the same headers and no body; If-None-Match with its ETag a 304. */
static void test_assets_served_with_csp(void **state)
{
    (void)state;
    size_t total = 0;
    for (size_t i = 0; i < sizeof ASSETS / sizeof ASSETS[0]; i++) {
        struct th_response r;
        assert_true(th_request(proc.port, "GET", ASSETS[i].path, NULL, NULL, &r));
        if (r.status != 200)
            fail_msg("GET %s: %d %s", ASSETS[i].path, r.status, r.body);
        assert_header(&r, "Content-Type", ASSETS[i].ctype);
        assert_header(&r, "Content-Security-Policy", CSP);
        assert_header(&r, "X-Content-Type-Options", "nosniff");
        assert_header(&r, "Cache-Control", "no-cache");
        if (!strstr(r.body, ASSETS[i].marker))
            fail_msg("GET %s: no \"%s\" in the body", ASSETS[i].path, ASSETS[i].marker);
        total += r.body_len;
        char *etag = th_header(&r, "ETag");
        assert_non_null(etag);
        th_free(&r);

        assert_true(th_request(proc.port, "HEAD", ASSETS[i].path, NULL, NULL, &r));
        assert_int_equal(r.status, 200);
        assert_header(&r, "Content-Security-Policy", CSP);
        assert_int_equal(r.body_len, 0);
        th_free(&r);

        char hdr[128];
        snprintf(hdr, sizeof hdr, "If-None-Match: %s\r\n", etag);
        assert_true(th_request(proc.port, "GET", ASSETS[i].path, hdr, NULL, &r));
        assert_int_equal(r.status, 304);
        assert_int_equal(r.body_len, 0);
        assert_header(&r, "ETag", etag);
        th_free(&r);
        free(etag);
    }
    /* Issue 21: the page weighs < 150 KB uncompressed, all assets. */
    if (total >= 150 * 1024)
        fail_msg("the console weighs %zu bytes (>= 150 KB)", total);
    printf("console assets: %zu bytes in all\n", total);
}

/* No inline script or style (the CSP would block them: the page would break), no resource
 * from another origin. */
static void test_page_has_nothing_inline_or_remote(void **state)
{
    (void)state;
    struct th_response r;
    assert_true(th_request(proc.port, "GET", "/console", NULL, NULL, &r));
    assert_int_equal(r.status, 200);
    for (const char *p = strstr(r.body, "<script"); p; p = strstr(p + 1, "<script"))
        if (strncmp(p, "<script src=\"/console/", 22) != 0)
            fail_msg("an inline or remote script: %.60s", p);
    static const char *const banned[] = {"style=",      "<style", "src=\"http",
                                         "href=\"http", "//cdn",  NULL};
    for (const char *const *b = banned; *b; b++)
        if (strstr(r.body, *b))
            fail_msg("/console contains \"%s\"", *b);
    /* No event handler attribute (" onclick=" and the like). */
    for (const char *p = strstr(r.body, " on"); p; p = strstr(p + 1, " on")) {
        size_t n = strspn(p + 3, "abcdefghijklmnopqrstuvwxyz");
        if (n > 0 && p[3 + n] == '=')
            fail_msg("an inline event handler: %.40s", p);
    }
    th_free(&r);
}

/* Only the three files: anything else under /console is a JSON 404, a POST a 405; the API
 * keeps its no-store. */
static void test_other_paths(void **state)
{
    (void)state;
    struct th_response r;
    assert_true(th_request(proc.port, "GET", "/console/other.js", NULL, NULL, &r));
    assert_int_equal(r.status, 404);
    assert_string_equal(th_error_code(&r), "not_found");
    th_free(&r);
    assert_true(th_request(proc.port, "POST", "/console", NULL, "{}", &r));
    assert_int_equal(r.status, 405);
    th_free(&r);
    assert_true(th_request(proc.port, "GET", "/healthz", NULL, NULL, &r));
    assert_int_equal(r.status, 200);
    assert_header(&r, "Cache-Control", "no-store");
    th_free(&r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_assets_served_with_csp),
                                       cmocka_unit_test(test_page_has_nothing_inline_or_remote),
                                       cmocka_unit_test(test_other_paths)};
    return tgroup_run("console", tests, setup, teardown);
}
