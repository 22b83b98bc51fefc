/* testproc: see testproc.h. */
#include "testproc.h"
#include "testdb.h"
#include "testtime.h"
#include "testutil.h"

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

const char *jobsd_bin(void)
{
    const char *b = getenv("JOBSD_BIN");
    if (!b || !*b)
        tu_die("JOBSD_BIN is not set (ctest sets it)");
    return b;
}

static char *xstrdup(const char *s)
{
    char *d = strdup(s);
    if (!d)
        tu_die("out of memory");
    return d;
}

/* ------------------------------------------------------------------ children */

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
void children_track(pid_t pid, const char *exe)
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

void children_forget(pid_t pid)
{
    live_remove(pid);
    const char *dir = getenv("JOBSD_TEST_PIDDIR");
    if (!dir || !*dir || pid <= 0)
        return;
    char path[1024];
    snprintf(path, sizeof path, "%s/%d", dir, (int)pid);
    unlink(path);
}

/* ------------------------------------------------------------------ the environment */

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
    static const char *const inherit[] = {"PATH",          "HOME",         "TMPDIR", "ASAN_OPTIONS",
                                          "UBSAN_OPTIONS", "LSAN_OPTIONS", "TZ",     NULL};
    size_t n = 0, cap = 64;
    char **out = calloc(cap, sizeof *out);
    if (!out)
        tu_die("out of memory");
    for (size_t i = 0; inherit[i]; i++) {
        const char *v = getenv(inherit[i]);
        if (v) {
            size_t len = strlen(inherit[i]) + strlen(v) + 2;
            out[n] = malloc(len);
            if (!out[n])
                tu_die("out of memory");
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
                out[j] = xstrdup(kv);
            } else {
                if (n + 1 >= cap)
                    tu_die("too many environment variables");
                out[n++] = xstrdup(kv);
            }
        }
    }
    out[n] = NULL;
    return out;
}

static void free_strv(char **v)
{
    for (size_t i = 0; v && v[i]; i++)
        free(v[i]);
    free(v);
}

/* ------------------------------------------------------------------ valgrind (JOBSD_VALGRIND=1) */

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
    snprintf(out, cap, "%s/valgrind-%d.log", tu_tmp_dir(), (int)pid);
}

/* What execve runs for `jobsd ARGS...`: jobsd itself, or valgrind with jobsd among its
 * arguments. Built before fork (new strings, command_free), so the child only calls execve. */
struct command {
    char *path;
    char **argv; /* NULL-terminated */
    size_t n, cap;
};

static void command_add(struct command *c, const char *arg)
{
    if (c->n + 2 > c->cap) {
        size_t cap = c->cap ? c->cap * 2 : 16;
        char **bigger = realloc(c->argv, cap * sizeof *bigger);
        if (!bigger)
            tu_die("out of memory");
        c->argv = bigger;
        c->cap = cap;
    }
    c->argv[c->n++] = xstrdup(arg);
    c->argv[c->n] = NULL;
}

static void jobsd_command(struct command *c, const char *const *args)
{
    memset(c, 0, sizeof *c);
    if (!tu_valgrind()) {
        c->path = xstrdup(jobsd_bin());
        command_add(c, "jobsd");
    } else {
        char valgrind[1024], logopt[1100], supp[1100];
        find_in_path("valgrind", valgrind, sizeof valgrind);
        c->path = xstrdup(valgrind);
        command_add(c, valgrind);
        snprintf(logopt, sizeof logopt, "--log-file=%s/valgrind-%%p.log", tu_tmp_dir());
        static const char *const opts[] = {"--tool=memcheck",
                                           "--leak-check=full",
                                           "--show-leak-kinds=definite,indirect",
                                           "--errors-for-leak-kinds=definite,indirect",
                                           "--error-exitcode=99",
                                           "--track-origins=no",
                                           "--num-callers=30",
                                           NULL};
        for (size_t i = 0; opts[i]; i++)
            command_add(c, opts[i]);
        command_add(c, logopt);
        const char *src = getenv("JOBSD_SOURCE_DIR");
        snprintf(supp, sizeof supp, "%s/tests/support/valgrind.supp", src ? src : ".");
        if (src && access(supp, R_OK) == 0) {
            char opt[1200];
            snprintf(opt, sizeof opt, "--suppressions=%s", supp);
            command_add(c, opt);
        }
        command_add(c, jobsd_bin());
    }
    for (size_t i = 0; args[i]; i++)
        command_add(c, args[i]);
}

static void command_free(struct command *c)
{
    free(c->path);
    free_strv(c->argv);
    memset(c, 0, sizeof *c);
}

/* Prints valgrind's report of a process that exited non-zero. */
static void print_valgrind_log(pid_t pid)
{
    if (!tu_valgrind())
        return;
    char path[1100];
    valgrind_log_path(pid, path, sizeof path);
    char *log = tu_read_file(path);
    size_t len = strlen(log);
    fprintf(stderr, "valgrind report (%s):\n%s\n", path, len > 12000 ? log + len - 12000 : log);
    free(log);
}

/* ------------------------------------------------------------------ jobsd serve */

bool jobsd_log_contains(const struct jobsd_proc *p, const char *text)
{
    char *log = tu_read_file(p->log_path);
    bool found = strstr(log, text) != NULL;
    free(log);
    return found;
}

bool jobsd_start(struct jobsd_proc *p, const char *db_url, const char *const *env)
{
    memset(p, 0, sizeof *p);
    snprintf(p->log_path, sizeof p->log_path, "%s/jobsd-test-XXXXXX", tu_tmp_dir());
    int fd = mkstemp(p->log_path);
    if (fd < 0)
        tu_die("mkstemp: %s", strerror(errno));
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
    static const char *const serve[] = {"serve", NULL};
    struct command cmd;
    jobsd_command(&cmd, serve);
    pid_t pid = fork();
    if (pid < 0)
        tu_die("fork: %s", strerror(errno));
    if (pid == 0) {
        dup2(fd, STDOUT_FILENO);
        dup2(fd, STDERR_FILENO);
        close(fd);
        execve(cmd.path, cmd.argv, envp);
        _exit(127);
    }
    close(fd);
    command_free(&cmd);
    free_strv(envp);
    children_track(pid, jobsd_bin());
    p->pid = pid;
    long long wait_ms = 30000 * t_scale();
    long long end = t_now_ms() + wait_ms;
    while (t_now_ms() < end) {
        char *log = tu_read_file(p->log_path);
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
            children_forget(pid);
            print_valgrind_log(pid);
            p->pid = 0;
            return false;
        }
        free(log);
        t_sleep_ms(20);
    }
    char *log = tu_read_file(p->log_path);
    fprintf(stderr, "jobsd did not start in %lld s; its log:\n%s\n", wait_ms / 1000, log);
    free(log);
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    children_forget(pid);
    p->pid = 0;
    return false;
}

void jobsd_signal(const struct jobsd_proc *p, int sig)
{
    if (p->pid > 0)
        kill(p->pid, sig);
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
            children_forget(p->pid);
            p->pid = 0;
            return tu_exit_code(status);
        }
        if (t_now_ms() > end)
            return -1;
        t_sleep_ms(10);
    }
}

bool jobsd_running(struct jobsd_proc *p)
{
    if (p->pid <= 0)
        return false;
    int status = 0;
    pid_t w = waitpid(p->pid, &status, WNOHANG);
    if (w == p->pid) {
        fprintf(stderr, "jobsd (pid %d) exited with %d\n", (int)p->pid, tu_exit_code(status));
        children_forget(p->pid);
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
            children_forget(pid);
            p->pid = 0;
            return -1;
        }
        t_sleep_ms(20);
    }
    children_forget(pid);
    p->pid = 0;
    int code = tu_exit_code(status);
    if (code != 0) {
        char *log = tu_read_file(p->log_path);
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
    children_forget(p->pid);
    p->pid = 0;
}

/* ------------------------------------------------------------------ jobsd as a command */

/* Appends what fd has to say to *buf (NUL-terminated); false at its end. */
static bool read_some(int fd, char **buf, size_t *len)
{
    char chunk[4096];
    ssize_t r = read(fd, chunk, sizeof chunk);
    if (r <= 0)
        return false;
    char *bigger = realloc(*buf, *len + (size_t)r + 1);
    if (!bigger)
        tu_die("out of memory");
    *buf = bigger;
    memcpy(*buf + *len, chunk, (size_t)r);
    *len += (size_t)r;
    (*buf)[*len] = '\0';
    return true;
}

int jobsd_run(const char *const *argv, const char *const *env, char **out, char **err)
{
    int po[2], pe[2];
    if (pipe(po) != 0 || pipe(pe) != 0)
        tu_die("pipe: %s", strerror(errno));
    char **envp = child_env(NULL, env);
    struct command cmd;
    jobsd_command(&cmd, argv);
    pid_t pid = fork();
    if (pid < 0)
        tu_die("fork: %s", strerror(errno));
    if (pid == 0) {
        dup2(po[1], STDOUT_FILENO);
        dup2(pe[1], STDERR_FILENO);
        close(po[0]);
        close(po[1]);
        close(pe[0]);
        close(pe[1]);
        execve(cmd.path, cmd.argv, envp);
        _exit(127);
    }
    command_free(&cmd);
    free_strv(envp);
    children_track(pid, jobsd_bin());
    close(po[1]);
    close(pe[1]);
    char *bufs[2] = {NULL, NULL};
    size_t lens[2] = {0, 0};
    int fds[2] = {po[0], pe[0]};
    bool open_[2] = {true, true};
    long long poll_ms = 120000 * t_scale();
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
        if (poll(pfd, k, (int)poll_ms) <= 0)
            break;
        for (nfds_t j = 0; j < k; j++) {
            if (!(pfd[j].revents & (POLLIN | POLLHUP | POLLERR)))
                continue;
            int i = which[j];
            if (!read_some(fds[i], &bufs[i], &lens[i]))
                open_[i] = false;
        }
    }
    close(po[0]);
    close(pe[0]);
    int status = 0;
    waitpid(pid, &status, 0);
    children_forget(pid);
    for (int i = 0; i < 2; i++)
        if (!bufs[i])
            bufs[i] = xstrdup("");
    if (out)
        *out = bufs[0];
    else
        free(bufs[0]);
    if (err)
        *err = bufs[1];
    else
        free(bufs[1]);
    int code = tu_exit_code(status);
    if (code == 99)
        print_valgrind_log(pid);
    return code;
}

int jobsd_setup_one(struct testdb *db, struct jobsd_proc *p, const char *prefix)
{
    testdb_create(db, prefix);
    return jobsd_start(p, db->url, NULL) ? 0 : -1;
}

int jobsd_teardown_one(struct testdb *db, struct jobsd_proc *p)
{
    int rc = jobsd_stop(p, 20000);
    testdb_drop(db);
    return rc == 0 ? 0 : -1;
}
