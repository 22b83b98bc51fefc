/* testsupport: what unit, integration and end-to-end tests share.
 *  - testdb_*: a fresh, migrated database per test program on the private cluster whose
 *    admin URL scripts/test.sh exports as JOBSD_TEST_PG_URL (a missing variable fails the
 *    test: integration tests never mock PostgreSQL and never skip).
 *  - jobsd_*: a real jobsd process (JOBSD_BIN) on a free port, its log captured in a file.
 *  - th_*: a raw HTTP/1.1 client over a socket, so tests control every byte sent.
 *  - fx_*: fixtures (tenants, listings, orders, visits). */
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
    PGconn *conn; /* a connection to it, for assertions */
};
/* Creates and migrates a database named after prefix; aborts the test run on failure. */
void testdb_create(struct testdb *db, const char *prefix);
void testdb_drop(struct testdb *db);
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
    json_t *json; /* parsed body when it is JSON */
};
/* Sends raw bytes, reads one response (Content-Length / chunked / close), timeout in ms. */
bool th_raw(unsigned port, const char *data, size_t len, struct th_response *r,
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

/* ------------------------------------------------------------------ misc */
long long t_now_ms(void);
/* Polls cond(ctx) every 20 ms until true or timeout; returns its last value. */
bool t_wait_until(bool (*cond)(void *ctx), void *ctx, long long timeout_ms);

#endif
