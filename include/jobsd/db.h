/* db: PostgreSQL access (libpq). A pool hands out one PGconn to one thread at a time; helpers
 * run parameterised statements and turn failures into SPEC error codes (503
 * database_unavailable / timeout for transient failures, 500 otherwise). No session state is
 * relied upon (transaction poolers): timeouts are SET LOCAL inside each transaction. */
#ifndef JOBSD_DB_H
#define JOBSD_DB_H

#include <libpq-fe.h>
#include <stdbool.h>
#include <stddef.h>

#include "jobsd/err.h"

struct db_pool;

/* Is the URL usable as a libpq connection string? Besides PQconninfoParse, checks what libpq
 * checks only while connecting (port, the integer options). -1 + e (400 invalid_config). */
MUSTCHECK int db_check_url(const char *url, struct err *e);

/* One new connection with jobsd's defaults added to the URL (connect_timeout, keepalives,
 * tcp_user_timeout, application_name) unless the URL sets them. NULL + e on failure: 400
 * invalid_config when a retry cannot help (the URL does not parse; the server refused the
 * password, the role or the database: SQLSTATE 28P01, 28000, 3D000), else 503
 * database_unavailable. */
MUSTCHECK PGconn *db_connect(const char *url, struct err *e);
/* The same, given up within 100 ms once *stop (may be NULL) becomes non-zero: 503
 * interrupted. An attempt lasts at most connect_timeout. A URL with several hosts uses
 * libpq's blocking connect instead (per-host timeouts, failover): not interruptible, and
 * refusals by the server are not told apart from an outage there. */
MUSTCHECK PGconn *db_connect_ex(const char *url, const volatile int *stop, struct err *e);

/* A pool of at most `size` connections, opened lazily. */
struct db_pool *db_pool_new(const char *url, size_t size);
void db_pool_free(struct db_pool *p);
/* Borrows a connection, waiting up to wait_ms for one to be free. NULL + e (503) on failure
 * (a refused DATABASE_URL included: the request itself is not at fault). */
MUSTCHECK PGconn *db_pool_acquire(struct db_pool *p, long long wait_ms, struct err *e);
/* Gives a connection back; a broken one or one left inside a transaction that cannot be
 * rolled back is closed. */
void db_pool_release(struct db_pool *p, PGconn *c);
void db_pool_stats(struct db_pool *p, size_t *in_use, size_t *idle, unsigned long long *waits);

/* Runs one parameterised statement (text parameters, NULL = SQL NULL). Returns the result
 * (caller PQclear) for COMMAND_OK / TUPLES_OK, else NULL with e filled. */
MUSTCHECK PGresult *db_query(PGconn *c, const char *sql, int nparams, const char *const *params,
                             struct err *e);
/* Runs a statement and discards its result. */
MUSTCHECK int db_exec(PGconn *c, const char *sql, int nparams, const char *const *params,
                      struct err *e);
/* Runs trusted, parameterless SQL (several statements allowed: simple query protocol). Only
 * for SQL compiled into the binary. */
MUSTCHECK int db_exec_script(PGconn *c, const char *sql, struct err *e);
/* BEGIN with SET LOCAL statement_timeout and lock_timeout (one round trip). */
MUSTCHECK int db_begin(PGconn *c, long long timeout_ms, struct err *e);
MUSTCHECK int db_commit(PGconn *c, struct err *e);
/* Best effort; never fails loudly. */
void db_rollback(PGconn *c);

/* A transaction sent without waiting (libpq pipeline mode): BEGIN, SET LOCAL timeouts, the
 * statements, COMMIT. The server runs it while the caller does other work; db_tx_wait
 * collects it. Nothing else may use the connection in between. */
struct db_stmt {
    const char *sql;
    int nparams;
    const char *const *params; /* copied into libpq's buffer by db_tx_send */
};
MUSTCHECK int db_tx_send(PGconn *c, long long timeout_ms, const struct db_stmt *stmts, size_t n,
                         struct err *e);
/* Waits for the transaction of db_tx_send; res[i] (may be NULL) receives statement i's result
 * (caller PQclear). On failure everything was rolled back and e says why. */
MUSTCHECK int db_tx_wait(PGconn *c, size_t n, PGresult **res, struct err *e);

/* One read-only statement in its own transaction bounded by timeout_ms (statement and lock
 * timeouts), in one round trip (db_tx_send + db_tx_wait). timeout_ms <= 0: the statement
 * alone, in whatever transaction the connection is in (tests). Result as db_query's. */
MUSTCHECK PGresult *db_read(PGconn *c, long long timeout_ms, const char *sql, int nparams,
                            const char *const *params, struct err *e);

/* Fills e from a failed result (or the connection when res is NULL). */
void db_classify(PGconn *c, const PGresult *res, struct err *e);
/* Is the connection unusable (broken, must be dropped)? */
bool db_is_broken(PGconn *c);

/* "{a,b,c}" array literal for a uuid[]/text[] parameter, every element quoted and escaped.
 * Caller frees; NULL only past 16 MiB. */
char *db_array_literal(const char *const *items, size_t n);

/* libpq's version number (PQlibVersion), for `jobsd version`. */
int db_library_version(void);

/* The URL for display: password removed. Caller frees. */
char *db_redact_url(const char *url);

#endif
