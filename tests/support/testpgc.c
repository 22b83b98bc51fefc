/* testpgc: see testpgc.h. */
#include "testpgc.h"
#include "testutil.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

/* Runs a command (argv[0] a path; at most 7 arguments) to completion, its output going to our
 * stderr; returns its exit code. */
static int run_cmd(const char *const *argv)
{
    char *args[8];
    size_t n = 0;
    for (; argv[n]; n++) {
        if (n == 7)
            tu_die("run_cmd: too many arguments");
        if (!(args[n] = strdup(argv[n])))
            tu_die("out of memory");
    }
    args[n] = NULL;
    pid_t pid = fork();
    if (pid < 0)
        tu_die("fork: %s", strerror(errno));
    if (pid == 0) {
        dup2(STDERR_FILENO, STDOUT_FILENO);
        execv(args[0], args);
        _exit(127);
    }
    for (size_t i = 0; i < n; i++)
        free(args[i]);
    int status = 0;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
        ;
    return tu_exit_code(status);
}

static void pg_script(char *out, size_t cap)
{
    const char *src = getenv("JOBSD_SOURCE_DIR");
    if (!src || !*src)
        tu_die("JOBSD_SOURCE_DIR is not set (ctest sets it)");
    snprintf(out, cap, "%s/scripts/pg.sh", src);
}

static bool read_env(struct pgcluster *c)
{
    char path[600];
    snprintf(path, sizeof path, "%s/env", c->dir);
    char *env = tu_read_file(path);
    const char *p = strstr(env, "PGPORT=");
    unsigned long port = p ? strtoul(p + 7, NULL, 10) : 0;
    free(env);
    if (port == 0 || port > 65535)
        return false;
    c->port = (unsigned)port;
    snprintf(c->url, sizeof c->url, "postgresql://postgres@127.0.0.1:%u/postgres", c->port);
    return true;
}

bool pgc_start(struct pgcluster *c)
{
    memset(c, 0, sizeof *c);
    snprintf(c->dir, sizeof c->dir, "%s/jobsd-pgc-XXXXXX", tu_tmp_dir());
    if (!mkdtemp(c->dir))
        tu_die("mkdtemp: %s", strerror(errno));
    chmod(c->dir, 0755);
    char script[600];
    pg_script(script, sizeof script);
    /* Durable (fsync, synchronous_commit): an immediate stop is a crash, and a commit a
     * client was told about must survive it. */
    const char *argv[] = {script, "start", c->dir, "--durable", NULL};
    if (run_cmd(argv) != 0 || !read_env(c)) {
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
    if (run_cmd(argv) != 0 || !read_env(c))
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
