/* migrate: see migrate.h. */
#include "jobsd/migrate.h"
#include "jobsd/db.h"
#include "jobsd/embedded.h"
#include "jobsd/util.h"

#include <openssl/evp.h>
#include <stdlib.h>
#include <string.h>

/* Arbitrary constant: the advisory lock every migrating instance takes. */
#define MIGRATE_LOCK_KEY "7361205118829437001"

#define MAX_MIGRATIONS 256

struct migration {
    int version;
    const char *name;
    const char *sql;
    size_t len;
    char checksum[65];
};

static void sha256_hex(const char *data, size_t len, char out[65])
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int n = 0;
    if (!EVP_Digest(data, len, md, &n, EVP_sha256(), NULL) || n != 32)
        util_fatal("SHA-256 failed");
    static const char hex[] = "0123456789abcdef";
    for (unsigned i = 0; i < 32; i++) {
        out[2 * i] = hex[md[i] >> 4];
        out[2 * i + 1] = hex[md[i] & 15];
    }
    out[64] = '\0';
}

static int cmp_migration(const void *a, const void *b)
{
    const struct migration *x = a, *y = b;
    return (x->version > y->version) - (x->version < y->version);
}

/* The embedded files named NNNN_*.sql, in version order. */
static size_t known(struct migration *out, size_t cap)
{
    size_t n = 0;
    for (size_t i = 0; i < embedded_files_count && n < cap; i++) {
        const struct embedded_file *f = &embedded_files[i];
        long long v;
        if (strlen(f->name) < 9 || f->name[4] != '_' || !util_parse_i64n(f->name, 4, 1, 9999, &v))
            continue;
        out[n].version = (int)v;
        out[n].name = f->name;
        out[n].sql = f->data;
        out[n].len = f->len;
        sha256_hex(f->data, f->len, out[n].checksum);
        n++;
    }
    qsort(out, n, sizeof *out, cmp_migration);
    return n;
}

int migrate_latest_version(void)
{
    struct migration m[MAX_MIGRATIONS];
    size_t n = known(m, MAX_MIGRATIONS);
    return n ? m[n - 1].version : 0;
}

static const char BOOTSTRAP[] = "CREATE TABLE IF NOT EXISTS schema_migrations ("
                                " version integer PRIMARY KEY,"
                                " name text NOT NULL,"
                                " checksum text NOT NULL,"
                                " applied_at timestamptz NOT NULL DEFAULT now())";

static MUSTCHECK int lock_and_bootstrap(PGconn *c, struct err *e)
{
    if (db_begin(c, 60000, e) != 0)
        return -1;
    if (db_exec(c, "SELECT pg_advisory_xact_lock(" MIGRATE_LOCK_KEY ")", 0, NULL, e) != 0 ||
        db_exec(c, BOOTSTRAP, 0, NULL, e) != 0) {
        db_rollback(c);
        return -1;
    }
    return 0;
}

int migrate_apply(PGconn *c, FILE *progress, struct err *e)
{
    struct migration m[MAX_MIGRATIONS];
    size_t n = known(m, MAX_MIGRATIONS);
    int applied = 0;
    for (size_t i = 0; i < n; i++) {
        if (lock_and_bootstrap(c, e) != 0)
            return -1;
        char version[16];
        util_fmt(version, sizeof version, "%d", m[i].version);
        const char *p1[] = {version};
        PGresult *r =
            db_query(c, "SELECT checksum FROM schema_migrations WHERE version = $1", 1, p1, e);
        if (!r) {
            db_rollback(c);
            return -1;
        }
        if (PQntuples(r) == 1) {
            bool same = strcmp(PQgetvalue(r, 0, 0), m[i].checksum) == 0;
            PQclear(r);
            db_rollback(c);
            if (!same)
                return err_set(e, 500, "internal_error",
                               "migration %s was applied with a different checksum: the database "
                               "and this binary disagree on its content (refusing to start)",
                               m[i].name);
            continue;
        }
        PQclear(r);
        if (progress)
            fprintf(progress, "applying migration %s\n", m[i].name);
        const char *p3[] = {version, m[i].name, m[i].checksum};
        if (db_exec_script(c, m[i].sql, e) != 0 ||
            db_exec(c,
                    "INSERT INTO schema_migrations (version, name, checksum) VALUES ($1, $2, $3)",
                    3, p3, e) != 0 ||
            db_commit(c, e) != 0) {
            char why[ERR_MESSAGE_MAX];
            snprintf(why, sizeof why, "%s", e->message);
            db_rollback(c);
            err_set(e, e->http_status ? e->http_status : 500,
                    e->code[0] ? e->code : "internal_error", "migration %s failed: %s", m[i].name,
                    why);
            return -1;
        }
        applied++;
    }
    return applied;
}

/* Reads schema_migrations into parallel arrays; returns the row count or -1. A missing table
 * counts as empty. */
static MUSTCHECK PGresult *applied_rows(PGconn *c, struct err *e)
{
    return db_query(c,
                    "SELECT version, name, checksum FROM schema_migrations "
                    "WHERE to_regclass('schema_migrations') IS NOT NULL ORDER BY version",
                    0, NULL, e);
}

static MUSTCHECK PGresult *applied_rows_safe(PGconn *c, struct err *e)
{
    PGresult *t = db_query(c, "SELECT to_regclass('schema_migrations') IS NOT NULL", 0, NULL, e);
    if (!t)
        return NULL;
    bool exists = strcmp(PQgetvalue(t, 0, 0), "t") == 0;
    PQclear(t);
    if (!exists)
        return db_query(c, "SELECT 0 AS version, '' AS name, '' AS checksum WHERE false", 0, NULL,
                        e);
    return applied_rows(c, e);
}

bool migrate_is_current(PGconn *c, struct err *e)
{
    struct migration m[MAX_MIGRATIONS];
    size_t n = known(m, MAX_MIGRATIONS);
    PGresult *r = applied_rows_safe(c, e);
    if (!r)
        return false;
    int rows = PQntuples(r);
    for (size_t i = 0; i < n; i++) {
        bool found = false;
        for (int j = 0; j < rows; j++) {
            long long v;
            if (!util_parse_i64(PQgetvalue(r, j, 0), 0, 100000, &v) || v != m[i].version)
                continue;
            found = true;
            if (strcmp(PQgetvalue(r, j, 2), m[i].checksum) != 0) {
                PQclear(r);
                err_set(e, 503, "database_unavailable",
                        "migration %s is applied with a different checksum", m[i].name);
                return false;
            }
        }
        if (!found) {
            PQclear(r);
            err_set(e, 503, "database_unavailable", "migration %s is not applied", m[i].name);
            return false;
        }
    }
    PQclear(r);
    return true;
}

int migrate_status(PGconn *c, FILE *out, struct err *e)
{
    struct migration m[MAX_MIGRATIONS];
    size_t n = known(m, MAX_MIGRATIONS);
    PGresult *r = applied_rows_safe(c, e);
    if (!r)
        return -1;
    int rows = PQntuples(r);
    int problems = 0;
    for (size_t i = 0; i < n; i++) {
        const char *state = "pending";
        for (int j = 0; j < rows; j++) {
            long long v;
            if (util_parse_i64(PQgetvalue(r, j, 0), 0, 100000, &v) && v == m[i].version)
                state = strcmp(PQgetvalue(r, j, 2), m[i].checksum) == 0 ? "applied"
                                                                        : "CHECKSUM MISMATCH";
        }
        if (strcmp(state, "applied") != 0)
            problems++;
        fprintf(out, "%04d  %-40s %s\n", m[i].version, m[i].name, state);
    }
    for (int j = 0; j < rows; j++) {
        long long v;
        if (!util_parse_i64(PQgetvalue(r, j, 0), 0, 100000, &v))
            continue;
        bool mine = false;
        for (size_t i = 0; i < n; i++)
            mine = mine || m[i].version == v;
        if (!mine)
            fprintf(out, "%04lld  %-40s applied by a newer jobsd\n", v, PQgetvalue(r, j, 1));
    }
    PQclear(r);
    return problems ? 1 : 0;
}
