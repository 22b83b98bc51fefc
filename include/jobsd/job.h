/* job: what every job kind shares. A kind turns an HTTP body or CLI arguments into a resolved
 * request (validated, with its single-flight identity), and runs a resolved request. Adding a
 * job is adding one kind and one line in job_kinds (job.c). */
#ifndef JOBSD_JOB_H
#define JOBSD_JOB_H

#include <jansson.h>
#include <libpq-fe.h>
#include <stdbool.h>

#include "jobsd/config.h"
#include "jobsd/err.h"

#define JOB_ID_LEN        37
#define JOB_WORKER_ID_MAX 160
#define JOB_DEDUPE_MAX    160

enum job_status { JOB_QUEUED, JOB_RUNNING, JOB_SUCCESS, JOB_ERROR };

const char *job_status_name(enum job_status s);
bool job_status_parse(const char *s, enum job_status *out);

/* A request after validation: what the worker runs and how it is deduplicated. */
struct job_request {
    char tenant_id[37];
    char dedupe_key[JOB_DEDUPE_MAX];
    json_t *params; /* the resolved request, stored as metadata.request (owned) */
};
void job_request_clear(struct job_request *r);

struct ml_client;

/* One run of a job, as a kind sees it. */
struct job_run {
    const struct config *cfg;
    struct ml_client *ml; /* the process's Mercado Livre client (NULL when not built) */
    PGconn *conn;
    char id[JOB_ID_LEN];
    char worker_id[JOB_WORKER_ID_MAX];
    const json_t *params; /* borrowed */
    int attempt;
    /* Optional progress reporting (CLI on a terminal). */
    void (*progress)(void *ctx, const char *phase);
    void *progress_ctx;
    /* Set by the runner when the run must stop (shutdown); kinds may poll it. */
    volatile int *cancel;
};

struct job_kind {
    const char *type; /* job_type in job_logs: "metrics_aggregation" */
    const char *name; /* route and CLI name: "rebuild-daily-metrics" */
    /* Validates a body (HTTP) or argument object (CLI), resolves it against the database
     * (c is inside a transaction with DB_QUERY_TIMEOUT_MS) and fills req. */
    int (*resolve)(const struct config *cfg, PGconn *c, json_t *body, struct job_request *req,
                   struct err *e);
    /* Runs a resolved request. On success the kind must have marked the job finished with
     * job_store_finish_success inside the transaction that did the work, and returns the
     * 200 body (new reference, without "deduplicated"). On failure returns NULL with e set
     * and nothing committed. */
    json_t *(*run)(struct job_run *run, struct err *e);
    /* The 200 body as shown to callers: keys in the order a human reads them (the stored
     * copy is jsonb, whose key order is its own). New reference; obj is borrowed. */
    json_t *(*present)(json_t *result);
};

/* The registry. NULL when unknown. */
const struct job_kind *job_kind_by_type(const char *type);
const struct job_kind *job_kind_by_name(const char *name);
/* NULL-terminated list of every kind. */
const struct job_kind *const *job_kinds(void);

/* Copies obj with the keys of `order` first (in that order), the rest after. New ref. */
json_t *job_json_ordered(json_t *obj, const char *const *order);

/* "host:pid:suffix" into out. */
void job_worker_id(char *out, size_t cap, const char *suffix);

#endif
