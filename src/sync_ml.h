/* sync_ml: the insides of the mercadolivre_sync job, shared by its files only (the public part
 * is jobsd/job_sync_ml.h). Each file uses only the files listed before it:
 *   sync_common.c    the run's bookkeeping: errors, request outcomes, progress (sync_*)
 *   sync_write.c     write transactions; writes pipelined while requests are in flight
 *   sync_token.c     a valid access token; a refresh under the connection row's lock
 *   sync_batch.c     Mercado Livre batches with the connection's token, renewed on a 401
 *   sync_listings.c, sync_orders.c, sync_visits.c   the three parts of a connection's sync
 *   job_sync_ml.c    the kind: request body, resolve, run (every connection), present
 * Everything runs in the job's thread on its one database connection (s->c); nothing here
 * runs inside ml_client. */
#ifndef JOBSD_SYNC_ML_H
#define JOBSD_SYNC_ML_H

#include <jansson.h>
#include <libpq-fe.h>
#include <stdbool.h>
#include <stddef.h>

#include "jobsd/db.h"
#include "jobsd/err.h"
#include "jobsd/job.h"
#include "jobsd/ml_batch.h"
#include "jobsd/ml_client.h"

struct token_crypt;

#define SYNC_TOKEN_MAX 512

struct sync {
    struct job_run *run;
    PGconn *c;
    char tenant[37];
    long long days_back;
    unsigned include;          /* enum sync_part bits */
    struct token_crypt *crypt; /* TOKEN_ENCRYPTION_KEY (passthrough when unset) */

    /* The connection being synced. */
    char conn_id[37];
    long long seller_id;
    char token[SYNC_TOKEN_MAX]; /* its access token (wiped when the connection is done) */
    bool refreshed;             /* tokenRefreshed: a refresh rotated its tokens */
    bool forced_refresh;        /* the one refresh a 401 may force was tried... */
    struct err refresh_err;     /* ...and failed with this (401s then fail with it) */
    json_t *errors;             /* its errors[] */

    /* Across the job. */
    long long ml_ok;
    long long ml_failed;
    struct err worst;  /* the most serious failure seen (503 beats 422) */
    long long nerrors; /* errors recorded so far (a phase compares before and after) */
    long long records;
    long long db_ms; /* time spent writing, for the phase log lines */

    /* The write in flight: a pipelined transaction the server runs while requests go on. */
    bool writing;
    const char *write_step; /* "orders" or "visits" */
    json_t *write_counts;   /* the counters it will add to (borrowed) */
    long long write_rows;   /* visits rows sent */
};

/* ---- sync_common.c */

/* Reports a phase to the run's progress callback (the CLI on a terminal), if any. */
void sync_progress(struct sync *s, const char *phase);
/* Has the run been asked to stop? */
bool sync_cancelled(const struct sync *s);
/* A debug line for a phase that began at t0 (mono ms) with s->db_ms at db0. */
void sync_phase_done(struct sync *s, const char *phase, long long t0, long long db0);
/* Adds an error of a step to the connection's errors[], merged with earlier ones of the same
 * step and code, and keeps the job's worst. */
void sync_add_error(struct sync *s, const char *step, const struct err *e);
/* Classifies a finished request: 1 = 2xx, 0 = another final HTTP status (the caller decides;
 * sync_http_error if it is a failure), -1 = failed (error recorded). Counts it. */
int sync_outcome(struct sync *s, const char *step, struct ml_request *r);
/* Records a final HTTP status that is a failure (401 after a refresh: reauth_required; else
 * ml_unavailable). */
void sync_http_error(struct sync *s, const char *step, struct ml_request *r);
/* Column col of the first row as an integer (0 when it is not one). */
long long sync_count(PGresult *r, int col);
/* counts[key] += n. */
void sync_bump(json_t *counts, const char *key, long long n);

/* ---- sync_write.c (a failed write is recorded in s->errors under its step) */

/* Collects the write in flight, if any, adding its counts. Must precede any other use of
 * s->c while a write may be in flight. */
void sync_write_collect(struct sync *s);
/* Upserts listings (normalised items, array) and marks the ids of blocked (array of strings)
 * blocked_by_policy, in one transaction now; sets counts upserted and blocked. */
void sync_write_listings(struct sync *s, json_t *items, json_t *blocked, json_t *counts);
/* Sends orders (normalised, with their items) as one pipelined transaction, after collecting
 * the one before; counts upserted and items are added when it is collected. */
void sync_write_orders(struct sync *s, json_t *orders, json_t *counts);
/* Sends visits rows ({listing_id, date, visits}) as one pipelined transaction; counts days
 * are added when it is collected. */
void sync_write_visits(struct sync *s, json_t *rows, json_t *counts);
/* Marks the listings (array of ids) blocked_by_policy, in one transaction now. */
void sync_write_blocked(struct sync *s, json_t *listing_ids);

/* ---- sync_token.c */

/* Writes a valid access token for the connection into out. With failed_token (after a
 * 401): a new one unless another worker already replaced that token. The connection row is
 * locked for the whole refresh, so one refresh happens per connection however many workers
 * and instances try, and the rotated pair is committed in the transaction that used the old
 * one. Only invalid_grant marks the connection reauth_required; other failures leave it
 * active. Collects the write in flight first. */
MUSTCHECK int sync_token_ensure(struct sync *s, const char *failed_token, char *out, size_t cap,
                                struct err *e);

/* ---- sync_batch.c */

/* A batch of GETs with the connection's access token (ml_batch_start). */
struct ml_batch *sync_batch_start(struct sync *s, struct ml_request *reqs, size_t n);
/* ml_batch_next, with the batch's request for a new token answered: the connection's first
 * refreshes (sync_token_ensure), later ones get the current token or that refresh's error.
 * Returns ML_BATCH_ANSWER, ML_BATCH_DONE or ML_BATCH_CANCELLED. */
enum ml_batch_event sync_batch_next(struct sync *s, struct ml_batch *b, size_t *index);
/* Runs the n requests to their final answers (or until the run is cancelled: the rest get
 * err "interrupted"), for the caller to read afterwards. */
void sync_batch_run(struct sync *s, struct ml_request *reqs, size_t n);

/* ---- sync_listings.c, sync_orders.c, sync_visits.c: one part of a connection's sync each,
 * filling its counts; failures go into s->errors. */

void sync_listings_fetch(struct sync *s, json_t *counts);
void sync_orders_fetch(struct sync *s, json_t *counts);
void sync_visits_fetch(struct sync *s, json_t *counts, json_t *warnings);

#endif
