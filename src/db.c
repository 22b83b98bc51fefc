/* db: see db.h. */
#include "jobsd/db.h"
#include "jobsd/buf.h"
#include "jobsd/log.h"
#include "jobsd/util.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------------ connecting */

static bool has_keyword(PQconninfoOption *opts, const char *kw)
{
    for (PQconninfoOption *o = opts; o && o->keyword; o++)
        if (strcmp(o->keyword, kw) == 0)
            return o->val != NULL && o->val[0] != '\0';
    return false;
}

/* Server notices ("relation already exists, skipping") are not errors: debug log only. */
static void on_notice(void *arg, const char *message)
{
    (void)arg;
    char msg[300];
    snprintf(msg, sizeof msg, "%s", message);
    size_t n = strlen(msg);
    while (n > 0 && msg[n - 1] == '\n')
        msg[--n] = '\0';
    log_event(LOG_DEBUG, "postgres notice", "detail", msg, NULL);
}

/* The integer-valued options libpq only checks while connecting (a bad one then reads as an
 * unreachable server). A port may be a comma-separated list (one per host), entries empty. */
static const char *check_option(const char *kw, const char *val)
{
    static const char *const ints[] = {"connect_timeout",  "keepalives",
                                       "keepalives_idle",  "keepalives_interval",
                                       "keepalives_count", "tcp_user_timeout"};
    long long n;
    if (strcmp(kw, "port") == 0) {
        for (const char *p = val;;) {
            size_t len = strcspn(p, ",");
            if (len > 0 && !util_parse_i64n(p, len, 1, 65535, &n))
                return "must be a port number from 1 to 65535 (one per host)";
            if (p[len] == '\0')
                return NULL;
            p += len + 1;
        }
    }
    for (size_t i = 0; i < sizeof ints / sizeof ints[0]; i++)
        if (strcmp(kw, ints[i]) == 0 && !util_parse_i64(val, 0, 2147483647, &n))
            return "must be a non-negative integer";
    return NULL;
}

int db_check_url(const char *url, struct err *e)
{
    char *errmsg = NULL;
    PQconninfoOption *parsed = PQconninfoParse(url, &errmsg);
    if (!parsed) {
        char msg[300];
        snprintf(msg, sizeof msg, "%s", errmsg ? errmsg : "out of memory");
        PQfreemem(errmsg);
        size_t n = strlen(msg);
        while (n > 0 && (msg[n - 1] == '\n' || msg[n - 1] == ' '))
            msg[--n] = '\0';
        return err_set(e, 400, "invalid_config", "DATABASE_URL cannot be parsed: %s", msg);
    }
    int rc = 0;
    long long hosts = 1, ports = 1;
    for (PQconninfoOption *o = parsed; o->keyword && rc == 0; o++) {
        const char *why = o->val ? check_option(o->keyword, o->val) : NULL;
        if (why)
            rc = err_set(e, 400, "invalid_config", "DATABASE_URL: %s %s (got \"%.40s\")",
                         o->keyword, why, o->val);
        long long *count = strcmp(o->keyword, "port") == 0 ? &ports
                           : strcmp(o->keyword, "host") == 0 || strcmp(o->keyword, "hostaddr") == 0
                               ? &hosts
                               : NULL;
        long long n = 1;
        for (const char *p = o->val ? o->val : ""; count && *p; p++)
            n += *p == ',';
        if (count && n > *count)
            *count = n;
    }
    if (rc == 0 && ports > 1 && ports != hosts)
        rc = err_set(e, 400, "invalid_config",
                     "DATABASE_URL: %lld ports for %lld hosts (give one port, or one per host)",
                     ports, hosts);
    PQconninfoFree(parsed);
    return rc;
}

/* The server refused us for a reason a retry cannot fix (SPEC section 5: exit 2, not 3):
 * wrong password (28P01), no such role or no pg_hba.conf entry (28000), no such database
 * (3D000). libpq gives no SQLSTATE for a failed connection, so the connection runs with
 * PQERRORS_VERBOSE, which writes it after the severity ("FATAL:  3D000: ..."). */
static bool refused_by_configuration(const char *msg)
{
    static const char *const states[] = {"28P01", "28000", "3D000"};
    for (const char *p = strstr(msg, "FATAL:  "); p; p = strstr(p + 1, "FATAL:  ")) {
        for (size_t i = 0; i < sizeof states / sizeof states[0]; i++)
            if (strncmp(p + 8, states[i], 5) == 0 && p[13] == ':')
                return true;
    }
    return false;
}

/* The connection's error on one line (its lines joined by "; ") as the default verbosity
 * shows it: without the SQLSTATE that PQERRORS_VERBOSE inserted after "FATAL:  ", nor its
 * LOCATION lines. */
static void connect_error(PGconn *c, char *out, size_t cap)
{
    size_t len = 0;
    out[0] = '\0';
    for (const char *p = PQerrorMessage(c); *p && len + 1 < cap;) {
        size_t n = strcspn(p, "\n");
        const char *line = p;
        p += n + (p[n] == '\n');
        while (n > 0 && (*line == ' ' || *line == '\t')) {
            line++;
            n--;
        }
        while (n > 0 && line[n - 1] == ' ')
            n--;
        if (n == 0 || strncmp(line, "LOCATION:", 9) == 0)
            continue;
        /* at: where the SQLSTATE would be; cut: its length with ": " when it is there. */
        const char *fatal = strstr(line, "FATAL:  ");
        size_t at = fatal && fatal < line + n ? (size_t)(fatal - line) + 8 : n;
        size_t cut = at + 7 < n && line[at + 5] == ':' ? 7 : 0;
        int w = snprintf(out + len, cap - len, "%s%.*s%.*s", len ? "; " : "", (int)at, line,
                         (int)(n - at - cut), line + at + cut);
        if (w < 0 || (size_t)w >= cap - len)
            break;
        len += (size_t)w;
    }
}

/* How many hosts the URL lists (host or hostaddr, comma-separated). */
static long long host_count(PQconninfoOption *parsed)
{
    long long hosts = 1;
    for (PQconninfoOption *o = parsed; o && o->keyword; o++)
        if ((strcmp(o->keyword, "host") == 0 || strcmp(o->keyword, "hostaddr") == 0) && o->val) {
            long long n = 1;
            for (const char *p = o->val; *p; p++)
                n += *p == ',';
            if (n > hosts)
                hosts = n;
        }
    return hosts;
}

/* How long an attempt may take: connect_timeout (libpq's rule: at least 2 s; 0 = no limit). */
static long long attempt_budget_ms(const char *timeout)
{
    long long secs = 0;
    if (!util_parse_i64(timeout, 0, 2147483647, &secs) || secs == 0)
        return 0;
    return (secs < 2 ? 2 : secs) * 1000;
}

/* Drives PQconnectPoll, looking at *stop every 100 ms. */
static MUSTCHECK int connect_poll(PGconn *c, long long budget_ms, const volatile int *stop,
                                  struct err *e)
{
    long long deadline = budget_ms > 0 ? util_mono_ms() + budget_ms : 0;
    PostgresPollingStatusType st = PGRES_POLLING_WRITING;
    while (st != PGRES_POLLING_OK) {
        if (st == PGRES_POLLING_FAILED || PQsocket(c) < 0)
            return -1;
        if (stop && *stop)
            return err_set(e, 503, "interrupted", "stopped while connecting to the database");
        long long tick = 100;
        if (deadline) {
            long long left = deadline - util_mono_ms();
            if (left <= 0)
                return err_set(e, 503, "database_unavailable",
                               "database unavailable: timeout expired (connect_timeout)");
            tick = left < tick ? left : tick;
        }
        struct pollfd pfd = {PQsocket(c), st == PGRES_POLLING_READING ? POLLIN : POLLOUT, 0};
        int r = poll(&pfd, 1, (int)tick);
        if (r < 0 && errno != EINTR)
            return err_set(e, 503, "database_unavailable", "database unavailable: poll: %s",
                           strerror(errno));
        if (r > 0)
            st = PQconnectPoll(c);
    }
    return 0;
}

PGconn *db_connect_ex(const char *url, const volatile int *stop, struct err *e)
{
    static const char *defaults[][2] = {
        {"connect_timeout", "5"},      {"keepalives", "1"},       {"keepalives_idle", "30"},
        {"keepalives_interval", "10"}, {"keepalives_count", "3"}, {"tcp_user_timeout", "30000"},
        {"application_name", "jobsd"},
    };
    if (db_check_url(url, e) != 0)
        return NULL;
    PQconninfoOption *parsed = PQconninfoParse(url, NULL);
    if (!parsed)
        util_fatal("out of memory (PQconninfoParse)");
    const char *keys[16];
    const char *vals[16];
    const char *timeout = "5";
    size_t n = 0;
    keys[n] = "dbname";
    vals[n] = url;
    n++;
    for (size_t i = 0; i < sizeof defaults / sizeof defaults[0]; i++) {
        if (!has_keyword(parsed, defaults[i][0])) {
            keys[n] = defaults[i][0];
            vals[n] = defaults[i][1];
            n++;
        }
    }
    keys[n] = NULL;
    vals[n] = NULL;
    for (PQconninfoOption *o = parsed; o->keyword; o++)
        if (strcmp(o->keyword, "connect_timeout") == 0 && o->val && o->val[0])
            timeout = o->val;
    long long budget = attempt_budget_ms(timeout);
    /* Several hosts (failover): libpq's blocking connect, which gives each host its own
     * connect_timeout and moves on (PQconnectPoll cannot be told to); it is not interruptible
     * and its failures read as transient (no SQLSTATE without PQERRORS_VERBOSE). */
    bool blocking = host_count(parsed) > 1;
    PQconninfoFree(parsed);
    PGconn *c = blocking ? PQconnectdbParams(keys, vals, 1) : PQconnectStartParams(keys, vals, 1);
    if (!c)
        util_fatal("out of memory (PQconnectStartParams)");
    PQsetErrorVerbosity(c, PQERRORS_VERBOSE);
    if (PQstatus(c) == CONNECTION_BAD || (!blocking && connect_poll(c, budget, stop, e) != 0) ||
        PQstatus(c) != CONNECTION_OK) {
        if (!err_is_set(e)) {
            char msg[300];
            connect_error(c, msg, sizeof msg);
            if (refused_by_configuration(PQerrorMessage(c)) || PQconnectionNeedsPassword(c))
                err_set(e, 400, "invalid_config", "the database refused DATABASE_URL: %s", msg);
            else
                err_set(e, 503, "database_unavailable", "database unavailable: %s", msg);
        }
        PQfinish(c);
        return NULL;
    }
    PQsetErrorVerbosity(c, PQERRORS_DEFAULT);
    PQsetNoticeProcessor(c, on_notice, NULL);
    return c;
}

PGconn *db_connect(const char *url, struct err *e)
{
    return db_connect_ex(url, NULL, e);
}

char *db_redact_url(const char *url)
{
    char *errmsg = NULL;
    PQconninfoOption *parsed = PQconninfoParse(url, &errmsg);
    PQfreemem(errmsg);
    if (!parsed)
        return util_strdup("<unparseable>");
    char out[1024];
    size_t len = 0;
    out[0] = '\0';
    for (PQconninfoOption *o = parsed; o->keyword; o++) {
        if (!o->val || !o->val[0])
            continue;
        bool secret = strcmp(o->keyword, "password") == 0 || strcmp(o->keyword, "sslpassword") == 0;
        int w = snprintf(out + len, sizeof out - len, "%s%s=%s", len ? " " : "", o->keyword,
                         secret ? "<redacted>" : o->val);
        if (w < 0 || (size_t)w >= sizeof out - len)
            break;
        len += (size_t)w;
    }
    PQconninfoFree(parsed);
    return util_strdup(out);
}

/* ------------------------------------------------------------------ pool */

struct db_pool {
    char *url;
    size_t size;
    pthread_mutex_t lock;
    pthread_cond_t freed;
    PGconn **idle;
    size_t nidle;
    size_t in_use;
    unsigned long long waits;
    /* Circuit breaker: after a failed connect, callers fail fast (503) until down_until;
     * then one caller at a time probes, with a backoff that doubles up to 5 s. Nobody waits
     * connect_timeout on a database that is known to be down. */
    long long down_until;
    long long backoff_ms;
    bool probing;
    char last_error[ERR_MESSAGE_MAX];
};

struct db_pool *db_pool_new(const char *url, size_t size)
{
    struct db_pool *p = util_calloc(1, sizeof *p);
    p->url = util_strdup(url);
    p->size = size;
    p->idle = util_calloc(size, sizeof *p->idle);
    pthread_mutex_init(&p->lock, NULL);
    util_cond_init(&p->freed);
    return p;
}

void db_pool_free(struct db_pool *p)
{
    if (!p)
        return;
    for (size_t i = 0; i < p->nidle; i++)
        PQfinish(p->idle[i]);
    pthread_mutex_destroy(&p->lock);
    pthread_cond_destroy(&p->freed);
    if (p->url) {
        memset(p->url, 0, strlen(p->url));
        free(p->url);
    }
    free(p->idle);
    free(p);
}

PGconn *db_pool_acquire(struct db_pool *p, long long wait_ms, struct err *e)
{
    long long deadline = util_mono_ms() + wait_ms;
    pthread_mutex_lock(&p->lock);
    bool waited = false;
    while (p->nidle == 0 && p->in_use >= p->size) {
        if (!waited) {
            p->waits++;
            waited = true;
        }
        long long left = deadline - util_mono_ms();
        if (left <= 0) {
            pthread_mutex_unlock(&p->lock);
            err_set(e, 503, "database_unavailable",
                    "all %zu database connections are busy (DB_POOL_SIZE)", p->size);
            return NULL;
        }
        util_cond_wait_ms(&p->freed, &p->lock, left);
    }
    PGconn *c = NULL;
    if (p->nidle > 0)
        c = p->idle[--p->nidle];
    p->in_use++;
    pthread_mutex_unlock(&p->lock);

    /* An idle connection may have been closed by the server meanwhile (restart, terminated
     * backend): reading what is pending makes libpq notice, instead of the caller's query. */
    if (c && (PQconsumeInput(c) != 1 || PQstatus(c) != CONNECTION_OK)) {
        PQfinish(c);
        c = NULL;
    }
    if (!c) {
        long long now = util_mono_ms();
        pthread_mutex_lock(&p->lock);
        /* Only once a connect failed: a pool growing under load connects in parallel. */
        bool fail_fast = p->backoff_ms > 0 && (p->probing || now < p->down_until);
        if (fail_fast) {
            long long wait = p->down_until > now ? p->down_until - now : 1000;
            char why[ERR_MESSAGE_MAX];
            snprintf(why, sizeof why, "%s", p->last_error[0] ? p->last_error : "connecting");
            p->in_use--;
            pthread_cond_signal(&p->freed);
            pthread_mutex_unlock(&p->lock);
            err_set(e, 503, "database_unavailable", "%s (next attempt in %lld ms)", why, wait);
            e->retry_after = (int)(wait / 1000 + 1);
            return NULL;
        }
        p->probing = true;
        pthread_mutex_unlock(&p->lock);
        c = db_connect(p->url, e);
        if (!c && e && e->http_status != 503) {
            /* A refused DATABASE_URL (the password rotated under a running server) is the
             * database being unavailable to the request that needed it. */
            char why[ERR_MESSAGE_MAX];
            snprintf(why, sizeof why, "%s", e->message);
            err_set(e, 503, "database_unavailable", "%s", why);
        }
        pthread_mutex_lock(&p->lock);
        p->probing = false;
        if (!c) {
            p->backoff_ms = p->backoff_ms ? p->backoff_ms * 2 : 250;
            if (p->backoff_ms > 5000)
                p->backoff_ms = 5000;
            p->down_until = util_mono_ms() + p->backoff_ms;
            snprintf(p->last_error, sizeof p->last_error, "%s", e->message);
            p->in_use--;
            pthread_cond_signal(&p->freed);
            pthread_mutex_unlock(&p->lock);
            return NULL;
        }
        p->backoff_ms = 0;
        p->down_until = 0;
        p->last_error[0] = '\0';
        pthread_mutex_unlock(&p->lock);
    }
    return c;
}

void db_pool_release(struct db_pool *p, PGconn *c)
{
    if (c) {
        /* Drain anything left (a query abandoned mid-way). */
        PGresult *r;
        while ((r = PQgetResult(c)) != NULL)
            PQclear(r);
        if (PQstatus(c) == CONNECTION_OK && PQtransactionStatus(c) != PQTRANS_IDLE) {
            db_rollback(c);
            if (PQtransactionStatus(c) != PQTRANS_IDLE) {
                PQfinish(c);
                c = NULL;
            }
        }
        if (c && PQstatus(c) != CONNECTION_OK) {
            PQfinish(c);
            c = NULL;
        }
    }
    pthread_mutex_lock(&p->lock);
    p->in_use--;
    if (c)
        p->idle[p->nidle++] = c;
    pthread_cond_signal(&p->freed);
    pthread_mutex_unlock(&p->lock);
}

void db_pool_stats(struct db_pool *p, size_t *in_use, size_t *idle, unsigned long long *waits)
{
    pthread_mutex_lock(&p->lock);
    if (in_use)
        *in_use = p->in_use;
    if (idle)
        *idle = p->nidle;
    if (waits)
        *waits = p->waits;
    pthread_mutex_unlock(&p->lock);
}

/* ------------------------------------------------------------------ statements */

bool db_is_broken(PGconn *c)
{
    return !c || PQstatus(c) != CONNECTION_OK;
}

static void trim(char *s)
{
    size_t n = strlen(s);
    while (n > 0 && (s[n - 1] == '\n' || s[n - 1] == ' '))
        s[--n] = '\0';
}

void db_classify(PGconn *c, const PGresult *res, struct err *e)
{
    const char *state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
    const char *primary = res ? PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY) : NULL;
    char msg[300];
    snprintf(msg, sizeof msg, "%s", primary ? primary : (c ? PQerrorMessage(c) : "no connection"));
    trim(msg);
    if (db_is_broken(c) || !state) {
        err_set(e, 503, "database_unavailable", "database unavailable: %s", msg);
        return;
    }
    if (strcmp(state, "57014") == 0 || strcmp(state, "55P03") == 0) {
        err_set(e, 503, "timeout", "database statement timed out: %s", msg);
        return;
    }
    if (strncmp(state, "08", 2) == 0 || strncmp(state, "53", 2) == 0 ||
        strncmp(state, "57P", 3) == 0 || strcmp(state, "40001") == 0 ||
        strcmp(state, "40P01") == 0 || strcmp(state, "25006") == 0) {
        err_set(e, 503, "database_unavailable", "database unavailable: %s", msg);
        return;
    }
    err_set(e, 500, "internal_error", "database error %s: %s", state, msg);
}

PGresult *db_query(PGconn *c, const char *sql, int nparams, const char *const *params,
                   struct err *e)
{
    PGresult *res = PQexecParams(c, sql, nparams, NULL, params, NULL, NULL, 0);
    ExecStatusType st = res ? PQresultStatus(res) : PGRES_FATAL_ERROR;
    if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK)
        return res;
    db_classify(c, res, e);
    PQclear(res);
    return NULL;
}

int db_exec(PGconn *c, const char *sql, int nparams, const char *const *params, struct err *e)
{
    PGresult *res = db_query(c, sql, nparams, params, e);
    if (!res)
        return -1;
    PQclear(res);
    return 0;
}

static MUSTCHECK int exec_simple(PGconn *c, const char *sql, struct err *e)
{
    PGresult *res = PQexec(c, sql);
    ExecStatusType st = res ? PQresultStatus(res) : PGRES_FATAL_ERROR;
    if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK) {
        PQclear(res);
        return 0;
    }
    db_classify(c, res, e);
    PQclear(res);
    return -1;
}

int db_exec_script(PGconn *c, const char *sql, struct err *e)
{
    return exec_simple(c, sql, e);
}

int db_begin(PGconn *c, long long timeout_ms, struct err *e)
{
    char sql[160];
    util_fmt(sql, sizeof sql,
             "BEGIN; SET LOCAL statement_timeout = %lld; SET LOCAL lock_timeout = %lld", timeout_ms,
             timeout_ms);
    return exec_simple(c, sql, e);
}

int db_commit(PGconn *c, struct err *e)
{
    return exec_simple(c, "COMMIT", e);
}

void db_rollback(PGconn *c)
{
    /* No transaction open (idle): nothing to roll back, and a ROLLBACK would only make
     * PostgreSQL log "WARNING: there is no transaction in progress". */
    if (!c || PQstatus(c) != CONNECTION_OK || PQtransactionStatus(c) == PQTRANS_IDLE)
        return;
    PGresult *res = PQexec(c, "ROLLBACK");
    PQclear(res);
}

/* ------------------------------------------------------------------ pipelined transactions */

int db_tx_send(PGconn *c, long long timeout_ms, const struct db_stmt *stmts, size_t n,
               struct err *e)
{
    char timeouts[128];
    util_fmt(timeouts, sizeof timeouts, "%lld", timeout_ms);
    if (PQenterPipelineMode(c) != 1) {
        db_classify(c, NULL, e);
        return -1;
    }
    const char *p[] = {timeouts};
    bool ok = PQsendQueryParams(c, "BEGIN", 0, NULL, NULL, NULL, NULL, 0) == 1 &&
              PQsendQueryParams(c,
                                "SELECT set_config('statement_timeout', $1, true), "
                                "set_config('lock_timeout', $1, true)",
                                1, NULL, p, NULL, NULL, 0) == 1;
    for (size_t i = 0; ok && i < n; i++)
        ok = PQsendQueryParams(c, stmts[i].sql, stmts[i].nparams, NULL, stmts[i].params, NULL, NULL,
                               0) == 1;
    ok = ok && PQsendQueryParams(c, "COMMIT", 0, NULL, NULL, NULL, NULL, 0) == 1 &&
         PQpipelineSync(c) == 1 && PQflush(c) == 0;
    if (!ok) {
        db_classify(c, NULL, e);
        /* Drain what was sent, then leave pipeline mode. */
        PGresult *r;
        for (int guard = 0; guard < 1000; guard++) {
            r = PQgetResult(c);
            if (!r) {
                if (PQpipelineStatus(c) == PQ_PIPELINE_OFF || PQexitPipelineMode(c) == 1)
                    break;
                continue;
            }
            PQclear(r);
        }
        return -1;
    }
    return 0;
}

int db_tx_wait(PGconn *c, size_t n, PGresult **res, struct err *e)
{
    /* Results arrive in order: BEGIN, the settings, the statements, COMMIT, then the sync;
     * each but the sync is followed by a NULL. */
    size_t total = n + 3;
    size_t idx = 0;
    bool failed = false;
    for (size_t i = 0; i < n; i++)
        if (res)
            res[i] = NULL;
    for (int guard = 0; guard < 100000; guard++) {
        PGresult *r = PQgetResult(c);
        if (!r) {
            if (idx >= total + 1)
                break;
            if (PQstatus(c) != CONNECTION_OK) {
                failed = true;
                if (!err_is_set(e))
                    db_classify(c, NULL, e);
                break;
            }
            continue;
        }
        ExecStatusType st = PQresultStatus(r);
        if (st == PGRES_PIPELINE_SYNC) {
            PQclear(r);
            idx = total + 1;
            continue;
        }
        if (st == PGRES_FATAL_ERROR && !failed) {
            failed = true;
            db_classify(c, r, e);
        } else if (st == PGRES_PIPELINE_ABORTED) {
            failed = true;
        }
        if (!failed && idx >= 2 && idx < 2 + n && res)
            res[idx - 2] = r;
        else
            PQclear(r);
        idx++;
    }
    PQexitPipelineMode(c);
    if (failed) {
        for (size_t i = 0; res && i < n; i++) {
            PQclear(res[i]);
            res[i] = NULL;
        }
        db_rollback(c);
        if (!err_is_set(e))
            err_set(e, 503, "database_unavailable", "the write did not complete");
        return -1;
    }
    return 0;
}

PGresult *db_read(PGconn *c, long long timeout_ms, const char *sql, int nparams,
                  const char *const *params, struct err *e)
{
    if (timeout_ms <= 0)
        return db_query(c, sql, nparams, params, e);
    struct db_stmt st = {sql, nparams, params};
    PGresult *res = NULL;
    if (db_tx_send(c, timeout_ms, &st, 1, e) != 0 || db_tx_wait(c, 1, &res, e) != 0)
        return NULL;
    if (!res) {
        err_set(e, 500, "internal_error", "the read returned no result");
        return NULL;
    }
    return res;
}

char *db_array_literal(const char *const *items, size_t n)
{
    struct buf b;
    buf_init(&b, (size_t)1 << 24);
    bool ok = buf_append_str(&b, "{");
    for (size_t i = 0; ok && i < n; i++) {
        ok = buf_append_str(&b, i ? ",\"" : "\"");
        for (const char *p = items[i]; ok && *p; p++) {
            if (*p == '"' || *p == '\\')
                ok = buf_append(&b, "\\", 1);
            ok = ok && buf_append(&b, p, 1);
        }
        ok = ok && buf_append_str(&b, "\"");
    }
    ok = ok && buf_append_str(&b, "}");
    if (!ok) {
        buf_free(&b);
        return NULL;
    }
    return buf_take(&b);
}

int db_library_version(void)
{
    return PQlibVersion();
}
