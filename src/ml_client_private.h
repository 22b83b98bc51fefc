/* ml_client's insides, shared with ml_batch.c only (the rest of jobsd includes
 * jobsd/ml_client.h): the client's fields, the process-wide limits, the retry policy and one
 * transfer (an easy handle with its capped body). Defined in ml_client.c; ml_batch.c uses
 * them, never the other way round. */
#ifndef JOBSD_ML_CLIENT_PRIVATE_H
#define JOBSD_ML_CLIENT_PRIVATE_H

#include <curl/curl.h>
#include <pthread.h>
#include <stdbool.h>

#include "jobsd/buf.h"
#include "jobsd/ml_client.h"

struct ml_client {
    char *base_url;
    bool allow_http;
    long long max_rps;
    int concurrency;
    long long timeout_ms;
    char *client_id;
    char *client_secret;
    size_t max_response;
    int max_attempts;
    long long backoff_base_ms;

    /* Connections, DNS answers and TLS sessions shared by every batch of every thread: a
     * sync's many small batches reuse warm connections instead of opening new ones. */
    CURLSH *share;
    pthread_mutex_t share_locks[CURL_LOCK_DATA_LAST];

    pthread_mutex_t lock;
    long long *starts; /* ring of the last max_rps start times (mono ms) */
    size_t head;       /* ring position of the next start */
    size_t filled;
    int in_flight;
    /* This instance's share of the limits (ml_client_set_share): the rate and in-flight
     * limits admit applies, and the mono-ms interval in which it may start requests at all
     * (valid_until 0 = no end). Without a fleet: max_rps, concurrency, always. */
    long long rps_share;
    int concurrency_share;
    long long valid_from, valid_until;
    struct ml_client_stats stats;
};

/* Takes an in-flight slot and a place in the rate window when both are free (within this
 * instance's share, see ml_client_set_share); otherwise returns false and how long to wait
 * (ms) before trying again (0 = a slot is busy: wait for one). Every admitted request is
 * counted in the stats. */
bool ml_client_admit(struct ml_client *c, long long now, long long *wait_ms);
/* Gives back the in-flight slot of an admitted request. */
void ml_client_release(struct ml_client *c);
/* Counts one attempt's outcome (and whether it will be retried) for /metrics. */
void ml_client_count(struct ml_client *c, long status, bool transport_error, bool retry);
/* Exponential backoff with jitter before attempt + 1, or Retry-After when the server said
 * (both capped). */
long long ml_client_backoff_ms(const struct ml_client *c, int attempt, long long retry_after_s);
/* Is this outcome worth another attempt (429, 5xx, a transient transport error)? */
bool ml_client_retryable(long status, CURLcode rc, bool too_big);
/* Sets r->err for a request that failed for good (503 ml_unavailable, Retry-After 60) after
 * r->attempts attempts; leaves it clear for any other final status. */
void ml_client_fail_final(struct ml_request *r, long status, CURLcode rc, bool too_big,
                          const char *errbuf);

/* One HTTP exchange. CURLOPT_PRIVATE of the easy handle points at the transfer. */
struct ml_transfer {
    CURL *easy;
    struct curl_slist *headers;
    struct buf body; /* capped at the client's max_response */
    char errbuf[CURL_ERROR_SIZE];
    bool too_big;
};

/* Prepares t (zeroed here) for a GET of path (relative to the base URL) with a bearer token,
 * or a form POST when form is not NULL. */
void ml_client_transfer_open(struct ml_client *c, struct ml_transfer *t, const char *path,
                             const char *token, const char *form);
/* Frees what the transfer holds (not attached to a multi handle any more); idempotent. */
void ml_client_transfer_close(struct ml_transfer *t);

#endif
