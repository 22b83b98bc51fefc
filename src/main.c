/* main: the subcommands of SPEC section 5. `serve` is app.c; the others are here. Exit
 * codes: 0 success, 1 the job failed, 2 usage or configuration error, 3 transient (database
 * unavailable, duplicate job running). */
#include "jobsd/api.h"
#include "jobsd/app.h"
#include "jobsd/db.h"
#include "jobsd/job.h"
#include "jobsd/job_kinds.h"
#include "jobsd/job_lease.h"
#include "jobsd/job_runner.h"
#include "jobsd/job_store.h"
#include "jobsd/jwt.h"
#include "jobsd/log.h"
#include "jobsd/ml_client.h"
#include "jobsd/migrate.h"
#include "jobsd/util.h"

#include <arpa/inet.h>
#include <curl/curl.h>
#include <jansson.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <openssl/opensslv.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

enum { EXIT_OK = 0, EXIT_JOB_FAILED = 1, EXIT_USAGE = 2, EXIT_TRANSIENT = 3 };

static const char USAGE[] =
    "usage: jobsd [COMMAND] [OPTIONS]\n"
    "\n"
    "Commands:\n"
    "  serve                      run the HTTP server and job workers (default)\n"
    "  migrate [--status]         apply the database migrations (or list their state)\n"
    "  rebuild-daily-metrics --tenant ID [--from D --to D | --days-back N [--to D]]\n"
    "                             rebuild listing_metrics_daily for one tenant, in-process\n"
    "  token --tenant ID [--user ID] [--ttl SECONDS]\n"
    "                             mint a JWT with JWT_SECRET (local use: curl the status API)\n"
    "  sync-mercadolivre --tenant ID [--days-back N] [--include listings,orders,visits]\n"
    "                             pull listings, orders and visits from Mercado Livre\n"
    "  healthcheck                GET /healthz on PORT; exit 0 when it answers 200\n"
    "  check-config               validate the serve configuration and print it (secrets\n"
    "                             redacted)\n"
    "  version                    print the version and library versions\n"
    "\n"
    "Run `jobsd COMMAND --help` for a command's options. Configuration comes from the\n"
    "environment (DATABASE_URL, INTERNAL_JOBS_KEY, JOBS_TIMEZONE, ...; see README.md).\n"
    "Exit codes: 0 ok, 1 job failed, 2 usage/configuration error, 3 transient failure.\n";

static const char USAGE_SERVE[] =
    "usage: jobsd serve\n"
    "Runs the HTTP API and the job workers. Needs DATABASE_URL and INTERNAL_JOBS_KEY (>= 32\n"
    "bytes); every other variable has a default (see README.md, Configuration). Applies\n"
    "migrations at start-up unless MIGRATE_ON_START=false. SIGTERM/SIGINT: graceful stop.\n";

static const char USAGE_MIGRATE[] =
    "usage: jobsd migrate [--status]\n"
    "Applies the migrations compiled into this binary (needs DATABASE_URL). With --status,\n"
    "lists each migration as applied, pending or CHECKSUM MISMATCH and exits 1 unless all are\n"
    "applied.\n";

static const char USAGE_TOKEN[] =
    "usage: jobsd token --tenant ID [--user ID] [--ttl SECONDS]\n"
    "Prints an HS256 JWT {userId, tenantId, iat, exp} signed with JWT_SECRET (plus iss/aud\n"
    "when JWT_ISSUER/JWT_AUDIENCE are set), valid for --ttl seconds (default 3600), as the\n"
    "product's main API would issue it. For local use: GET /api/v1/jobs/status and /stats.\n";

static const char USAGE_HEALTHCHECK[] =
    "usage: jobsd healthcheck\n"
    "GETs http://127.0.0.1:$PORT/healthz (PORT defaults to 8080) and exits 0 on a 200, 1\n"
    "otherwise. For container health checks without curl.\n";

static const char USAGE_CHECK[] =
    "usage: jobsd check-config\n"
    "Validates the environment as `serve` would (one line per problem, naming the variable)\n"
    "and prints the effective configuration with secrets redacted. Exit 0 or 2.\n";

static bool wants_help(int argc, char **argv)
{
    for (int i = 0; i < argc; i++)
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0)
            return true;
    return false;
}

__attribute__((format(printf, 2, 3))) static int usage_error(const char *usage, const char *fmt,
                                                             ...)
{
    fprintf(stderr, "jobsd: ");
    va_list ap;
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\n%s", usage);
    return EXIT_USAGE;
}

static int load_config(struct config *c, enum config_use use)
{
    if (config_load(c, use, NULL, NULL, stderr) != 0) {
        config_free(c);
        fprintf(stderr, "jobsd: configuration invalid; see the lines above\n");
        return -1;
    }
    log_setup(c->log_level, c->log_format);
    return 0;
}

/* ------------------------------------------------------------------ version */

static int cmd_version(void)
{
    curl_version_info_data *cv = curl_version_info(CURLVERSION_NOW);
    printf("jobsd %s\n", JOBSD_VERSION);
    printf("libmicrohttpd %s, libpq %d, jansson %s, %s, libcurl %s\n", MHD_get_version(),
           PQlibVersion(), JANSSON_VERSION, OPENSSL_VERSION_TEXT, cv ? cv->version : "?");
    printf("schema version %d\n", migrate_latest_version());
    return EXIT_OK;
}

/* ------------------------------------------------------------------ check-config */

static int cmd_check_config(void)
{
    struct config c;
    if (config_load(&c, CONFIG_SERVE, NULL, NULL, stderr) != 0) {
        config_free(&c);
        fprintf(stderr, "jobsd: configuration invalid\n");
        return EXIT_USAGE;
    }
    config_print(&c, CONFIG_SERVE, stdout, db_redact_url);
    config_free(&c);
    fprintf(stderr, "jobsd: configuration valid (JOBS_TIMEZONE is checked against PostgreSQL "
                    "at start-up)\n");
    return EXIT_OK;
}

/* ------------------------------------------------------------------ healthcheck */

static int cmd_healthcheck(void)
{
    struct config c;
    if (load_config(&c, CONFIG_HEALTHCHECK) != 0)
        return EXIT_USAGE;
    int port = (int)c.port;
    config_free(&c);
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return 1;
    struct sockaddr_in sa;
    memset(&sa, 0, sizeof sa);
    sa.sin_family = AF_INET;
    sa.sin_port = htons((uint16_t)port);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    struct timeval tv = {3, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    if (connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0) {
        fprintf(stderr, "jobsd healthcheck: nothing listens on 127.0.0.1:%d\n", port);
        close(fd);
        return 1;
    }
    static const char req[] = "GET /healthz HTTP/1.1\r\nHost: localhost\r\nUser-Agent: "
                              "jobsd-healthcheck\r\nConnection: close\r\n\r\n";
    char resp[512];
    ssize_t n = -1;
    if (send(fd, req, sizeof req - 1, MSG_NOSIGNAL) == (ssize_t)(sizeof req - 1))
        n = recv(fd, resp, sizeof resp - 1, 0);
    close(fd);
    if (n < 12) {
        fprintf(stderr, "jobsd healthcheck: no answer from 127.0.0.1:%d\n", port);
        return 1;
    }
    resp[n] = '\0';
    if (strncmp(resp, "HTTP/1.1 200", 12) == 0 || strncmp(resp, "HTTP/1.0 200", 12) == 0) {
        printf("ok\n");
        return EXIT_OK;
    }
    fprintf(stderr, "jobsd healthcheck: /healthz answered %.12s\n", resp);
    return 1;
}

/* ------------------------------------------------------------------ token */

static int cmd_token(int argc, char **argv)
{
    const char *tenant = NULL, *user = NULL;
    long long ttl = 3600;
    for (int i = 0; i < argc; i++) {
        const char *val = i + 1 < argc ? argv[i + 1] : NULL;
        if (!val)
            return usage_error(USAGE_TOKEN, "%s needs a value", argv[i]);
        if (strcmp(argv[i], "--tenant") == 0)
            tenant = val;
        else if (strcmp(argv[i], "--user") == 0)
            user = val;
        else if (strcmp(argv[i], "--ttl") == 0) {
            if (!util_parse_i64(val, 1, 31536000, &ttl))
                return usage_error(USAGE_TOKEN, "--ttl must be 1..31536000 seconds (got %s)", val);
        } else
            return usage_error(USAGE_TOKEN, "unknown option %s", argv[i]);
        i++;
    }
    char norm[37];
    if (!tenant)
        return usage_error(USAGE_TOKEN, "--tenant is required");
    if (!util_uuid_normalize(tenant, norm))
        return usage_error(USAGE_TOKEN, "--tenant must be a UUID (got %s)", tenant);
    if (user && (strlen(user) == 0 || strlen(user) > 128))
        return usage_error(USAGE_TOKEN, "--user must be 1..128 characters");
    struct config c;
    if (load_config(&c, CONFIG_TOKEN) != 0)
        return EXIT_USAGE;
    long long now = util_now_ms() / 1000;
    char token[JWT_MAX_TOKEN];
    size_t n = jwt_sign((const unsigned char *)c.jwt_secret, strlen(c.jwt_secret), norm, user, now,
                        now + ttl, c.jwt_issuer, c.jwt_audience, token, sizeof token);
    config_free(&c);
    if (n == 0) {
        fprintf(stderr, "jobsd token: the token does not fit\n");
        return EXIT_JOB_FAILED;
    }
    printf("%s\n", token);
    return EXIT_OK;
}

/* ------------------------------------------------------------------ migrate */

static int cmd_migrate(int argc, char **argv)
{
    bool status = false;
    for (int i = 0; i < argc; i++) {
        if (strcmp(argv[i], "--status") == 0)
            status = true;
        else
            return usage_error(USAGE_MIGRATE, "unknown option %s", argv[i]);
    }
    struct config c;
    if (load_config(&c, CONFIG_MIGRATE) != 0)
        return EXIT_USAGE;
    log_set_fd(STDERR_FILENO);
    struct err e;
    err_clear(&e);
    PGconn *conn = db_connect(c.database_url, &e);
    config_free(&c);
    if (!conn) {
        fprintf(stderr, "jobsd migrate: %s\n", e.message);
        return EXIT_TRANSIENT;
    }
    int rc;
    if (status) {
        rc = migrate_status(conn, stdout, &e);
        if (rc < 0) {
            fprintf(stderr, "jobsd migrate: %s\n", e.message);
            rc = err_is_transient(&e) ? EXIT_TRANSIENT : EXIT_JOB_FAILED;
        }
    } else {
        int n = migrate_apply(conn, stdout, &e);
        if (n < 0) {
            fprintf(stderr, "jobsd migrate: %s\n", e.message);
            rc = err_is_transient(&e) ? EXIT_TRANSIENT : EXIT_JOB_FAILED;
        } else {
            printf("%d migration(s) applied; schema version %d\n", n, migrate_latest_version());
            rc = EXIT_OK;
        }
    }
    PQfinish(conn);
    return rc;
}

/* ------------------------------------------------------------------ job commands */

struct progress {
    bool tty;
    long long start;
};

static void show_progress(void *ctx, const char *phase)
{
    struct progress *p = ctx;
    if (p->tty)
        fprintf(stderr, "jobsd: [%6.1fs] %s...\n", (double)(util_mono_ms() - p->start) / 1000.0,
                phase);
}

static volatile sig_atomic_t g_interrupted;
static PGcancel *volatile g_cancel;

static void on_cli_signal(int sig)
{
    (void)sig;
    g_interrupted = 1;
    PGcancel *c = g_cancel;
    if (c) {
        char buf[128];
        PQcancel(c, buf, (int)sizeof buf); /* async-signal-safe */
    }
}

static int exit_code_for(const struct err *e)
{
    if (e->http_status == 503)
        return EXIT_TRANSIENT;
    if (e->http_status >= 400 && e->http_status < 500)
        return EXIT_USAGE;
    return EXIT_JOB_FAILED;
}

/* Builds the request body from the options (the HTTP rules then apply unchanged). */
static int job_body(const struct job_kind *kind, const char *usage, int argc, char **argv,
                    json_t *body)
{
    bool rebuild = strcmp(kind->name, "rebuild-daily-metrics") == 0;
    for (int i = 0; i < argc; i++) {
        const char *opt = argv[i];
        const char *val = i + 1 < argc ? argv[i + 1] : NULL;
        const char *field = NULL;
        if (strcmp(opt, "--tenant") == 0)
            field = "tenantId";
        else if (rebuild && strcmp(opt, "--from") == 0)
            field = "from";
        else if (rebuild && strcmp(opt, "--to") == 0)
            field = "to";
        else if (strcmp(opt, "--days-back") == 0)
            field = "daysBack";
        else if (!rebuild && strcmp(opt, "--include") == 0)
            field = "include";
        else
            return usage_error(usage, "unknown option %s", opt);
        if (!val)
            return usage_error(usage, "%s needs a value", opt);
        if (json_object_get(body, field))
            return usage_error(usage, "%s given twice", opt);
        if (strcmp(field, "daysBack") == 0) {
            long long n;
            if (!util_parse_i64(val, 1, 100000, &n))
                return usage_error(usage, "--days-back must be a positive integer (got %s)", val);
            json_object_set_new(body, field, json_integer(n));
        } else if (strcmp(field, "include") == 0) {
            json_t *parts = json_array();
            const char *p = val;
            while (*p) {
                size_t n = strcspn(p, ",");
                char *part = util_strndup(p, n);
                json_array_append_new(parts, json_string(part));
                free(part);
                p += n;
                if (*p == ',')
                    p++;
            }
            json_object_set_new(body, field, parts);
        } else {
            json_object_set_new(body, field, json_string(val));
        }
        i++;
    }
    if (!json_object_get(body, "tenantId"))
        return usage_error(usage, "--tenant is required");
    return 0;
}

static int cmd_job(const struct job_kind *kind, const char *usage, int argc, char **argv)
{
    json_t *body = json_object();
    int rc = job_body(kind, usage, argc, argv, body);
    if (rc != 0) {
        json_decref(body);
        return rc;
    }
    struct config c;
    if (load_config(&c, CONFIG_JOB) != 0) {
        json_decref(body);
        return EXIT_USAGE;
    }
    log_set_fd(STDERR_FILENO);
    struct progress prog = {isatty(STDERR_FILENO) != 0, util_mono_ms()};
    struct err e;
    err_clear(&e);
    struct job_request jr;
    memset(&jr, 0, sizeof jr);
    struct job_lease *lease = NULL;
    struct ml_client *ml = app_ml_client(&c, &e);
    PGconn *conn = ml ? db_connect(c.database_url, &e) : NULL;
    char worker[JOB_WORKER_ID_MAX];
    job_worker_id(worker, sizeof worker, "cli");
    struct job_enqueued enq;
    memset(&enq, 0, sizeof enq);
    if (!conn || app_check_timezone(conn, c.jobs_timezone, &e) != 0)
        goto fail;
    if (!migrate_is_current(conn, &e)) {
        err_set(&e, 503, "database_unavailable", "%s (run `jobsd migrate` first)", e.message);
        goto fail;
    }
    show_progress(&prog, "resolving the request");
    struct job_origin origin = {"cli", "jobsd-cli/" JOBSD_VERSION, NULL};
    if (db_begin(conn, c.db_query_timeout_ms, &e) != 0 ||
        kind->resolve(&c, conn, body, &jr, &e) != 0 ||
        job_store_enqueue(conn, kind, &jr, &origin, worker, &enq, &e) != 0 ||
        db_commit(conn, &e) != 0)
        goto fail;
    if (enq.deduplicated) {
        fprintf(stderr, "jobsd: the same job is already %s: %s (see GET /api/v1/jobs/%s)\n",
                job_status_name(enq.status), enq.id, enq.id);
        rc = EXIT_TRANSIENT;
        goto out;
    }
    char msg[96];
    util_fmt(msg, sizeof msg, LOG_JOB_TAG "%s started", kind->name);
    log_event(LOG_INFO, msg, "job", kind->name, "jobLogId", enq.id, "tenantId", jr.tenant_id,
              "trigger", "cli", "workerId", worker, NULL);
    lease = job_lease_start(c.database_url, c.job_lease_seconds, c.job_max_attempts, false, NULL);
    job_lease_add(lease, enq.id, worker);

    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_cli_signal;
    g_cancel = PQgetCancel(conn);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);

    struct job_run run;
    memset(&run, 0, sizeof run);
    run.cfg = &c;
    run.ml = ml;
    run.conn = conn;
    snprintf(run.id, sizeof run.id, "%s", enq.id);
    snprintf(run.tenant_id, sizeof run.tenant_id, "%s", jr.tenant_id);
    snprintf(run.worker_id, sizeof run.worker_id, "%s", worker);
    run.params = jr.params;
    run.attempt = 1;
    run.progress = show_progress;
    run.progress_ctx = &prog;
    json_t *result = job_runner_execute(&run, kind, &e);

    signal(SIGINT, SIG_DFL);
    signal(SIGTERM, SIG_DFL);
    PGcancel *cancel = g_cancel;
    g_cancel = NULL;
    PQfreeCancel(cancel);
    if (!result) {
        if (g_interrupted)
            err_set(&e, 503, "interrupted",
                    "cancelled by a signal before it finished; nothing "
                    "was changed");
        struct err e2;
        err_clear(&e2);
        if (db_is_broken(conn)) {
            PQfinish(conn);
            conn = db_connect(c.database_url, &e2);
        }
        if (!conn || job_store_finish_error(conn, enq.id, worker, &e, &e2) != 0)
            fprintf(stderr, "jobsd: could not record the failure (%s); the reaper will\n",
                    e2.message);
        job_lease_remove(lease, enq.id);
        util_fmt(msg, sizeof msg, LOG_JOB_TAG "%s failed", kind->name);
        log_event(LOG_ERROR, msg, "job", kind->name, "jobLogId", enq.id, "code", e.code, "error",
                  e.message, NULL);
        fprintf(stderr, "jobsd: %s failed (%s): %s\n", kind->name, e.code, e.message);
        rc = e.http_status == 503 ? EXIT_TRANSIENT : EXIT_JOB_FAILED;
        goto out;
    }
    job_lease_remove(lease, enq.id);
    show_progress(&prog, "done");
    json_object_set_new(result, "deduplicated", json_false());
    json_t *ordered = kind->present(result);
    char *text = json_dumps(ordered, JSON_INDENT(2) | JSON_REAL_PRECISION(10));
    printf("%s\n", text ? text : "{}");
    free(text);
    bool partial = json_is_false(json_object_get(ordered, "success"));
    json_decref(ordered);
    json_decref(result);
    util_fmt(msg, sizeof msg, LOG_JOB_TAG "%s %s", kind->name,
             partial ? "finished with errors" : "finished");
    log_event(partial ? LOG_WARN : LOG_INFO, msg, "job", kind->name, "jobLogId", enq.id, "tenantId",
              jr.tenant_id, NULL);
    rc = partial ? EXIT_JOB_FAILED : EXIT_OK;
    goto out;
fail:
    if (conn)
        db_rollback(conn);
    fprintf(stderr, "jobsd: %s: %s\n", kind->name, e.message[0] ? e.message : "failed");
    rc = exit_code_for(&e);
out:
    job_lease_stop(lease);
    ml_client_free(ml);
    job_request_clear(&jr);
    json_decref(body);
    if (conn)
        PQfinish(conn);
    config_free(&c);
    return rc;
}

/* ------------------------------------------------------------------ dispatch */

int main(int argc, char **argv)
{
    const char *cmd = argc > 1 ? argv[1] : "serve";
    int sub_argc = argc > 2 ? argc - 2 : 0;
    char **sub_argv = argv + 2;
    if (strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0 || strcmp(cmd, "help") == 0) {
        fputs(USAGE, stdout);
        return EXIT_OK;
    }
    if (strcmp(cmd, "--version") == 0 || strcmp(cmd, "version") == 0)
        return cmd_version();
    if (strcmp(cmd, "routes") == 0) {
        /* The route table, one "METHOD PATH GUARD" per line (docs/openapi.yaml is checked
         * against it). */
        static const char *const guards[] = {"none", "internal-key", "jwt", "internal-key-or-jwt",
                                             "internal-key"};
        size_t n;
        const struct route *routes = api_routes(&n);
        for (size_t i = 0; i < n; i++)
            printf("%s %s %s\n", routes[i].method, routes[i].path, guards[routes[i].guard]);
        return EXIT_OK;
    }
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != 0) {
        fprintf(stderr, "jobsd: libcurl initialisation failed\n");
        return 1;
    }
    int rc;
    if (strcmp(cmd, "serve") == 0) {
        if (wants_help(sub_argc, sub_argv)) {
            fputs(USAGE_SERVE, stdout);
            rc = EXIT_OK;
        } else if (sub_argc > 0) {
            rc = usage_error(USAGE_SERVE, "serve takes no arguments (got %s)", sub_argv[0]);
        } else {
            rc = app_serve();
        }
    } else if (strcmp(cmd, "migrate") == 0) {
        rc = wants_help(sub_argc, sub_argv) ? (fputs(USAGE_MIGRATE, stdout), EXIT_OK)
                                            : cmd_migrate(sub_argc, sub_argv);
    } else if (strcmp(cmd, "rebuild-daily-metrics") == 0) {
        rc = wants_help(sub_argc, sub_argv)
                 ? (fputs(job_kind_by_name("rebuild-daily-metrics")->usage, stdout), EXIT_OK)
                 : cmd_job(job_kind_by_name("rebuild-daily-metrics"),
                           job_kind_by_name("rebuild-daily-metrics")->usage, sub_argc, sub_argv);
    } else if (strcmp(cmd, "sync-mercadolivre") == 0) {
        rc = wants_help(sub_argc, sub_argv)
                 ? (fputs(job_kind_by_name("sync-mercadolivre")->usage, stdout), EXIT_OK)
                 : cmd_job(job_kind_by_name("sync-mercadolivre"),
                           job_kind_by_name("sync-mercadolivre")->usage, sub_argc, sub_argv);
    } else if (strcmp(cmd, "token") == 0) {
        rc = wants_help(sub_argc, sub_argv) ? (fputs(USAGE_TOKEN, stdout), EXIT_OK)
                                            : cmd_token(sub_argc, sub_argv);
    } else if (strcmp(cmd, "healthcheck") == 0) {
        rc = wants_help(sub_argc, sub_argv) ? (fputs(USAGE_HEALTHCHECK, stdout), EXIT_OK)
                                            : cmd_healthcheck();
    } else if (strcmp(cmd, "check-config") == 0) {
        rc = wants_help(sub_argc, sub_argv) ? (fputs(USAGE_CHECK, stdout), EXIT_OK)
                                            : cmd_check_config();
    } else {
        fprintf(stderr, "jobsd: unknown command \"%s\"\n\n%s", cmd, USAGE);
        rc = EXIT_USAGE;
    }
    curl_global_cleanup();
    return rc;
}
