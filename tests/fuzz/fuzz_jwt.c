/* libFuzzer harness: the JWT verifier on arbitrary bytes. A token minted with the harness's
 * secret is in the seed corpus, so mutations explore past the signature check too (the
 * verifier is built with a clock before the seeds' exp). */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "jobsd/jwt.h"

#define SECRET "fuzz-secret-0123456789abcdef-0123456789"

static long long fixed_now(void *ctx)
{
    (void)ctx;
    return 1700000000LL;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct jwt_verifier *v;
    if (!v)
        v = jwt_verifier_new((const unsigned char *)SECRET, strlen(SECRET), NULL, 0, "iss", "aud",
                             30, fixed_now, NULL);
    struct jwt_claims c;
    (void)jwt_verify(v, (const char *)data, size, &c);
    (void)jwt_verify_signature(v, (const char *)data, size);
    return 0;
}
