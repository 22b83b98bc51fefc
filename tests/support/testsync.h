/* testsync: what the Mercado Livre sync's end-to-end tests share: a world for the fake API
 * (one or more sellers with their tokens and data), the tenant and its connection as jobsd
 * stores them, a jobsd pointed at the fake, a sync request and its counters. */
#ifndef JOBSD_TESTSYNC_H
#define JOBSD_TESTSYNC_H

#include <jansson.h>
#include <libpq-fe.h>
#include <stdbool.h>
#include <stddef.h>

#include "testfake.h"
#include "testhttp.h"
#include "testproc.h"

#define TSYNC_PATH          "/api/v1/jobs/sync-mercadolivre"
#define TSYNC_CLIENT_ID     "4400112233445566"
#define TSYNC_CLIENT_SECRET "sync-test-client-secret"

struct tsync_seller {
    const char *tenant;
    long long user_id;
    const char *access;  /* the fake's current access token */
    const char *refresh; /* the fake's current refresh token */
    long long access_expires_in;
    json_t *extra; /* merged into the seller object (generators, explicit data) */
};

/* Writes a scenario file for these sellers (client TSYNC_CLIENT_ID) plus top-level keys of
 * `top` (may be NULL) and returns its path under TMPDIR (a static buffer, 4 slots). */
const char *tsync_world(const struct tsync_seller *sellers, size_t n, const char *tag, json_t *top);
/* The tenant and its connection as jobsd stores them (tokens and expiry as given). */
void tsync_connect(PGconn *c, const struct tsync_seller *s, const char *access_in_db,
                   const char *refresh_in_db, const char *expires_sql);
/* jobsd serve on db_url against the fake, with ML_MAX_RPS/ML_CONCURRENCY, the client
 * credentials when with_client, and extra env (NULL-terminated, may be NULL). */
bool tsync_start_jobsd(struct jobsd_proc *p, const char *db_url, const struct fake_ml *f,
                       const char *rps, const char *concurrency, bool with_client,
                       const char *const *extra_env);
/* POST the sync for tenant with extra body text (", \"daysBack\": 5"); the HTTP status. */
int tsync_run(const struct jobsd_proc *p, const char *tenant, const char *extra,
              struct th_response *r);
/* A counter of the first connection of a sync's answer (section NULL: a top-level key of the
 * connection); -1 when absent. */
long long tsync_stat(const struct th_response *r, const char *section, const char *key);
/* paging.total of a seller's orders search on the fake, with an extra filter
 * ("&order.status=cancelled"). */
long long tsync_fake_orders_total(const struct fake_ml *f, long long seller, const char *token,
                                  const char *filter);

#endif
