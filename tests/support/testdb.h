/* testdb: a fresh, migrated database per test program on the private cluster whose admin URL
 * scripts/test.sh exports as JOBSD_TEST_PG_URL (a missing variable fails the test:
 * integration tests never mock PostgreSQL and never skip), and the few SQL helpers tests
 * assert with. Every failure aborts the program with the SQL and the server's message. */
#ifndef JOBSD_TESTDB_H
#define JOBSD_TESTDB_H

#include <libpq-fe.h>
#include <pthread.h>
#include <stdbool.h>

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
/* The admin URL (JOBSD_TEST_PG_URL). */
const char *testdb_admin_url(void);

/* Runs SQL (no parameters) and aborts on failure. */
void tdb_exec(PGconn *c, const char *sql);
/* printf-style SQL, result expected to be one value: returns a malloc'ed copy (NULL for SQL
 * NULL). Aborts on error. */
char *tdb_value(PGconn *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* The same, the value an integer (SQL NULL aborts). */
long long tdb_int(PGconn *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* printf-style SQL without a result; aborts on error. */
void tdb_execf(PGconn *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Polls the printf-style SQL (one integer value) until it is above 0, failing the test
 * (cmocka) with the SQL when timeout_ms passes first. */
void tdb_wait(PGconn *c, long long timeout_ms, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* The most fleet children (job_logs rows running with a parent_id) seen running at once,
 * sampled every period_ms on a connection of its own between tdb_sampler_start and
 * tdb_sampler_stop (FLEET_MAX_RUNNING tests). */
struct tdb_sampler {
    pthread_t thread;
    volatile int stop;
    long long max;
    long long period_ms;
    const char *url; /* borrowed until tdb_sampler_stop */
};
void tdb_sampler_start(struct tdb_sampler *s, const char *url, long long period_ms);
/* Stops the sampling; returns s->max. */
long long tdb_sampler_stop(struct tdb_sampler *s);

#endif
