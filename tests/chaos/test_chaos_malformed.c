/* Chaos: a randomized sweep of malformed requests on every route (SECURITY.md target 6).
 * tests/e2e/test_http.c checks each case of SPEC section 2 one by one; this sends SWEEP
 * requests drawn at random from the same families with random details (methods, paths,
 * framing, credentials, sizes, media types, bodies, fields, query strings, raw HTTP damage,
 * X-Request-Id values), some of them trickled a few bytes at a time, some while other
 * connections stall half-way through their headers. Asserted:
 *  - every request jobsd answers gets exactly its specified status and error code, in the
 *    error envelope (JSON, success false, requestId = X-Request-Id, the caller's id echoed
 *    when valid, Allow on 405, WWW-Authenticate on a JWT route's 401, the same 401 message);
 *  - requests libmicrohttpd refuses before jobsd sees them (SPEC section 2 exempts them) get
 *    one of 400/413/414/431 (505 for an unknown HTTP version) or a closed connection, and
 *    only the kinds of damage that can cause that;
 *  - nothing answers 5xx, nothing hangs, the server keeps answering; and, checked by the
 *    group's teardown once every test ran, job_logs and every data table are unchanged,
 *    jobsd logged no "bug:" and exits 0.
 * JOBSD_CHAOS_SEED fixes the sweep (the seed used is printed), JOBSD_CHAOS_SWEEP its size. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "chaos.h"
#include "testdb.h"
#include "testgroup.h"
#include "testhttp.h"
#include "testproc.h"
#include "testtime.h"
#include "jobsd/jwt.h"

#define TENANT     "5e5e5e5e-0000-4000-8000-00000000000e"
#define SECRET     "sweep-jwt-secret-0123456789abcdef-0123456789"
#define MAX_BODY   16384
#define SYNC_PATH  "/api/v1/jobs/sync-mercadolivre"
#define STATUS     "/api/v1/jobs/status"
#define STATS      "/api/v1/jobs/stats"
#define JOB_PREFIX "/api/v1/jobs/"
#define KEY_HDR    "X-Internal-Key: " TEST_KEY "\r\n"
#define CT_JSON    "Content-Type: application/json\r\n"

static struct testdb db;
static struct jobsd_proc proc;
static char *snapshot_before;
static char token[1024], token_wrong_secret[1024], token_expired[1024];

/* ------------------------------------------------------------------ random */

static uint64_t rng_state;

static uint64_t rnd(void)
{
    uint64_t z = (rng_state += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static unsigned rn(unsigned n)
{
    return n ? (unsigned)(rnd() % n) : 0;
}

static bool chance(unsigned percent)
{
    return rn(100) < percent;
}

#define PICK(arr) (arr[rn(sizeof(arr) / sizeof(arr[0]))])

/* n random characters of set into out (NUL-terminated). */
static void rstr(char *out, size_t n, const char *set)
{
    size_t k = strlen(set);
    for (size_t i = 0; i < n; i++)
        out[i] = set[rn((unsigned)k)];
    out[n] = '\0';
}

#define ALNUM   "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
#define PRINT   ALNUM "!#$%&'()*+,-./:;<=>?@[]^_`{|}~ \""
#define RID_SET ALNUM "._-"

/* ------------------------------------------------------------------ a request and its verdict */

/* What may come back. jobsd's own answer is recognised by its X-Request-Id header. */
struct expect {
    int status;        /* jobsd's answer (0: jobsd must not answer) */
    const char *code;  /* its error.code (NULL: a success) */
    const char *allow; /* 405: the Allow header */
    bool bearer;       /* 401 on a JWT route: WWW-Authenticate */
    unsigned mhd;      /* libmicrohttpd's own answers allowed: M_* */
};

#define M_400   0x01u
#define M_413   0x02u
#define M_414   0x04u
#define M_431   0x08u
#define M_505   0x10u
#define M_CLOSE 0x20u /* closed without an answer */
/* No answer within 200 ms, the connection still open: an incomplete request whose sender
 * half-closed; libmicrohttpd 0.9.75 does not always notice the end of input and keeps such a
 * connection until its timeout (30 s), without holding a thread. */
#define M_QUIET 0x40u

struct req {
    char *data;
    size_t len, cap;
    unsigned flags; /* TH_HALF_CLOSE, TH_TRICKLE */
    char family[48];
    char rid[80]; /* the X-Request-Id sent ("" = none) */
    bool rid_valid;
    struct expect want;
};

static void req_init(struct req *q, const char *family)
{
    memset(q, 0, sizeof *q);
    q->cap = 4096;
    q->data = malloc(q->cap);
    snprintf(q->family, sizeof q->family, "%s", family);
}

static void add(struct req *q, const void *p, size_t n)
{
    while (q->len + n + 1 > q->cap) {
        q->cap *= 2;
        q->data = realloc(q->data, q->cap);
    }
    memcpy(q->data + q->len, p, n);
    q->len += n;
    q->data[q->len] = '\0';
}

static void adds(struct req *q, const char *s)
{
    add(q, s, strlen(s));
}

static void addf(struct req *q, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void addf(struct req *q, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *s = NULL;
    int n = vasprintf(&s, fmt, ap);
    va_end(ap);
    assert_true(n >= 0);
    add(q, s, (size_t)n);
    free(s);
}

static bool valid_rid(const char *s)
{
    size_t n = strlen(s);
    if (n < 1 || n > 64)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!strchr(RID_SET, s[i]))
            return false;
    return true;
}

/* Request line, Host, Connection: close, maybe an X-Request-Id and some harmless headers. */
static void start(struct req *q, const char *method, const char *target)
{
    addf(q, "%s %s HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n", method, target);
    unsigned r = rn(10);
    if (r < 3) {
        char id[65];
        rstr(id, 1 + rn(64), RID_SET);
        snprintf(q->rid, sizeof q->rid, "%s", id);
    } else if (r == 3) {
        static const char *const bad[] = {"a/b",       "x y",      "id@host",
                                          "tab\there", "quote\"d", "semi;colon"};
        char id[80];
        if (chance(50))
            rstr(id, 65 + rn(10), RID_SET); /* too long */
        else
            snprintf(id, sizeof id, "%s", PICK(bad));
        snprintf(q->rid, sizeof q->rid, "%s", id);
    }
    if (q->rid[0]) {
        q->rid_valid = valid_rid(q->rid);
        addf(q, "X-Request-Id: %s\r\n", q->rid);
    }
    static const char *const noise[] = {
        "User-Agent: sweep/1.0\r\n", "Accept: */*\r\n", "Accept-Encoding: gzip\r\n",
        "X-Forwarded-For: 10.0.0.1\r\n", "Cache-Control: no-cache\r\n"};
    for (unsigned i = rn(3); i > 0; i--)
        adds(q, PICK(noise));
}

/* End of headers and a body with its Content-Length (body may be NULL: no length). */
static void finish(struct req *q, const char *body, size_t blen)
{
    if (body)
        addf(q, "Content-Length: %zu\r\n", blen);
    adds(q, "\r\n");
    if (body)
        add(q, body, blen);
}

static void expect_jobsd(struct req *q, int status, const char *code)
{
    q->want.status = status;
    q->want.code = code;
}

/* ------------------------------------------------------------------ routes */

struct route {
    const char *method;
    const char *path; /* NULL: /api/v1/jobs/{id} */
    bool body;
    enum { G_NONE, G_KEY, G_JWT, G_EITHER, G_METRICS } guard;
};

static const struct route ROUTES[] = {
    {"POST", CHAOS_REBUILD, true, G_KEY}, {"POST", SYNC_PATH, true, G_KEY},
    {"GET", STATUS, false, G_JWT},        {"GET", STATS, false, G_JWT},
    {"GET", NULL, false, G_EITHER},       {"GET", "/healthz", false, G_NONE},
    {"GET", "/readyz", false, G_NONE},    {"GET", "/metrics", false, G_METRICS},
};
#define NROUTES (sizeof ROUTES / sizeof ROUTES[0])

static void random_uuid(char out[37])
{
    static const char hex[] = "0123456789abcdef";
    for (int i = 0; i < 36; i++)
        out[i] = (i == 8 || i == 13 || i == 18 || i == 23) ? '-' : hex[rn(16)];
    out[14] = '4';
    out[36] = '\0';
}

/* A path for the route (a random id segment for {id}). */
static void route_path(const struct route *rt, char *out, size_t cap)
{
    if (rt->path) {
        snprintf(out, cap, "%s", rt->path);
        return;
    }
    char seg[48];
    if (chance(60))
        random_uuid(seg);
    else
        rstr(seg, 1 + rn(40), ALNUM "-_.~");
    if (strcmp(seg, "status") == 0 || strcmp(seg, "stats") == 0)
        snprintf(seg, sizeof seg, "x");
    snprintf(out, cap, JOB_PREFIX "%s", seg);
}

static const char *allow_of(const struct route *rt)
{
    return strcmp(rt->method, "POST") == 0 ? "POST" : "GET, HEAD";
}

static void valid_credentials(struct req *q, const struct route *rt)
{
    switch (rt->guard) {
    case G_KEY:
    case G_EITHER:
    case G_METRICS:
        if (rt->guard == G_METRICS && chance(30))
            adds(q, "Authorization: Bearer " TEST_KEY "\r\n");
        else
            adds(q, KEY_HDR);
        break;
    case G_JWT:
        addf(q, "Authorization: %s %s\r\n", chance(50) ? "Bearer" : "bEaReR", token);
        break;
    case G_NONE:
        break;
    }
}

/* A valid rebuild body for the tenant. */
static void good_body(char *out, size_t cap, const char *tenant)
{
    snprintf(out, cap, "{\"tenantId\": \"%s\", \"from\": \"2024-01-01\", \"to\": \"2024-01-31\"}",
             tenant);
}

/* ------------------------------------------------------------------ families */

static const char *const METHODS[] = {"GET",   "POST",     "PUT",  "DELETE", "PATCH", "OPTIONS",
                                      "TRACE", "PROPFIND", "BREW", "get",    "post"};

static void random_method(char *out, size_t cap)
{
    if (chance(80)) {
        snprintf(out, cap, "%s", PICK(METHODS));
    } else {
        char m[12];
        rstr(m, 3 + rn(8), "ABCDEFGIJKLMNOPQRSTUVWXYZ"); /* no H: never HEAD */
        snprintf(out, cap, "%s", m);
    }
}

static void fam_unknown_path(struct req *q)
{
    req_init(q, "unknown path");
    static const char *const prefixes[] = {"/zz",
                                           "/api/v2/jobs/",
                                           "/api/v1/jobs/x/y/",
                                           "/healthz/",
                                           "/HEALTHZ",
                                           "/readyz.",
                                           "/metrics/",
                                           "/api/v1/jobs/status/",
                                           "/api/v1/jobs/rebuild-daily-metrics/",
                                           "/.well-known/",
                                           "//"};
    char tail[80];
    rstr(tail, rn(60), ALNUM "-._~!$&'()*+,;=:@/");
    char target[256];
    snprintf(target, sizeof target, "%s%s", PICK(prefixes), tail);
    if (chance(30)) {
        char enc[4];
        snprintf(enc, sizeof enc, "%%%02X", rn(256));
        strncat(target, enc, sizeof target - strlen(target) - 1);
    }
    if (chance(20)) {
        char qs[40];
        rstr(qs, 1 + rn(30), ALNUM "=&");
        strncat(target, "?", sizeof target - strlen(target) - 1);
        strncat(target, qs, sizeof target - strlen(target) - 1);
    }
    char method[16];
    random_method(method, sizeof method);
    start(q, method, target);
    if (chance(30))
        adds(q, KEY_HDR);
    if (chance(30)) {
        /* Even a framing error is a 404 first. */
        adds(q, "Content-Length: 2\r\nContent-Length: 3\r\n\r\n{} ");
    } else {
        finish(q, chance(30) ? "{}" : NULL, 2);
    }
    expect_jobsd(q, 404, "not_found");
}

static void fam_wrong_method(struct req *q)
{
    req_init(q, "wrong method");
    const struct route *rt = &ROUTES[rn(NROUTES)];
    char method[16];
    do
        random_method(method, sizeof method);
    while (strcmp(method, rt->method) == 0);
    char path[128];
    route_path(rt, path, sizeof path);
    start(q, method, path);
    if (chance(50))
        valid_credentials(q, rt);
    if (chance(30))
        adds(q, "Transfer-Encoding: gzip\r\nContent-Length: 5\r\n\r\n"); /* 405 first */
    else
        finish(q, chance(40) ? "{\"tenantId\": 1}" : NULL, 15);
    expect_jobsd(q, 405, "method_not_allowed");
    q->want.allow = allow_of(rt);
}

static void fam_framing(struct req *q)
{
    req_init(q, "bad framing");
    const struct route *rt = &ROUTES[rn(NROUTES)];
    char path[128];
    route_path(rt, path, sizeof path);
    start(q, rt->method, path);
    switch (rn(3)) {
    case 0:
        valid_credentials(q, rt);
        break;
    case 1:
        adds(q, "X-Internal-Key: wrong-key-wrong-key-wrong-key-000\r\n");
        break;
    default:
        break;
    }
    adds(q, CT_JSON);
    static const char *const te[] = {"gzip",          "identity",      "deflate", "compress",
                                     "gzip, chunked", "chunked, gzip", "br",      "x-custom"};
    switch (rn(6)) {
    case 0:
        adds(q, "Content-Length: 2\r\nContent-Length: 2\r\n\r\n{}");
        break;
    case 1: {
        unsigned a = rn(100), b = a + 1 + rn(100);
        addf(q, "Content-Length: %u\r\ncontent-length: %u\r\n\r\n", a, b);
        break;
    }
    case 2:
        adds(q, "Transfer-Encoding: chunked\r\nContent-Length: 2\r\n\r\n2\r\n{}\r\n0\r\n\r\n");
        break;
    case 3:
        adds(q, "Content-Length: 7\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n");
        break;
    case 4:
        addf(q, "Transfer-Encoding: %s\r\n\r\n", PICK(te));
        break;
    default:
        adds(q, "Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n");
        break;
    }
    expect_jobsd(q, 400, "bad_framing");
}

/* A wrong internal key: empty, random, one character off, cut, extended, repeated, ... */
static void wrong_key(struct req *q)
{
    char k[160];
    switch (rn(8)) {
    case 0:
        adds(q, "X-Internal-Key:\r\n");
        return;
    case 1:
        rstr(k, 1 + rn(120), ALNUM "!#$%&'()*+,-./:;<=>?@[]^_`{|}~");
        break;
    case 2: {
        snprintf(k, sizeof k, "%s", TEST_KEY);
        size_t i = rn((unsigned)strlen(k));
        k[i] = k[i] == 'x' ? 'y' : 'x';
        break;
    }
    case 3:
        snprintf(k, sizeof k, "%.*s", (int)rn((unsigned)strlen(TEST_KEY)), TEST_KEY);
        if (!k[0])
            snprintf(k, sizeof k, "t");
        break;
    case 4: {
        char extra[8];
        rstr(extra, 1 + rn(6), ALNUM);
        snprintf(k, sizeof k, "%s%s", TEST_KEY, extra);
        break;
    }
    case 5:
        adds(q, KEY_HDR KEY_HDR);
        return;
    case 6:
        snprintf(k, sizeof k, "%s", TEST_KEY_PREVIOUS);
        break;
    default:
        /* Upper-cased: keys are compared byte for byte. */
        snprintf(k, sizeof k, "%s", TEST_KEY);
        for (char *p = k; *p; p++)
            if (*p >= 'a' && *p <= 'z')
                *p = (char)(*p - 32);
        break;
    }
    addf(q, "%s: %s\r\n", chance(20) ? "x-internal-key" : "X-Internal-Key", k);
}

static void fam_unauthorized_key(struct req *q)
{
    req_init(q, "401 internal key");
    static const struct route *rts[] = {&ROUTES[0], &ROUTES[1], &ROUTES[7], &ROUTES[4]};
    const struct route *rt = PICK(rts);
    char path[128];
    route_path(rt, path, sizeof path);
    start(q, rt->method, path);
    if (rt->guard == G_EITHER || chance(80))
        wrong_key(q); /* a missing key on {id} would be the JWT's 401 */
    else if (rt->guard == G_KEY && chance(50))
        adds(q, "Authorization: Bearer " TEST_KEY "\r\n");
    else if (rt->guard == G_METRICS)
        adds(q, "Authorization: Bearer not-the-key\r\n");
    /* Whatever the body: never 400, 413 or 415 without credentials. */
    switch (rn(4)) {
    case 0:
        adds(q, "Content-Type: text/plain\r\n");
        finish(q, "{bad", 4);
        break;
    case 1:
        adds(q, CT_JSON "Content-Length: 20000000\r\n\r\n");
        break;
    case 2: {
        char body[160];
        good_body(body, sizeof body, TENANT);
        adds(q, CT_JSON);
        finish(q, body, strlen(body));
        break;
    }
    default:
        finish(q, NULL, 0);
        break;
    }
    expect_jobsd(q, 401, "unauthorized");
}

static void fam_unauthorized_jwt(struct req *q)
{
    req_init(q, "401 jwt");
    static const struct route *rts[] = {&ROUTES[2], &ROUTES[3], &ROUTES[4]};
    const struct route *rt = PICK(rts);
    char path[128];
    route_path(rt, path, sizeof path);
    start(q, rt->method, path);
    char t[1200];
    switch (rn(9)) {
    case 0:
        t[0] = '\0';
        break;
    case 1:
        rstr(t, 1 + rn(200), ALNUM "-_.");
        break;
    case 2: {
        char a[40], b[80], c[50];
        rstr(a, 10 + rn(30), ALNUM "-_");
        rstr(b, 10 + rn(70), ALNUM "-_");
        rstr(c, 43, ALNUM "-_");
        snprintf(t, sizeof t, "%s.%s.%s", a, b, c);
        break;
    }
    case 3: {
        /* The real token, one signature character changed (not the last: its low bits do
         * not count). */
        snprintf(t, sizeof t, "%s", token);
        char *sig = strrchr(t, '.') + 1;
        size_t i = rn((unsigned)strlen(sig) - 1);
        sig[i] = sig[i] == 'A' ? 'B' : 'A';
        break;
    }
    case 4:
        snprintf(t, sizeof t, "%s", token_wrong_secret);
        break;
    case 5:
        snprintf(t, sizeof t, "%s", token_expired);
        break;
    case 6: {
        /* alg none: the header swapped, the payload kept, no signature. */
        const char *p1 = strchr(token, '.');
        const char *p2 = strchr(p1 + 1, '.');
        snprintf(t, sizeof t, "eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0%.*s.", (int)(p2 - p1), p1);
        break;
    }
    case 7:
        snprintf(t, sizeof t, "%.*s", (int)(rn((unsigned)strlen(token) - 1) + 1), token);
        break;
    default:
        t[0] = '\0';
        break;
    }
    static const char *const schemes[] = {"Bearer", "bearer", "Basic", "Token", "Bearer:", ""};
    unsigned how = rn(5);
    if (how == 0) {
        /* no Authorization header */
    } else if (how == 1) {
        /* Repeated, even when both are right. */
        addf(q, "Authorization: Bearer %s\r\nAuthorization: Bearer %s\r\n", token, token);
    } else if (t[0]) {
        addf(q, "Authorization: %s %s\r\n", PICK(schemes), t);
    } else {
        addf(q, "Authorization: %s\r\n", PICK(schemes));
    }
    finish(q, NULL, 0);
    expect_jobsd(q, 401, "unauthorized");
    q->want.bearer = true;
}

static void fam_too_large(struct req *q)
{
    req_init(q, "413");
    if (chance(70)) {
        static const struct route *rts[] = {&ROUTES[0], &ROUTES[1], &ROUTES[4]};
        const struct route *rt = PICK(rts);
        char path[128];
        route_path(rt, path, sizeof path);
        start(q, rt->method, path);
        adds(q, KEY_HDR);
        static const char *const ct[] = {CT_JSON, "Content-Type: text/plain\r\n", ""};
        const char *c = PICK(ct);
        adds(q, c);
        unsigned long long n = MAX_BODY + 1 + rnd() % 1000000000000ULL;
        if (chance(20))
            adds(q, "Expect: 100-continue\r\n");
        addf(q, "Content-Length: %llu\r\n\r\n", n);
        expect_jobsd(q, 413, "body_too_large");
        return;
    }
    /* A chunked body past MAX_BODY_BYTES: the connection is closed. */
    start(q, "POST", CHAOS_REBUILD);
    adds(q, KEY_HDR CT_JSON "Transfer-Encoding: chunked\r\n\r\n");
    size_t total = MAX_BODY + 1 + rn(20000);
    char chunk[1100];
    memset(chunk, ' ', sizeof chunk);
    for (size_t off = 0; off < total; off += 1000) {
        size_t len = total - off < 1000 ? total - off : 1000;
        addf(q, "%zx\r\n", len);
        add(q, off == 0 ? "{" : chunk, 1);
        add(q, chunk, len - 1);
        adds(q, "\r\n");
    }
    adds(q, "0\r\n\r\n");
    expect_jobsd(q, 413, "body_too_large");
    q->want.mhd = M_CLOSE | M_413;
}

static bool looks_like_json_type(const char *ct)
{
    return strncasecmp(ct, "application/json", 16) == 0 &&
           (ct[16] == '\0' || ct[16] == ';' || ct[16] == ' ');
}

static void fam_media_type(struct req *q)
{
    req_init(q, "415");
    const struct route *rt = &ROUTES[rn(2)];
    start(q, "POST", rt->path);
    adds(q, KEY_HDR);
    static const char *const types[] = {"text/plain",
                                        "application/xml",
                                        "application/jsonp",
                                        "application/json-seq",
                                        "application/x-www-form-urlencoded",
                                        "multipart/form-data; boundary=x",
                                        "json",
                                        "application",
                                        "application/ json",
                                        "text/json",
                                        "application/vnd.api+json",
                                        "*/*"};
    char ct[64];
    if (chance(70)) {
        snprintf(ct, sizeof ct, "%s", PICK(types));
    } else {
        char a[12], b[16];
        rstr(a, 1 + rn(10), "abcdefghijklmnopqrstuvwxyz");
        rstr(b, 1 + rn(14), "abcdefghijklmnopqrstuvwxyz+-.");
        snprintf(ct, sizeof ct, "%s/%s", a, b);
    }
    if (looks_like_json_type(ct))
        snprintf(ct, sizeof ct, "text/plain");
    if (chance(85))
        addf(q, "Content-Type: %s\r\n", ct);
    char body[160];
    good_body(body, sizeof body, TENANT);
    if (chance(25)) {
        adds(q, "Transfer-Encoding: chunked\r\n\r\n");
        addf(q, "%zx\r\n%s\r\n0\r\n\r\n", strlen(body), body);
    } else {
        finish(q, body, strlen(body));
    }
    expect_jobsd(q, 415, "unsupported_media_type");
}

static void json_post(struct req *q, const char *path, const char *body, size_t len)
{
    start(q, "POST", path);
    adds(q, KEY_HDR);
    static const char *const cts[] = {"application/json", "application/json; charset=utf-8",
                                      "APPLICATION/JSON", "application/json;charset=UTF-8",
                                      "Application/Json ; foo=bar"};
    addf(q, "Content-Type: %s\r\n", PICK(cts));
    if (chance(15)) {
        adds(q, "Transfer-Encoding: chunked\r\n\r\n");
        size_t off = 0;
        while (off < len) {
            size_t n = 1 + rn(64);
            if (n > len - off)
                n = len - off;
            addf(q, "%zx\r\n", n);
            add(q, body + off, n);
            adds(q, "\r\n");
            off += n;
        }
        adds(q, "0\r\n\r\n");
    } else {
        finish(q, body, len);
    }
}

static void fam_invalid_json(struct req *q)
{
    req_init(q, "invalid JSON");
    char body[8192];
    size_t len;
    switch (rn(9)) {
    case 0: /* an object that never closes */
        body[0] = '{';
        len = 1 + rn(400);
        for (size_t i = 1; i < len; i++) {
            char c;
            do
                c = (char)(1 + rn(255));
            while (c == '}');
            body[i] = c;
        }
        break;
    case 1: { /* a valid body cut short */
        char good[160];
        good_body(good, sizeof good, TENANT);
        len = 1 + rn((unsigned)strlen(good) - 1);
        memcpy(body, good, len);
        break;
    }
    case 2: /* garbage that cannot start a JSON text */
        body[0] = "@#<x'\\"[rn(6)];
        len = 1 + rn(300);
        for (size_t i = 1; i < len; i++)
            body[i] = (char)(1 + rn(255));
        break;
    case 3: /* invalid UTF-8 in a string */
        len = (size_t)snprintf(body, sizeof body, "{\"tenantId\": \"%c%c\"}", (char)(0x80 + rn(64)),
                               (char)(0xc0 + rn(2)));
        break;
    case 4: /* a NUL byte */
        len = (size_t)snprintf(body, sizeof body, "{\"tenantId\": \"" TENANT "\"x}");
        body[len - 2] = '\0';
        break;
    case 5: { /* duplicate keys */
        static const char *const keys[] = {"tenantId", "from", "to", "daysBack", "zz"};
        const char *k = PICK(keys);
        len = (size_t)snprintf(body, sizeof body, "{\"%s\": %u, \"a\": 1, \"%s\": %u}", k, rn(9), k,
                               rn(9));
        break;
    }
    case 6: { /* nested deeper than the parser allows */
        size_t depth = 2100 + rn(1000);
        for (size_t i = 0; i < depth; i++)
            body[i] = '[';
        for (size_t i = 0; i < depth; i++)
            body[depth + i] = ']';
        len = 2 * depth;
        break;
    }
    case 7: /* trailing garbage */
        len = (size_t)snprintf(body, sizeof body, "{\"tenantId\": \"" TENANT "\"} %c",
                               "x{[1,"[rn(5)]);
        break;
    default: /* a byte order mark, or single quotes, or a bare word */
    {
        static const char *const odd[] = {
            "\xef\xbb\xbf{}", "{'tenantId': 'x'}", "{tenantId: 1}",      "undefined", "NaN",
            "{\"a\": 01}",    "{\"a\": .5}",       "{\"a\": \"\\x41\"}", "[1,]",      "{\"a\":1,}"};
        len = (size_t)snprintf(body, sizeof body, "%s", PICK(odd));
        break;
    }
    }
    json_post(q, rn(4) ? CHAOS_REBUILD : SYNC_PATH, body, len);
    expect_jobsd(q, 400, "invalid_json");
}

/* A random JSON value that is not a string (for type errors). */
static const char *non_string(void)
{
    static const char *const v[] = {
        "1", "-7", "1.5", "true", "false", "null", "[]", "{}", "[\"" TENANT "\"]", "{\"id\": 1}"};
    return PICK(v);
}

/* A string that is not a UUID. */
static void non_uuid(char *out, size_t cap)
{
    char u[37];
    random_uuid(u);
    switch (rn(5)) {
    case 0:
        u[rn(36)] = "ghijklmnopqrstuvwxyz"[rn(20)];
        break;
    case 1:
        u[35] = '\0'; /* one short */
        break;
    case 2:
        u[8] = 'x'; /* a dash missing */
        break;
    case 3:
        rstr(u, rn(36), ALNUM " -"); /* never 36 characters */
        break;
    default:
        snprintf(u, sizeof u, "%s", "");
        break;
    }
    snprintf(out, cap, "%s", u);
}

static void bad_date(char *out, size_t cap)
{
    switch (rn(6)) {
    case 0:
        snprintf(out, cap, "2024-%02u-10", 13 + rn(87));
        break;
    case 1:
        snprintf(out, cap, "2024-01-%02u", 32 + rn(68));
        break;
    case 2:
        snprintf(out, cap, "%s",
                 PICK(((const char *const[]){"2023-02-29", "2024-02-30", "2024-04-31", "2024-00-10",
                                             "2024-01-00"})));
        break;
    case 3:
        snprintf(
            out, cap, "%s",
            PICK(((const char *const[]){"2024-1-01", "24-01-01", "2024/01/01", "01-01-2024",
                                        "20240101", "2024-01-01 ", " 2024-01-01", "yesterday"})));
        break;
    case 4:
        snprintf(out, cap, "%s",
                 PICK(((const char *const[]){"2024-01-01T25:00:00Z", "2024-01-01T10:61:00Z",
                                             "2024-01-01T10:00:00", "2024-01-01T10:00:00+25:00",
                                             "2024-01-01X10:00:00Z"})));
        break;
    default:
        rstr(out, rn(20), ALNUM "-:.");
        break;
    }
}

static void fam_invalid_fields(struct req *q)
{
    req_init(q, "field validation");
    char body[1024];
    char s1[64];
    const char *code = "invalid_field";
    bool sync = chance(25);
    if (sync) {
        switch (rn(6)) {
        case 0:
            snprintf(body, sizeof body, "%s", non_string());
            if (body[0] != '{')
                code = "invalid_body";
            else
                snprintf(body, sizeof body, "{\"tenantId\": %s}", non_string());
            break;
        case 1:
            rstr(s1, 1 + rn(20), ALNUM "_");
            if (!strcmp(s1, "daysBack") || !strcmp(s1, "include") || !strcmp(s1, "tenantId"))
                snprintf(s1, sizeof s1, "zz");
            snprintf(body, sizeof body, "{\"tenantId\": \"" TENANT "\", \"%s\": 1}", s1);
            code = "unknown_field";
            break;
        case 2:
            non_uuid(s1, sizeof s1);
            snprintf(body, sizeof body, "{\"tenantId\": \"%s\"}", s1);
            break;
        case 3:
            snprintf(body, sizeof body, "{\"tenantId\": \"" TENANT "\", \"daysBack\": %s}",
                     PICK(((const char *const[]){"0", "-1", "366", "1000000", "1.5", "\"2\"",
                                                 "true", "null", "[]"})));
            break;
        case 4:
            snprintf(
                body, sizeof body, "{\"tenantId\": \"" TENANT "\", \"include\": %s}",
                PICK(((const char *const[]){"\"listings\"", "[]", "[\"foo\"]",
                                            "[\"listings\", \"listings\"]", "[1]", "{}", "null"})));
            break;
        default:
            snprintf(body, sizeof body, "{}");
            break;
        }
    } else {
        switch (rn(12)) {
        case 0:
            snprintf(body, sizeof body, "%s",
                     PICK(((const char *const[]){"1", "\"x\"", "[]", "true", "null", "[{}]",
                                                 "-0.5e3", "\"" TENANT "\""})));
            code = "invalid_body";
            break;
        case 1: {
            static const char *const near[] = {"tenantid", "TenantId",  "tenant_id", "From",
                                               "TO",       "days_back", "daysback",  "window",
                                               "form",     "",          "tenantId "};
            if (chance(50))
                snprintf(s1, sizeof s1, "%s", PICK(near));
            else
                rstr(s1, 1 + rn(30), ALNUM "_$.");
            if (!strcmp(s1, "tenantId") || !strcmp(s1, "from") || !strcmp(s1, "to") ||
                !strcmp(s1, "daysBack"))
                snprintf(s1, sizeof s1, "zz");
            snprintf(body, sizeof body,
                     "{\"tenantId\": \"" TENANT "\", \"from\": \"2024-01-01\", \"to\": "
                     "\"2024-01-02\", \"%s\": %s}",
                     s1, non_string());
            code = "unknown_field";
            break;
        }
        case 2:
            snprintf(body, sizeof body, "{\"tenantId\": %s, \"daysBack\": 2}", non_string());
            break;
        case 3:
            non_uuid(s1, sizeof s1);
            snprintf(body, sizeof body, "{\"tenantId\": \"%s\", \"daysBack\": 2}", s1);
            break;
        case 4:
            bad_date(s1, sizeof s1);
            if (chance(50))
                snprintf(body, sizeof body,
                         "{\"tenantId\": \"" TENANT "\", \"from\": \"%s\", \"to\": "
                         "\"2024-01-31\"}",
                         s1);
            else
                snprintf(body, sizeof body,
                         "{\"tenantId\": \"" TENANT "\", \"from\": \"2024-01-01\", \"to\": "
                         "\"%s\"}",
                         s1);
            break;
        case 5:
            snprintf(body, sizeof body, "{\"tenantId\": \"" TENANT "\", \"daysBack\": %s}",
                     PICK(((const char *const[]){"0", "-1", "-100000", "367", "100000000000", "1.5",
                                                 "2.0", "\"2\"", "true", "null", "[2]", "1e2"})));
            break;
        case 6:
            snprintf(body, sizeof body,
                     "{\"tenantId\": \"" TENANT "\", \"from\": %s, \"to\": \"2024-01-31\"}",
                     non_string());
            break;
        case 7: /* combinations */
            snprintf(body, sizeof body, "%s",
                     PICK(((const char *const[]){
                         "{\"tenantId\": \"" TENANT "\", \"from\": \"2024-01-01\"}",
                         "{\"tenantId\": \"" TENANT "\", \"to\": \"2024-01-01\"}",
                         "{\"tenantId\": \"" TENANT "\", \"from\": \"2024-01-01\", \"to\": "
                         "\"2024-01-02\", \"daysBack\": 2}",
                         "{\"from\": \"2024-01-01\", \"to\": \"2024-01-02\"}", "{}"})));
            break;
        case 8: { /* from after to */
            unsigned d = 2 + rn(27);
            snprintf(body, sizeof body,
                     "{\"tenantId\": \"" TENANT "\", \"from\": \"2024-03-%02u\", \"to\": "
                     "\"2024-03-%02u\"}",
                     d, d - 1 - rn(d - 1));
            break;
        }
        case 9: /* longer than REBUILD_MAX_RANGE_DAYS */
            snprintf(body, sizeof body,
                     "{\"tenantId\": \"" TENANT "\", \"from\": \"%u-01-01\", \"to\": "
                     "\"2024-%02u-01\"}",
                     1990 + rn(33), 2 + rn(10));
            break;
        case 10: /* in the future */
            snprintf(body, sizeof body,
                     "{\"tenantId\": \"" TENANT "\", \"from\": \"2099-%02u-01\", \"to\": "
                     "\"2099-%02u-10\"}",
                     1 + rn(12), 1 + rn(12));
            break;
        default: /* before year 1 */
            snprintf(body, sizeof body,
                     "{\"tenantId\": \"" TENANT "\", \"to\": \"0001-01-0%u\", \"daysBack\": "
                     "%u}",
                     1 + rn(3), 5 + rn(300));
            break;
        }
    }
    json_post(q, sync ? SYNC_PATH : CHAOS_REBUILD, body, strlen(body));
    expect_jobsd(q, 400, code);
}

static void fam_not_found(struct req *q)
{
    req_init(q, "404 tenant or job");
    char u[37];
    random_uuid(u);
    char body[256];
    switch (rn(4)) {
    case 0:
    case 1: {
        char path[128];
        route_path(&ROUTES[4], path, sizeof path);
        start(q, "GET", path);
        if (chance(50))
            adds(q, KEY_HDR);
        else
            addf(q, "Authorization: Bearer %s\r\n", token);
        finish(q, NULL, 0);
        expect_jobsd(q, 404, "job_not_found");
        return;
    }
    case 2:
        good_body(body, sizeof body, u);
        json_post(q, CHAOS_REBUILD, body, strlen(body));
        break;
    default:
        snprintf(body, sizeof body, "{\"tenantId\": \"%s\", \"daysBack\": %u}", u, 1 + rn(30));
        json_post(q, rn(2) ? CHAOS_REBUILD : SYNC_PATH, body, strlen(body));
        break;
    }
    expect_jobsd(q, 404, "tenant_not_found");
}

static void fam_query(struct req *q)
{
    req_init(q, "query parameters");
    char target[256], v[80];
    const char *code = "invalid_field";
    if (chance(60)) {
        switch (rn(7)) {
        case 0:
            snprintf(target, sizeof target, STATUS "?limit=%s",
                     PICK(((const char *const[]){"0", "101", "-1", "abc", "1.5", "", "1e2",
                                                 "99999999999999999999", "+5", "%2010"})));
            break;
        case 1:
            rstr(v, 1 + rn(20), ALNUM);
            snprintf(target, sizeof target, STATUS "?jobType=%s", v);
            break;
        case 2:
            rstr(v, 1 + rn(20), ALNUM);
            snprintf(target, sizeof target, STATUS "?status=%s", v);
            break;
        case 3:
            rstr(v, 1 + rn(60), ALNUM "-_");
            snprintf(target, sizeof target, STATUS "?before=%s", v);
            break;
        case 4:
            snprintf(target, sizeof target, STATUS "?limit=5&limit=6");
            break;
        case 5:
            rstr(v, 1 + rn(12), "abcdefghijkmnopqrsuvwxyz"); /* no l, t: never limit, ... */
            if (strcmp(v, "before") == 0)
                snprintf(v, sizeof v, "zz");
            snprintf(target, sizeof target, STATUS "?%s=1", v);
            code = "unknown_field";
            break;
        default:
            snprintf(target, sizeof target, STATUS "?jobType=metrics_aggregation&jobType=x");
            break;
        }
    } else {
        if (chance(70)) {
            snprintf(
                target, sizeof target, STATS "?window=%s",
                PICK(((const char *const[]){"1h", "7D", "24H", "30", "", "365d", "7d7d", "x"})));
        } else {
            rstr(v, 1 + rn(12), "abcdefghijklmnopqrstuvxyz"); /* no w: never "window" */
            snprintf(target, sizeof target, STATS "?%s=7d", v);
            code = "unknown_field";
        }
    }
    start(q, "GET", target);
    addf(q, "Authorization: Bearer %s\r\n", token);
    finish(q, NULL, 0);
    expect_jobsd(q, 400, code);
}

/* Damage below the HTTP layer jobsd sees: mostly libmicrohttpd's to refuse. The base request
 * (GET the status page without credentials) is a 401 when it gets through. */
static void fam_raw(struct req *q)
{
    req_init(q, "raw HTTP damage");
    q->flags = TH_HALF_CLOSE;
    const char *base = "GET " STATUS " HTTP/1.1\r\nHost: x\r\nConnection: close\r\n";
    switch (rn(16)) {
    case 0: { /* cut anywhere before the end of the headers */
        char full[512];
        int n = snprintf(full, sizeof full, "%sX-A: b\r\n\r\n", base);
        add(q, full, rn((unsigned)n - 3));
        q->want.mhd = M_CLOSE | M_400 | M_QUIET;
        break;
    }
    case 1: { /* random bytes, no line ends */
        size_t n = rn(500);
        for (size_t i = 0; i < n; i++) {
            char c;
            do
                c = (char)rn(256);
            while (c == '\r' || c == '\n');
            add(q, &c, 1);
        }
        q->want.mhd = M_CLOSE | M_400 | M_QUIET;
        break;
    }
    case 2: /* a control byte in a header name, no colon, an empty name */
        adds(q, base);
        if (chance(50)) {
            adds(q, "NoColonHere\r\n\r\n");
            q->want.mhd = M_400 | M_CLOSE;
        } else {
            /* libmicrohttpd 0.9.75 lets these through: jobsd refuses them (http_wire.c). */
            addf(q, "%s",
                 PICK(((const char *const[]){"X-\001A: b\r\n\r\n", ": empty-name\r\n\r\n"})));
            expect_jobsd(q, 400, "bad_framing");
            q->want.mhd = M_400 | M_CLOSE;
        }
        break;
    case 3: { /* header block larger than the connection's memory */
        adds(q, base);
        size_t n = 66000 + rn(40000);
        adds(q, "X-Big: ");
        char *big = malloc(n);
        memset(big, 'a' + (char)rn(26), n);
        add(q, big, n);
        free(big);
        adds(q, "\r\n\r\n");
        q->want.mhd = M_431 | M_CLOSE | M_400;
        break;
    }
    case 4: { /* thousands of headers */
        adds(q, base);
        unsigned n = 2500 + rn(2000);
        for (unsigned i = 0; i < n; i++)
            addf(q, "X-H%u: v\r\n", i);
        adds(q, "\r\n");
        q->want.mhd = M_431 | M_CLOSE | M_400;
        break;
    }
    case 5: { /* an overlong request target */
        size_t n = 66000 + rn(40000);
        adds(q, "GET /");
        char *big = malloc(n);
        memset(big, 'a', n);
        add(q, big, n);
        free(big);
        adds(q, " HTTP/1.1\r\nHost: x\r\n\r\n");
        q->want.mhd = M_414 | M_431 | M_CLOSE | M_400;
        break;
    }
    case 6: /* versions libmicrohttpd does not speak */
        addf(q, "GET " STATUS " %s\r\nHost: x\r\n\r\n",
             PICK(((const char *const[]){"HTTP/2.0", "HTTP/3.0", "HTTP/9.9", "FOO/1.1", "HTTP/1",
                                         "http/1.1", "HTTP/1.1.1", "HTTP/x.y"})));
        q->want.mhd = M_505 | M_400 | M_CLOSE;
        break;
    case 7: /* a Content-Length that is not a number */
        addf(q,
             "POST " CHAOS_REBUILD " HTTP/1.1\r\nHost: x\r\n" KEY_HDR CT_JSON
             "Content-Length: %s\r\n\r\n{}",
             PICK(((const char *const[]){"-1", "abc", "+5", "1, 2", "0x10",
                                         "99999999999999999999999"})));
        q->want.mhd = M_400 | M_413 | M_CLOSE;
        break;
    case 8: /* a broken chunk */
        adds(q, "POST " CHAOS_REBUILD " HTTP/1.1\r\nHost: x\r\n" KEY_HDR CT_JSON
                "Transfer-Encoding: chunked\r\n\r\n");
        addf(q, "%s",
             PICK(((const char *const[]){"zz\r\n{}\r\n0\r\n\r\n", "10\r\n{}", "2\r\n{}XX0\r\n\r\n",
                                         "-2\r\n{}\r\n0\r\n\r\n"})));
        q->want.mhd = M_400 | M_CLOSE | M_QUIET;
        break;
    case 9: /* a body shorter than announced, then end of input */
        adds(q, "POST " CHAOS_REBUILD " HTTP/1.1\r\nHost: x\r\n" KEY_HDR CT_JSON
                "Content-Length: 100\r\n\r\n{\"tenantId\"");
        q->want.mhd = M_CLOSE | M_400 | M_QUIET;
        break;
    case 10: /* obs-fold, bare LF, space before the colon: refused (RFC 9112 5.1, 5.2) */
        if (chance(60)) {
            addf(q, "%s",
                 PICK(((const char *const[]){
                     "GET " STATUS " HTTP/1.1\r\nHost: x\r\nX-A: b\r\n folded\r\n\r\n",
                     "GET " STATUS " HTTP/1.1\nHost: x\nConnection: close\n\n",
                     "GET " STATUS " HTTP/1.1\r\nHost: x\r\nX-A : b\r\n\r\n"})));
            expect_jobsd(q, 400, "bad_framing");
            q->want.mhd = M_400 | M_CLOSE;
            break;
        }
        /* a tab after the colon, empty lines before the request line: tolerated */
        addf(q, "%s",
             PICK(((const char *const[]){"GET " STATUS " HTTP/1.1\r\nHost: x\r\nX-A:\tb\r\n\r\n",
                                         "\r\n\r\nGET " STATUS " HTTP/1.1\r\nHost: x\r\n\r\n"})));
        expect_jobsd(q, 401, "unauthorized");
        q->want.bearer = true;
        q->want.mhd = M_400;
        break;
    case 11: /* no Host, HTTP/1.0, two Hosts */
        addf(
            q, "%s",
            PICK(((const char *const[]){"GET " STATUS " HTTP/1.1\r\nConnection: close\r\n\r\n",
                                        "GET " STATUS " HTTP/1.0\r\n\r\n",
                                        "GET " STATUS " HTTP/1.1\r\nHost: x\r\nHost: y\r\n\r\n"})));
        expect_jobsd(q, 401, "unauthorized");
        q->want.bearer = true;
        q->want.mhd = M_400;
        break;
    case 12: /* a NUL in the request target: cut there by the parser, or refused */
        adds(q, "GET /zz");
        add(q, "\0", 1);
        addf(q, "%s HTTP/1.1\r\nHost: x\r\n\r\n", STATUS);
        expect_jobsd(q, 404, "not_found");
        q->want.mhd = M_400;
        break;
    case 13: /* odd method tokens on a route */
        addf(
            q, "%s /healthz HTTP/1.1\r\nHost: x\r\n\r\n",
            PICK(((const char *const[]){"get", "G\001T", "GET\177", "Get", "M-SEARCH", "POST/1"})));
        expect_jobsd(q, 405, "method_not_allowed");
        q->want.allow = "GET, HEAD";
        q->want.mhd = M_400;
        break;
    case 14: /* absolute-form and asterisk-form targets */
        addf(q, "%s",
             PICK(((const char *const[]){"GET http://x/healthz HTTP/1.1\r\nHost: x\r\n\r\n",
                                         "OPTIONS * HTTP/1.1\r\nHost: x\r\n\r\n",
                                         "GET x/healthz HTTP/1.1\r\nHost: x\r\n\r\n"})));
        expect_jobsd(q, 404, "not_found");
        q->want.mhd = M_400;
        break;
    default: /* nothing at all */
        q->want.mhd = M_CLOSE | M_QUIET;
        break;
    }
}

static void fam_valid_read(struct req *q)
{
    req_init(q, "valid read");
    const char *paths[] = {"/healthz", "/readyz", "/metrics", STATS};
    unsigned i = rn(4);
    start(q, "GET", paths[i]);
    if (i == 2)
        adds(q, KEY_HDR);
    if (i == 3)
        addf(q, "Authorization: Bearer %s\r\n", token);
    finish(q, NULL, 0);
    expect_jobsd(q, 200, NULL);
}

typedef void (*family_fn)(struct req *);

static const struct {
    family_fn fn;
    unsigned weight;
} FAMILIES[] = {
    {fam_unknown_path, 9},
    {fam_wrong_method, 9},
    {fam_framing, 9},
    {fam_unauthorized_key, 11},
    {fam_unauthorized_jwt, 8},
    {fam_too_large, 6},
    {fam_media_type, 8},
    {fam_invalid_json, 11},
    {fam_invalid_fields, 14},
    {fam_not_found, 5},
    {fam_query, 5},
    {fam_raw, 10},
    {fam_valid_read, 3},
};

static void make_request(struct req *q)
{
    unsigned total = 0;
    for (size_t i = 0; i < sizeof FAMILIES / sizeof FAMILIES[0]; i++)
        total += FAMILIES[i].weight;
    unsigned r = rn(total);
    for (size_t i = 0; i < sizeof FAMILIES / sizeof FAMILIES[0]; i++) {
        if (r < FAMILIES[i].weight) {
            FAMILIES[i].fn(q);
            return;
        }
        r -= FAMILIES[i].weight;
    }
}

/* ------------------------------------------------------------------ the verdict */

static void show(const struct req *q, const char *why, const struct th_response *r)
{
    char shown[600];
    size_t n = q->len < sizeof shown - 1 ? q->len : sizeof shown - 1;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)q->data[i];
        shown[i] = (c == '\r' || c == '\n' || (c >= 32 && c < 127)) ? (char)c : '?';
    }
    shown[n] = '\0';
    fail_msg("%s [%s]: %s\nstatus %d\n%s%s\n--- request (%zu bytes, flags %u):\n%s", q->family,
             q->want.code ? q->want.code : "", why, r ? r->status : 0,
             r && r->headers ? r->headers : "", r && r->body ? r->body : "", q->len, q->flags,
             shown);
}

static unsigned mhd_bit(int status)
{
    switch (status) {
    case 400:
        return M_400;
    case 413:
        return M_413;
    case 414:
        return M_414;
    case 431:
        return M_431;
    case 505:
        return M_505;
    default:
        return 0;
    }
}

static long long answered_by_jobsd, answered_by_mhd, closed;

static void check(const struct req *q, bool got, const struct th_response *r)
{
    if (!got || r->status == 0) {
        if (r->timed_out ? !(q->want.mhd & (M_QUIET | M_CLOSE)) : !(q->want.mhd & M_CLOSE))
            show(q,
                 r->timed_out ? "no answer before the timeout"
                              : "connection closed without "
                                "an answer",
                 r);
        closed++;
        return;
    }
    char *rid = th_header(r, "X-Request-Id");
    if (!rid) {
        /* libmicrohttpd's own answer: only for damage it must refuse. */
        if (!(q->want.mhd & mhd_bit(r->status)))
            show(q, "answered by libmicrohttpd, not by jobsd", r);
        answered_by_mhd++;
        return;
    }
    answered_by_jobsd++;
    if (r->status >= 500)
        show(q, "a server error", r);
    if (r->status != q->want.status)
        show(q, "wrong status", r);
    if (!valid_rid(rid))
        show(q, "invalid X-Request-Id", r);
    if (q->rid[0] && q->rid_valid && strcmp(rid, q->rid) != 0)
        show(q, "the caller's valid X-Request-Id was not echoed", r);
    if (q->rid[0] && !q->rid_valid && strcmp(rid, q->rid) == 0)
        show(q, "an invalid X-Request-Id was echoed", r);
    if (q->want.code) {
        char *ct = th_header(r, "Content-Type");
        if (!ct || strcmp(ct, "application/json; charset=utf-8") != 0)
            show(q, "not JSON", r);
        free(ct);
        if (!json_is_false(json_object_get(r->json, "success")))
            show(q, "no success: false", r);
        if (strcmp(th_error_code(r), q->want.code) != 0)
            show(q, "wrong error code", r);
        const char *msg =
            json_string_value(json_object_get(json_object_get(r->json, "error"), "message"));
        if (!msg || !*msg)
            show(q, "no error message", r);
        const char *body_rid = json_string_value(json_object_get(r->json, "requestId"));
        if (!body_rid || strcmp(body_rid, rid) != 0)
            show(q, "requestId differs from X-Request-Id", r);
        if (json_object_get(r->json, "jobLogId"))
            show(q, "a rejected request names a job", r);
        if (q->want.status == 401 && strcmp(msg, "missing or invalid credentials") != 0)
            show(q, "a 401 that says more than the others", r);
    }
    if (q->want.allow) {
        char *allow = th_header(r, "Allow");
        if (!allow || strcmp(allow, q->want.allow) != 0)
            show(q, "wrong Allow", r);
        free(allow);
    }
    if (q->want.status == 401) {
        char *www = th_header(r, "WWW-Authenticate");
        if (q->want.bearer != (www != NULL))
            show(q, q->want.bearer ? "no WWW-Authenticate" : "WWW-Authenticate on the key's 401",
                 r);
        free(www);
    }
    free(rid);
}

static void send_and_check(struct req *q)
{
    struct th_response r;
    long long timeout = (q->want.mhd & M_QUIET) ? 200 : 10000;
    bool got = th_raw_ex(proc.port, q->data, q->len, q->flags, &r, timeout);
    check(q, got, &r);
    th_free(&r);
    free(q->data);
    q->data = NULL;
}

/* ------------------------------------------------------------------ fixture */

static char *snapshot(void)
{
    static const char *const tables[] = {"tenants",
                                         "marketplace_connections",
                                         "listings",
                                         "orders",
                                         "order_items",
                                         "listing_visits_daily",
                                         "listing_metrics_daily",
                                         "job_logs"};
    size_t cap = 4096, len = 0;
    char *all = calloc(1, cap);
    for (size_t i = 0; i < sizeof tables / sizeof tables[0]; i++) {
        char *d = tdb_value(db.conn,
                            "SELECT count(*) || ':' || coalesce(md5(string_agg(t::text, ',' "
                            "ORDER BY t::text)), '') FROM %s t",
                            tables[i]);
        len += (size_t)snprintf(all + len, cap - len, "%s=%s\n", tables[i], d);
        free(d);
    }
    return all;
}

static int setup(void **state)
{
    (void)state;
    testdb_create(&db, "chaos_malformed");
    chaos_seed(db.conn, TENANT, 5, "2024-01-01", "2024-01-31");
    tdb_exec(db.conn, "INSERT INTO job_logs (tenant_id, job_type, status, attempts, created_at) "
                      "SELECT '" TENANT "', 'metrics_aggregation', 'success', 1, "
                      "now() - g * interval '1 hour' FROM generate_series(1, 5) g");
    long long now = (long long)time(NULL);
    assert_true(jwt_sign((const unsigned char *)SECRET, strlen(SECRET), TENANT, "user-1", now,
                         now + 3600, NULL, NULL, token, sizeof token) > 0);
    static const char other[] = "another-secret-0123456789abcdef-0123456789";
    assert_true(jwt_sign((const unsigned char *)other, strlen(other), TENANT, "user-1", now,
                         now + 3600, NULL, NULL, token_wrong_secret,
                         sizeof token_wrong_secret) > 0);
    assert_true(jwt_sign((const unsigned char *)SECRET, strlen(SECRET), TENANT, "user-1",
                         now - 7200, now - 3600, NULL, NULL, token_expired,
                         sizeof token_expired) > 0);
    char maxbody[40];
    snprintf(maxbody, sizeof maxbody, "MAX_BODY_BYTES=%d", MAX_BODY);
    /* Every client here is 127.0.0.1 and test_stalled_clients_do_not_block holds 40
     * connections: no per-address limit (tests/e2e/test_http_conn.c checks that one). */
    const char *env[] = {"JWT_SECRET=" SECRET, maxbody, "LOG_LEVEL=info", "PER_IP_CONNECTIONS=0",
                         NULL};
    if (!jobsd_start(&proc, db.url, env))
        return -1;
    snapshot_before = snapshot();
    return 0;
}

/* Once every test ran: nothing written, no "bug:" in the log, a clean exit. A failed check
 * fails the program (tgroup_run); the clean-up happens whatever the checks found. */
static int teardown(void **state)
{
    (void)state;
    bool ok = true;
    if (proc.pid > 0) {
        char *after = snapshot();
        if (strcmp(after, snapshot_before ? snapshot_before : "") != 0) {
            print_error("the sweep changed the database:\nbefore: %s\nafter:  %s\n",
                        snapshot_before ? snapshot_before : "", after);
            ok = false;
        }
        free(after);
        if (jobsd_log_contains(&proc, "bug:")) {
            print_error("jobsd logged a \"bug:\" line\n");
            ok = false;
        }
        int code = jobsd_stop(&proc, 20000);
        if (code != 0) {
            print_error("jobsd exited with %d at SIGTERM, want 0\n", code);
            ok = false;
        }
    } else {
        print_error("jobsd is not running (it did not start)\n");
        ok = false;
    }
    free(snapshot_before);
    testdb_drop(&db);
    return ok ? 0 : -1;
}

/* ------------------------------------------------------------------ tests */

static void test_random_sweep(void **state)
{
    (void)state;
    const char *s = getenv("JOBSD_CHAOS_SEED");
    uint64_t seed = s && *s ? strtoull(s, NULL, 10) : (uint64_t)time(NULL) ^ (uint64_t)getpid();
    const char *n = getenv("JOBSD_CHAOS_SWEEP");
    long sweep = n && *n ? strtol(n, NULL, 10) : 1500;
    print_message("JOBSD_CHAOS_SEED=%llu JOBSD_CHAOS_SWEEP=%ld\n", (unsigned long long)seed, sweep);
    rng_state = seed;
    long long t0 = t_now_ms();
    for (long i = 0; i < sweep; i++) {
        struct req q;
        make_request(&q);
        /* Some small ones arrive a few bytes at a time. */
        if (q.len < 2000 && chance(3))
            q.flags |= TH_TRICKLE;
        send_and_check(&q);
    }
    print_message("%ld requests in %lld ms: %lld answered by jobsd, %lld by libmicrohttpd, %lld "
                  "closed\n",
                  sweep, t_now_ms() - t0, answered_by_jobsd, answered_by_mhd, closed);
    assert_true(jobsd_running(&proc));
}

/* Connections that stop half-way through their headers do not keep others waiting. */
static void test_stalled_clients_do_not_block(void **state)
{
    (void)state;
    enum { STALLED = 40 };
    int fds[STALLED];
    for (int i = 0; i < STALLED; i++) {
        fds[i] = socket(AF_INET, SOCK_STREAM, 0);
        struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)proc.port)};
        sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        assert_int_equal(connect(fds[i], (struct sockaddr *)&sa, sizeof sa), 0);
        static const char part[] = "POST " CHAOS_REBUILD " HTTP/1.1\r\nHost: x\r\nX-Inter";
        assert_true(send(fds[i], part, (size_t)(1 + i % (int)(sizeof part - 1)), 0) > 0);
    }
    for (int i = 0; i < 200; i++) {
        struct req q;
        make_request(&q);
        char family[48];
        snprintf(family, sizeof family, "%s", q.family);
        long long t0 = t_now_ms();
        send_and_check(&q);
        if (t_now_ms() - t0 > 5000)
            fail_msg("a request (%s) took %lld ms while %d clients stalled", family,
                     t_now_ms() - t0, STALLED);
    }
    for (int i = 0; i < STALLED; i++)
        close(fds[i]);
    struct th_response r;
    assert_true(th_request(proc.port, "GET", "/healthz", NULL, NULL, &r));
    assert_int_equal(r.status, 200);
    th_free(&r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_random_sweep),
        cmocka_unit_test(test_stalled_clients_do_not_block),
    };
    return tgroup_run("chaos_malformed", tests, setup, teardown);
}
