/* job: what every job kind shares: the states of a job_logs row, the resolved request, one
 * run as a kind sees it, and the kind interface itself. A kind turns an HTTP body or CLI
 * arguments into a resolved request (validated, with its single-flight identity), runs a
 * resolved request, and presents its result. The registry of kinds is job_kinds, which sits
 * above the kinds; nothing below it names one. */
#ifndef JOBSD_JOB_H
#define JOBSD_JOB_H

#include <jansson.h>
#include <libpq-fe.h>
#include <stdatomic.h>
#include <stdbool.h>

#include "jobsd/config.h"
#include "jobsd/err.h"

#define JOB_ID_LEN        37
#define JOB_TENANT_LEN    37
#define JOB_TYPE_MAX      64
#define JOB_WORKER_ID_MAX 160
#define JOB_DEDUPE_MAX    160

enum job_status { JOB_QUEUED, JOB_RUNNING, JOB_SUCCESS, JOB_ERROR, JOB_CANCELLED };

/* Whether a job in this state has ended (success, error, cancelled). */
bool job_status_finished(enum job_status s);

const char *job_status_name(enum job_status s);
bool job_status_parse(const char *s, enum job_status *out);

/* A request after validation: what the worker runs and how it is deduplicated. */
struct job_request {
    char tenant_id[JOB_TENANT_LEN]; /* "" for a job of no tenant */
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
    char tenant_id[JOB_TENANT_LEN]; /* job_logs.tenant_id, lower case; "" when none */
    char worker_id[JOB_WORKER_ID_MAX];
    const json_t *params; /* the resolved request (borrowed) */
    int attempt;
    /* Optional progress reporting (CLI on a terminal). */
    void (*progress)(void *ctx, const char *phase);
    void *progress_ctx;
    /* Set when the run must stop (shutdown, a signal to the CLI); kinds poll it. */
    volatile int *cancel;
    /* Set by the lease thread when an operator cancels this job (POST .../cancel); may be
     * NULL. Kinds poll job_run_stopping(), which reads both, between statements and batches. */
    const atomic_int *cancel_op;
};

/* Whether the run must stop: shutdown or an operator's cancel. */
bool job_run_stopping(const struct job_run *run);

/* One command-line option of a kind's subcommand: `--days-back 7` becomes the body field
 * "daysBack": 7, and the HTTP validation then applies unchanged. */
enum job_option_type {
    JOB_OPTION_STRING,
    JOB_OPTION_INTEGER, /* a positive integer; the kind checks its range */
    JOB_OPTION_LIST,    /* comma-separated: an array of strings */
    JOB_OPTION_FLAG,    /* no value: the field is true (`--all-tenants`: "allTenants") */
};

struct job_option {
    const char *flag;  /* "--days-back"; NULL ends a table */
    const char *field; /* "daysBack" */
    enum job_option_type type;
    bool required;
};

struct job_kind {
    const char *type; /* job_type in job_logs: "metrics_aggregation" */
    const char *name; /* route (POST /api/v1/jobs/<name>) and CLI subcommand */
    /* For `jobsd --help`: the options' synopsis and one line on what the job does. */
    const char *synopsis;
    const char *summary;
    const char *usage;                /* `jobsd <name> --help` */
    const struct job_option *options; /* ends with {NULL} */
    /* Validates a body (HTTP) or argument object (CLI), resolves it against the database
     * (c is inside a transaction with DB_QUERY_TIMEOUT_MS) and fills req. */
    int (*resolve)(const struct config *cfg, PGconn *c, json_t *body, struct job_request *req,
                   struct err *e);
    /* Runs a resolved request. On success the kind must have marked the job finished with
     * job_store_finish_success (or _partial) inside the transaction that did the work, and
     * returns the 200 body (new reference, without "deduplicated"). On failure returns NULL
     * with e set and nothing committed. */
    json_t *(*run)(struct job_run *run, struct err *e);
    /* The 200 body as shown to callers: keys in the order a human reads them (the stored
     * copy is jsonb, whose key order is its own). New reference; result is borrowed. */
    json_t *(*present)(json_t *result);
    /* The tenants a fleet job (`"allTenants": true`) runs for: a SELECT of one uuid column
     * (job_fleet). NULL: the kind has no fleet form. */
    const char *fleet_tenants;
    /* Calls the Mercado Livre API: a CLI run takes its share of the fleet's limit like a
     * `serve` (src/instance.c). */
    bool calls_ml;
};

/* Copies obj with the keys of `order` first (in that order), the rest after. New ref. */
json_t *job_json_ordered(json_t *obj, const char *const *order);

/* "host:pid:suffix" into out. */
void job_worker_id(char *out, size_t cap, const char *suffix);

#endif
