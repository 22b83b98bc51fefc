/* job_rebuild: the metrics_aggregation job (SPEC 1.1): validates and resolves a window, then
 * rebuilds listing_metrics_daily for it in one transaction under the tenant's advisory lock
 * with the statement of sql/queries/rebuild_daily_metrics.sql. */
#ifndef JOBSD_JOB_REBUILD_H
#define JOBSD_JOB_REBUILD_H

#include <jansson.h>
#include <stdbool.h>

#include "jobsd/err.h"
#include "jobsd/job.h"

/* A body after the checks that need no database (fields, types, formats, combination). */
struct rebuild_input {
    char tenant_id[37]; /* lower case; "" with all_tenants */
    bool all_tenants;   /* "allTenants": true (a fleet parent, job_fleet) */
    const char *from;   /* borrowed from the body, NULL when absent */
    const char *to;
    long long days_back; /* 0 when absent */
};

/* Checks a body in SPEC order up to the combination rule. */
MUSTCHECK int rebuild_parse(json_t *body, long long max_range_days, struct rebuild_input *in,
                            struct err *e);

/* The SET LOCALs run after BEGIN (embedded sql/queries/rebuild_prologue.sql). */
const char *rebuild_prologue(void);

/* The SQL text of the rebuild statement (embedded). */
const char *rebuild_statement(void);

extern const struct job_kind job_rebuild_kind;

#endif
