/* testsupport: see testsupport.h. Failures here abort the test program with a message: a
 * broken harness must never look like a passing test. */
#include "testsupport.h"

#include "jobsd/migrate.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static void die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
static void die(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "testsupport: ");
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n");
    va_end(ap);
    abort();
}

long long t_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void sleep_ms(long long ms)
{
    struct timespec ts = {(time_t)(ms / 1000), (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

void t_sleep_ms(long long ms)
{
    sleep_ms(ms);
}

static bool under_valgrind(void)
{
    const char *v = getenv("JOBSD_VALGRIND");
    return v && *v && strcmp(v, "0") != 0;
}

long long t_scale(void)
{
    const char *s = getenv("JOBSD_TEST_TIMEOUT_SCALE");
    long long n = s && *s ? strtoll(s, NULL, 10) : 0;
    if (n >= 1)
        return n;
    return under_valgrind() ? 10 : 1;
}

bool t_wait_until(bool (*cond)(void *ctx), void *ctx, long long timeout_ms)
{
    long long end = t_now_ms() + timeout_ms * t_scale();
    for (;;) {
        if (cond(ctx))
            return true;
        if (t_now_ms() > end)
            return cond(ctx);
        sleep_ms(20);
    }
}

/* ------------------------------------------------------------------ database */

const char *testdb_admin_url(void)
{
    const char *u = getenv("JOBSD_TEST_PG_URL");
    if (!u || !*u)
        die("JOBSD_TEST_PG_URL is not set: run the suite with scripts/test.sh (it starts a "
            "private PostgreSQL)");
    return u;
}

static void quiet(void *arg, const char *msg)
{
    (void)arg;
    (void)msg;
}

static PGconn *connect_or_die(const char *url)
{
    PGconn *c = PQconnectdb(url);
    if (PQstatus(c) != CONNECTION_OK)
        die("cannot connect to %s: %s", url, PQerrorMessage(c));
    PQsetNoticeProcessor(c, quiet, NULL);
    return c;
}

void tdb_exec(PGconn *c, const char *sql)
{
    PGresult *r = PQexec(c, sql);
    ExecStatusType st = PQresultStatus(r);
    if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK)
        die("SQL failed: %s\n--- %s", PQerrorMessage(c), sql);
    PQclear(r);
}

static char *vformat(const char *fmt, va_list ap)
{
    va_list ap2;
    va_copy(ap2, ap);
    int n = vsnprintf(NULL, 0, fmt, ap2);
    va_end(ap2);
    if (n < 0)
        die("bad format");
    char *s = malloc((size_t)n + 1);
    if (!s)
        die("out of memory");
    vsnprintf(s, (size_t)n + 1, fmt, ap);
    return s;
}

void tdb_execf(PGconn *c, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *sql = vformat(fmt, ap);
    va_end(ap);
    tdb_exec(c, sql);
    free(sql);
}

char *tdb_value(PGconn *c, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *sql = vformat(fmt, ap);
    va_end(ap);
    PGresult *r = PQexec(c, sql);
    if (PQresultStatus(r) != PGRES_TUPLES_OK || PQntuples(r) != 1 || PQnfields(r) < 1)
        die("expected one value: %s\n--- %s", PQerrorMessage(c), sql);
    char *v = PQgetisnull(r, 0, 0) ? NULL : strdup(PQgetvalue(r, 0, 0));
    PQclear(r);
    free(sql);
    return v;
}

long long tdb_int(PGconn *c, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *sql = vformat(fmt, ap);
    va_end(ap);
    char *v = tdb_value(c, "%s", sql);
    free(sql);
    if (!v)
        die("expected a number, got NULL");
    long long n = strtoll(v, NULL, 10);
    free(v);
    return n;
}

void testdb_create_at(struct testdb *db, const char *admin_url, const char *prefix)
{
    memset(db, 0, sizeof *db);
    if (admin_url)
        snprintf(db->admin, sizeof db->admin, "%s", admin_url);
    PGconn *admin = connect_or_die(admin_url ? admin_url : testdb_admin_url());
    PQsetNoticeProcessor(admin, quiet, NULL);
    unsigned rnd = (unsigned)(t_now_ms() ^ (getpid() << 8)) % 100000u;
    snprintf(db->name, sizeof db->name, "jt_%.24s_%d_%u", prefix, (int)getpid(), rnd);
    tdb_execf(admin, "CREATE DATABASE %s", db->name);
    snprintf(db->url, sizeof db->url, "postgresql://%s@%s:%s/%s", PQuser(admin), PQhost(admin),
             PQport(admin), db->name);
    PQfinish(admin);
    db->conn = connect_or_die(db->url);
    PQsetNoticeProcessor(db->conn, quiet, NULL);
    struct err e;
    err_clear(&e);
    if (migrate_apply(db->conn, NULL, &e) < 0)
        die("migrations failed: %s", e.message);
}

void testdb_create(struct testdb *db, const char *prefix)
{
    testdb_create_at(db, NULL, prefix);
}

void testdb_drop(struct testdb *db)
{
    if (db->conn)
        PQfinish(db->conn);
    db->conn = NULL;
    PGconn *admin = connect_or_die(db->admin[0] ? db->admin : testdb_admin_url());
    PQsetNoticeProcessor(admin, quiet, NULL);
    tdb_execf(admin, "DROP DATABASE IF EXISTS %s WITH (FORCE)", db->name);
    PQfinish(admin);
}

bool testdb_reconnect(struct testdb *db)
{
    if (db->conn)
        PQfinish(db->conn);
    db->conn = PQconnectdb(db->url);
    if (PQstatus(db->conn) != CONNECTION_OK)
        return false;
    PQsetNoticeProcessor(db->conn, quiet, NULL);
    return true;
}

/* ------------------------------------------------------------------ processes */

const char *jobsd_bin(void)
{
    const char *b = getenv("JOBSD_BIN");
    if (!b || !*b)
        die("JOBSD_BIN is not set (ctest sets it)");
    return b;
}

static const char *tmp_dir(void)
{
    const char *t = getenv("TMPDIR");
    return t && *t ? t : "/tmp";
}

/* The children this test program started and has not reaped. A failed assertion jumps out of
 * its test before the stop calls; at exit the program kills what is left, so no daemon outlives
 * it holding ctest's output pipe open (ctest would wait for it until its timeout) or stealing
 * the next test's jobs. */
#define MAX_LIVE 64
static pid_t live[MAX_LIVE];
static unsigned long long live_seq[MAX_LIVE]; /* when it started, children_mark's clock */
static unsigned long long live_clock;
static pid_t live_owner;

/* Only a child not yet reaped (never a pid the system reused). */
static void kill_child(size_t i)
{
    if (live[i] > 0 && waitpid(live[i], NULL, WNOHANG) == 0) {
        fprintf(stderr, "testsupport: killing child %d left running by a failed test\n",
                (int)live[i]);
        kill(live[i], SIGKILL);
        waitpid(live[i], NULL, 0);
    }
    live[i] = 0;
}

static void kill_live(void)
{
    if (getpid() != live_owner)
        return;
    for (size_t i = 0; i < MAX_LIVE; i++)
        kill_child(i);
}

unsigned long long children_mark(void)
{
    return ++live_clock;
}

void children_kill_since(unsigned long long mark)
{
    for (size_t i = 0; i < MAX_LIVE; i++)
        if (live[i] > 0 && live_seq[i] >= mark)
            kill_child(i);
}

void children_keep(pid_t pid)
{
    for (size_t i = 0; i < MAX_LIVE; i++)
        if (live[i] == pid)
            live_seq[i] = 0;
}

static void live_add(pid_t pid)
{
    if (live_owner == 0) {
        live_owner = getpid();
        atexit(kill_live);
    }
    for (size_t i = 0; i < MAX_LIVE; i++) {
        if (live[i] <= 0) {
            live[i] = pid;
            live_seq[i] = ++live_clock;
            return;
        }
    }
}

static void live_remove(pid_t pid)
{
    for (size_t i = 0; i < MAX_LIVE; i++)
        if (live[i] == pid)
            live[i] = 0;
}

/* JOBSD_TEST_PIDDIR: a file per running child, so scripts/test.sh can end what a crashed
 * test program left behind (it checks /proc/<pid>/cmdline against the recorded path). */
static void pid_record(pid_t pid, const char *exe)
{
    if (pid > 0)
        live_add(pid);
    const char *dir = getenv("JOBSD_TEST_PIDDIR");
    if (!dir || !*dir || pid <= 0)
        return;
    char path[1024];
    snprintf(path, sizeof path, "%s/%d", dir, (int)pid);
    FILE *f = fopen(path, "w");
    if (!f)
        return;
    fprintf(f, "%s\n", exe);
    fclose(f);
}

static void pid_forget(pid_t pid)
{
    live_remove(pid);
    const char *dir = getenv("JOBSD_TEST_PIDDIR");
    if (!dir || !*dir || pid <= 0)
        return;
    char path[1024];
    snprintf(path, sizeof path, "%s/%d", dir, (int)pid);
    unlink(path);
}

/* "scheme://[userinfo@]host:port/..." → the host:port part. */
static bool url_hostport(const char *url, const char **hp, size_t *len)
{
    const char *p = strstr(url, "://");
    if (!p)
        return false;
    p += 3;
    const char *end = p + strcspn(p, "/?");
    const char *at = memchr(p, '@', (size_t)(end - p));
    if (at)
        p = at + 1;
    *hp = p;
    *len = (size_t)(end - p);
    return *len > 0;
}

const char *jobsd_db_url(const char *db_url, char *out, size_t cap)
{
    snprintf(out, cap, "%s", db_url);
    const char *port = getenv("JOBSD_TEST_PGBOUNCER_PORT");
    const char *admin = getenv("JOBSD_TEST_PG_URL");
    if (!port || !*port || !admin || !*admin)
        return out;
    const char *ahp, *hp;
    size_t alen, len;
    if (!url_hostport(admin, &ahp, &alen) || !url_hostport(db_url, &hp, &len) || alen != len ||
        strncmp(ahp, hp, len) != 0)
        return out;
    snprintf(out, cap, "%.*s127.0.0.1:%s%s", (int)(hp - db_url), db_url, port, hp + len);
    return out;
}

/* The child's environment: a few inherited variables, then defaults, then overrides. A
 * DATABASE_URL is routed through PgBouncer when the run asks for it (jobsd_db_url). */
static char **child_env(const char *const *defaults, const char *const *env)
{
    static const char *inherit[] = {"PATH",          "HOME",         "TMPDIR", "ASAN_OPTIONS",
                                    "UBSAN_OPTIONS", "LSAN_OPTIONS", "TZ",     NULL};
    size_t n = 0, cap = 64;
    char **out = calloc(cap, sizeof *out);
    if (!out)
        die("out of memory");
    for (size_t i = 0; inherit[i]; i++) {
        const char *v = getenv(inherit[i]);
        if (v) {
            size_t len = strlen(inherit[i]) + strlen(v) + 2;
            out[n] = malloc(len);
            snprintf(out[n], len, "%s=%s", inherit[i], v);
            n++;
        }
    }
    const char *const *lists[] = {defaults, env};
    for (size_t l = 0; l < 2; l++) {
        for (size_t i = 0; lists[l] && lists[l][i]; i++) {
            const char *kv = lists[l][i];
            size_t klen = strcspn(kv, "=");
            char routed[1100];
            if (strncmp(kv, "DATABASE_URL=", 13) == 0) {
                char url[1024];
                jobsd_db_url(kv + 13, url, sizeof url);
                snprintf(routed, sizeof routed, "DATABASE_URL=%s", url);
                kv = routed;
            }
            /* Override an earlier entry with the same name. */
            size_t j;
            for (j = 0; j < n; j++)
                if (strncmp(out[j], kv, klen) == 0 && out[j][klen] == '=')
                    break;
            if (j < n) {
                free(out[j]);
                out[j] = strdup(kv);
            } else {
                if (n + 1 >= cap)
                    die("too many environment variables");
                out[n++] = strdup(kv);
            }
        }
    }
    out[n] = NULL;
    return out;
}

static void free_env(char **env)
{
    for (size_t i = 0; env && env[i]; i++)
        free(env[i]);
    free(env);
}

static char *read_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return strdup("");
    size_t cap = 4096, len = 0;
    char *s = malloc(cap);
    size_t n;
    while ((n = fread(s + len, 1, cap - len - 1, f)) > 0) {
        len += n;
        if (cap - len < 2) {
            cap *= 2;
            s = realloc(s, cap);
        }
    }
    s[len] = '\0';
    fclose(f);
    return s;
}

/* ---- valgrind (JOBSD_VALGRIND=1) */

static void find_in_path(const char *name, char *out, size_t cap)
{
    const char *path = getenv("PATH");
    snprintf(out, cap, "/usr/bin/%s", name);
    for (const char *p = path; p && *p;) {
        size_t n = strcspn(p, ":");
        char cand[1024];
        snprintf(cand, sizeof cand, "%.*s/%s", (int)n, p, name);
        if (n > 0 && access(cand, X_OK) == 0) {
            snprintf(out, cap, "%s", cand);
            return;
        }
        p += n;
        if (*p == ':')
            p++;
    }
}

static void valgrind_log_path(pid_t pid, char *out, size_t cap)
{
    snprintf(out, cap, "%s/valgrind-%d.log", tmp_dir(), (int)pid);
}

/* In the child: exec jobsd (args after argv[0] = "jobsd"), under valgrind when asked. */
static void exec_jobsd(char **args, char **envp)
{
    if (!under_valgrind()) {
        execve(jobsd_bin(), args, envp);
        _exit(127);
    }
    static char valgrind[1024], logopt[1100], supp[1100];
    find_in_path("valgrind", valgrind, sizeof valgrind);
    snprintf(logopt, sizeof logopt, "--log-file=%s/valgrind-%%p.log", tmp_dir());
    const char *src = getenv("JOBSD_SOURCE_DIR");
    snprintf(supp, sizeof supp, "--suppressions=%s/tests/support/valgrind.supp", src ? src : ".");
    char *vargs[64];
    size_t n = 0;
    vargs[n++] = valgrind;
    vargs[n++] = (char *)"--tool=memcheck";
    vargs[n++] = (char *)"--leak-check=full";
    vargs[n++] = (char *)"--show-leak-kinds=definite,indirect";
    vargs[n++] = (char *)"--errors-for-leak-kinds=definite,indirect";
    vargs[n++] = (char *)"--error-exitcode=99";
    vargs[n++] = (char *)"--track-origins=no";
    vargs[n++] = (char *)"--num-callers=30";
    vargs[n++] = logopt;
    if (src && access(supp + 15, R_OK) == 0)
        vargs[n++] = supp;
    vargs[n++] = (char *)jobsd_bin();
    for (size_t i = 1; args[i] && n < 63; i++)
        vargs[n++] = args[i];
    vargs[n] = NULL;
    execve(valgrind, vargs, envp);
    _exit(127);
}

/* Prints valgrind's report of a process that exited non-zero. */
static void print_valgrind_log(pid_t pid)
{
    if (!under_valgrind())
        return;
    char path[1100];
    valgrind_log_path(pid, path, sizeof path);
    char *log = read_file(path);
    size_t len = strlen(log);
    fprintf(stderr, "valgrind report (%s):\n%s\n", path, len > 12000 ? log + len - 12000 : log);
    free(log);
}

bool jobsd_log_contains(const struct jobsd_proc *p, const char *text)
{
    char *log = read_file(p->log_path);
    bool found = strstr(log, text) != NULL;
    free(log);
    return found;
}

bool jobsd_start(struct jobsd_proc *p, const char *db_url, const char *const *env)
{
    memset(p, 0, sizeof *p);
    snprintf(p->log_path, sizeof p->log_path, "%s/jobsd-test-XXXXXX", tmp_dir());
    int fd = mkstemp(p->log_path);
    if (fd < 0)
        die("mkstemp: %s", strerror(errno));
    char dburl[600];
    snprintf(dburl, sizeof dburl, "DATABASE_URL=%s", db_url);
    const char *defaults[] = {dburl,
                              "INTERNAL_JOBS_KEY=" TEST_KEY,
                              "PORT=0",
                              "BIND_ADDRESS=127.0.0.1",
                              "JOB_LEASE_SECONDS=3",
                              "SHUTDOWN_GRACE_SECONDS=5",
                              "HTTP_THREADS=2",
                              "LOG_LEVEL=debug",
                              NULL};
    char **envp = child_env(defaults, env);
    pid_t pid = fork();
    if (pid < 0)
        die("fork: %s", strerror(errno));
    if (pid == 0) {
        dup2(fd, STDOUT_FILENO);
        dup2(fd, STDERR_FILENO);
        close(fd);
        char *args[] = {(char *)"jobsd", (char *)"serve", NULL};
        exec_jobsd(args, envp);
    }
    close(fd);
    free_env(envp);
    pid_record(pid, jobsd_bin());
    p->pid = pid;
    long long wait_ms = 30000 * t_scale();
    long long end = t_now_ms() + wait_ms;
    while (t_now_ms() < end) {
        char *log = read_file(p->log_path);
        const char *line = strstr(log, "jobsd listening");
        const char *port = line ? strstr(line, "port=") : NULL;
        if (port) {
            p->port = (unsigned)strtoul(port + 5, NULL, 10);
            free(log);
            return true;
        }
        int status;
        if (waitpid(pid, &status, WNOHANG) == pid) {
            fprintf(stderr, "jobsd exited during start-up (status %d); its log:\n%s\n", status,
                    log);
            free(log);
            pid_forget(pid);
            print_valgrind_log(pid);
            p->pid = 0;
            return false;
        }
        free(log);
        sleep_ms(20);
    }
    char *log = read_file(p->log_path);
    fprintf(stderr, "jobsd did not start in %lld s; its log:\n%s\n", wait_ms / 1000, log);
    free(log);
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    pid_forget(pid);
    p->pid = 0;
    return false;
}

void jobsd_signal(const struct jobsd_proc *p, int sig)
{
    if (p->pid > 0)
        kill(p->pid, sig);
}

static int exit_code(int status)
{
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

int jobsd_wait(struct jobsd_proc *p, long long timeout_ms)
{
    if (p->pid <= 0)
        return -1;
    long long end = t_now_ms() + timeout_ms;
    for (;;) {
        int status = 0;
        pid_t w = waitpid(p->pid, &status, WNOHANG);
        if (w == p->pid) {
            pid_forget(p->pid);
            p->pid = 0;
            return exit_code(status);
        }
        if (t_now_ms() > end)
            return -1;
        sleep_ms(10);
    }
}

bool jobsd_running(struct jobsd_proc *p)
{
    if (p->pid <= 0)
        return false;
    int status = 0;
    pid_t w = waitpid(p->pid, &status, WNOHANG);
    if (w == p->pid) {
        fprintf(stderr, "jobsd (pid %d) exited with %d\n", (int)p->pid, exit_code(status));
        pid_forget(p->pid);
        p->pid = 0;
        return false;
    }
    return true;
}

int jobsd_stop(struct jobsd_proc *p, long long timeout_ms)
{
    if (p->pid <= 0)
        return -1;
    pid_t pid = p->pid;
    kill(pid, SIGTERM);
    long long end = t_now_ms() + timeout_ms * t_scale();
    int status = 0;
    for (;;) {
        pid_t w = waitpid(pid, &status, WNOHANG);
        if (w == pid)
            break;
        if (t_now_ms() > end) {
            kill(pid, SIGKILL);
            waitpid(pid, NULL, 0);
            pid_forget(pid);
            p->pid = 0;
            return -1;
        }
        sleep_ms(20);
    }
    pid_forget(pid);
    p->pid = 0;
    int code = exit_code(status);
    if (code != 0) {
        char *log = read_file(p->log_path);
        size_t len = strlen(log);
        fprintf(stderr, "jobsd exited with %d; end of its log:\n%s\n", code,
                len > 4000 ? log + len - 4000 : log);
        free(log);
        print_valgrind_log(pid);
    }
    return code;
}

void jobsd_kill9(struct jobsd_proc *p)
{
    if (p->pid <= 0)
        return;
    kill(p->pid, SIGKILL);
    waitpid(p->pid, NULL, 0);
    pid_forget(p->pid);
    p->pid = 0;
}

int jobsd_run(const char *const *argv, const char *const *env, char **out, char **err)
{
    int po[2], pe[2];
    if (pipe(po) != 0 || pipe(pe) != 0)
        die("pipe: %s", strerror(errno));
    char **envp = child_env(NULL, env);
    pid_t pid = fork();
    if (pid < 0)
        die("fork: %s", strerror(errno));
    if (pid == 0) {
        dup2(po[1], STDOUT_FILENO);
        dup2(pe[1], STDERR_FILENO);
        close(po[0]);
        close(po[1]);
        close(pe[0]);
        close(pe[1]);
        size_t n = 0;
        while (argv[n])
            n++;
        char **args = calloc(n + 2, sizeof *args);
        args[0] = (char *)"jobsd";
        for (size_t i = 0; i < n; i++)
            args[i + 1] = (char *)argv[i];
        exec_jobsd(args, envp);
    }
    free_env(envp);
    pid_record(pid, jobsd_bin());
    close(po[1]);
    close(pe[1]);
    char *bufs[2] = {NULL, NULL};
    size_t lens[2] = {0, 0};
    int fds[2] = {po[0], pe[0]};
    bool open_[2] = {true, true};
    while (open_[0] || open_[1]) {
        struct pollfd pfd[2];
        nfds_t k = 0;
        int which[2];
        for (int i = 0; i < 2; i++)
            if (open_[i]) {
                pfd[k].fd = fds[i];
                pfd[k].events = POLLIN;
                which[k] = i;
                k++;
            }
        if (poll(pfd, k, (int)(120000 * t_scale())) <= 0)
            break;
        for (nfds_t j = 0; j < k; j++) {
            if (!(pfd[j].revents & (POLLIN | POLLHUP | POLLERR)))
                continue;
            int i = which[j];
            char chunk[4096];
            ssize_t r = read(fds[i], chunk, sizeof chunk);
            if (r <= 0) {
                open_[i] = false;
                continue;
            }
            bufs[i] = realloc(bufs[i], lens[i] + (size_t)r + 1);
            memcpy(bufs[i] + lens[i], chunk, (size_t)r);
            lens[i] += (size_t)r;
            bufs[i][lens[i]] = '\0';
        }
    }
    close(po[0]);
    close(pe[0]);
    int status = 0;
    waitpid(pid, &status, 0);
    pid_forget(pid);
    for (int i = 0; i < 2; i++)
        if (!bufs[i])
            bufs[i] = strdup("");
    if (out)
        *out = bufs[0];
    else
        free(bufs[0]);
    if (err)
        *err = bufs[1];
    else
        free(bufs[1]);
    int code = exit_code(status);
    if (code == 99)
        print_valgrind_log(pid);
    return code;
}

/* ------------------------------------------------------------------ raw HTTP */

static int dial(unsigned port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        die("socket: %s", strerror(errno));
    struct sockaddr_in sa;
    memset(&sa, 0, sizeof sa);
    sa.sin_family = AF_INET;
    sa.sin_port = htons((uint16_t)port);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

static const char *find_header(const char *headers, const char *name, size_t *len)
{
    size_t n = strlen(name);
    const char *p = headers;
    while (p && *p) {
        const char *eol = strstr(p, "\r\n");
        if (!eol)
            eol = p + strlen(p);
        if ((size_t)(eol - p) > n && p[n] == ':' && strncasecmp(p, name, n) == 0) {
            const char *v = p + n + 1;
            while (*v == ' ')
                v++;
            *len = (size_t)(eol - v);
            return v;
        }
        p = *eol ? eol + 2 : eol;
    }
    return NULL;
}

char *th_header(const struct th_response *r, const char *name)
{
    size_t len;
    const char *v = r->headers ? find_header(r->headers, name, &len) : NULL;
    if (!v)
        return NULL;
    char *s = malloc(len + 1);
    memcpy(s, v, len);
    s[len] = '\0';
    return s;
}

/* Decodes a chunked body in place; returns false when incomplete. */
static bool dechunk(const char *in, size_t n, char **out, size_t *out_len)
{
    size_t pos = 0, len = 0;
    char *b = malloc(n + 1);
    for (;;) {
        const char *eol = memmem(in + pos, n - pos, "\r\n", 2);
        if (!eol) {
            free(b);
            return false;
        }
        size_t sz = strtoul(in + pos, NULL, 16);
        pos = (size_t)(eol - in) + 2;
        if (sz == 0)
            break;
        if (pos + sz + 2 > n) {
            free(b);
            return false;
        }
        memcpy(b + len, in + pos, sz);
        len += sz;
        pos += sz + 2;
    }
    b[len] = '\0';
    *out = b;
    *out_len = len;
    return true;
}

bool th_raw(unsigned port, const char *data, size_t len, struct th_response *r,
            long long timeout_ms)
{
    return th_raw_ex(port, data, len, 0, r, timeout_ms);
}

bool th_raw_ex(unsigned port, const char *data, size_t len, unsigned flags, struct th_response *r,
               long long timeout_ms)
{
    memset(r, 0, sizeof *r);
    int fd = dial(port);
    if (fd < 0)
        return false;
    size_t sent = 0;
    unsigned piece = 7;
    while (sent < len) {
        size_t n = len - sent;
        if (flags & TH_TRICKLE) {
            piece = piece * 1103515245u + 12345u;
            n = n < 1 + (piece >> 16) % 16 ? n : 1 + (piece >> 16) % 16;
            if (sent > 0)
                sleep_ms(1);
        }
        ssize_t w = send(fd, data + sent, n, MSG_NOSIGNAL);
        if (w <= 0)
            break; /* the server may answer and close before reading everything */
        sent += (size_t)w;
    }
    if (flags & TH_HALF_CLOSE)
        shutdown(fd, SHUT_WR);
    size_t cap = 8192, got = 0;
    char *buf = malloc(cap);
    long long end = t_now_ms() + timeout_ms * t_scale();
    bool done = false;
    while (!done) {
        long long left = end - t_now_ms();
        if (left <= 0) {
            r->timed_out = got == 0;
            break;
        }
        struct pollfd pfd = {fd, POLLIN, 0};
        if (poll(&pfd, 1, (int)left) <= 0) {
            r->timed_out = got == 0;
            break;
        }
        if (cap - got < 4096) {
            cap *= 2;
            buf = realloc(buf, cap);
        }
        ssize_t n = recv(fd, buf + got, cap - got - 1, 0);
        if (n <= 0)
            break;
        got += (size_t)n;
        buf[got] = '\0';
        const char *hend = strstr(buf, "\r\n\r\n");
        if (!hend)
            continue;
        size_t hlen = (size_t)(hend - buf) + 4;
        char *headers = strndup(buf, hlen);
        size_t vlen;
        const char *cl = find_header(headers, "Content-Length", &vlen);
        const char *te = find_header(headers, "Transfer-Encoding", &vlen);
        if (cl) {
            size_t want = strtoul(cl, NULL, 10);
            done = got - hlen >= want;
        } else if (te) {
            char *tmp;
            size_t tl;
            done = dechunk(buf + hlen, got - hlen, &tmp, &tl);
            if (done)
                free(tmp);
        }
        free(headers);
    }
    close(fd);
    buf[got] = '\0';
    const char *hend = strstr(buf, "\r\n\r\n");
    if (!hend || strncmp(buf, "HTTP/1.", 7) != 0) {
        free(buf);
        return got == 0 ? false : false;
    }
    size_t hlen = (size_t)(hend - buf) + 4;
    r->status = (int)strtol(buf + 9, NULL, 10);
    r->headers = strndup(buf, hlen);
    size_t vlen;
    if (find_header(r->headers, "Transfer-Encoding", &vlen)) {
        if (!dechunk(buf + hlen, got - hlen, &r->body, &r->body_len)) {
            r->body = strdup("");
            r->body_len = 0;
        }
    } else {
        r->body_len = got - hlen;
        r->body = malloc(r->body_len + 1);
        memcpy(r->body, buf + hlen, r->body_len);
        r->body[r->body_len] = '\0';
    }
    free(buf);
    r->json = json_loadb(r->body, r->body_len, 0, NULL);
    return true;
}

bool th_request(unsigned port, const char *method, const char *path, const char *extra_headers,
                const char *body, struct th_response *r)
{
    size_t blen = body ? strlen(body) : 0;
    size_t cap = 1024 + strlen(path) + (extra_headers ? strlen(extra_headers) : 0) + blen;
    char *req = malloc(cap);
    int n = snprintf(req, cap, "%s %s HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n%s",
                     method, path, extra_headers ? extra_headers : "");
    if (body)
        n += snprintf(req + n, cap - (size_t)n, "Content-Length: %zu\r\n", blen);
    n += snprintf(req + n, cap - (size_t)n, "\r\n");
    if (body) {
        memcpy(req + n, body, blen);
        n += (int)blen;
    }
    bool ok = th_raw(port, req, (size_t)n, r, 120000);
    free(req);
    return ok;
}

bool th_post_job(unsigned port, const char *path, const char *key, const char *body,
                 const char *extra_headers, struct th_response *r)
{
    char headers[2048];
    snprintf(headers, sizeof headers, "%s%s%sContent-Type: application/json\r\n%s",
             key ? "X-Internal-Key: " : "", key ? key : "", key ? "\r\n" : "",
             extra_headers ? extra_headers : "");
    return th_request(port, "POST", path, headers, body ? body : "", r);
}

void th_free(struct th_response *r)
{
    free(r->headers);
    free(r->body);
    json_decref(r->json);
    memset(r, 0, sizeof *r);
}

const char *th_error_code(const struct th_response *r)
{
    const char *c = json_string_value(json_object_get(json_object_get(r->json, "error"), "code"));
    return c ? c : "";
}

/* ------------------------------------------------------------------ fixtures */

void fx_tenant(PGconn *c, const char *id)
{
    tdb_execf(c, "INSERT INTO tenants (id, name) VALUES ('%s', 'tenant %s')", id, id);
}

static char slots[8][40];
static unsigned slot;

static const char *insert_returning(PGconn *c, const char *sql, int n, const char *const *params)
{
    PGresult *r = PQexecParams(c, sql, n, NULL, params, NULL, NULL, 0);
    if (PQresultStatus(r) != PGRES_TUPLES_OK || PQntuples(r) != 1)
        die("fixture insert failed: %s\n--- %s", PQerrorMessage(c), sql);
    char *s = slots[slot++ % 8];
    snprintf(s, 40, "%s", PQgetvalue(r, 0, 0));
    PQclear(r);
    return s;
}

const char *fx_listing(PGconn *c, const char *tenant, const char *external_id, const char *status)
{
    const char *p[] = {tenant, external_id, status};
    return insert_returning(c,
                            "INSERT INTO listings (tenant_id, external_id, status, title) "
                            "VALUES ($1, $2, $3, 'listing ' || $2) RETURNING id",
                            3, p);
}

const char *fx_order(PGconn *c, const char *tenant, long long external_id, const char *status,
                     const char *ordered_at)
{
    char ext[24];
    snprintf(ext, sizeof ext, "%lld", external_id);
    const char *p[] = {tenant, ext, status, ordered_at};
    return insert_returning(c,
                            "INSERT INTO orders (tenant_id, external_id, status, ordered_at) "
                            "VALUES ($1, $2, $3, $4) RETURNING id",
                            4, p);
}

void fx_item(PGconn *c, const char *tenant, const char *order_id, const char *listing_id,
             int quantity, const char *unit_price)
{
    char q[16];
    snprintf(q, sizeof q, "%d", quantity);
    const char *p[] = {tenant, order_id, listing_id, q, unit_price};
    PGresult *r =
        PQexecParams(c,
                     "INSERT INTO order_items (tenant_id, order_id, listing_id, quantity, "
                     "unit_price) VALUES ($1, $2, $3, $4, $5)",
                     5, NULL, p, NULL, NULL, 0);
    if (PQresultStatus(r) != PGRES_COMMAND_OK)
        die("fixture item failed: %s", PQerrorMessage(c));
    PQclear(r);
}

void fx_visits(PGconn *c, const char *tenant, const char *listing_id, const char *date, int visits)
{
    char v[16];
    snprintf(v, sizeof v, "%d", visits);
    const char *p[] = {tenant, listing_id, date, v};
    PGresult *r = PQexecParams(c,
                               "INSERT INTO listing_visits_daily (tenant_id, listing_id, date, "
                               "visits) VALUES ($1, $2, $3, $4) ON CONFLICT (tenant_id, "
                               "listing_id, date) DO UPDATE SET visits = EXCLUDED.visits",
                               4, NULL, p, NULL, NULL, 0);
    if (PQresultStatus(r) != PGRES_COMMAND_OK)
        die("fixture visits failed: %s", PQerrorMessage(c));
    PQclear(r);
}

/* ------------------------------------------------------------------ fake Mercado Livre */

bool fake_ml_start(struct fake_ml *f, const char *scenario, const char *const *args)
{
    memset(f, 0, sizeof *f);
    const char *bin = getenv("FAKE_ML_BIN");
    const char *dir = getenv("FAKE_ML_SCENARIOS");
    if (!bin || !*bin)
        die("FAKE_ML_BIN is not set (ctest sets it)");
    char path[1024];
    if (strchr(scenario, '/') || !dir)
        snprintf(path, sizeof path, "%s", scenario);
    else
        snprintf(path, sizeof path, "%s/%s", dir, scenario);
    int out[2];
    if (pipe(out) != 0)
        die("pipe: %s", strerror(errno));
    pid_t pid = fork();
    if (pid < 0)
        die("fork: %s", strerror(errno));
    if (pid == 0) {
        dup2(out[1], STDOUT_FILENO);
        close(out[0]);
        close(out[1]);
        const char *argv[32] = {bin, "--scenario", path, "--port", "0"};
        size_t n = 5;
        for (size_t i = 0; args && args[i] && n < 31; i++)
            argv[n++] = args[i];
        argv[n] = NULL;
        execv(bin, (char *const *)argv);
        _exit(127);
    }
    close(out[1]);
    f->pid = pid;
    pid_record(pid, bin);
    char line[256];
    size_t len = 0;
    long long end = t_now_ms() + 30000;
    while (t_now_ms() < end && len < sizeof line - 1) {
        struct pollfd pfd = {out[0], POLLIN, 0};
        if (poll(&pfd, 1, 200) <= 0)
            continue;
        ssize_t r = read(out[0], line + len, 1);
        if (r <= 0)
            break;
        if (line[len] == '\n')
            break;
        len++;
    }
    line[len] = '\0';
    close(out[0]);
    const char *p = strstr(line, "port=");
    if (!p) {
        fprintf(stderr, "fake_ml did not start (got \"%s\")\n", line);
        kill(pid, SIGKILL);
        waitpid(pid, NULL, 0);
        pid_forget(pid);
        f->pid = 0;
        return false;
    }
    f->port = (unsigned)strtoul(p + 5, NULL, 10);
    snprintf(f->url, sizeof f->url, "http://127.0.0.1:%u", f->port);
    return true;
}

void fake_ml_stop(struct fake_ml *f)
{
    if (f->pid <= 0)
        return;
    kill(f->pid, SIGTERM);
    int status;
    long long end = t_now_ms() + 10000;
    while (waitpid(f->pid, &status, WNOHANG) == 0) {
        if (t_now_ms() > end) {
            kill(f->pid, SIGKILL);
            waitpid(f->pid, &status, 0);
            break;
        }
        sleep_ms(20);
    }
    pid_forget(f->pid);
    f->pid = 0;
}

static json_t *fake_call(const struct fake_ml *f, const char *method, const char *path,
                         const char *body)
{
    struct th_response r;
    const char *h = body ? "Content-Type: application/json\r\n" : NULL;
    if (!th_request(f->port, method, path, h, body, &r))
        return NULL;
    json_t *j = r.json ? json_incref(r.json) : NULL;
    if (r.status >= 400) {
        fprintf(stderr, "fake_ml %s %s: %d %s\n", method, path, r.status, r.body);
        json_decref(j);
        j = NULL;
    }
    th_free(&r);
    return j;
}

json_t *fake_ml_get(const struct fake_ml *f, const char *path)
{
    return fake_call(f, "GET", path, NULL);
}

json_t *fake_ml_post(const struct fake_ml *f, const char *path, const char *json_body)
{
    json_t *j = fake_call(f, "POST", path, json_body ? json_body : "");
    return j ? j : json_object();
}

int fake_ml_delete(const struct fake_ml *f, const char *path)
{
    struct th_response r;
    if (!th_request(f->port, "DELETE", path, NULL, NULL, &r))
        return 0;
    int st = r.status;
    th_free(&r);
    return st;
}

long long fake_ml_stat(const struct fake_ml *f, const char *dotted)
{
    json_t *root = fake_ml_get(f, "/__fake/stats");
    if (!root)
        die("fake_ml stats unavailable");
    json_t *cur = root;
    char key[128];
    const char *p = dotted;
    while (cur && *p) {
        size_t n = strcspn(p, ".");
        if (n >= sizeof key)
            n = sizeof key - 1;
        memcpy(key, p, n);
        key[n] = '\0';
        cur = json_object_get(cur, key);
        p += n;
        if (*p == '.')
            p++;
    }
    long long v = cur && json_is_integer(cur) ? (long long)json_integer_value(cur) : -1;
    json_decref(root);
    return v;
}

/* ------------------------------------------------------------------ private clusters */

/* Runs a command to completion (its output goes to our stderr); returns its exit code. */
static int run_cmd(const char *const *argv)
{
    pid_t pid = fork();
    if (pid < 0)
        die("fork: %s", strerror(errno));
    if (pid == 0) {
        dup2(STDERR_FILENO, STDOUT_FILENO);
        execv(argv[0], (char *const *)argv);
        _exit(127);
    }
    int status = 0;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
        ;
    return exit_code(status);
}

static void pg_script(char *out, size_t cap)
{
    const char *src = getenv("JOBSD_SOURCE_DIR");
    if (!src || !*src)
        die("JOBSD_SOURCE_DIR is not set (ctest sets it)");
    snprintf(out, cap, "%s/scripts/pg.sh", src);
}

static bool pgc_read_env(struct pgcluster *c)
{
    char path[600];
    snprintf(path, sizeof path, "%s/env", c->dir);
    char *env = read_file(path);
    const char *p = strstr(env, "PGPORT=");
    unsigned port = p ? (unsigned)strtoul(p + 7, NULL, 10) : 0;
    free(env);
    if (port == 0)
        return false;
    c->port = port;
    snprintf(c->url, sizeof c->url, "postgresql://postgres@127.0.0.1:%u/postgres", port);
    return true;
}

bool pgc_start(struct pgcluster *c)
{
    memset(c, 0, sizeof *c);
    snprintf(c->dir, sizeof c->dir, "%s/jobsd-pgc-XXXXXX", tmp_dir());
    if (!mkdtemp(c->dir))
        die("mkdtemp: %s", strerror(errno));
    chmod(c->dir, 0755);
    char script[600];
    pg_script(script, sizeof script);
    /* Durable (fsync, synchronous_commit): an immediate stop is a crash, and a commit a
     * client was told about must survive it. */
    const char *argv[] = {script, "start", c->dir, "--durable", NULL};
    if (run_cmd(argv) != 0 || !pgc_read_env(c)) {
        fprintf(stderr, "could not start a private PostgreSQL in %s\n", c->dir);
        return false;
    }
    return true;
}

bool pgc_stop(struct pgcluster *c, const char *mode)
{
    char script[600];
    pg_script(script, sizeof script);
    const char *argv[] = {script, "stop", c->dir, mode, NULL};
    return run_cmd(argv) == 0;
}

bool pgc_resume(struct pgcluster *c)
{
    unsigned port = c->port;
    char script[600];
    pg_script(script, sizeof script);
    const char *argv[] = {script, "start", c->dir, NULL};
    if (run_cmd(argv) != 0 || !pgc_read_env(c))
        return false;
    if (c->port != port) {
        fprintf(stderr, "PostgreSQL came back on port %u instead of %u\n", c->port, port);
        return false;
    }
    return true;
}

void pgc_destroy(struct pgcluster *c)
{
    if (!c->dir[0])
        return;
    (void)pgc_stop(c, "immediate");
    const char *argv[] = {"/bin/rm", "-rf", c->dir, NULL};
    (void)run_cmd(argv);
    memset(c, 0, sizeof *c);
}
