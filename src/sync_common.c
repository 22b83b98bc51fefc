/* sync_common: the bookkeeping every part of the sync shares (see sync_ml.h): the
 * connection's errors[] and the job's worst error, the outcome of each request, progress
 * and the phase log lines. */
#include "jobsd/log.h"
#include "jobsd/ml_parse.h"
#include "jobsd/util.h"
#include "sync_ml.h"

#include <stdlib.h>
#include <string.h>

#define MAX_ERRORS 50

void sync_progress(struct sync *s, const char *phase)
{
    if (s->run->progress)
        s->run->progress(s->run->progress_ctx, phase);
}

bool sync_cancelled(const struct sync *s)
{
    return job_run_stopping(s->run);
}

void sync_phase_done(struct sync *s, const char *phase, long long t0, long long db0)
{
    if (!log_enabled(LOG_DEBUG))
        return;
    char total[24], db[24], ok[24];
    util_fmt(total, sizeof total, "%lld", util_mono_ms() - t0);
    util_fmt(db, sizeof db, "%lld", s->db_ms - db0);
    util_fmt(ok, sizeof ok, "%lld", s->ml_ok);
    log_event(LOG_DEBUG, "sync phase done", "jobLogId", s->run->id, "phase", phase, "ms", total,
              "dbMs", db, "requestsOk", ok, NULL);
}

void sync_add_error(struct sync *s, const char *step, const struct err *e)
{
    s->nerrors++;
    size_t i;
    json_t *x;
    json_array_foreach(s->errors, i, x)
    {
        if (strcmp(json_string_value(json_object_get(x, "step")), step) == 0 &&
            strcmp(json_string_value(json_object_get(x, "code")), e->code) == 0) {
            json_object_set_new(x, "count",
                                json_integer(json_integer_value(json_object_get(x, "count")) + 1));
            return;
        }
    }
    if (json_array_size(s->errors) < MAX_ERRORS) {
        char *msg = util_utf8_clean(e->message);
        json_array_append_new(s->errors, json_pack("{s:s, s:s, s:s, s:i}", "step", step, "code",
                                                   e->code, "message", msg, "count", 1));
        free(msg);
    }
    if (e->http_status == 503 || !err_is_set(&s->worst))
        s->worst = *e;
}

int sync_outcome(struct sync *s, const char *step, struct ml_request *r)
{
    if (err_is_set(&r->err)) {
        s->ml_failed++;
        sync_add_error(s, step, &r->err);
        return -1;
    }
    if (r->status >= 200 && r->status < 300) {
        s->ml_ok++;
        return 1;
    }
    return 0;
}

void sync_http_error(struct sync *s, const char *step, struct ml_request *r)
{
    struct ml_error me;
    ml_parse_error(r->body, r->len, &me);
    struct err e;
    if (r->status == 401)
        err_set(&e, 422, "reauth_required",
                "Mercado Livre refused the access token even after a refresh (%s)",
                me.message[0] ? me.message : "401");
    else
        err_set(&e, 503, "ml_unavailable", "Mercado Livre answered %ld to %s (%s)", r->status, step,
                me.error[0] ? me.error : me.message);
    s->ml_failed++;
    sync_add_error(s, step, &e);
}

long long sync_count(PGresult *r, int col)
{
    return util_i64_or(PQgetvalue(r, 0, col), 0);
}

void sync_bump(json_t *counts, const char *key, long long n)
{
    json_object_set_new(counts, key,
                        json_integer(json_integer_value(json_object_get(counts, key)) + n));
}
