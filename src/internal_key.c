/* internal_key: see internal_key.h. */
#include "jobsd/internal_key.h"
#include "jobsd/util.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#define DIGEST_LEN 32

struct internal_key {
    unsigned char salt[32];
    unsigned char current[DIGEST_LEN];
    unsigned char previous[DIGEST_LEN];
    bool has_previous;
};

static void digest(const unsigned char salt[32], const char *data, size_t len,
                   unsigned char out[DIGEST_LEN])
{
    unsigned int out_len = 0;
    /* An empty candidate is hashed as well: time never depends on its content. */
    static const unsigned char empty = 0;
    const unsigned char *p = len ? (const unsigned char *)data : &empty;
    if (!HMAC(EVP_sha256(), salt, 32, p, len, out, &out_len) || out_len != DIGEST_LEN)
        util_fatal("HMAC-SHA256 failed");
}

struct internal_key *internal_key_new(const char *current, const char *previous)
{
    struct internal_key *k = util_calloc(1, sizeof *k);
    if (RAND_bytes(k->salt, sizeof k->salt) != 1)
        util_fatal("RAND_bytes failed");
    digest(k->salt, current, strlen(current), k->current);
    if (previous) {
        digest(k->salt, previous, strlen(previous), k->previous);
        k->has_previous = true;
    } else {
        /* Unmatchable: a digest of fresh random bytes nobody knows. */
        unsigned char junk[32];
        if (RAND_bytes(junk, sizeof junk) != 1)
            util_fatal("RAND_bytes failed");
        memcpy(k->previous, junk, sizeof junk);
    }
    return k;
}

void internal_key_free(struct internal_key *k)
{
    if (!k)
        return;
    util_wipe(k, sizeof *k);
    free(k);
}

enum internal_key_match internal_key_check(const struct internal_key *k, const char *candidate,
                                           size_t len)
{
    unsigned char d[DIGEST_LEN];
    digest(k->salt, candidate ? candidate : "", candidate ? len : 0, d);
    int cur = CRYPTO_memcmp(d, k->current, DIGEST_LEN) == 0;
    int prev = CRYPTO_memcmp(d, k->previous, DIGEST_LEN) == 0;
    util_wipe(d, sizeof d);
    /* Both comparisons always run; the result is chosen without an early exit. */
    int has_prev = k->has_previous;
    int which = cur * INTERNAL_KEY_CURRENT | (prev & has_prev & !cur) * INTERNAL_KEY_PREVIOUS;
    if (!candidate || len == 0)
        return INTERNAL_KEY_NONE;
    return (enum internal_key_match)which;
}

const char *internal_key_match_name(enum internal_key_match m)
{
    switch (m) {
    case INTERNAL_KEY_CURRENT:
        return "current";
    case INTERNAL_KEY_PREVIOUS:
        return "previous";
    case INTERNAL_KEY_NONE:
        break;
    }
    return "none";
}
