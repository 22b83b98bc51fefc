/* config: every environment variable of SPEC section 4 as one declarative table (name,
 * kind, range, default, which subcommands read it). Loading validates only the variables of
 * the chosen subcommand and reports one line per problem, naming the variable and never
 * printing a secret. */
#ifndef JOBSD_CONFIG_H
#define JOBSD_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "jobsd/log.h"

/* Which subcommand is loading (a variable lists the ones that read it). */
enum config_use {
    CONFIG_SERVE = 1 << 0,
    CONFIG_MIGRATE = 1 << 1,
    CONFIG_JOB = 1 << 2, /* rebuild-daily-metrics, sync-mercadolivre */
    CONFIG_TOKEN = 1 << 3,
    CONFIG_HEALTHCHECK = 1 << 4,
    CONFIG_PRUNE = 1 << 5, /* loaded with CONFIG_MIGRATE (DATABASE_URL) */
};

struct config {
    char *database_url;
    char *internal_key;
    char *internal_key_previous;
    char *jwt_secret;
    char *jwt_secret_previous;
    char *jwt_issuer;
    char *jwt_audience;
    long long jwt_leeway_seconds;
    char *cors_allowed_origins;
    long long port;
    char *bind_address;
    char *jobs_timezone;
    long long rebuild_max_range_days;
    long long rebuild_timeout_seconds;
    long long db_query_timeout_ms;
    long long http_threads;
    long long job_workers;
    long long db_pool_size; /* 0 in the table = derived: threads + workers + 4 */
    long long max_body_bytes;
    long long max_connections;
    long long per_ip_connections;
    long long header_timeout_seconds;
    long long sync_wait_seconds;
    long long job_lease_seconds;
    long long job_max_attempts;
    long long shutdown_grace_seconds;
    long long queue_max_queued;         /* 0 = no limit */
    long long job_retention_days;       /* 0 = keep finished jobs forever */
    long long database_wait_seconds;    /* serve: how long start-up waits for the database */
    char *schedules;                    /* the built-in scheduler's table (scheduler.h) */
    char *schedules_file;               /* more schedules, from a file */
    long long schedule_catchup_seconds; /* a slot missed while down fires when younger */
    /* FRESHNESS_MAX_AGE_HOURS; FRESHNESS_CHECK_SECONDS (serve, 0 = no periodic check) */
    long long freshness_max_age_hours;
    long long freshness_check_seconds;
    long long fleet_max_running; /* fleet children running at once, every instance */
    bool migrate_on_start;
    char *ml_api_base_url;
    char *ml_client_id;
    char *ml_client_secret;
    long long ml_max_rps;
    long long ml_concurrency;
    long long ml_http_timeout_ms;
    long long instance_heartbeat_seconds; /* fleet membership (jobsd/instance.h) */
    long long instance_dead_seconds;
    char *token_encryption_key;
    enum log_format log_format;
    enum log_level log_level;
};

/* Reads a variable; returns NULL when unset. The default reads the process environment. */
typedef const char *(*config_getenv_fn)(void *ctx, const char *name);

/* Loads and validates the variables used by `use`. Every problem is written to `errors` as
 * one line "NAME: reason". Returns the number of problems (0 = ok). The config is filled with
 * defaults for everything else and must be released with config_free. */
__attribute__((warn_unused_result)) int config_load(struct config *c, enum config_use use,
                                                    config_getenv_fn getenv_fn, void *ctx,
                                                    FILE *errors);
void config_free(struct config *c);

/* Prints every variable used by `use` as NAME=value, secrets as <redacted>/<unset>.
 * redact_url, when not NULL, turns DATABASE_URL into a printable form (caller frees). */
void config_print(const struct config *c, enum config_use use, FILE *out,
                  char *(*redact_url)(const char *url));

#endif
