/* testdb: see testdb.h. */
#include "testdb.h"
#include "testtime.h"
#include "testutil.h"

#include "jobsd/err.h"
#include "jobsd/migrate.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

const char *testdb_admin_url(void)
{
    const char *u = getenv("JOBSD_TEST_PG_URL");
    if (!u || !*u)
        tu_die("JOBSD_TEST_PG_URL is not set: run the suite with scripts/test.sh (it starts a "
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
        tu_die("cannot connect to %s: %s", url, PQerrorMessage(c));
    PQsetNoticeProcessor(c, quiet, NULL);
    return c;
}

void tdb_exec(PGconn *c, const char *sql)
{
    PGresult *r = PQexec(c, sql);
    ExecStatusType st = PQresultStatus(r);
    if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK)
        tu_die("SQL failed: %s\n--- %s", PQerrorMessage(c), sql);
    PQclear(r);
}

static char *vformat(const char *fmt, va_list ap) __attribute__((format(printf, 1, 0)));
static char *vformat(const char *fmt, va_list ap)
{
    va_list ap2;
    va_copy(ap2, ap);
    int n = vsnprintf(NULL, 0, fmt, ap2);
    va_end(ap2);
    if (n < 0)
        tu_die("bad format");
    char *s = malloc((size_t)n + 1);
    if (!s)
        tu_die("out of memory");
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

static char *value_of(PGconn *c, const char *sql)
{
    PGresult *r = PQexec(c, sql);
    if (PQresultStatus(r) != PGRES_TUPLES_OK || PQntuples(r) != 1 || PQnfields(r) < 1)
        tu_die("expected one value: %s\n--- %s", PQerrorMessage(c), sql);
    char *v = NULL;
    if (!PQgetisnull(r, 0, 0)) {
        v = strdup(PQgetvalue(r, 0, 0));
        if (!v)
            tu_die("out of memory");
    }
    PQclear(r);
    return v;
}

char *tdb_value(PGconn *c, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *sql = vformat(fmt, ap);
    va_end(ap);
    char *v = value_of(c, sql);
    free(sql);
    return v;
}

long long tdb_int(PGconn *c, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *sql = vformat(fmt, ap);
    va_end(ap);
    char *v = value_of(c, sql);
    if (!v)
        tu_die("expected a number, got NULL\n--- %s", sql);
    free(sql);
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
    unsigned rnd =
        (unsigned)(((unsigned long long)t_now_ms() ^ ((unsigned long long)getpid() << 8)) %
                   100000u);
    snprintf(db->name, sizeof db->name, "jt_%.24s_%d_%u", prefix, (int)getpid(), rnd);
    tdb_execf(admin, "CREATE DATABASE %s", db->name);
    snprintf(db->url, sizeof db->url, "postgresql://%s@%s:%s/%s", PQuser(admin), PQhost(admin),
             PQport(admin), db->name);
    PQfinish(admin);
    db->conn = connect_or_die(db->url);
    struct err e;
    err_clear(&e);
    if (migrate_apply(db->conn, NULL, &e) < 0)
        tu_die("migrations failed: %s", e.message);
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

static void *sample_children(void *arg)
{
    struct tdb_sampler *s = arg;
    PGconn *c = PQconnectdb(s->url);
    while (!s->stop) {
        long long n = tdb_int(c, "SELECT count(*) FROM job_logs WHERE status = 'running' "
                                 "AND parent_id IS NOT NULL");
        if (n > s->max)
            s->max = n;
        t_sleep_ms(s->period_ms);
    }
    PQfinish(c);
    return NULL;
}

void tdb_sampler_start(struct tdb_sampler *s, const char *url, long long period_ms)
{
    s->stop = 0;
    s->max = 0;
    s->period_ms = period_ms;
    s->url = url;
    if (pthread_create(&s->thread, NULL, sample_children, s) != 0)
        tu_die("cannot start the sampler thread");
}

long long tdb_sampler_stop(struct tdb_sampler *s)
{
    s->stop = 1;
    pthread_join(s->thread, NULL);
    return s->max;
}

struct pending {
    PGconn *c;
    const char *sql;
};

static bool above_zero(void *ctx)
{
    struct pending *p = ctx;
    return tdb_int(p->c, "%s", p->sql) > 0;
}

void tdb_wait(PGconn *c, long long timeout_ms, const char *fmt, ...)
{
    char sql[2048];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(sql, sizeof sql, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= sizeof sql)
        tu_die("tdb_wait: SQL longer than %zu bytes", sizeof sql);
    struct pending p = {c, sql};
    if (!t_wait_until(above_zero, &p, timeout_ms))
        fail_msg("not true within %lld ms: %s", timeout_ms, sql);
}
