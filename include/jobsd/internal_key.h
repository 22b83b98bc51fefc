/* internal_key: the X-Internal-Key check of SPEC 2.1. At start-up a random 32-byte salt r is
 * drawn and only HMAC-SHA256(r, key) is kept for the current and previous key; a candidate
 * is hashed the same way and compared with CRYPTO_memcmp against both digests, so the time
 * taken depends on neither the key's content nor its length. */
#ifndef JOBSD_INTERNAL_KEY_H
#define JOBSD_INTERNAL_KEY_H

#include <stddef.h>

enum internal_key_match {
    INTERNAL_KEY_NONE = 0,
    INTERNAL_KEY_CURRENT = 1,
    INTERNAL_KEY_PREVIOUS = 2,
};

struct internal_key;

/* New verifier (caller frees with internal_key_free). previous may be NULL. The raw keys are
 * not kept; the caller should wipe its copies. */
struct internal_key *internal_key_new(const char *current, const char *previous);
void internal_key_free(struct internal_key *k);

/* Which key the candidate matches. Both digests are always compared. */
enum internal_key_match internal_key_check(const struct internal_key *k, const char *candidate,
                                           size_t len);

const char *internal_key_match_name(enum internal_key_match m);

#endif
