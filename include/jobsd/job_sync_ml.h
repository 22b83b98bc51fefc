/* job_sync_ml: the mercadolivre_sync job (SPEC 1.2): for every active Mercado Livre
 * connection of a tenant, make sure of a valid access token (refreshes serialised per
 * connection by locking its row, the rotated pair committed in the same transaction), then
 * pull listings (scan + multigets of 20), orders (paged, ranges split past 10,000 results)
 * and daily visits into the raw-fact tables. The kind is job_sync_ml.c; its parts are the
 * sync_*.c files, which share src/sync_ml.h and nothing else. */
#ifndef JOBSD_JOB_SYNC_ML_H
#define JOBSD_JOB_SYNC_ML_H

#include <jansson.h>

#include "jobsd/err.h"
#include "jobsd/job.h"

/* Checks a sync body (tenantId or allTenants: true, daysBack 1..365, include). tenant is ""
 * for allTenants (a fleet parent, job_fleet). */
MUSTCHECK int sync_parse(json_t *body, char tenant[37], long long *days_back, unsigned *include,
                         struct err *e);

enum sync_part { SYNC_LISTINGS = 1, SYNC_ORDERS = 2, SYNC_VISITS = 4 };

extern const struct job_kind job_sync_ml_kind;

#endif
