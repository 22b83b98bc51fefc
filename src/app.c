/* app: see app.h. */
#include "jobsd/app.h"
#include "jobsd/api.h"
#include "jobsd/db.h"
#include "jobsd/freshness.h"
#include "jobsd/http.h"
#include "jobsd/instance.h"
#include "jobsd/internal_key.h"
#include "jobsd/job_lease.h"
#include "jobsd/job_retention.h"
#include "jobsd/job_runner.h"
#include "jobsd/job_wait.h"
#include "jobsd/jwt.h"
#include "jobsd/log.h"
#include "jobsd/metrics.h"
#include "jobsd/migrate.h"
#include "jobsd/ml_client.h"
#include "jobsd/scheduler.h"
#include "jobsd/util.h"

#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Set by SIGTERM/SIGINT while serve waits for the database (before its threads exist and the
 * signals are blocked for sigwait). */
static volatile sig_atomic_t g_startup_stop;

static void on_startup_signal(int sig)
{
    (void)sig;
    g_startup_stop = 1;
}

/* Connects, retrying transient failures for up to wait_ms (a database that is still
 * starting). Gives up at once on a configuration error (e: 400) and within 100 ms of *stop. */
static MUSTCHECK PGconn *connect_retry(const char *url, long long wait_ms, const volatile int *stop,
                                       struct err *e)
{
    long long deadline = util_mono_ms() + wait_ms;
    long long backoff = 250;
    for (;;) {
        err_clear(e);
        PGconn *c = db_connect_ex(url, stop, e);
        if (c)
            return c;
        long long left = deadline - util_mono_ms();
        if (!err_is_transient(e) || (stop && *stop) || left <= 0)
            return NULL;
        log_event(LOG_WARN, "waiting for the database", "error", e->message, NULL);
        util_sleep_ms(backoff < left ? backoff : left, stop);
        backoff = backoff * 2 > 4000 ? 4000 : backoff * 2;
    }
}

int app_check_timezone(PGconn *c, const char *tz, struct err *e)
{
    const char *p[] = {tz};
    PGresult *r =
        db_query(c, "SELECT EXISTS (SELECT 1 FROM pg_timezone_names WHERE name = $1)", 1, p, e);
    if (!r)
        return -1;
    bool ok = strcmp(PQgetvalue(r, 0, 0), "t") == 0;
    PQclear(r);
    if (!ok)
        return err_set(e, 400, "invalid_config",
                       "JOBS_TIMEZONE: %s is not a time zone PostgreSQL knows (pg_timezone_names)",
                       tz);
    return 0;
}

struct ml_client *app_ml_client(const struct config *cfg, struct err *e)
{
    struct ml_client_config mc = {
        .base_url = cfg->ml_api_base_url,
        .max_rps = cfg->ml_max_rps,
        .concurrency = (int)cfg->ml_concurrency,
        .timeout_ms = cfg->ml_http_timeout_ms,
        .client_id = cfg->ml_client_id,
        .client_secret = cfg->ml_client_secret,
    };
    return ml_client_new(&mc, e);
}

static void on_second_signal(int sig)
{
    (void)sig;
    static const char msg[] = "jobsd: second signal: exiting now\n";
    ssize_t ignored = write(STDERR_FILENO, msg, sizeof msg - 1);
    (void)ignored;
    _exit(1);
}

/* Blocks SIGTERM/SIGINT in every thread; the main thread waits for them with sigwait. */
static void block_signals(sigset_t *set)
{
    sigemptyset(set);
    sigaddset(set, SIGTERM);
    sigaddset(set, SIGINT);
    pthread_sigmask(SIG_BLOCK, set, NULL);
    signal(SIGPIPE, SIG_IGN);
}

struct serve_state {
    struct config cfg;
    struct internal_key *key;
    struct jwt_verifier *jwt;
    struct ml_client *ml;
    struct metrics *metrics;
    struct db_pool *pool;
    struct job_lease *lease;
    struct instance *instance;
    struct job_waiters *waiters;
    struct job_runner *runner;
    struct job_retention *retention;
    struct schedule_set schedules; /* until the scheduler takes them */
    struct scheduler *scheduler;
    struct freshness *freshness;
    struct http_server *http;
    struct api_ctx api;
    struct api_routes routes;
};

/* Waits up to DATABASE_WAIT_SECONDS for the database, then checks the time zone and applies
 * the migrations. Returns the exit code (SPEC section 5: 2 configuration, 3 the database never
 * came), or -1 when a signal asked to stop meanwhile. */
static int prepare_database(struct serve_state *s)
{
    struct err e;
    err_clear(&e);
    PGconn *c = connect_retry(s->cfg.database_url, s->cfg.database_wait_seconds * 1000,
                              (const volatile int *)&g_startup_stop, &e);
    if (!c && g_startup_stop)
        return -1;
    if (!c && !err_is_transient(&e)) {
        log_event(LOG_ERROR, "cannot start: bad configuration", "error", e.message, NULL);
        return 2;
    }
    if (!c) {
        log_event(LOG_ERROR, "cannot start: database unreachable", "error", e.message, NULL);
        return 3;
    }
    int rc = 0;
    if (app_check_timezone(c, s->cfg.jobs_timezone, &e) != 0) {
        log_event(LOG_ERROR, "cannot start: bad configuration", "error", e.message, NULL);
        rc = err_is_transient(&e) ? 3 : 2;
    } else if (s->cfg.migrate_on_start) {
        int n = migrate_apply(c, NULL, &e);
        if (n < 0) {
            log_event(LOG_ERROR, "cannot start: migrations failed", "error", e.message, NULL);
            rc = err_is_transient(&e) ? 3 : 1;
        } else {
            char applied[16];
            util_fmt(applied, sizeof applied, "%d", n);
            log_event(LOG_INFO, "migrations checked", "applied", applied, NULL);
        }
    } else if (!migrate_is_current(c, &e)) {
        log_event(LOG_WARN, "migrations are not current (MIGRATE_ON_START=false): /readyz fails",
                  "reason", e.message, NULL);
    }
    PQfinish(c);
    return rc;
}

static void shutdown_all(struct serve_state *s)
{
    scheduler_stop(s->scheduler); /* no new job from here on */
    scheduler_clear(&s->schedules);
    if (s->http)
        http_server_quiesce(s->http);
    /* Every parked request gets its 202 before the server stops (a suspended connection
     * at MHD_stop_daemon aborts the process). */
    if (s->waiters)
        job_waiters_stop(s->waiters);
    if (s->runner)
        job_runner_stop(s->runner, s->cfg.shutdown_grace_seconds * 1000);
    if (s->http)
        http_server_stop(s->http);
    instance_stop(s->instance); /* no job runs any more: the others may take our share */
    job_waiters_free(s->waiters);
    if (s->lease)
        job_lease_stop(s->lease);
    job_retention_stop(s->retention);
    freshness_stop(s->freshness);
    if (s->pool)
        db_pool_free(s->pool);
    internal_key_free(s->key);
    jwt_verifier_free(s->jwt);
    ml_client_free(s->ml);
    metrics_free(s->metrics);
    config_free(&s->cfg);
}

/* The HTTP server's JWT hook: verifies a bearer token into the request's identity. */
static MUSTCHECK int verify_jwt(void *ctx, const char *token, struct http_auth *auth, struct err *e)
{
    struct jwt_claims claims;
    enum jwt_result r = jwt_verify(ctx, token, strlen(token), &claims);
    if (r != JWT_OK)
        return err_set(e, 401, "unauthorized", "%s", jwt_result_reason(r));
    memcpy(auth->tenant_id, claims.tenant_id, sizeof auth->tenant_id);
    snprintf(auth->user_id, sizeof auth->user_id, "%s", claims.user_id);
    auth->operator_role = claims.operator_role;
    return 0;
}

/* Configuration and the secrets' verifiers; the raw secrets are wiped once derived. */
static int load(struct serve_state *s)
{
    if (config_load(&s->cfg, CONFIG_SERVE, NULL, NULL, stderr) != 0) {
        fprintf(stderr, "jobsd: configuration invalid; see the lines above (jobsd --help)\n");
        return 2;
    }
    log_setup(s->cfg.log_level, s->cfg.log_format);
    s->key = internal_key_new(s->cfg.internal_key, s->cfg.internal_key_previous);
    util_wipe_str(s->cfg.internal_key);
    util_wipe_str(s->cfg.internal_key_previous);
    if (s->cfg.jwt_secret) {
        const char *prev = s->cfg.jwt_secret_previous;
        s->jwt = jwt_verifier_new((const unsigned char *)s->cfg.jwt_secret,
                                  strlen(s->cfg.jwt_secret), (const unsigned char *)prev,
                                  prev ? strlen(prev) : 0, s->cfg.jwt_issuer, s->cfg.jwt_audience,
                                  s->cfg.jwt_leeway_seconds, NULL, NULL);
        util_wipe_str(s->cfg.jwt_secret);
        util_wipe_str(s->cfg.jwt_secret_previous);
    }
    struct err e;
    err_clear(&e);
    s->ml = app_ml_client(&s->cfg, &e);
    if (!s->ml) {
        fprintf(stderr, "config: ML_API_BASE_URL: %s\n", e.message);
        return 2;
    }
    if (scheduler_load(&s->cfg, &s->schedules, &e) != 0) {
        fprintf(stderr, "config: %s\n", e.message);
        return 2;
    }
    return 0;
}

/* The schedules' bodies, checked by their kinds before the scheduler starts. */
static int start_scheduler(struct serve_state *s)
{
    if (s->schedules.n == 0)
        return 0;
    struct err e;
    err_clear(&e);
    PGconn *c = db_pool_acquire(s->pool, 5000, &e);
    int rc = c ? scheduler_validate(c, &s->cfg, &s->schedules, &e) : -1;
    if (c)
        db_pool_release(s->pool, c);
    if (rc != 0) {
        log_event(LOG_ERROR, "SCHEDULES: a schedule is not valid", "error", e.message, NULL);
        return err_is_transient(&e) ? 3 : 2;
    }
    s->scheduler = scheduler_start(&s->cfg, s->pool, &s->schedules);
    return 0;
}

/* Pool → lease keeper → fleet membership → waiters → workers → HTTP server. */
static int start(struct serve_state *s)
{
    s->metrics = metrics_new();
    s->pool = db_pool_new(s->cfg.database_url, (size_t)s->cfg.db_pool_size);
    s->lease = job_lease_start(s->cfg.database_url, s->cfg.job_lease_seconds,
                               s->cfg.job_max_attempts, true, s->metrics);
    struct instance_config ic = {s->cfg.database_url,         JOBSD_VERSION,
                                 (int)s->cfg.job_workers,     s->cfg.ml_max_rps,
                                 s->cfg.ml_concurrency,       s->cfg.instance_heartbeat_seconds,
                                 s->cfg.instance_dead_seconds};
    s->instance = instance_start(&ic, s->ml); /* before any job can call Mercado Livre */
    s->waiters = job_waiters_start(s->pool);
    s->runner = job_runner_start(&s->cfg, s->pool, s->lease, s->waiters, s->ml, s->metrics,
                                 (int)s->cfg.job_workers);
    s->retention = job_retention_start(s->pool, s->cfg.job_retention_days);
    int rc = start_scheduler(s);
    if (rc != 0)
        return rc;
    s->freshness = freshness_start(&s->cfg, s->pool, s->metrics);
    s->api = (struct api_ctx){&s->cfg, s->pool, s->waiters, s->runner, s->metrics, s->ml};
    api_routes_build(&s->routes);
    struct http_server_config hc = {
        .bind_address = s->cfg.bind_address,
        .port = (unsigned)s->cfg.port,
        .threads = (unsigned)s->cfg.http_threads,
        .max_connections = (unsigned)s->cfg.max_connections,
        .per_ip_connections = (unsigned)s->cfg.per_ip_connections,
        .max_body_bytes = (size_t)s->cfg.max_body_bytes,
        .connection_timeout_seconds = 30,
        .header_timeout_seconds = (unsigned)s->cfg.header_timeout_seconds,
        .routes = s->routes.route,
        .nroutes = s->routes.n,
        .app = &s->api,
        .key = s->key,
        .jwt_verify = s->jwt ? verify_jwt : NULL,
        .jwt_ctx = s->jwt,
        .cors_allowed_origins = s->cfg.cors_allowed_origins,
        .metrics = s->metrics,
    };
    struct err e;
    err_clear(&e);
    s->http = http_server_start(&hc, &e);
    if (!s->http) {
        log_event(LOG_ERROR, "cannot start the HTTP server", "error", e.message, NULL);
        return 1;
    }
    char port[8], workers[8];
    util_fmt(port, sizeof port, "%u", http_server_port(s->http));
    util_fmt(workers, sizeof workers, "%lld", s->cfg.job_workers);
    log_event(LOG_INFO, "jobsd listening", "version", JOBSD_VERSION, "address", s->cfg.bind_address,
              "port", port, "workers", workers, "timezone", s->cfg.jobs_timezone, NULL);
    return 0;
}

/* Waits for SIGTERM/SIGINT; from then on a second signal ends the process at once. */
static int wait_for_signal(sigset_t *set)
{
    int sig = 0;
    while (sigwait(set, &sig) != 0)
        ;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_second_signal;
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    pthread_sigmask(SIG_UNBLOCK, set, NULL);
    return sig;
}

int app_serve(void)
{
    struct serve_state s;
    memset(&s, 0, sizeof s);
    int rc = load(&s);
    if (rc != 0) {
        shutdown_all(&s);
        return rc;
    }
    /* No thread runs yet: a signal while waiting for the database is caught by a handler that
     * the wait looks at; from the first thread on, they are blocked and sigwait takes them. */
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_startup_signal;
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    rc = prepare_database(&s);
    sigset_t set;
    block_signals(&set);
    if (rc == 0 && g_startup_stop)
        rc = -1;
    if (rc == 0)
        rc = start(&s);
    if (rc != 0) {
        if (rc < 0)
            log_event(LOG_INFO, "stopped by a signal during start-up", NULL);
        shutdown_all(&s);
        return rc < 0 ? 0 : rc;
    }
    int sig = wait_for_signal(&set);
    log_event(LOG_INFO, "shutting down", "signal", sig == SIGTERM ? "SIGTERM" : "SIGINT", NULL);
    shutdown_all(&s);
    log_event(LOG_INFO, "jobsd stopped", NULL);
    return 0;
}
