/* Unit tests of the JWT time checks at the ends of the 64-bit range (issue 19 item 6):
 * exp, nbf and iat are attacker-chosen integers, so "exp + leeway", "nbf - leeway" and
 * "now + leeway" must not overflow (the UBSan build aborted on them) and must still decide
 * right: exp near INT64_MAX is valid, exp near INT64_MIN expired, nbf near INT64_MAX not yet
 * valid, nbf near INT64_MIN reached, iat near INT64_MAX in the future. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jobsd/jwt.h"
#include "jobsd/util.h"

#define SECRET "jwt-time-test-secret-0123456789abcdef-0123"
#define TENANT "5f0e8c2a-1b2c-4d3e-8f90-abcdef012345"

static long long g_now = 1700000000LL;

static long long fixed_now(void *ctx)
{
    return *(long long *)ctx;
}

/* An HS256 token carrying `claims` (the JSON members after tenantId). */
static char *token(const char *claims)
{
    char payload[512], h[128], p[1024];
    snprintf(payload, sizeof payload, "{\"tenantId\":\"%s\",%s}", TENANT, claims);
    const char *header = "{\"alg\":\"HS256\",\"typ\":\"JWT\"}";
    util_base64url_encode((const unsigned char *)header, strlen(header), h, sizeof h);
    util_base64url_encode((const unsigned char *)payload, strlen(payload), p, sizeof p);
    size_t cap = strlen(h) + strlen(p) + 100;
    char *t = malloc(cap);
    assert_non_null(t);
    snprintf(t, cap, "%s.%s.", h, p);
    unsigned char sig[64];
    unsigned int n = 0;
    HMAC(EVP_sha256(), SECRET, (int)strlen(SECRET), (const unsigned char *)t, strlen(t) - 1, sig,
         &n);
    util_base64url_encode(sig, n, t + strlen(t), cap - strlen(t));
    return t;
}

static enum jwt_result check(long long leeway, long long now, const char *claims)
{
    g_now = now;
    struct jwt_verifier *v = jwt_verifier_new((const unsigned char *)SECRET, strlen(SECRET), NULL,
                                              0, NULL, NULL, leeway, fixed_now, &g_now);
    char *t = token(claims);
    enum jwt_result r = jwt_verify(v, t, strlen(t), NULL);
    free(t);
    jwt_verifier_free(v);
    return r;
}

#define MAX "9223372036854775807"
#define MIN "-9223372036854775808"

static void test_exp_bounds(void **state)
{
    (void)state;
    /* exp + 30 overflowed: a token valid until the end of time is valid. */
    assert_int_equal(check(30, 1700000000LL, "\"exp\":" MAX), JWT_OK);
    assert_int_equal(check(30, 1700000000LL, "\"exp\":9223372036854775790"), JWT_OK);
    assert_int_equal(check(300, 1700000000LL, "\"exp\":" MAX), JWT_OK);
    /* exp at the bottom of the range: long expired (no wrap to "valid"). */
    assert_int_equal(check(30, 1700000000LL, "\"exp\":" MIN), JWT_EXPIRED);
    assert_int_equal(check(0, 1700000000LL, "\"exp\":" MIN), JWT_EXPIRED);
    /* A clock at the top of the range: exp + leeway cannot reach it. */
    assert_int_equal(check(30, INT64_MAX, "\"exp\":" MAX), JWT_EXPIRED);
    assert_int_equal(check(30, INT64_MAX, "\"exp\":9223372036854775000"), JWT_EXPIRED);
}

static void test_nbf_bounds(void **state)
{
    (void)state;
    /* nbf - 30 overflowed: a token valid since the start of time is valid. */
    assert_int_equal(check(30, 1700000000LL, "\"exp\":1700003600,\"nbf\":" MIN), JWT_OK);
    assert_int_equal(check(30, 1700000000LL, "\"exp\":1700003600,\"nbf\":-9223372036854775800"),
                     JWT_OK);
    /* nbf at the top: not yet valid, with or without leeway. */
    assert_int_equal(check(30, 1700000000LL, "\"exp\":" MAX ",\"nbf\":" MAX), JWT_NOT_YET_VALID);
    assert_int_equal(check(0, 1700000000LL, "\"exp\":" MAX ",\"nbf\":" MAX), JWT_NOT_YET_VALID);
    /* A clock at the bottom of the range. */
    assert_int_equal(check(30, INT64_MIN, "\"exp\":" MAX ",\"nbf\":" MIN), JWT_OK);
}

static void test_iat_bounds(void **state)
{
    (void)state;
    /* iat in the far future: refused; at the bottom: fine. */
    assert_int_equal(check(30, 1700000000LL, "\"exp\":" MAX ",\"iat\":" MAX), JWT_BAD_IAT);
    assert_int_equal(check(30, 1700000000LL, "\"exp\":" MAX ",\"iat\":" MIN), JWT_OK);
    /* now + 30 overflowed: a clock at the top accepts any iat (none is in its future). */
    assert_int_equal(check(30, INT64_MAX - 5, "\"exp\":" MAX ",\"iat\":" MAX), JWT_OK);
    /* The ordinary edges still hold: 30 s of leeway, not 31. */
    assert_int_equal(check(30, 1700000000LL, "\"exp\":1700003600,\"iat\":1700000030"), JWT_OK);
    assert_int_equal(check(30, 1700000000LL, "\"exp\":1700003600,\"iat\":1700000031"), JWT_BAD_IAT);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_exp_bounds),
        cmocka_unit_test(test_nbf_bounds),
        cmocka_unit_test(test_iat_bounds),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
