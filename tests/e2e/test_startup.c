/* End-to-end: `jobsd serve` waiting for its database at start-up, and configuration errors
 * told apart from a database that is down (SPEC section 5: exit 2 configuration, 3 transient).
 *  - SIGTERM while serve waits (nobody listens on the port; a listener that never answers)
 *    stops it within a second, exit 0;
 *  - DATABASE_WAIT_SECONDS bounds the wait: exit 3 when the database never came;
 *  - a DATABASE_URL that does not parse (port=notaport, postgresql://h:notaport/), a missing
 *    database (3D000), a missing role (28000) and a wrong password (28P01, on a private
 *    cluster with password authentication for one role) exit 2 at once, from serve (no retry
 *    loop) and from the CLI; check-config refuses the unparseable URLs. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "testdb.h"
#include "testgroup.h"
#include "testpgc.h"
#include "testproc.h"
#include "testtime.h"
#include "testutil.h"

static struct testdb db;
static struct pgcluster pwc; /* password authentication for the role pwuser */
static bool pwc_up;

/* ---------------------------------------------------------------- helpers */

/* A TCP port of 127.0.0.1 that nobody listens on (bound, then released). */
static unsigned free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa;
    memset(&sa, 0, sizeof sa);
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof sa;
    if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof sa) != 0 ||
        getsockname(fd, (struct sockaddr *)&sa, &len) != 0)
        tu_die("free_port: %s", strerror(errno));
    close(fd);
    return ntohs(sa.sin_port);
}

/* A listener that never accepts nor answers: the kernel completes the handshake, the
 * PostgreSQL start-up packet is never answered (a hung server, a black hole). */
static int blackhole(unsigned *port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa;
    memset(&sa, 0, sizeof sa);
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof sa;
    if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof sa) != 0 || listen(fd, 16) != 0 ||
        getsockname(fd, (struct sockaddr *)&sa, &len) != 0)
        tu_die("blackhole: %s", strerror(errno));
    *port = ntohs(sa.sin_port);
    return fd;
}

struct serve {
    pid_t pid;
    char log[256];
};

/* Starts `jobsd serve` with url and extra (NULL-terminated "NAME=value") without waiting for
 * it to listen (it may never). */
static void serve_spawn(struct serve *s, const char *url, const char *const *extra)
{
    snprintf(s->log, sizeof s->log, "%s/jobsd-startup-XXXXXX", tu_tmp_dir());
    int fd = mkstemp(s->log);
    if (fd < 0)
        tu_die("mkstemp: %s", strerror(errno));
    char dburl[700];
    snprintf(dburl, sizeof dburl, "DATABASE_URL=%s", url);
    char *env[32];
    size_t n = 0;
    static const char *const inherit[] = {"PATH", "TMPDIR", "ASAN_OPTIONS", "LSAN_OPTIONS",
                                          "UBSAN_OPTIONS"};
    char inherited[5][1024];
    for (size_t i = 0; i < 5; i++) {
        const char *v = getenv(inherit[i]);
        if (v) {
            snprintf(inherited[i], sizeof inherited[i], "%s=%s", inherit[i], v);
            env[n++] = inherited[i];
        }
    }
    env[n++] = dburl;
    env[n++] = (char *)"INTERNAL_JOBS_KEY=" TEST_KEY;
    env[n++] = (char *)"PORT=0";
    env[n++] = (char *)"BIND_ADDRESS=127.0.0.1";
    char extras[8][256];
    for (size_t i = 0; extra && extra[i] && i < 8; i++) {
        snprintf(extras[i], sizeof extras[i], "%s", extra[i]);
        env[n++] = extras[i];
    }
    env[n] = NULL;
    char *argv[] = {(char *)"jobsd", (char *)"serve", NULL};
    pid_t pid = fork();
    if (pid < 0)
        tu_die("fork: %s", strerror(errno));
    if (pid == 0) {
        dup2(fd, STDOUT_FILENO);
        dup2(fd, STDERR_FILENO);
        close(fd);
        execve(jobsd_bin(), argv, env);
        _exit(127);
    }
    close(fd);
    children_track(pid, jobsd_bin());
    s->pid = pid;
}

/* Waits up to timeout_ms for the exit: its code, or -1 (then it is killed). *took: how long. */
static int serve_wait(struct serve *s, long long timeout_ms, long long *took)
{
    long long t0 = t_now_ms();
    for (;;) {
        int status;
        if (waitpid(s->pid, &status, WNOHANG) == s->pid) {
            children_forget(s->pid);
            *took = t_now_ms() - t0;
            return tu_exit_code(status);
        }
        if (t_now_ms() - t0 > timeout_ms) {
            kill(s->pid, SIGKILL);
            waitpid(s->pid, NULL, 0);
            children_forget(s->pid);
            *took = t_now_ms() - t0;
            char *log = tu_read_file(s->log);
            print_error("jobsd still running after %lld ms; its log:\n%s\n", timeout_ms, log);
            free(log);
            return -1;
        }
        t_sleep_ms(10);
    }
}

static bool serve_log_has(const struct serve *s, const char *text)
{
    char *log = tu_read_file(s->log);
    bool has = strstr(log, text) != NULL;
    free(log);
    return has;
}

/* SIGTERM a serve that has been waiting for its database for a second: it must be gone
 * within 1.5 s, exit 0. */
static void sigterm_while_waiting(const char *url)
{
    struct serve s;
    serve_spawn(&s, url, NULL);
    t_sleep_ms(1000);
    if (waitpid(s.pid, NULL, WNOHANG) != 0) {
        char *log = tu_read_file(s.log);
        fail_msg("jobsd serve exited before the signal; its log:\n%s", log);
    }
    kill(s.pid, SIGTERM);
    long long took;
    int code = serve_wait(&s, 1500, &took);
    print_message("exit %d %lld ms after SIGTERM\n", code, took);
    assert_int_equal(code, 0);
    assert_true(took <= 1500);
    assert_true(serve_log_has(&s, "stopped by a signal during start-up"));
    unlink(s.log);
}

/* serve with url must exit with want within max_ms (a configuration error: no retry loop). */
static void serve_exits(const char *url, const char *const *extra, int want, long long max_ms,
                        const char *log_text)
{
    struct serve s;
    serve_spawn(&s, url, extra);
    long long took;
    int code = serve_wait(&s, max_ms, &took);
    char *log = tu_read_file(s.log);
    print_message("exit %d after %lld ms\n", code, took);
    char why[4096] = "";
    if (code != want || (log_text && !strstr(log, log_text)) || strstr(log, "a-wrong-password"))
        snprintf(why, sizeof why,
                 "serve: exit %d after %lld ms, want %d (log must say \"%s\"); its log:\n%s", code,
                 took, want, log_text ? log_text : "", log);
    free(log);
    unlink(s.log);
    if (why[0])
        fail_msg("%s", why);
}

/* The CLI with DATABASE_URL=url: exit code want, stderr naming what is wrong. */
static void cli_exits(const char *cmd, const char *url, int want, const char *err_text)
{
    char env_url[700];
    snprintf(env_url, sizeof env_url, "DATABASE_URL=%s", url);
    const char *env[] = {env_url, "INTERNAL_JOBS_KEY=" TEST_KEY, NULL};
    const char *argv[] = {cmd, NULL};
    char *out = NULL, *err = NULL;
    int code = jobsd_run(argv, env, &out, &err);
    char why[2048] = "";
    if (code != want || (err_text && (!err || !strstr(err, err_text))))
        snprintf(why, sizeof why,
                 "jobsd %s with DATABASE_URL=%s: exit %d, want %d (stderr must say \"%s\"): %s",
                 cmd, url, code, want, err_text ? err_text : "", err ? err : "");
    free(out);
    free(err);
    if (why[0])
        fail_msg("%s", why);
}

/* A conninfo of db.url's cluster naming another database or user. In keyword/value form:
 * the PgBouncer stage of scripts/test.sh reroutes only URLs of the shared cluster, and a
 * PgBouncer answers the login itself (the server's refusal would come at the first query). */
static void url_with(char *out, size_t cap, const char *user, const char *dbname)
{
    const char *host = strchr(db.url, '@');
    host = host ? host + 1 : db.url + strlen("postgresql://");
    size_t hlen = strcspn(host, ":/?");
    unsigned port = host[hlen] == ':' ? (unsigned)strtoul(host + hlen + 1, NULL, 10) : 5432;
    snprintf(out, cap, "host=%.*s port=%u user=%s dbname=%s", (int)hlen, host, port, user, dbname);
}

/* ---------------------------------------------------------------- the group */

static int setup(void **state)
{
    (void)state;
    testdb_create(&db, "startup");
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    testdb_drop(&db);
    if (pwc_up)
        pgc_destroy(&pwc);
    return 0;
}

/* ---------------------------------------------------------------- tests */

static void test_sigterm_while_database_refuses(void **state)
{
    (void)state;
    char url[128];
    snprintf(url, sizeof url, "postgresql://postgres@127.0.0.1:%u/postgres", free_port());
    sigterm_while_waiting(url);
}

static void test_sigterm_while_database_hangs(void **state)
{
    (void)state;
    unsigned port;
    int fd = blackhole(&port);
    char url[128];
    snprintf(url, sizeof url, "postgresql://postgres@127.0.0.1:%u/postgres", port);
    sigterm_while_waiting(url);
    close(fd);
}

static void test_database_never_came_exit_3(void **state)
{
    (void)state;
    char url[128];
    snprintf(url, sizeof url, "postgresql://postgres@127.0.0.1:%u/postgres", free_port());
    const char *env[] = {"DATABASE_WAIT_SECONDS=2", NULL};
    long long t0 = t_now_ms();
    serve_exits(url, env, 3, 8000, "database unreachable");
    assert_true(t_now_ms() - t0 >= 1900); /* it did wait */
    const char *bad[] = {"DATABASE_WAIT_SECONDS=soon", NULL};
    serve_exits(url, bad, 2, 8000, "DATABASE_WAIT_SECONDS");
}

static void test_configuration_errors_exit_2(void **state)
{
    (void)state;
    char missing_db[700], missing_role[700];
    url_with(missing_db, sizeof missing_db, "postgres", "no_such_database_here");
    url_with(missing_role, sizeof missing_role, "no_such_role_here", "postgres");
    static const char *const unparseable[] = {"port=notaport", "postgresql://127.0.0.1:notaport/",
                                              "host=127.0.0.1 port=1,2,3",
                                              "postgresql://127.0.0.1:5432/x?sslmode"};
    for (size_t i = 0; i < sizeof unparseable / sizeof unparseable[0]; i++) {
        cli_exits("check-config", unparseable[i], 2, "DATABASE_URL");
        cli_exits("migrate", unparseable[i], 2, "DATABASE_URL");
        serve_exits(unparseable[i], NULL, 2, 5000, "DATABASE_URL");
    }
    cli_exits("check-config", db.url, 0, "configuration valid");
    cli_exits("migrate", missing_db, 2, "does not exist");
    cli_exits("migrate", missing_role, 2, "does not exist");
    serve_exits(missing_db, NULL, 2, 5000, "bad configuration");
    serve_exits(missing_role, NULL, 2, 5000, "bad configuration");
    /* Nobody listening stays transient. */
    char down[128];
    snprintf(down, sizeof down, "postgresql://postgres@127.0.0.1:%u/postgres", free_port());
    cli_exits("migrate", down, 3, "database unavailable");
}

/* A private cluster where the role pwuser authenticates with a password (the shared one
 * trusts every local connection). */
static void test_wrong_password_exit_2(void **state)
{
    (void)state;
    assert_true(pgc_start(&pwc));
    pwc_up = true;
    PGconn *c = PQconnectdb(pwc.url);
    assert_int_equal(PQstatus(c), CONNECTION_OK);
    tdb_exec(c, "CREATE ROLE pwuser LOGIN PASSWORD 'the-right-password'");
    char *hba = tdb_value(c, "SELECT current_setting('hba_file')");
    char sql[1024];
    snprintf(sql, sizeof sql,
             "COPY (VALUES ('local all all trust'), "
             "('host all pwuser 127.0.0.1/32 scram-sha-256'), "
             "('host all all 127.0.0.1/32 trust'), ('host all all ::1/128 trust')) TO '%s'",
             hba);
    free(hba);
    tdb_exec(c, sql);
    char *ok = tdb_value(c, "SELECT pg_reload_conf()::text");
    assert_string_equal(ok, "true");
    free(ok);
    PQfinish(c);
    char right[256], wrong[256], none[256];
    snprintf(right, sizeof right, "postgresql://pwuser:the-right-password@127.0.0.1:%u/postgres",
             pwc.port);
    snprintf(wrong, sizeof wrong, "postgresql://pwuser:a-wrong-password@127.0.0.1:%u/postgres",
             pwc.port);
    snprintf(none, sizeof none, "postgresql://pwuser@127.0.0.1:%u/postgres", pwc.port);
    /* The rule is in force: the right password gets in (migrate --status: 0 or 1). */
    const char *st[] = {"migrate", "--status", NULL};
    char env_url[300];
    snprintf(env_url, sizeof env_url, "DATABASE_URL=%s", right);
    const char *env[] = {env_url, NULL};
    char *out = NULL, *err = NULL;
    int code = jobsd_run(st, env, &out, &err);
    if (code == 2 || code == 3)
        fail_msg("migrate --status with the right password: exit %d: %s", code, err ? err : "");
    free(out);
    free(err);
    cli_exits("migrate", wrong, 2, "password authentication failed");
    cli_exits("migrate", none, 2, "DATABASE_URL");
    serve_exits(wrong, NULL, 2, 5000, "password authentication failed");
}

/* A URL with two hosts, the first hung: libpq's failover still reaches the second after the
 * first's connect_timeout (an asynchronous connect cannot be told to move on). */
static void test_failover_past_a_hung_host(void **state)
{
    (void)state;
    unsigned hung;
    int fd = blackhole(&hung);
    char real[700], url[800];
    url_with(real, sizeof real, "postgres", db.name);
    /* url_with's "host=H port=P ..." with a hung host first. */
    const char *host = strstr(real, "host=") + 5;
    const char *port = strstr(real, " port=") + 6;
    snprintf(url, sizeof url, "host=127.0.0.1,%.*s port=%u,%s connect_timeout=2",
             (int)strcspn(host, " "), host, hung, port);
    char env_url[900];
    snprintf(env_url, sizeof env_url, "DATABASE_URL=%s", url);
    const char *env[] = {env_url, NULL};
    const char *argv[] = {"migrate", "--status", NULL};
    char *out = NULL, *err = NULL;
    long long t0 = t_now_ms();
    int code = jobsd_run(argv, env, &out, &err);
    long long took = t_now_ms() - t0;
    print_message("migrate --status through a hung first host: exit %d after %lld ms\n", code,
                  took);
    char why[1024] = "";
    if (code != 0)
        snprintf(why, sizeof why, "exit %d: %s", code, err ? err : "");
    free(out);
    free(err);
    close(fd);
    if (why[0])
        fail_msg("%s", why);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sigterm_while_database_refuses),
        cmocka_unit_test(test_sigterm_while_database_hangs),
        cmocka_unit_test(test_database_never_came_exit_3),
        cmocka_unit_test(test_configuration_errors_exit_2),
        cmocka_unit_test(test_wrong_password_exit_2),
        cmocka_unit_test(test_failover_past_a_hung_host),
    };
    return tgroup_run("startup", tests, setup, teardown);
}
