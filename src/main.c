/* main: the subcommands of SPEC section 5. `serve` is app.c; the others are here. Exit
 * codes: 0 success, 1 the job failed, 2 usage or configuration error, 3 transient (database
 * unavailable, duplicate job running). */
#include "jobsd/api.h"
#include "jobsd/app.h"
#include "jobsd/cli_schedules.h"
#include "jobsd/cli_token.h"
#include "jobsd/db.h"
#include "jobsd/http.h"
#include "jobsd/job_exec.h"
#include "jobsd/job_kinds.h"
#include "jobsd/instance.h"
#include "jobsd/job_lease.h"
#include "jobsd/job_retention.h"
#include "jobsd/job_store.h"
#include "jobsd/log.h"
#include "jobsd/ml_client.h"
#include "jobsd/migrate.h"
#include "jobsd/token_crypt.h"
#include "jobsd/util.h"

#include <arpa/inet.h>
#include <jansson.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

enum { EXIT_OK = 0, EXIT_JOB_FAILED = 1, EXIT_USAGE = 2, EXIT_TRANSIENT = 3 };

static const char USAGE_HEAD[] =
    "usage: jobsd [COMMAND] [OPTIONS]\n"
    "\n"
    "Commands:\n"
    "  serve                      run the HTTP server and job workers (default)\n"
    "  migrate [--status]         apply the database migrations (or list their state)\n"
    "  prune [--older-than DAYS] [--dry-run]\n"
    "                             delete finished jobs older than JOB_RETENTION_DAYS\n";

static const char USAGE_TAIL[] =
    "  token --tenant ID [--user ID] | --operator [--ttl SECONDS]\n"
    "                             mint a JWT with JWT_SECRET (local use: curl the status API,\n"
    "                             or the operator API with --operator)\n"
    "  healthcheck                GET /healthz on PORT; exit 0 when it answers 200\n"
    "  check-config               validate the serve configuration and print it (secrets\n"
    "                             redacted)\n"
    "  routes                     print the route table (METHOD PATH GUARD)\n"
    "  kinds                      print the job kinds (JOB_TYPE NAME)\n"
    "  schedules                  list the schedules with their next and last fire\n"
    "  version                    print the version and library versions\n"
    "\n"
    "Run `jobsd COMMAND --help` for a command's options. Configuration comes from the\n"
    "environment (DATABASE_URL, INTERNAL_JOBS_KEY, JOBS_TIMEZONE, ...; see README.md).\n"
    "Exit codes: 0 ok, 1 job failed, 2 usage/configuration error, 3 transient failure.\n";

/* The overview: the fixed commands and one entry per job kind (from the registry). */
static void print_usage(FILE *out)
{
    fputs(USAGE_HEAD, out);
    for (const struct job_kind *const *k = job_kinds(); *k; k++)
        fprintf(out, "  %s %s\n                             %s\n", (*k)->name, (*k)->synopsis,
                (*k)->summary);
    fputs(USAGE_TAIL, out);
}

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

static const char USAGE_PRUNE[] =
    "usage: jobsd prune [--older-than DAYS] [--dry-run]\n"
    "Deletes the jobs that finished (success, error, cancelled) more than DAYS days ago\n"
    "(default JOB_RETENTION_DAYS, 90) from job_logs, 1000 rows per statement, printing each\n"
    "batch.\n"
    "Queued and running jobs are never deleted. --dry-run only counts. Needs DATABASE_URL.\n";

static const char USAGE_HEALTHCHECK[] =
    "usage: jobsd healthcheck\n"
    "GETs http://127.0.0.1:$PORT/healthz (PORT defaults to 8080) and exits 0 on a 200, 1\n"
    "otherwise. For container health checks without curl.\n";

static const char USAGE_CHECK[] =
    "usage: jobsd check-config\n"
    "Validates the environment as `serve` would (one line per problem, naming the variable;\n"
    "DATABASE_URL must parse as a libpq URI or conninfo) and prints the effective\n"
    "configuration with secrets redacted. Exit 0 or 2. It does not connect.\n";

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
    printf("jobsd %s\n", JOBSD_VERSION);
    printf("libmicrohttpd %s, libpq %d, jansson %s, %s, libcurl %s\n",
           http_server_library_version(), db_library_version(), JANSSON_VERSION,
           token_crypt_library_version(), ml_client_library_version());
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
    struct err e;
    err_clear(&e);
    if (db_check_url(c.database_url, &e) != 0 || cli_schedules_check(&c, &e) != 0) {
        config_free(&c);
        fprintf(stderr, "config: %s\njobsd: configuration invalid\n", e.message);
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
        return err_is_transient(&e) ? EXIT_TRANSIENT : EXIT_USAGE;
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

/* ------------------------------------------------------------------ prune */

static void print_batch(void *ctx, long long batch, long long total)
{
    (void)ctx;
    printf("deleted %lld (%lld so far)\n", batch, total);
    fflush(stdout);
}

static int cmd_prune(int argc, char **argv)
{
    long long days = -1;
    bool dry = false;
    for (int i = 0; i < argc; i++) {
        if (strcmp(argv[i], "--dry-run") == 0)
            dry = true;
        else if (strcmp(argv[i], "--older-than") != 0)
            return usage_error(USAGE_PRUNE, "unknown option %s", argv[i]);
        else if (i + 1 >= argc || !util_parse_i64(argv[++i], 1, 36500, &days))
            return usage_error(USAGE_PRUNE, "--older-than needs a number of days, 1..36500");
    }
    struct config c;
    if (load_config(&c, CONFIG_MIGRATE | CONFIG_PRUNE) != 0)
        return EXIT_USAGE;
    days = days > 0 ? days : c.job_retention_days;
    log_set_fd(STDERR_FILENO);
    struct err e;
    err_clear(&e);
    PGconn *conn = days > 0 ? db_connect(c.database_url, &e) : NULL;
    config_free(&c);
    if (days == 0)
        return usage_error(USAGE_PRUNE,
                           "JOB_RETENTION_DAYS is 0 (keep forever): give --older-than");
    if (!conn) {
        fprintf(stderr, "jobsd prune: %s\n", e.message);
        return EXIT_TRANSIENT;
    }
    long long n = dry ? job_store_prune_count(conn, days, &e)
                      : job_retention_prune(conn, days, NULL, print_batch, NULL, &e);
    PQfinish(conn);
    if (n < 0) {
        fprintf(stderr, "jobsd prune: %s\n", e.message);
        return err_is_transient(&e) ? EXIT_TRANSIENT : EXIT_JOB_FAILED;
    }
    printf("%lld job(s) finished more than %lld day(s) ago %s\n", n, days,
           dry ? "would be deleted (dry run)" : "deleted");
    return EXIT_OK;
}

/* ------------------------------------------------------------------ job commands */

struct progress {
    bool tty;
    long long start;
};

static void show_progress(void *ctx, const char *phase)
{
    struct progress *p = ctx;
    if (p->tty || strncmp(phase, "fleet:", 6) == 0) /* a fleet's progress line: always */
        fprintf(stderr, "jobsd: [%6.1fs] %s...\n", (double)(util_mono_ms() - p->start) / 1000.0,
                phase);
}

/* SIGINT/SIGTERM are caught from before the job is submitted to the end of its run: a signal
 * cancels the running statement (PQcancel is async-signal-safe) and asks the kind to stop; a
 * job submitted but not started yet is not started. The job then fails as interrupted, its
 * open transaction rolled back (never left running for the reaper to hand to a server). */
static volatile sig_atomic_t g_interrupted;
static PGcancel *volatile g_cancel;

static void on_cli_signal(int sig)
{
    (void)sig;
    g_interrupted = 1;
    PGcancel *c = g_cancel;
    if (c) {
        char buf[128];
        PQcancel(c, buf, (int)sizeof buf);
    }
}

static void catch_signals(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_cli_signal;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
}

static void release_signals(void)
{
    signal(SIGINT, SIG_DFL);
    signal(SIGTERM, SIG_DFL);
    PGcancel *cancel = g_cancel;
    g_cancel = NULL;
    PQfreeCancel(cancel);
}

static int exit_code_for(const struct err *e)
{
    if (e->http_status == 503)
        return EXIT_TRANSIENT;
    if (e->http_status >= 400 && e->http_status < 500)
        return EXIT_USAGE;
    return EXIT_JOB_FAILED;
}

/* "a,b,c" as a JSON array of strings. */
static json_t *split_list(const char *val)
{
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
    return parts;
}

/* Builds the request body from the kind's options (the HTTP rules then apply unchanged). */
static int job_body(const struct job_kind *kind, int argc, char **argv, json_t *body)
{
    for (int i = 0; i < argc; i += 2) {
        const struct job_option *o = kind->options;
        while (o->flag && strcmp(o->flag, argv[i]) != 0)
            o++;
        if (!o->flag)
            return usage_error(kind->usage, "unknown option %s", argv[i]);
        if (o->type == JOB_OPTION_FLAG && !json_object_get(body, o->field)) {
            json_object_set_new(body, o->field, json_true());
            i--; /* a flag takes no value */
            continue;
        }
        const char *val = i + 1 < argc ? argv[i + 1] : NULL;
        if (!val)
            return usage_error(kind->usage, "%s needs a value", o->flag);
        if (json_object_get(body, o->field))
            return usage_error(kind->usage, "%s given twice", o->flag);
        long long n;
        if (o->type == JOB_OPTION_INTEGER && !util_parse_i64(val, 1, 100000, &n))
            return usage_error(kind->usage, "%s must be a positive integer (got %s)", o->flag, val);
        json_object_set_new(body, o->field,
                            o->type == JOB_OPTION_INTEGER ? json_integer(n)
                            : o->type == JOB_OPTION_LIST  ? split_list(val)
                                                          : json_string(val));
    }
    for (const struct job_option *o = kind->options; o->flag; o++)
        if (o->required && !json_object_get(body, o->field) &&
            !json_object_get(body, "allTenants")) /* --all-tenants stands for --tenant */
            return usage_error(kind->usage, "%s is required", o->flag);
    return 0;
}

struct cli_job {
    struct config cfg;
    struct progress prog;
    struct ml_client *ml;
    PGconn *conn;
    char worker[JOB_WORKER_ID_MAX];
    struct job_submission sub;
};

/* The CLI's connection broke: open a new one to record the outcome. */
static MUSTCHECK PGconn *reconnect(void *ctx, PGconn *broken, struct err *e)
{
    struct cli_job *j = ctx;
    if (broken)
        PQfinish(broken);
    return db_connect(j->cfg.database_url, e);
}

/* Connects and checks what every job needs, then submits the job already running. */
static MUSTCHECK int cli_submit(struct cli_job *j, const struct job_kind *kind, json_t *body,
                                struct err *e)
{
    j->ml = app_ml_client(&j->cfg, e);
    j->conn = j->ml ? db_connect(j->cfg.database_url, e) : NULL;
    if (!j->conn)
        return -1;
    g_cancel = PQgetCancel(j->conn);
    if (app_check_timezone(j->conn, j->cfg.jobs_timezone, e) != 0)
        return -1;
    if (!migrate_is_current(j->conn, e)) {
        char why[ERR_MESSAGE_MAX];
        snprintf(why, sizeof why, "%s", e->message);
        return err_set(e, 503, "database_unavailable", "%s (run `jobsd migrate` first)", why);
    }
    show_progress(&j->prog, "resolving the request");
    job_worker_id(j->worker, sizeof j->worker, "cli");
    struct job_origin origin = {"cli", "jobsd-cli/" JOBSD_VERSION, NULL};
    return job_exec_submit(j->conn, &j->cfg, kind, body, &origin, j->worker, &j->sub, e);
}

/* Runs the submitted job the way a worker runs a claimed one; prints its body. */
static int cli_run(struct cli_job *j, const struct job_kind *kind)
{
    struct job_claim claim;
    memset(&claim, 0, sizeof claim);
    snprintf(claim.id, sizeof claim.id, "%s", j->sub.enq.id);
    snprintf(claim.job_type, sizeof claim.job_type, "%s", kind->type);
    snprintf(claim.tenant_id, sizeof claim.tenant_id, "%s", j->sub.req.tenant_id);
    snprintf(claim.trigger, sizeof claim.trigger, "cli");
    claim.params = j->sub.req.params;
    claim.attempts = 1;
    struct job_lease *lease = job_lease_start(j->cfg.database_url, j->cfg.job_lease_seconds,
                                              j->cfg.job_max_attempts, false, NULL);
    struct job_exec x = {
        .cfg = &j->cfg,
        .ml = j->ml,
        .lease = lease,
        .reconnect = reconnect,
        .reconnect_ctx = j,
        .progress = show_progress,
        .progress_ctx = &j->prog,
        .cancel = (volatile int *)&g_interrupted,
    };
    /* Mercado Livre limits the application: a run that calls it registers in
     * jobsd_instances like a `serve` with one worker, so the fleet's shares make room for it
     * (its first request waits until they did), and leaves when it ends. */
    struct instance *in = NULL;
    if (kind->calls_ml) {
        show_progress(&j->prog, "taking a share of the fleet's Mercado Livre limit");
        struct instance_config ic = {
            j->cfg.database_url,         JOBSD_VERSION,         1,
            j->cfg.ml_max_rps,           j->cfg.ml_concurrency, j->cfg.instance_heartbeat_seconds,
            j->cfg.instance_dead_seconds};
        in = instance_start(&ic, j->ml);
    }
    struct err e;
    err_clear(&e);
    json_t *result = NULL;
    enum job_outcome o = job_exec_run(&x, kind, &claim, j->worker, &j->conn, &result, &e);
    instance_stop(in);
    job_lease_stop(lease);
    if (o != JOB_OUTCOME_SUCCESS && o != JOB_OUTCOME_PARTIAL) {
        fprintf(stderr, "jobsd: %s failed (%s): %s\n", kind->name, e.code, e.message);
        return e.http_status == 503 ? EXIT_TRANSIENT : EXIT_JOB_FAILED;
    }
    show_progress(&j->prog, "done");
    json_object_set_new(result, "deduplicated", json_false());
    json_t *ordered = kind->present(result);
    char *text = json_dumps(ordered, JSON_INDENT(2) | JSON_REAL_PRECISION(10));
    printf("%s\n", text ? text : "{}");
    free(text);
    json_decref(ordered);
    json_decref(result);
    return o == JOB_OUTCOME_PARTIAL ? EXIT_JOB_FAILED : EXIT_OK;
}

static int cmd_job(const struct job_kind *kind, int argc, char **argv)
{
    json_t *body = json_object();
    int rc = job_body(kind, argc, argv, body);
    if (rc != 0) {
        json_decref(body);
        return rc;
    }
    struct cli_job j;
    memset(&j, 0, sizeof j);
    if (load_config(&j.cfg, CONFIG_JOB) != 0) {
        json_decref(body);
        return EXIT_USAGE;
    }
    log_set_fd(STDERR_FILENO);
    j.prog = (struct progress){isatty(STDERR_FILENO) != 0, util_mono_ms()};
    struct err e;
    err_clear(&e);
    catch_signals();
    if (cli_submit(&j, kind, body, &e) != 0) {
        fprintf(stderr, "jobsd: %s: %s\n", kind->name, e.message[0] ? e.message : "failed");
        rc = exit_code_for(&e);
    } else if (j.sub.enq.deduplicated) {
        fprintf(stderr, "jobsd: the same job is already %s: %s (see GET /api/v1/jobs/%s)\n",
                job_status_name(j.sub.enq.status), j.sub.enq.id, j.sub.enq.id);
        rc = EXIT_TRANSIENT;
    } else {
        rc = cli_run(&j, kind);
    }
    release_signals();
    ml_client_free(j.ml);
    job_submission_clear(&j.sub);
    json_decref(body);
    if (j.conn)
        PQfinish(j.conn);
    config_free(&j.cfg);
    return rc;
}

/* ------------------------------------------------------------------ routes */

/* The route table, one "METHOD PATH GUARD" per line (docs/openapi.yaml is checked against
 * it by scripts/check-deploy.sh). */
static int cmd_routes(void)
{
    static const char *const guards[] = {"none",         "internal-key",
                                         "jwt",          "internal-key-or-jwt",
                                         "internal-key", "internal-key-or-operator"};
    struct api_routes routes;
    api_routes_build(&routes);
    for (size_t i = 0; i < routes.n; i++)
        printf("%s %s %s\n", routes.route[i].method, routes.route[i].path,
               guards[routes.route[i].guard]);
    return EXIT_OK;
}

/* The kind registry, one "JOB_TYPE NAME" per line (docs/openapi.yaml's JobType is checked
 * against it by scripts/check-deploy.sh). */
static int run_kinds(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    for (const struct job_kind *const *k = job_kinds(); *k; k++)
        printf("%s %s\n", (*k)->type, (*k)->name);
    return EXIT_OK;
}

/* ------------------------------------------------------------------ dispatch */

static int run_serve(int argc, char **argv)
{
    if (argc > 0)
        return usage_error(USAGE_SERVE, "serve takes no arguments (got %s)", argv[0]);
    return app_serve();
}

static int run_version(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    return cmd_version();
}

static int run_routes(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    return cmd_routes();
}

static int run_healthcheck(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    return cmd_healthcheck();
}

static int run_check_config(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    return cmd_check_config();
}

/* clang-format off */
static const struct command {
    const char *name;
    const char *usage;
    int (*run)(int argc, char **argv);
} COMMANDS[] = {
    {"serve",        USAGE_SERVE,       run_serve},
    {"migrate",      USAGE_MIGRATE,     cmd_migrate},
    {"prune",        USAGE_PRUNE,       cmd_prune},
    {"token",        CLI_TOKEN_USAGE,   cli_token_run},
    {"healthcheck",  USAGE_HEALTHCHECK, run_healthcheck},
    {"check-config", USAGE_CHECK,       run_check_config},
    {"routes",       NULL,              run_routes},
    {"kinds",        NULL,              run_kinds},
    {"schedules",    CLI_SCHEDULES_USAGE, cli_schedules_run},
    {"version",      NULL,              run_version},
    {"--version",    NULL,              run_version},
};
/* clang-format on */

int main(int argc, char **argv)
{
    const char *cmd = argc > 1 ? argv[1] : "serve";
    int sub_argc = argc > 2 ? argc - 2 : 0;
    char **sub_argv = argv + 2;
    if (strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0 || strcmp(cmd, "help") == 0) {
        print_usage(stdout);
        return EXIT_OK;
    }
    for (size_t i = 0; i < sizeof COMMANDS / sizeof COMMANDS[0]; i++) {
        const struct command *c = &COMMANDS[i];
        if (strcmp(cmd, c->name) != 0)
            continue;
        if (c->usage && wants_help(sub_argc, sub_argv)) {
            fputs(c->usage, stdout);
            return EXIT_OK;
        }
        return c->run(sub_argc, sub_argv);
    }
    const struct job_kind *kind = job_kind_by_name(cmd);
    if (kind && wants_help(sub_argc, sub_argv)) {
        fputs(kind->usage, stdout);
        return EXIT_OK;
    }
    if (kind)
        return cmd_job(kind, sub_argc, sub_argv);
    fprintf(stderr, "jobsd: unknown command \"%s\"\n\n", cmd);
    print_usage(stderr);
    return EXIT_USAGE;
}
