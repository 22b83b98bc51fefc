/* job_kinds: see job_kinds.h. */
#include "jobsd/job_kinds.h"
#include "jobsd/job_rebuild.h"
#include "jobsd/job_sync_ml.h"

#include <string.h>

/* clang-format off */
static const struct job_kind *const KINDS[] = {
    &job_rebuild_kind,
    &job_sync_ml_kind,
    NULL,
};
/* clang-format on */

_Static_assert(sizeof KINDS / sizeof KINDS[0] <= JOB_KINDS_MAX, "raise JOB_KINDS_MAX");

const struct job_kind *const *job_kinds(void)
{
    return KINDS;
}

size_t job_kinds_count(void)
{
    return sizeof KINDS / sizeof KINDS[0] - 1;
}

size_t job_kinds_types(const char **out, size_t cap)
{
    size_t n = 0;
    for (; KINDS[n] && n < cap; n++)
        out[n] = KINDS[n]->type;
    if (n < cap)
        out[n] = NULL;
    return n;
}

size_t job_kinds_ml_types(const char **out, size_t cap)
{
    size_t n = 0;
    for (size_t i = 0; KINDS[i] && n < cap; i++)
        if (KINDS[i]->calls_ml)
            out[n++] = KINDS[i]->type;
    if (n < cap)
        out[n] = NULL;
    return n;
}

const struct job_kind *job_kind_by_type(const char *type)
{
    for (size_t i = 0; type && KINDS[i]; i++)
        if (strcmp(KINDS[i]->type, type) == 0)
            return KINDS[i];
    return NULL;
}

const struct job_kind *job_kind_by_name(const char *name)
{
    for (size_t i = 0; name && KINDS[i]; i++)
        if (strcmp(KINDS[i]->name, name) == 0)
            return KINDS[i];
    return NULL;
}
