/* ml_client: the Mercado Livre HTTP client (libcurl). Process-wide limits shared by every
 * sync running in the process: at most `concurrency` requests in flight and at most
 * `max_rps` requests started in any sliding one-second window (Mercado Livre limits per
 * application). A batch of requests runs on one curl multi handle in the calling thread;
 * 429, 5xx and transport errors are retried with exponential backoff and jitter, honouring
 * Retry-After (capped at 60 s), at most `max_attempts` times; a 401 triggers one token
 * refresh through a callback and one retry. Tokens are never logged. */
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

/* NULL + e when the base URL is not https (or http on loopback). */
struct ml_client *ml_client_new(const struct ml_client_config *cfg, struct err *e);
void ml_client_free(struct ml_client *c);
/* libcurl's version, for `jobsd version`. */
const char *ml_client_library_version(void);
bool ml_client_can_refresh(const struct ml_client *c);

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
void ml_request_clear(struct ml_request *r);

/* The access token of a batch and how to renew it after a 401. refresh receives the token
 * that failed and writes the new one; it is called at most once per batch. */
struct ml_auth {
    char token[512];
    int (*refresh)(void *ctx, const char *failed_token, char *out, size_t cap, struct err *e);
    void *ctx;
    bool refreshed;
    struct err refresh_err; /* why the refresh failed (then 401s fail with it) */
};

/* Runs every request; each ends with a 2xx, a final error status, or err set. Returns 0, or
 * -1 when *cancel became non-zero (unfinished requests get err "interrupted"). */
int ml_run(struct ml_client *c, struct ml_request *reqs, size_t n, struct ml_auth *auth,
           const volatile int *cancel);
/* The same, calling on_done(ctx, i, &reqs[i]) as soon as request i has its final answer (the
 * callback may take the body: ml_request_clear), so answers are processed while the rest are
 * still in flight. */
int ml_run_each(struct ml_client *c, struct ml_request *reqs, size_t n, struct ml_auth *auth,
                const volatile int *cancel,
                void (*on_done)(void *ctx, size_t i, struct ml_request *r), void *ctx);

/* POST /oauth/token (grant_type=refresh_token). 0 with out filled; -1 with e: 422
 * reauth_required when Mercado Livre says invalid_grant (mlerr has its words), 422
 * ml_not_configured without client credentials, 503 ml_unavailable for 429/5xx/network
 * after retries, 502 for anything else. */
int ml_refresh_token(struct ml_client *c, const char *refresh_token, struct ml_token *out,
                     struct ml_error *mlerr, struct err *e);

/* Counters for /metrics: requests by status class and retries. */
struct ml_client_stats {
    unsigned long long requests, retries, status_2xx, status_4xx, status_5xx, status_429,
        transport_errors;
};
void ml_client_stats(struct ml_client *c, struct ml_client_stats *out);

#endif
