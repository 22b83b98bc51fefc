/* jwt: see jwt.h. The order of checks is SECURITY.md's: size and shape, header, signature,
 * and only then the payload (an unsigned payload is never parsed). */
#include "jobsd/jwt.h"
#include "jobsd/util.h"

#include <jansson.h>
#include <limits.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define SIG_LEN     32
#define MAX_USER_ID 128

struct jwt_verifier {
    unsigned char *secret;
    size_t secret_len;
    unsigned char *previous;
    size_t previous_len;
    char *issuer;
    char *audience;
    long long leeway;
    long long (*now_fn)(void *ctx);
    void *now_ctx;
};

const char *jwt_result_reason(enum jwt_result r)
{
    switch (r) {
    case JWT_OK:
        return "ok";
    case JWT_TOO_LONG:
        return "token longer than 4096 bytes";
    case JWT_MALFORMED:
        return "not three base64url segments";
    case JWT_BAD_HEADER:
        return "invalid header";
    case JWT_BAD_ALG:
        return "algorithm is not HS256";
    case JWT_CRIT:
        return "unsupported crit header";
    case JWT_BAD_SIGNATURE:
        return "invalid signature";
    case JWT_BAD_PAYLOAD:
        return "invalid payload";
    case JWT_NO_EXP:
        return "exp missing or not an integer";
    case JWT_EXPIRED:
        return "token expired";
    case JWT_BAD_NBF:
        return "nbf is not an integer";
    case JWT_NOT_YET_VALID:
        return "token not yet valid (nbf)";
    case JWT_BAD_IAT:
        return "iat invalid or in the future";
    case JWT_BAD_ISSUER:
        return "issuer mismatch";
    case JWT_BAD_AUDIENCE:
        return "audience mismatch";
    case JWT_BAD_TENANT:
        return "tenantId missing or not a UUID";
    case JWT_BAD_USER:
        return "userId invalid";
    }
    return "invalid token";
}

static unsigned char *copy_bytes(const unsigned char *p, size_t n)
{
    unsigned char *c = util_xmalloc(n ? n : 1);
    if (n)
        memcpy(c, p, n);
    return c;
}

struct jwt_verifier *jwt_verifier_new(const unsigned char *secret, size_t secret_len,
                                      const unsigned char *previous, size_t previous_len,
                                      const char *issuer, const char *audience,
                                      long long leeway_seconds, long long (*now_fn)(void *ctx),
                                      void *now_ctx)
{
    struct jwt_verifier *v = util_calloc(1, sizeof *v);
    v->secret = copy_bytes(secret, secret_len);
    v->secret_len = secret_len;
    if (previous) {
        v->previous = copy_bytes(previous, previous_len);
        v->previous_len = previous_len;
    }
    v->issuer = util_strdup(issuer);
    v->audience = util_strdup(audience);
    v->leeway = leeway_seconds;
    v->now_fn = now_fn;
    v->now_ctx = now_ctx;
    return v;
}

void jwt_verifier_free(struct jwt_verifier *v)
{
    if (!v)
        return;
    util_wipe(v->secret, v->secret_len);
    free(v->secret);
    if (v->previous) {
        util_wipe(v->previous, v->previous_len);
        free(v->previous);
    }
    free(v->issuer);
    free(v->audience);
    free(v);
}

/* a + b, clamped to [LLONG_MIN, LLONG_MAX]: claims are attacker-chosen 64-bit integers, so
 * "exp + leeway" must not overflow (undefined behaviour); a clamped bound still compares
 * right (exp near INT64_MAX never expires, nbf near INT64_MIN is always reached). */
static long long add_clamped(long long a, long long b)
{
    long long r;
    if (__builtin_add_overflow(a, b, &r))
        return b > 0 ? LLONG_MAX : LLONG_MIN;
    return r;
}

static long long sub_clamped(long long a, long long b)
{
    long long r;
    if (__builtin_sub_overflow(a, b, &r))
        return b < 0 ? LLONG_MAX : LLONG_MIN;
    return r;
}

static long long now_seconds(const struct jwt_verifier *v)
{
    if (v->now_fn)
        return v->now_fn(v->now_ctx);
    return (long long)time(NULL);
}

static bool b64url_char(char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '_';
}

struct parts {
    const char *seg[3];
    size_t len[3];
};

/* Step 1: size and shape. */
static enum jwt_result split(const char *token, size_t len, struct parts *p)
{
    if (len > JWT_MAX_TOKEN)
        return JWT_TOO_LONG;
    size_t start = 0;
    int n = 0;
    for (size_t i = 0; i <= len; i++) {
        if (i == len || token[i] == '.') {
            if (n >= 3 || i == start)
                return JWT_MALFORMED;
            p->seg[n] = token + start;
            p->len[n] = i - start;
            n++;
            start = i + 1;
        } else if (!b64url_char(token[i])) {
            return JWT_MALFORMED;
        }
    }
    return n == 3 ? JWT_OK : JWT_MALFORMED;
}

static json_t *decode_json(const char *seg, size_t len)
{
    unsigned char buf[JWT_MAX_TOKEN];
    size_t n;
    if (!util_base64_decode(seg, len, true, buf, sizeof buf, &n))
        return NULL;
    return json_loadb((const char *)buf, n, JSON_REJECT_DUPLICATES, NULL);
}

/* Step 2: the header. */
static enum jwt_result check_header(const struct parts *p)
{
    json_t *h = decode_json(p->seg[0], p->len[0]);
    if (!json_is_object(h)) {
        json_decref(h);
        return JWT_BAD_HEADER;
    }
    enum jwt_result r = JWT_OK;
    json_t *alg = json_object_get(h, "alg");
    json_t *typ = json_object_get(h, "typ");
    if (!json_is_string(alg) || strcmp(json_string_value(alg), "HS256") != 0 ||
        json_string_length(alg) != 5)
        r = JWT_BAD_ALG;
    else if (json_object_get(h, "crit"))
        r = JWT_CRIT;
    else if (typ && (!json_is_string(typ) || strcmp(json_string_value(typ), "JWT") != 0))
        r = JWT_BAD_HEADER;
    json_decref(h);
    return r;
}

static void hmac(const unsigned char *key, size_t key_len, const char *data, size_t len,
                 unsigned char out[SIG_LEN])
{
    static const unsigned char empty = 0;
    unsigned int n = 0;
    if (!HMAC(EVP_sha256(), key_len ? key : &empty, (int)key_len, (const unsigned char *)data, len,
              out, &n) ||
        n != SIG_LEN)
        util_fatal("HMAC-SHA256 failed");
}

/* Step 3: the signature, against both secrets, without an early exit. */
static enum jwt_result check_signature(const struct jwt_verifier *v, const struct parts *p)
{
    unsigned char sig[SIG_LEN + 8];
    size_t n;
    if (!util_base64_decode(p->seg[2], p->len[2], true, sig, sizeof sig, &n) || n != SIG_LEN)
        return JWT_BAD_SIGNATURE;
    size_t signed_len = p->len[0] + 1 + p->len[1];
    unsigned char a[SIG_LEN], b[SIG_LEN];
    hmac(v->secret, v->secret_len, p->seg[0], signed_len, a);
    int ok = CRYPTO_memcmp(a, sig, SIG_LEN) == 0;
    if (v->previous) {
        hmac(v->previous, v->previous_len, p->seg[0], signed_len, b);
    } else {
        /* Same work either way. */
        hmac(v->secret, v->secret_len, p->seg[0], signed_len, b);
        b[0] ^= 0xff;
    }
    ok |= CRYPTO_memcmp(b, sig, SIG_LEN) == 0;
    util_wipe(a, sizeof a);
    util_wipe(b, sizeof b);
    return ok ? JWT_OK : JWT_BAD_SIGNATURE;
}

enum jwt_result jwt_verify_signature(const struct jwt_verifier *v, const char *token, size_t len)
{
    struct parts p;
    enum jwt_result r = split(token, len, &p);
    if (r == JWT_OK)
        r = check_header(&p);
    if (r == JWT_OK)
        r = check_signature(v, &p);
    return r;
}

static bool int_claim(json_t *payload, const char *name, bool *present, long long *out)
{
    json_t *c = json_object_get(payload, name);
    *present = c != NULL;
    if (!c)
        return true;
    if (!json_is_integer(c))
        return false;
    *out = (long long)json_integer_value(c);
    return true;
}

static enum jwt_result check_audience(const struct jwt_verifier *v, json_t *payload)
{
    if (!v->audience)
        return JWT_OK;
    json_t *aud = json_object_get(payload, "aud");
    if (json_is_string(aud))
        return strcmp(json_string_value(aud), v->audience) == 0 ? JWT_OK : JWT_BAD_AUDIENCE;
    if (json_is_array(aud)) {
        size_t i;
        json_t *x;
        json_array_foreach(aud, i, x)
        {
            if (json_is_string(x) && strcmp(json_string_value(x), v->audience) == 0)
                return JWT_OK;
        }
    }
    return JWT_BAD_AUDIENCE;
}

/* Steps 4-6: payload, time, issuer/audience, claims. */
static enum jwt_result check_payload(const struct jwt_verifier *v, const struct parts *p,
                                     struct jwt_claims *out)
{
    json_t *payload = decode_json(p->seg[1], p->len[1]);
    if (!json_is_object(payload)) {
        json_decref(payload);
        return JWT_BAD_PAYLOAD;
    }
    enum jwt_result r = JWT_OK;
    long long now = now_seconds(v);
    long long exp = 0, nbf = 0, iat = 0;
    bool has_exp, has_nbf, has_iat;
    if (!int_claim(payload, "exp", &has_exp, &exp) || !has_exp) {
        r = JWT_NO_EXP;
        goto out;
    }
    if (now >= add_clamped(exp, v->leeway)) {
        r = JWT_EXPIRED;
        goto out;
    }
    if (!int_claim(payload, "nbf", &has_nbf, &nbf)) {
        r = JWT_BAD_NBF;
        goto out;
    }
    if (has_nbf && now < sub_clamped(nbf, v->leeway)) {
        r = JWT_NOT_YET_VALID;
        goto out;
    }
    if (!int_claim(payload, "iat", &has_iat, &iat) ||
        (has_iat && iat > add_clamped(now, v->leeway))) {
        r = JWT_BAD_IAT;
        goto out;
    }
    if (v->issuer) {
        json_t *iss = json_object_get(payload, "iss");
        if (!json_is_string(iss) || strcmp(json_string_value(iss), v->issuer) != 0) {
            r = JWT_BAD_ISSUER;
            goto out;
        }
    }
    r = check_audience(v, payload);
    if (r != JWT_OK)
        goto out;
    /* "role": "operator" marks an operator token (the console): tenantId is then optional. */
    json_t *role = json_object_get(payload, "role");
    if (role && !json_is_string(role)) {
        r = JWT_BAD_PAYLOAD;
        goto out;
    }
    bool op = role && strcmp(json_string_value(role), "operator") == 0;
    json_t *tenant = json_object_get(payload, "tenantId");
    char norm[37] = "";
    if ((tenant || !op) &&
        (!json_is_string(tenant) || !util_uuid_normalize(json_string_value(tenant), norm))) {
        r = JWT_BAD_TENANT;
        goto out;
    }
    json_t *user = json_object_get(payload, "userId");
    char uid[MAX_USER_ID + 1] = "";
    if (user) {
        if (json_is_string(user) && json_string_length(user) >= 1 &&
            json_string_length(user) <= MAX_USER_ID &&
            strlen(json_string_value(user)) == json_string_length(user)) {
            memcpy(uid, json_string_value(user), json_string_length(user) + 1);
        } else if (json_is_integer(user)) {
            util_fmt(uid, sizeof uid, "%lld", (long long)json_integer_value(user));
        } else {
            r = JWT_BAD_USER;
            goto out;
        }
    }
    if (out) {
        memcpy(out->tenant_id, norm, sizeof norm);
        memcpy(out->user_id, uid, sizeof uid);
        out->exp = exp;
        out->operator_role = op;
    }
out:
    json_decref(payload);
    return r;
}

enum jwt_result jwt_verify(const struct jwt_verifier *v, const char *token, size_t len,
                           struct jwt_claims *out)
{
    struct parts p;
    enum jwt_result r = split(token, len, &p);
    if (r == JWT_OK)
        r = check_header(&p);
    if (r == JWT_OK)
        r = check_signature(v, &p);
    if (r == JWT_OK)
        r = check_payload(v, &p, out);
    return r;
}

size_t jwt_sign(const unsigned char *secret, size_t secret_len, const char *tenant_id,
                const char *user_id, long long iat, long long exp, const char *issuer,
                const char *audience, char *out, size_t cap)
{
    static const char header[] = "{\"alg\":\"HS256\",\"typ\":\"JWT\"}";
    json_t *payload = json_pack("{s:s, s:I, s:I}", tenant_id ? "tenantId" : "role",
                                tenant_id ? tenant_id : "operator", "iat", (json_int_t)iat, "exp",
                                (json_int_t)exp);
    if (!payload)
        util_fatal("out of memory");
    if (user_id)
        json_object_set_new(payload, "userId", json_string(user_id));
    if (issuer)
        json_object_set_new(payload, "iss", json_string(issuer));
    if (audience)
        json_object_set_new(payload, "aud", json_string(audience));
    char *body = json_dumps(payload, JSON_COMPACT | JSON_SORT_KEYS);
    json_decref(payload);
    if (!body)
        util_fatal("out of memory");
    char enc[JWT_MAX_TOKEN];
    size_t n =
        util_base64url_encode((const unsigned char *)header, sizeof header - 1, enc, sizeof enc);
    size_t blen = strlen(body);
    size_t need = n + 1 + (blen + 2) / 3 * 4 + 1 + 43 + 1;
    if (need > sizeof enc || need > cap) {
        free(body);
        return 0;
    }
    enc[n++] = '.';
    n += util_base64url_encode((const unsigned char *)body, blen, enc + n, sizeof enc - n);
    free(body);
    unsigned char sig[SIG_LEN];
    hmac(secret, secret_len, enc, n, sig);
    enc[n++] = '.';
    n += util_base64url_encode(sig, SIG_LEN, enc + n, sizeof enc - n);
    memcpy(out, enc, n + 1);
    return n;
}
