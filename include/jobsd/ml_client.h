/* ml_client: the Mercado Livre HTTP client (libcurl). Process-wide limits shared by every
 * sync running in the process: at most `concurrency` requests in flight and at most
 * `max_rps` requests started in any sliding one-second window (Mercado Livre limits per
 * application). Requests run in batches (jobsd/ml_batch.h) in the caller's thread; their
 * paths come from jobsd/ml_path.h. This module also refreshes tokens (POST /oauth/token) and
 * counts requests for /metrics. Tokens and the client secret are never logged. */
#ifndef JOBSD_ML_CLIENT_H
#define JOBSD_ML_CLIENT_H

#include <stdbool.h>
#include <stddef.h>

#include "jobsd/err.h"
#include "jobsd/ml_parse.h"

struct ml_client;

struct ml_client_config {
    const char *base_url; /* https://api.mercadolibre.com; http only for loopback (tests) */
    long long max_rps;
    int concurrency;
    long long timeout_ms;      /* whole request */
    const char *client_id;     /* NULL = refresh impossible (ml_not_configured) */
    const char *client_secret; /* copied, wiped at free */
    size_t max_response_bytes; /* 0 = 16 MiB */
    int max_attempts;          /* 0 = 5 */
    long long backoff_base_ms; /* 0 = 500 */
};

/* A new client (free with ml_client_free); NULL + e when the base URL is not https (or http
 * on loopback) or libcurl cannot be initialised. The first call initialises libcurl for the
 * process (once, thread-safely). */
MUSTCHECK struct ml_client *ml_client_new(const struct ml_client_config *cfg, struct err *e);
void ml_client_free(struct ml_client *c);
bool ml_client_can_refresh(const struct ml_client *c);

/* The libcurl version string ("8.5.0"), for `jobsd version`. Static storage. */
const char *ml_client_library_version(void);

/* One GET of a batch. path_query is relative to the base URL ("/items?ids=MLB1,MLB2"). */
struct ml_request {
    char *path_query; /* owned by the caller */
    /* results */
    long status; /* HTTP status of the last attempt, 0 = no answer */
    char *body;  /* owned: free with ml_request_clear */
    size_t len;
    int attempts;
    struct err err; /* set when the request finally failed (after retries) */
};
/* Frees the body (the request can be reused). */
void ml_request_clear(struct ml_request *r);

/* POST /oauth/token (grant_type=refresh_token), within the process-wide limits. 0 with out
 * filled; -1 with e: 422 reauth_required when Mercado Livre says invalid_grant (mlerr has its
 * words), 422 ml_not_configured without client credentials or when Mercado Livre refuses
 * them, 503 ml_unavailable for 429/5xx/network after retries, any other refusal, or an
 * answer without the tokens. Blocks the calling thread (retries included). */
MUSTCHECK int ml_refresh_token(struct ml_client *c, const char *refresh_token, struct ml_token *out,
                               struct ml_error *mlerr, struct err *e);

/* This instance's share of the application's limits (src/instance.c): at most rps starts in
 * any sliding second (capped at max_rps) and concurrency requests in flight (capped at the
 * configured concurrency); requests start only while valid_from <= now < valid_until
 * (util_mono_ms; valid_until 0 = no end, rps 0 = none at all). A share that shrinks applies
 * to the next start: the starts of the last second count against the smaller limit. */
void ml_client_set_share(struct ml_client *c, long long rps, int concurrency, long long valid_from,
                         long long valid_until);
/* When the last request this client started leaves every sliding second (util_mono_ms; 0
 * when it never started one): an instance leaving the fleet waits for it before the others
 * may grow into its share. */
long long ml_client_quiet_at(struct ml_client *c);
/* The share admit applies now (rps, in flight). */
void ml_client_share(struct ml_client *c, long long *rps, int *concurrency);

/* Counters for /metrics: requests by status class and retries. */
struct ml_client_stats {
    unsigned long long requests, retries, status_2xx, status_4xx, status_5xx, status_429,
        transport_errors;
};
void ml_client_stats(struct ml_client *c, struct ml_client_stats *out);

#endif
