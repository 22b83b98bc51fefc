/* testproc: the processes a test starts. A real jobsd (JOBSD_BIN) serving on a free port with
 * its log captured in a file, or run to completion as a CLI; under valgrind when the run asks
 * for it; and the bookkeeping that makes sure no child outlives its test program.
 *
 * Switches read from the environment (scripts/test.sh sets them):
 *  - JOBSD_VALGRIND=1: every jobsd (jobsd_start, jobsd_run) runs under valgrind memcheck
 *    (--leak-check=full, definite and indirect leaks are errors, --error-exitcode=99); its
 *    report goes to TMPDIR/valgrind-<pid>.log (printed when jobsd exits non-zero). Waits are
 *    scaled by t_scale().
 *  - JOBSD_TEST_PGBOUNCER_PORT=N: jobsd (jobsd_start, and DATABASE_URL= in jobsd_run's env)
 *    is given, instead of a URL of the shared cluster (the host and port of
 *    JOBSD_TEST_PG_URL), the same URL through the PgBouncer listening on 127.0.0.1:N. The
 *    test itself keeps talking to PostgreSQL directly. URLs of other clusters are unchanged.
 *  - JOBSD_TEST_PIDDIR=DIR: every process started here (and by testfake) is recorded as
 *    DIR/<pid> (its file holds the executable's path) while it runs, so the script can end
 *    what a crashed test program left behind. */
#ifndef JOBSD_TESTPROC_H
#define JOBSD_TESTPROC_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#define TEST_KEY          "test-internal-key-0123456789abcdef-0123456789"
#define TEST_KEY_PREVIOUS "previous-internal-key-0123456789abcdef-012345"

/* The children (jobsd, the fake) a test starts are tracked until stopped; whatever is left
 * when the program exits is killed. A failed assertion leaves a test before its stop calls:
 * a test's teardown calls children_kill_since(the mark its setup took) so its daemons do not
 * run on into the next test (another instance would take that test's jobs). A child that must
 * outlive the test that started it (a group's instance, restarted) is exempted by
 * children_keep. */
unsigned long long children_mark(void);
void children_kill_since(unsigned long long mark);
void children_keep(pid_t pid);
/* Starts tracking a child that runs exe (and records its pid file); children_forget when it
 * has been reaped. For the process starters of the other support modules. */
void children_track(pid_t pid, const char *exe);
void children_forget(pid_t pid);

struct jobsd_proc {
    pid_t pid;
    unsigned port;
    char log_path[256];
};
/* Starts `jobsd serve` against db_url with PORT=0, INTERNAL_JOBS_KEY=TEST_KEY,
 * JOB_LEASE_SECONDS=3, plus env (NULL-terminated "NAME=value" list, may override). Waits
 * until it listens. Returns false when it did not start (its log is printed). */
bool jobsd_start(struct jobsd_proc *p, const char *db_url, const char *const *env);
/* SIGTERM and wait up to timeout_ms; returns the exit status (or -1 on timeout, after a
 * SIGKILL). */
int jobsd_stop(struct jobsd_proc *p, long long timeout_ms);
void jobsd_kill9(struct jobsd_proc *p);
/* Sends a signal to a running jobsd (no wait). */
void jobsd_signal(const struct jobsd_proc *p, int sig);
/* Waits up to timeout_ms for jobsd to exit: its exit code (128 + signal when killed), or -1
 * when it is still running (it is left running). Not scaled by t_scale(). */
int jobsd_wait(struct jobsd_proc *p, long long timeout_ms);
/* Is the process still running (not exited)? */
bool jobsd_running(struct jobsd_proc *p);
/* The URL jobsd is given for db_url (through PgBouncer when JOBSD_TEST_PGBOUNCER_PORT is set
 * and db_url names the shared cluster; else db_url itself). Returns out. */
const char *jobsd_db_url(const char *db_url, char *out, size_t cap);
/* Does the log contain this text? */
bool jobsd_log_contains(const struct jobsd_proc *p, const char *text);
/* Runs `jobsd ARGS...` to completion with env; captures stdout/stderr (malloc'ed, may be
 * NULL). Returns the exit code. */
int jobsd_run(const char *const *argv, const char *const *env, char **out, char **err);
const char *jobsd_bin(void);

struct testdb;
/* The common group fixture: a fresh database named after prefix and one jobsd on it with the
 * defaults. 0, or -1 when jobsd does not start (cmocka's group setup convention). */
int jobsd_setup_one(struct testdb *db, struct jobsd_proc *p, const char *prefix);
/* Its end: jobsd stopped, the database dropped. 0, or -1 when jobsd did not stop cleanly. */
int jobsd_teardown_one(struct testdb *db, struct jobsd_proc *p);

#endif
