/* ml_batch: a batch of Mercado Livre GETs run on one curl multi handle, pulled by the caller:
 * ml_batch_next hands back each request as soon as it has its final answer, so the caller
 * processes answers (and writes them) while the rest are in flight, in its own loop — no
 * callback runs inside the client. Requests start in order within the client's process-wide
 * limits (ml_client.h); 429, 5xx and transport errors are retried with exponential backoff
 * and jitter, honouring Retry-After (capped at 60 s), up to the client's max_attempts. The
 * first 401 of a batch asks the caller for a new access token (ML_BATCH_TOKEN); every 401'd
 * request is then retried once with the token given, or fails with the refresh's error. */
#ifndef JOBSD_ML_BATCH_H
#define JOBSD_ML_BATCH_H

#include <stddef.h>

#include "jobsd/err.h"
#include "jobsd/ml_client.h"

struct ml_batch;

/* A batch of the n requests (borrowed until ml_batch_end: their results are written into
 * them, and earlier results are cleared) with an access token (copied, wiped at the end).
 * Nothing is sent before the first ml_batch_next. New; end with ml_batch_end. */
struct ml_batch *ml_batch_start(struct ml_client *c, struct ml_request *reqs, size_t n,
                                const char *token);

enum ml_batch_event {
    ML_BATCH_ANSWER,    /* *index: reqs[*index] has its final answer (a 2xx, another final
                           status, or err set after retries); each index comes once */
    ML_BATCH_TOKEN,     /* a 401 arrived: call ml_batch_set_token before the next call */
    ML_BATCH_DONE,      /* every request has come back as an ML_BATCH_ANSWER */
    ML_BATCH_CANCELLED, /* stop said so: the batch was abandoned (see ml_batch_end); later
                           calls say the same */
};

/* Whether the batch must stop (a shutdown, an operator's cancel), asked between transfers
 * (at least every 100 ms while requests are in flight). */
typedef bool (*ml_batch_stop_fn)(const void *ctx);

/* Runs the batch (starts, retries, waits) until one of the events above. stop may be NULL. */
enum ml_batch_event ml_batch_next(struct ml_batch *b, ml_batch_stop_fn stop, const void *stop_ctx,
                                  size_t *index);

/* The answer to ML_BATCH_TOKEN: the token to use from now on (copied; may be the same one),
 * and refresh_err, the refresh's failure or NULL. With refresh_err, every request answered
 * 401 in this batch fails with that error instead of being retried. */
void ml_batch_set_token(struct ml_batch *b, const char *token, const struct err *refresh_err);

/* Abandons what has not finished (transfers stopped, their slots given back, those requests
 * get err "interrupted") and frees the batch. NULL is fine. */
void ml_batch_end(struct ml_batch *b);

#endif
