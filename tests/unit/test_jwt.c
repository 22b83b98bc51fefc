/* Unit tests of the JWT verifier: the RFC 7515 A.1 and RFC 7519 6.1 vectors, every attack
 * token of SECURITY.md (each rejected for the right reason), and valid tokens accepted. */
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

#define SECRET   "jwt-test-secret-0123456789abcdef-0123456789"
#define PREVIOUS "jwt-previous-secret-0123456789abcdef-012345"
#define TENANT   "5F0E8C2A-1B2C-4D3E-8F90-ABCDEF012345"
#define NOW      1700000000LL

static long long fixed_now(void *ctx)
{
    return *(long long *)ctx;
}

static long long g_now = NOW;

static struct jwt_verifier *verifier(const char *issuer, const char *audience)
{
    return jwt_verifier_new((const unsigned char *)SECRET, strlen(SECRET),
                            (const unsigned char *)PREVIOUS, strlen(PREVIOUS), issuer, audience, 30,
                            fixed_now, &g_now);
}

static void b64(const void *in, size_t n, char *out, size_t cap)
{
    util_base64url_encode(in, n, out, cap);
}

/* header.payload.signature with HMAC(md) over the first two segments; md NULL = no signature
 * segment content ("" signature). */
static char *make(const char *header, const char *payload, const char *key, size_t key_len,
                  const EVP_MD *md)
{
    char h[2048], p[4096];
    b64(header, strlen(header), h, sizeof h);
    b64(payload, strlen(payload), p, sizeof p);
    size_t cap = strlen(h) + strlen(p) + 200;
    char *t = malloc(cap);
    snprintf(t, cap, "%s.%s.", h, p);
    if (md) {
        unsigned char sig[64];
        unsigned int n = 0;
        HMAC(md, key, (int)key_len, (const unsigned char *)t, strlen(t) - 1, sig, &n);
        b64(sig, n, t + strlen(t), cap - strlen(t));
    }
    return t;
}

static char *good_payload(char *buf, size_t cap)
{
    snprintf(buf, cap, "{\"userId\":\"u-1\",\"tenantId\":\"%s\",\"iat\":%lld,\"exp\":%lld}", TENANT,
             NOW - 10, NOW + 3600);
    return buf;
}

static enum jwt_result verify(const struct jwt_verifier *v, const char *t, struct jwt_claims *c)
{
    return jwt_verify(v, t, strlen(t), c);
}

static void test_rfc7515_a1(void **state)
{
    (void)state;
    const char *k64 =
        "AyM1SysPpbyDfgZld3umj1qzKObwVMkoqQ-EstJQLr_T-1qS0gZH75aKtMN3Yj0iPS4hcgUuTwjAzZr1Z9CAow";
    unsigned char key[64];
    size_t klen;
    assert_true(util_base64_decode(k64, strlen(k64), true, key, sizeof key, &klen));
    const char *token =
        "eyJ0eXAiOiJKV1QiLA0KICJhbGciOiJIUzI1NiJ9.eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMDA4MTkzODAsDQog"
        "Imh0dHA6Ly9leGFtcGxlLmNvbS9pc19yb290Ijp0cnVlfQ.dBjftJeZ4CVP-mB92K27uhbUJU1p1r_"
        "wW1gFWFOEjXk";
    /* The signature verifies... */
    struct jwt_verifier *real = jwt_verifier_new(key, klen, NULL, 0, NULL, NULL, 30, NULL, NULL);
    assert_int_equal(jwt_verify_signature(real, token, strlen(token)), JWT_OK);
    /* ...and with the real clock the token is expired (exp 1300819380). */
    assert_int_equal(jwt_verify(real, token, strlen(token), NULL), JWT_EXPIRED);
    jwt_verifier_free(real);
    /* With the clock before exp, the expiry step passes and the claims step speaks. */
    long long before = 1300819300;
    struct jwt_verifier *then =
        jwt_verifier_new(key, klen, NULL, 0, NULL, NULL, 30, fixed_now, &before);
    assert_int_equal(jwt_verify(then, token, strlen(token), NULL), JWT_BAD_TENANT);
    long long after = 1300819380 + 30;
    jwt_verifier_free(then);
    then = jwt_verifier_new(key, klen, NULL, 0, NULL, NULL, 30, fixed_now, &after);
    assert_int_equal(jwt_verify(then, token, strlen(token), NULL), JWT_EXPIRED);
    jwt_verifier_free(then);
    /* One byte changed in the payload: the signature fails. */
    char *tampered = strdup(token);
    tampered[45] = tampered[45] == 'A' ? 'B' : 'A';
    struct jwt_verifier *v = jwt_verifier_new(key, klen, NULL, 0, NULL, NULL, 30, NULL, NULL);
    assert_int_equal(jwt_verify_signature(v, tampered, strlen(tampered)), JWT_BAD_SIGNATURE);
    jwt_verifier_free(v);
    free(tampered);
}

static void test_rfc7519_unsecured(void **state)
{
    (void)state;
    struct jwt_verifier *v = verifier(NULL, NULL);
    const char *t = "eyJhbGciOiJub25lIn0.eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMDA4MTkzODAsDQogImh0dHA6"
                    "Ly9leGFtcGxlLmNvbS9pc19yb290Ijp0cnVlfQ.";
    assert_int_equal(verify(v, t, NULL), JWT_MALFORMED);
    jwt_verifier_free(v);
}

static void test_valid(void **state)
{
    (void)state;
    struct jwt_verifier *v = verifier(NULL, NULL);
    char pl[512];
    char *t = make("{\"alg\":\"HS256\",\"typ\":\"JWT\"}", good_payload(pl, sizeof pl), SECRET,
                   strlen(SECRET), EVP_sha256());
    struct jwt_claims c;
    assert_int_equal(verify(v, t, &c), JWT_OK);
    assert_string_equal(c.tenant_id, "5f0e8c2a-1b2c-4d3e-8f90-abcdef012345");
    assert_string_equal(c.user_id, "u-1");
    free(t);
    /* Signed with the previous secret: accepted. No typ: accepted. Integer userId. */
    snprintf(pl, sizeof pl, "{\"userId\":42,\"tenantId\":\"%s\",\"exp\":%lld}", TENANT, NOW + 5);
    t = make("{\"alg\":\"HS256\"}", pl, PREVIOUS, strlen(PREVIOUS), EVP_sha256());
    assert_int_equal(verify(v, t, &c), JWT_OK);
    assert_string_equal(c.user_id, "42");
    free(t);
    /* Minted by jwt_sign: accepted. */
    char minted[1024];
    assert_true(jwt_sign((const unsigned char *)SECRET, strlen(SECRET), TENANT, "u-2", NOW,
                         NOW + 60, NULL, NULL, minted, sizeof minted) > 0);
    assert_int_equal(verify(v, minted, &c), JWT_OK);
    /* Within the leeway after exp: accepted; past it: expired. */
    g_now = NOW + 60 + 29;
    assert_int_equal(verify(v, minted, &c), JWT_OK);
    g_now = NOW + 60 + 30;
    assert_int_equal(verify(v, minted, &c), JWT_EXPIRED);
    g_now = NOW;
    jwt_verifier_free(v);
}

static void test_issuer_audience(void **state)
{
    (void)state;
    struct jwt_verifier *v = verifier("main-api", "jobsd");
    char pl[512];
    const char *h = "{\"alg\":\"HS256\"}";
    struct {
        const char *extra;
        enum jwt_result want;
    } cases[] = {
        {"\"iss\":\"main-api\",\"aud\":\"jobsd\",", JWT_OK},
        {"\"iss\":\"main-api\",\"aud\":[\"x\",\"jobsd\"],", JWT_OK},
        {"\"iss\":\"other\",\"aud\":\"jobsd\",", JWT_BAD_ISSUER},
        {"\"aud\":\"jobsd\",", JWT_BAD_ISSUER},
        {"\"iss\":\"main-api\",\"aud\":\"other\",", JWT_BAD_AUDIENCE},
        {"\"iss\":\"main-api\",\"aud\":[],", JWT_BAD_AUDIENCE},
        {"\"iss\":\"main-api\",", JWT_BAD_AUDIENCE},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        snprintf(pl, sizeof pl, "{%s\"tenantId\":\"%s\",\"exp\":%lld}", cases[i].extra, TENANT,
                 NOW + 60);
        char *t = make(h, pl, SECRET, strlen(SECRET), EVP_sha256());
        assert_int_equal(verify(v, t, NULL), cases[i].want);
        free(t);
    }
    jwt_verifier_free(v);
}

static void test_attacks(void **state)
{
    (void)state;
    struct jwt_verifier *v = verifier(NULL, NULL);
    char pl[512];
    good_payload(pl, sizeof pl);
    const char *hs = "{\"alg\":\"HS256\",\"typ\":\"JWT\"}";
    const char *rsa_pem = "-----BEGIN PUBLIC KEY-----\nMIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEA"
                          "u1SU1LfVLPHCozMxH2Mo\n-----END PUBLIC KEY-----\n";
    char buf[1024];
    struct {
        const char *name;
        char *token;
        enum jwt_result want;
    } cases[64];
    size_t n = 0;
#define ADD(nm, tok, w) (cases[n].name = (nm), cases[n].token = (tok), cases[n].want = (w), n++)
    ADD("alg none", make("{\"alg\":\"none\"}", pl, "", 0, NULL), JWT_MALFORMED);
    ADD("alg none with sig", make("{\"alg\":\"none\"}", pl, SECRET, strlen(SECRET), EVP_sha256()),
        JWT_BAD_ALG);
    ADD("alg None", make("{\"alg\":\"None\"}", pl, SECRET, strlen(SECRET), EVP_sha256()),
        JWT_BAD_ALG);
    ADD("alg NONE", make("{\"alg\":\"NONE\"}", pl, SECRET, strlen(SECRET), EVP_sha256()),
        JWT_BAD_ALG);
    ADD("alg hs256", make("{\"alg\":\"hs256\"}", pl, SECRET, strlen(SECRET), EVP_sha256()),
        JWT_BAD_ALG);
    ADD("HS384", make("{\"alg\":\"HS384\"}", pl, SECRET, strlen(SECRET), EVP_sha384()),
        JWT_BAD_ALG);
    ADD("HS512", make("{\"alg\":\"HS512\"}", pl, SECRET, strlen(SECRET), EVP_sha512()),
        JWT_BAD_ALG);
    ADD("HS256 header, HS384 signature", make(hs, pl, SECRET, strlen(SECRET), EVP_sha384()),
        JWT_BAD_SIGNATURE);
    ADD("RS256", make("{\"alg\":\"RS256\"}", pl, SECRET, strlen(SECRET), EVP_sha256()),
        JWT_BAD_ALG);
    ADD("ES256", make("{\"alg\":\"ES256\"}", pl, SECRET, strlen(SECRET), EVP_sha256()),
        JWT_BAD_ALG);
    ADD("HS256 keyed with an RSA public key PEM",
        make(hs, pl, rsa_pem, strlen(rsa_pem), EVP_sha256()), JWT_BAD_SIGNATURE);
    ADD("empty HMAC key", make(hs, pl, "", 0, EVP_sha256()), JWT_BAD_SIGNATURE);
    ADD("wrong key", make(hs, pl, "another-secret-0123456789abcdef-0123", 36, EVP_sha256()),
        JWT_BAD_SIGNATURE);
    snprintf(buf, sizeof buf, "{\"tenantId\":\"%s\",\"exp\":%lld}", TENANT, NOW - 31);
    ADD("exp in the past", make(hs, buf, SECRET, strlen(SECRET), EVP_sha256()), JWT_EXPIRED);
    snprintf(buf, sizeof buf, "{\"tenantId\":\"%s\",\"exp\":%lld,\"nbf\":%lld}", TENANT, NOW + 900,
             NOW + 31);
    ADD("nbf in the future", make(hs, buf, SECRET, strlen(SECRET), EVP_sha256()),
        JWT_NOT_YET_VALID);
    snprintf(buf, sizeof buf, "{\"tenantId\":\"%s\",\"exp\":%lld,\"iat\":%lld}", TENANT, NOW + 900,
             NOW + 300);
    ADD("iat in the future", make(hs, buf, SECRET, strlen(SECRET), EVP_sha256()), JWT_BAD_IAT);
    snprintf(buf, sizeof buf, "{\"tenantId\":\"%s\"}", TENANT);
    ADD("no exp", make(hs, buf, SECRET, strlen(SECRET), EVP_sha256()), JWT_NO_EXP);
    snprintf(buf, sizeof buf, "{\"tenantId\":\"%s\",\"exp\":\"%lld\"}", TENANT, NOW + 900);
    ADD("exp as a string", make(hs, buf, SECRET, strlen(SECRET), EVP_sha256()), JWT_NO_EXP);
    snprintf(buf, sizeof buf, "{\"tenantId\":\"%s\",\"exp\":%lld.5}", TENANT, NOW + 900);
    ADD("exp as a float", make(hs, buf, SECRET, strlen(SECRET), EVP_sha256()), JWT_NO_EXP);
    ADD("typ at+jwt",
        make("{\"alg\":\"HS256\",\"typ\":\"at+jwt\"}", pl, SECRET, strlen(SECRET), EVP_sha256()),
        JWT_BAD_HEADER);
    ADD("unknown crit",
        make("{\"alg\":\"HS256\",\"crit\":[\"exp\"]}", pl, SECRET, strlen(SECRET), EVP_sha256()),
        JWT_CRIT);
    ADD("duplicate alg (HS256 last)",
        make("{\"alg\":\"none\",\"alg\":\"HS256\"}", pl, SECRET, strlen(SECRET), EVP_sha256()),
        JWT_BAD_HEADER);
    ADD("duplicate alg (HS256 first)",
        make("{\"alg\":\"HS256\",\"alg\":\"none\"}", pl, SECRET, strlen(SECRET), EVP_sha256()),
        JWT_BAD_HEADER);
    snprintf(buf, sizeof buf, "{\"tenantId\":\"%s\",\"tenantId\":\"%s\",\"exp\":%lld}", TENANT,
             "11111111-1111-1111-1111-111111111111", NOW + 900);
    ADD("duplicate claim", make(hs, buf, SECRET, strlen(SECRET), EVP_sha256()), JWT_BAD_PAYLOAD);
    ADD("payload not JSON", make(hs, "not json", SECRET, strlen(SECRET), EVP_sha256()),
        JWT_BAD_PAYLOAD);
    ADD("payload a JSON array", make(hs, "[1,2]", SECRET, strlen(SECRET), EVP_sha256()),
        JWT_BAD_PAYLOAD);
    snprintf(buf, sizeof buf, "{\"exp\":%lld}", NOW + 900);
    ADD("missing tenantId", make(hs, buf, SECRET, strlen(SECRET), EVP_sha256()), JWT_BAD_TENANT);
    snprintf(buf, sizeof buf, "{\"tenantId\":\"tenant-1\",\"exp\":%lld}", NOW + 900);
    ADD("tenantId not a UUID", make(hs, buf, SECRET, strlen(SECRET), EVP_sha256()), JWT_BAD_TENANT);
    snprintf(buf, sizeof buf, "{\"tenantId\":\"%s\",\"userId\":{\"a\":1},\"exp\":%lld}", TENANT,
             NOW + 900);
    ADD("userId an object", make(hs, buf, SECRET, strlen(SECRET), EVP_sha256()), JWT_BAD_USER);
    /* Structural attacks on a valid token. */
    char *valid = make(hs, pl, SECRET, strlen(SECRET), EVP_sha256());
    assert_int_equal(verify(v, valid, NULL), JWT_OK);
    char *t;
    t = strdup(valid);
    {
        char *dot = strchr(t, '.');
        dot[3] = dot[3] == 'x' ? 'y' : 'x';
    }
    ADD("tampered payload", t, JWT_BAD_SIGNATURE);
    t = strdup(valid);
    *(strrchr(t, '.') + 1) = '\0';
    ADD("empty signature", t, JWT_MALFORMED);
    t = strdup(valid);
    *strrchr(t, '.') = '\0';
    ADD("2 segments", t, JWT_MALFORMED);
    t = malloc(strlen(valid) + 8);
    snprintf(t, strlen(valid) + 8, "%s.abc", valid);
    ADD("4 segments", t, JWT_MALFORMED);
    t = malloc(strlen(valid) + 2);
    snprintf(t, strlen(valid) + 2, "%s.", valid);
    ADD("trailing dot", t, JWT_MALFORMED);
    t = malloc(strlen(valid) + 2);
    snprintf(t, strlen(valid) + 2, "%s=", valid);
    ADD("= padding", t, JWT_MALFORMED);
    t = strdup(valid);
    t[5] = '+';
    ADD("non-base64url character", t, JWT_MALFORMED);
    t = strdup(valid);
    t[5] = ' ';
    ADD("embedded space", t, JWT_MALFORMED);
    t = malloc(5000);
    memset(t, 'a', 4999);
    t[4999] = '\0';
    t[100] = '.';
    t[200] = '.';
    ADD("over 4 KiB", t, JWT_TOO_LONG);
    ADD("empty", strdup(""), JWT_MALFORMED);
    ADD("dots only", strdup(".."), JWT_MALFORMED);
    for (size_t i = 0; i < n; i++) {
        enum jwt_result got = verify(v, cases[i].token, NULL);
        if (got != cases[i].want)
            fail_msg("%s: got %s, want %s", cases[i].name, jwt_result_reason(got),
                     jwt_result_reason(cases[i].want));
        free(cases[i].token);
    }
    free(valid);
    jwt_verifier_free(v);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rfc7515_a1), cmocka_unit_test(test_rfc7519_unsecured),
        cmocka_unit_test(test_valid),      cmocka_unit_test(test_issuer_audience),
        cmocka_unit_test(test_attacks),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
