/* libFuzzer harness: every Mercado Livre response parser on the same bytes. */
#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "jobsd/ml_parse.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *b = (const char *)data;
    struct err e;
    struct ml_error me;
    ml_parse_error(b, size, &me);
    struct ml_token t;
    (void)ml_parse_token(b, size, &t, &e);
    char scroll[256];
    long long total;
    json_decref(ml_parse_search(b, size, scroll, sizeof scroll, &total, &e));
    const char *ids[] = {"MLB1", "MLB2"};
    json_decref(ml_parse_multiget(b, size, ids, 2, &e));
    json_decref(ml_parse_orders(b, size, &total, &e));
    json_decref(ml_parse_visits(b, size, &e));
    return 0;
}
