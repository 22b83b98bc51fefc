/* sync_token: a valid access token for the connection being synced (SPEC 1.2 step 1; see
 * sync_ml.h). Refresh tokens are single-use and rotate on every refresh, so the whole refresh
 * happens inside one transaction holding the connection row (SELECT ... FOR UPDATE): one
 * refresh per connection however many workers and instances try, and the rotated pair is
 * committed in the transaction that consumed the old one. Only invalid_grant marks the
 * connection reauth_required; 429, 5xx and network errors leave it active. */
#include "jobsd/log.h"
#include "jobsd/token_crypt.h"
#include "jobsd/util.h"
#include "sync_ml.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The connection row as read under its lock, tokens decrypted. */
struct stored {
    char access[SYNC_TOKEN_MAX];
    char refresh[SYNC_TOKEN_MAX];
    bool fresh;  /* the access token is good for 5 more minutes */
    bool active; /* status = 'active' */
};

/* Locks the connection row and reads its tokens (the transaction is open). */
static MUSTCHECK int read_stored(struct sync *s, struct stored *st, struct err *e)
{
    const char *p[] = {s->conn_id};
    char *a = NULL, *b = NULL;
    int rc = -1;
    PGresult *r = db_query(s->c,
                           "SELECT coalesce(access_token, ''), coalesce(refresh_token, ''), "
                           " coalesce(expires_at > now() + interval '5 minutes', false), status "
                           "FROM marketplace_connections WHERE id = $1 FOR UPDATE",
                           1, p, e);
    if (!r)
        goto out;
    if (PQntuples(r) != 1) {
        err_set(e, 422, "no_active_connection", "the connection disappeared");
        goto out;
    }
    a = token_crypt_open(s->crypt, PQgetvalue(r, 0, 0), s->conn_id, "access_token", e);
    b = a ? token_crypt_open(s->crypt, PQgetvalue(r, 0, 1), s->conn_id, "refresh_token", e) : NULL;
    st->fresh = strcmp(PQgetvalue(r, 0, 2), "t") == 0;
    st->active = strcmp(PQgetvalue(r, 0, 3), "active") == 0;
    if (!a || !b)
        goto out;
    snprintf(st->access, sizeof st->access, "%s", a);
    snprintf(st->refresh, sizeof st->refresh, "%s", b);
    rc = 0;
out:
    PQclear(r);
    util_wipe_str(a);
    free(a);
    util_wipe_str(b);
    free(b);
    return rc;
}

/* invalid_grant: the seller must reconnect. Marks the connection and commits; e (already
 * reauth_required) becomes the database's error when that fails (rolled back). */
static void mark_reauth(struct sync *s, const struct ml_error *me, struct err *e)
{
    const char *p[] = {s->conn_id, "invalid_grant", me->message[0] ? me->message : e->message};
    struct err e2;
    err_clear(&e2);
    if (db_exec(s->c,
                "UPDATE marketplace_connections SET status = 'reauth_required', "
                " last_error_code = $2, last_error_message = $3, last_error_at = now(), "
                " updated_at = now() WHERE id = $1",
                3, p, &e2) != 0 ||
        db_commit(s->c, &e2) != 0) {
        db_rollback(s->c);
        *e = e2;
        return;
    }
    log_event(LOG_WARN, LOG_JOB_TAG "Mercado Livre connection needs reauthorisation", "tenantId",
              s->tenant, "connectionId", s->conn_id, NULL);
}

static const char STORE_SQL[] =
    "UPDATE marketplace_connections SET access_token = $2, refresh_token = $3, "
    " expires_at = now() + make_interval(secs => $4::int), last_error_code = NULL, "
    " last_error_message = NULL, last_error_at = NULL, updated_at = now() "
    "WHERE id = $1";

/* The store in the refresh's transaction, under a savepoint: an UPDATE that was cancelled
 * (57014: an operator's cancel, a shutdown past its grace and Ctrl-C all PQcancel the job's
 * statement) is undone to the savepoint and run once more, the row's lock kept; then the
 * commit. */
static MUSTCHECK int store_locked(struct sync *s, const char *const *p, struct err *e)
{
    if (db_exec(s->c, "SAVEPOINT store_rotated", 0, NULL, e) != 0)
        return -1;
    if (db_exec(s->c, STORE_SQL, 4, p, e) != 0) {
        if (strcmp(e->code, "timeout") != 0 || db_is_broken(s->c))
            return -1;
        char first[ERR_MESSAGE_MAX];
        snprintf(first, sizeof first, "%s", e->message);
        err_clear(e);
        if (db_exec(s->c, "ROLLBACK TO SAVEPOINT store_rotated", 0, NULL, e) != 0 ||
            db_exec(s->c, STORE_SQL, 4, p, e) != 0)
            return -1;
        log_event(LOG_WARN,
                  LOG_JOB_TAG "rotated Mercado Livre token stored on a second try "
                              "(it kept the row's lock)",
                  "connectionId", s->conn_id, "firstError", first, NULL);
    }
    return db_commit(s->c, e);
}

/* The store again, on a connection of its own (the job's transaction failed or broke). */
static MUSTCHECK int store_again(struct sync *s, const char *const *p, struct err *e)
{
    PGconn *c = db_connect(s->run->cfg->database_url, e);
    if (!c)
        return -1;
    int rc = db_exec(c, STORE_SQL, 4, p, e);
    PQfinish(c);
    return rc;
}

/* Stores the rotated pair and commits (rolled back on failure). */
static MUSTCHECK int store_rotated(struct sync *s, const struct ml_token *tok, struct err *e)
{
    char expires[24];
    util_fmt(expires, sizeof expires, "%lld", tok->expires_in);
    char *access = token_crypt_seal(s->crypt, tok->access_token, s->conn_id, "access_token");
    char *refresh = token_crypt_seal(s->crypt, tok->refresh_token, s->conn_id, "refresh_token");
    const char *p[] = {s->conn_id, access, refresh, expires};
    int rc = -1;
    if (store_locked(s, p, e) != 0) {
        /* The new pair was issued but not stored, and the old refresh token is spent: the
         * transaction failed (cancelled twice, or at its commit) or the connection broke.
         * Stored again at once on a connection of its own, outside the row's lock (released
         * by the rollback). Only a crash in between loses the rotation. */
        db_rollback(s->c);
        struct err again;
        err_clear(&again);
        if (store_again(s, p, &again) != 0) {
            log_event(LOG_ERROR, LOG_JOB_TAG "could not store a rotated Mercado Livre token",
                      "connectionId", s->conn_id, "error", e->message, "retryError", again.message,
                      NULL);
            goto out;
        }
        log_event(LOG_WARN,
                  LOG_JOB_TAG "rotated Mercado Livre token stored on a second try "
                              "(on a connection of its own)",
                  "connectionId", s->conn_id, "firstError", e->message, NULL);
        err_clear(e);
    }
    rc = 0;
out:
    util_wipe_str(access); /* sealed, or the token itself without TOKEN_ENCRYPTION_KEY */
    free(access);
    util_wipe_str(refresh);
    free(refresh);
    return rc;
}

/* Exchanges the refresh token and ends the transaction: the rotated pair committed (0, the
 * new access token in out), the connection marked reauth_required (invalid_grant), or rolled
 * back (a transient failure: the connection stays active). */
static MUSTCHECK int refresh(struct sync *s, const char *refresh_token, char *out, size_t cap,
                             struct err *e)
{
    struct ml_token tok;
    struct ml_error me;
    memset(&tok, 0, sizeof tok);
    int rc = -1;
    if (ml_refresh_token(s->run->ml, refresh_token, &tok, &me, e) != 0) {
        if (strcmp(e->code, "reauth_required") == 0)
            mark_reauth(s, &me, e); /* only invalid_grant ends here */
        else
            db_rollback(s->c);
        goto out;
    }
    if (store_rotated(s, &tok, e) != 0)
        goto out;
    snprintf(out, cap, "%s", tok.access_token);
    s->refreshed = true;
    rc = 0;
out:
    util_wipe(&tok, sizeof tok);
    return rc;
}

/* Is the stored access token the one to use? Fresh, and either nothing failed or another
 * worker already replaced the token that failed. */
static bool usable(const struct stored *st, const char *failed_token)
{
    bool replaced = failed_token && st->access[0] && strcmp(st->access, failed_token) != 0;
    return st->access[0] && ((st->fresh && !failed_token) || (replaced && st->fresh));
}

int sync_token_ensure(struct sync *s, const char *failed_token, char *out, size_t cap,
                      struct err *e)
{
    struct stored st;
    memset(&st, 0, sizeof st);
    bool open = false; /* a transaction this function must roll back */
    int rc = -1;
    sync_write_collect(s);
    if (db_begin(s->c, s->run->cfg->ml_http_timeout_ms * 6 + 30000, e) != 0)
        goto out;
    open = true;
    if (read_stored(s, &st, e) != 0)
        goto out;
    if (!st.active) {
        err_set(e, 422, "reauth_required", "the Mercado Livre connection needs to be reconnected");
        goto out;
    }
    if (usable(&st, failed_token)) {
        snprintf(out, cap, "%s", st.access);
        open = false;
        rc = db_commit(s->c, e);
        goto out;
    }
    if (!st.refresh[0]) {
        err_set(e, 422, "reauth_required", "no refresh token is stored for this connection");
        goto out;
    }
    open = false; /* refresh ends the transaction, whatever happens */
    rc = refresh(s, st.refresh, out, cap, e);
out:
    if (open)
        db_rollback(s->c);
    util_wipe(&st, sizeof st);
    return rc;
}
