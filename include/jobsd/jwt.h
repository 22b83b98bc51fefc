/* jwt: HS256 JSON Web Tokens, verified with OpenSSL (HMAC-SHA256 + CRYPTO_memcmp) and jansson
 * (duplicate keys rejected), every check of SECURITY.md in its order. No I/O; the clock is
 * injectable. Also mints tokens for `jobsd token`. */
#ifndef JOBSD_JWT_H
#define JOBSD_JWT_H

#include <stdbool.h>
#include <stddef.h>

#define JWT_MAX_TOKEN 4096

enum jwt_result {
    JWT_OK = 0,
    JWT_TOO_LONG,      /* over 4096 bytes */
    JWT_MALFORMED,     /* not three non-empty base64url segments */
    JWT_BAD_HEADER,    /* header not a JSON object, duplicate keys, typ other than JWT */
    JWT_BAD_ALG,       /* alg not exactly "HS256" */
    JWT_CRIT,          /* a crit header */
    JWT_BAD_SIGNATURE, /* not 32 bytes, or no secret matches */
    JWT_BAD_PAYLOAD,   /* payload not a JSON object, or duplicate keys */
    JWT_NO_EXP,        /* exp missing or not an integer */
    JWT_EXPIRED,       /* now >= exp + leeway */
    JWT_BAD_NBF,       /* nbf not an integer */
    JWT_NOT_YET_VALID, /* now < nbf - leeway */
    JWT_BAD_IAT,       /* iat not an integer, or in the future */
    JWT_BAD_ISSUER,    /* iss differs from JWT_ISSUER */
    JWT_BAD_AUDIENCE,  /* aud (string or array) lacks JWT_AUDIENCE */
    JWT_BAD_TENANT,    /* tenantId missing (not an operator token) or not a UUID string */
    JWT_BAD_USER,      /* userId not a bounded string or integer */
};

const char *jwt_result_reason(enum jwt_result r);

struct jwt_verifier;

/* Secrets are raw bytes (never base64-decoded); previous may be NULL. issuer/audience NULL =
 * not checked. now_fn NULL = the real clock (seconds since the epoch). */
struct jwt_verifier *jwt_verifier_new(const unsigned char *secret, size_t secret_len,
                                      const unsigned char *previous, size_t previous_len,
                                      const char *issuer, const char *audience,
                                      long long leeway_seconds, long long (*now_fn)(void *ctx),
                                      void *now_ctx);
void jwt_verifier_free(struct jwt_verifier *v);

/* Stages of verification, exposed for tests: the signature check alone. */
enum jwt_result jwt_verify_signature(const struct jwt_verifier *v, const char *token, size_t len);

struct jwt_claims {
    char tenant_id[37]; /* lower case; "" for an operator token without tenantId */
    char user_id[129];  /* "" when absent; integers as decimal text */
    long long exp;
    bool operator_role; /* the payload has "role": "operator" */
};

/* Full verification (structure, header, signature, payload, time, issuer/audience, claims). */
enum jwt_result jwt_verify(const struct jwt_verifier *v, const char *token, size_t len,
                           struct jwt_claims *out);

/* Mints an HS256 token {userId?, tenantId, iat, exp[, iss][, aud]} into out; tenant_id NULL
 * mints an operator token ({"role": "operator"} instead of tenantId). Returns its length, or 0
 * when out is too small. */
size_t jwt_sign(const unsigned char *secret, size_t secret_len, const char *tenant_id,
                const char *user_id, long long iat, long long exp, const char *issuer,
                const char *audience, char *out, size_t cap);

#endif
