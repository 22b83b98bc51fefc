/* testsupport: what unit, integration and end-to-end tests share.
 *  - testdb_*: a fresh, migrated database per test program on the private cluster whose
 *    admin URL scripts/test.sh exports as JOBSD_TEST_PG_URL (a missing variable fails the
 *    test: integration tests never mock PostgreSQL and never skip).
 *  - jobsd_*: a real jobsd process (JOBSD_BIN) on a free port, its log captured in a file.
 *  - th_*: a raw HTTP/1.1 client over a socket, so tests control every byte sent.
 *  - fx_*: fixtures (tenants, listings, orders, visits).
 *  - pgc_*: a private PostgreSQL cluster (scripts/pg.sh) for tests that stop, restart or kill
 *    the database (never the shared cluster: other test programs run against it).
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
 *  - JOBSD_TEST_PIDDIR=DIR: every process started here is recorded as DIR/<pid> (its file
 *    holds the executable's path) while it runs, so the script can end what a crashed test
 *    program left behind. */
#ifndef JOBSD_TESTSUPPORT_H
#define JOBSD_TESTSUPPORT_H

#include <jansson.h>
#include <libpq-fe.h>
#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

/* ------------------------------------------------------------------ database */
struct testdb {
    char name[64];
    char url[512];
    PGconn *conn;    /* a connection to it, for assertions */
    char admin[512]; /* the admin URL it was created with ("" = JOBSD_TEST_PG_URL) */
};
/* Creates and migrates a database named after prefix; aborts the test run on failure. */
void testdb_create(struct testdb *db, const char *prefix);
/* The same on another cluster (admin_url: a superuser URL of its `postgres` database). */
void testdb_create_at(struct testdb *db, const char *admin_url, const char *prefix);
void testdb_drop(struct testdb *db);
/* Re-opens db->conn after the server went away (a restart); false when it cannot. */
bool testdb_reconnect(struct testdb *db);
/* Runs SQL (no parameters) and aborts on failure. */
void tdb_exec(PGconn *c, const char *sql);
/* printf-style SQL, result expected to be one value: returns a malloc'ed copy (NULL for SQL
 * NULL). Aborts on error. */
char *tdb_value(PGconn *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
long long tdb_int(PGconn *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* printf-style SQL without a result; aborts on error. */
void tdb_execf(PGconn *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* The admin URL (JOBSD_TEST_PG_URL). */
const char *testdb_admin_url(void);

/* ------------------------------------------------------------------ jobsd process */
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

/* ------------------------------------------------------------------ raw HTTP */
struct th_response {
    int status;    /* 0 = no response (connection closed) */
    char *headers; /* raw header block */
    char *body;
    size_t body_len;
    json_t *json;   /* parsed body when it is JSON */
    bool timed_out; /* th_raw_ex: no answer and no close before the timeout */
};
/* Sends raw bytes, reads one response (Content-Length / chunked / close), timeout in ms. */
bool th_raw(unsigned port, const char *data, size_t len, struct th_response *r,
            long long timeout_ms);
/* th_raw with options: TH_HALF_CLOSE shuts the sending side down once everything is sent (the
 * server sees end of input: truncated requests), TH_TRICKLE sends in pieces of 1-16 bytes a
 * millisecond apart (a slow client). On false, r->timed_out tells a silent server (nothing
 * before the timeout) from a closed connection. */
#define TH_HALF_CLOSE 1u
#define TH_TRICKLE    2u
bool th_raw_ex(unsigned port, const char *data, size_t len, unsigned flags, struct th_response *r,
               long long timeout_ms);
/* A request built from parts: extra_headers is "Name: value\r\n..." (may be NULL); body may
 * be NULL. Adds Host, Connection: close and Content-Length (when body is not NULL). */
bool th_request(unsigned port, const char *method, const char *path, const char *extra_headers,
                const char *body, struct th_response *r);
/* POST JSON with X-Internal-Key (key may be NULL) and optional extra headers. */
bool th_post_job(unsigned port, const char *path, const char *key, const char *body,
                 const char *extra_headers, struct th_response *r);
/* First value of a response header (case-insensitive), malloc'ed, or NULL. */
char *th_header(const struct th_response *r, const char *name);
void th_free(struct th_response *r);
/* error.code of an error body, or "". */
const char *th_error_code(const struct th_response *r);

/* ------------------------------------------------------------------ fake Mercado Livre */
struct fake_ml {
    pid_t pid;
    unsigned port;
    char url[64]; /* http://127.0.0.1:PORT */
};
/* Starts tests/fake_ml (FAKE_ML_BIN) with a scenario file (a name under FAKE_ML_SCENARIOS, or
 * a path) and extra arguments (NULL-terminated, e.g. "--latency-ms", "20"). */
bool fake_ml_start(struct fake_ml *f, const char *scenario, const char *const *args);
void fake_ml_stop(struct fake_ml *f);
/* GET/POST/DELETE on the fake's control API; the parsed JSON answer (new ref) or NULL. */
json_t *fake_ml_get(const struct fake_ml *f, const char *path);
json_t *fake_ml_post(const struct fake_ml *f, const char *path, const char *json_body);
int fake_ml_delete(const struct fake_ml *f, const char *path);
/* A counter of GET /__fake/stats by dotted path ("max_in_flight", "requests.visits"). */
long long fake_ml_stat(const struct fake_ml *f, const char *dotted);

/* ------------------------------------------------------------------ fixtures */
/* Inserts a tenant with a fixed id. */
void fx_tenant(PGconn *c, const char *id);
/* Inserts a listing (status e.g. "active"/"deleted"); returns its id (static buffer rotates
 * among 8 slots). */
const char *fx_listing(PGconn *c, const char *tenant, const char *external_id, const char *status);
/* Inserts an order at ordered_at (timestamptz text) with status; returns its id. */
const char *fx_order(PGconn *c, const char *tenant, long long external_id, const char *status,
                     const char *ordered_at);
void fx_item(PGconn *c, const char *tenant, const char *order_id, const char *listing_id,
             int quantity, const char *unit_price);
void fx_visits(PGconn *c, const char *tenant, const char *listing_id, const char *date, int visits);

/* ------------------------------------------------------------------ private clusters */
struct pgcluster {
    char dir[512];
    char url[600]; /* admin URL (superuser, database `postgres`) */
    unsigned port;
};
/* A new private cluster under TMPDIR (scripts/pg.sh start --durable, JOBSD_SOURCE_DIR):
 * durable, so that an immediate stop loses no commit. */
bool pgc_start(struct pgcluster *c);
/* Stops it with mode "fast" or "immediate" (pg_ctl -m); the files stay. */
bool pgc_stop(struct pgcluster *c, const char *mode);
/* Starts it again on the same port (after pgc_stop); returns when it accepts connections. */
bool pgc_resume(struct pgcluster *c);
/* Stops it (if running) and removes its directory. */
void pgc_destroy(struct pgcluster *c);

/* ------------------------------------------------------------------ misc */
long long t_now_ms(void);
/* The factor waits are scaled by: JOBSD_TEST_TIMEOUT_SCALE, else 10 under JOBSD_VALGRIND,
 * else 1. The harness applies it to jobsd start-up, jobsd_stop, th_raw and t_wait_until. */
long long t_scale(void);
/* Sleeps (for pacing and random moments, never for synchronisation). */
void t_sleep_ms(long long ms);
/* Polls cond(ctx) every 20 ms until true or timeout; returns its last value. */
bool t_wait_until(bool (*cond)(void *ctx), void *ctx, long long timeout_ms);

#endif
