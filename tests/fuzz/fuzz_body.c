/* libFuzzer harness: the job body parser/validator (strict JSON with duplicate keys
 * rejected, then the rebuild rules). */
#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "jobsd/job_rebuild.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    json_error_t jerr;
    json_t *body = json_loadb((const char *)data, size, JSON_REJECT_DUPLICATES, &jerr);
    if (!body)
        return 0;
    struct rebuild_input in;
    struct err e;
    err_clear(&e);
    (void)rebuild_parse(body, 366, &in, &e);
    json_decref(body);
    return 0;
}
