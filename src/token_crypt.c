/* token_crypt: see token_crypt.h. */
#include "jobsd/token_crypt.h"
#include "jobsd/util.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <stdlib.h>
#include <string.h>

#define PREFIX    "enc:v1:"
#define NONCE     12
#define TAG       16
#define MAX_PLAIN 2048

struct token_crypt {
    unsigned char key[32];
    int enabled;
};

struct token_crypt *token_crypt_new(const char *b64_key, struct err *e)
{
    struct token_crypt *t = util_calloc(1, sizeof *t);
    if (!b64_key)
        return t;
    size_t n = 0;
    unsigned char k[64];
    if (!util_base64_decode(b64_key, strlen(b64_key), false, k, sizeof k, &n) || n != 32) {
        util_wipe(k, sizeof k);
        free(t);
        err_set(e, 400, "invalid_config", "TOKEN_ENCRYPTION_KEY must be 32 bytes in base64");
        return NULL;
    }
    memcpy(t->key, k, 32);
    util_wipe(k, sizeof k);
    t->enabled = 1;
    return t;
}

void token_crypt_free(struct token_crypt *t)
{
    if (!t)
        return;
    util_wipe(t, sizeof *t);
    free(t);
}

static void aad(const char *row_id, const char *column, char *out, size_t cap)
{
    util_fmt(out, cap, "jobsd:%s:%s", row_id ? row_id : "", column ? column : "");
}

char *token_crypt_seal(const struct token_crypt *t, const char *plain, const char *row_id,
                       const char *column)
{
    size_t len = strlen(plain);
    if (!t || !t->enabled || len > MAX_PLAIN)
        return util_strdup(plain);
    unsigned char buf[NONCE + MAX_PLAIN + TAG];
    if (RAND_bytes(buf, NONCE) != 1)
        util_fatal("RAND_bytes failed");
    char ad[160];
    aad(row_id, column, ad, sizeof ad);
    EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
    int out = 0, fin = 0;
    if (!ctx || EVP_EncryptInit_ex(ctx, EVP_aes_256_gcm(), NULL, t->key, buf) != 1 ||
        EVP_EncryptUpdate(ctx, NULL, &out, (const unsigned char *)ad, (int)strlen(ad)) != 1 ||
        EVP_EncryptUpdate(ctx, buf + NONCE, &out, (const unsigned char *)plain, (int)len) != 1 ||
        EVP_EncryptFinal_ex(ctx, buf + NONCE + out, &fin) != 1 ||
        EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_GET_TAG, TAG, buf + NONCE + out + fin) != 1)
        util_fatal("AES-256-GCM encryption failed");
    EVP_CIPHER_CTX_free(ctx);
    size_t total = NONCE + (size_t)out + (size_t)fin + TAG;
    size_t cap = sizeof PREFIX + (total + 2) / 3 * 4 + 1;
    char *s = util_xmalloc(cap);
    memcpy(s, PREFIX, sizeof PREFIX - 1);
    util_base64url_encode(buf, total, s + sizeof PREFIX - 1, cap - (sizeof PREFIX - 1));
    util_wipe(buf, sizeof buf);
    return s;
}

char *token_crypt_open(const struct token_crypt *t, const char *stored, const char *row_id,
                       const char *column, struct err *e)
{
    size_t plen = sizeof PREFIX - 1;
    if (strncmp(stored, PREFIX, plen) != 0)
        return util_strdup(stored);
    if (!t || !t->enabled) {
        err_set(e, 500, "internal_error",
                "a stored token is encrypted but TOKEN_ENCRYPTION_KEY is not configured");
        return NULL;
    }
    unsigned char buf[NONCE + MAX_PLAIN + TAG];
    size_t n = 0;
    const char *b64 = stored + plen;
    if (!util_base64_decode(b64, strlen(b64), true, buf, sizeof buf, &n) || n < NONCE + TAG) {
        err_set(e, 500, "internal_error", "a stored token is not a valid encrypted value");
        return NULL;
    }
    size_t ct = n - NONCE - TAG;
    char ad[160];
    aad(row_id, column, ad, sizeof ad);
    unsigned char *plain = util_xmalloc(ct + 1);
    EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
    int out = 0, fin = 0;
    int ok = ctx && EVP_DecryptInit_ex(ctx, EVP_aes_256_gcm(), NULL, t->key, buf) == 1 &&
             EVP_DecryptUpdate(ctx, NULL, &out, (const unsigned char *)ad, (int)strlen(ad)) == 1 &&
             EVP_DecryptUpdate(ctx, plain, &out, buf + NONCE, (int)ct) == 1 &&
             EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_TAG, TAG, buf + NONCE + ct) == 1 &&
             EVP_DecryptFinal_ex(ctx, plain + out, &fin) == 1;
    EVP_CIPHER_CTX_free(ctx);
    util_wipe(buf, sizeof buf);
    if (!ok) {
        util_wipe(plain, ct + 1);
        free(plain);
        err_set(e, 500, "internal_error",
                "a stored token does not decrypt with TOKEN_ENCRYPTION_KEY (wrong key, or moved "
                "from another row)");
        return NULL;
    }
    plain[(size_t)out + (size_t)fin] = '\0';
    return (char *)plain;
}

const char *token_crypt_library_version(void)
{
    return OpenSSL_version(OPENSSL_VERSION);
}
