/* job_rebuild: see job_rebuild.h. Date arithmetic happens in SQL (in JOBS_TIMEZONE); C only
 * checks formats and compares the resolved numbers. */
#include "jobsd/job_rebuild.h"
#include "jobsd/db.h"
#include "jobsd/embedded.h"
#include "jobsd/job_store.h"
#include "jobsd/log.h"
#include "jobsd/util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const FIELDS[] = {"tenantId", "allTenants", "from", "to", "daysBack", NULL};

static bool known_field(const char *k)
{
    for (size_t i = 0; FIELDS[i]; i++)
        if (strcmp(FIELDS[i], k) == 0)
            return true;
    return false;
}

static MUSTCHECK int check_date(const char *field, const char *v, struct err *e)
{
    if (util_is_date(v) || util_is_rfc3339(v))
        return 0;
    return err_set(e, 400, "invalid_field",
                   "%s must be a calendar date (YYYY-MM-DD) or an RFC 3339 timestamp "
                   "(2024-01-31T06:00:00Z); got \"%.40s\"",
                   field, v);
}

int rebuild_parse(json_t *body, long long max_range_days, struct rebuild_input *in, struct err *e)
{
    memset(in, 0, sizeof *in);
    if (!json_is_object(body))
        return err_set(e, 400, "invalid_body", "the request body must be a JSON object");
    const char *k;
    json_t *v;
    json_object_foreach(body, k, v)
    {
        if (!known_field(k))
            return err_set(
                e, 400, "unknown_field",
                "unknown field \"%.64s\" (allowed: tenantId, allTenants, from, to, daysBack)", k);
    }
    json_t *tenant = json_object_get(body, "tenantId");
    json_t *from = json_object_get(body, "from");
    json_t *to = json_object_get(body, "to");
    json_t *days = json_object_get(body, "daysBack");
    if (tenant && !json_is_string(tenant))
        return err_set(e, 400, "invalid_field", "tenantId must be a string (a UUID)");
    if (from && !json_is_string(from))
        return err_set(e, 400, "invalid_field",
                       "from must be a string (YYYY-MM-DD or an RFC 3339 timestamp)");
    if (to && !json_is_string(to))
        return err_set(e, 400, "invalid_field",
                       "to must be a string (YYYY-MM-DD or an RFC 3339 timestamp)");
    if (days && !json_is_integer(days))
        return err_set(e, 400, "invalid_field", "daysBack must be an integer from 1 to %lld",
                       max_range_days);
    if (days && json_integer_value(days) < 1)
        return err_set(e, 400, "invalid_field", "daysBack must be an integer from 1 to %lld",
                       max_range_days);
    json_t *all = json_object_get(body, "allTenants");
    if (all && !json_is_boolean(all))
        return err_set(e, 400, "invalid_field", "allTenants must be true or false");
    in->all_tenants = json_is_true(all);
    if (in->all_tenants && tenant)
        return err_set(e, 400, "invalid_field", "send tenantId or allTenants: true, not both");
    if (!tenant && !in->all_tenants)
        return err_set(e, 400, "invalid_field", "tenantId is required (or allTenants: true)");
    if (tenant && !util_uuid_normalize(json_string_value(tenant), in->tenant_id))
        return err_set(e, 400, "invalid_field", "tenantId must be a UUID; got \"%.40s\"",
                       json_string_value(tenant));
    if (from && check_date("from", json_string_value(from), e) != 0)
        return -1;
    if (to && check_date("to", json_string_value(to), e) != 0)
        return -1;
    if (from && days)
        return err_set(e, 400, "invalid_field",
                       "from cannot be combined with daysBack (send from and to, or daysBack "
                       "with an optional to)");
    if (from && !to)
        return err_set(e, 400, "invalid_field", "from requires to (send from and to)");
    if (to && !from && !days)
        return err_set(e, 400, "invalid_field",
                       "to requires from or daysBack (send from and to, or daysBack and to)");
    if (days && json_integer_value(days) > max_range_days)
        return err_set(e, 400, "invalid_field",
                       "daysBack must be an integer from 1 to %lld (REBUILD_MAX_RANGE_DAYS)",
                       max_range_days);
    in->from = from ? json_string_value(from) : NULL;
    in->to = to ? json_string_value(to) : NULL;
    in->days_back = days ? (long long)json_integer_value(days) : 0;
    return 0;
}

/* Resolves the window in JOBS_TIMEZONE: one round trip. */
static const char RESOLVE_SQL[] =
    "WITH base AS (SELECT (now() AT TIME ZONE $1::text)::date AS today), "
    "ends AS ("
    "  SELECT today, "
    "    CASE WHEN $3::text IS NULL THEN today "
    "         WHEN length($3::text) = 10 THEN $3::text::date "
    "         ELSE ($3::text::timestamptz AT TIME ZONE $1::text)::date END AS t, "
    "    CASE WHEN $2::text IS NULL THEN NULL "
    "         WHEN length($2::text) = 10 THEN $2::text::date "
    "         ELSE ($2::text::timestamptz AT TIME ZONE $1::text)::date END AS f "
    "  FROM base), "
    "win AS (SELECT today, t, coalesce(f, t - (coalesce($4::int, 2) - 1)) AS f FROM ends) "
    "SELECT to_char(f, 'YYYY-MM-DD'), to_char(t, 'YYYY-MM-DD'), (t - f) + 1, t - today, "
    "  to_char(today, 'YYYY-MM-DD'), EXISTS (SELECT 1 FROM tenants WHERE id = $5::uuid), "
    "  f >= date '0001-01-01' "
    "FROM win";

static MUSTCHECK int rebuild_resolve(const struct config *cfg, PGconn *c, json_t *body,
                                     struct job_request *req, struct err *e)
{
    struct rebuild_input in;
    if (rebuild_parse(body, cfg->rebuild_max_range_days, &in, e) != 0)
        return -1;
    char days[24];
    util_fmt(days, sizeof days, "%lld", in.days_back);
    const char *params[] = {cfg->jobs_timezone, in.from, in.to, in.days_back ? days : NULL,
                            in.all_tenants ? NULL : in.tenant_id};
    PGresult *r = db_query(c, RESOLVE_SQL, 5, params, e);
    if (!r)
        return -1;
    char from[16], to[16], today[16];
    long long ndays = 0, ahead = 0;
    snprintf(from, sizeof from, "%s", PQgetvalue(r, 0, 0));
    snprintf(to, sizeof to, "%s", PQgetvalue(r, 0, 1));
    bool ok = util_parse_i64(PQgetvalue(r, 0, 2), -100000000, 100000000, &ndays) &&
              util_parse_i64(PQgetvalue(r, 0, 3), -100000000, 100000000, &ahead);
    snprintf(today, sizeof today, "%s", PQgetvalue(r, 0, 4));
    bool tenant_exists = strcmp(PQgetvalue(r, 0, 5), "t") == 0;
    bool after_year_1 = strcmp(PQgetvalue(r, 0, 6), "t") == 0;
    PQclear(r);
    if (!ok)
        return err_set(e, 500, "internal_error", "could not resolve the window");
    if (!after_year_1)
        return err_set(e, 400, "invalid_field", "%s: the window would start before 0001-01-01",
                       in.from ? "from" : "daysBack");
    if (ndays < 1)
        return err_set(e, 400, "invalid_field", "from (%s) is after to (%s)", from, to);
    if (ndays > cfg->rebuild_max_range_days)
        return err_set(e, 400, "invalid_field",
                       "from..to (%s..%s) spans %lld days; the maximum is %lld "
                       "(REBUILD_MAX_RANGE_DAYS)",
                       from, to, ndays, cfg->rebuild_max_range_days);
    if (ahead > 1)
        return err_set(e, 400, "invalid_field",
                       "to (%s) is more than one day after today (%s in %s)", to, today,
                       cfg->jobs_timezone);
    if (!tenant_exists && !in.all_tenants)
        return err_set(e, 404, "tenant_not_found", "tenantId %s does not exist", in.tenant_id);
    snprintf(req->tenant_id, sizeof req->tenant_id, "%s", in.tenant_id);
    util_fmt(req->dedupe_key, sizeof req->dedupe_key, "metrics_aggregation:%s:%s:%s",
             in.all_tenants ? "all" : in.tenant_id, from, to);
    req->params =
        in.all_tenants
            ? json_pack("{s:b, s:s, s:s}", "allTenants", 1, "from", from, "to", to)
            : json_pack("{s:s, s:s, s:s}", "tenantId", in.tenant_id, "from", from, "to", to);
    if (!req->params)
        util_fatal("out of memory");
    return 0;
}

const char *rebuild_prologue(void)
{
    const struct embedded_file *f = embedded_find("rebuild_prologue.sql");
    if (!f)
        util_fatal("rebuild prologue missing from the binary");
    return f->data;
}

const char *rebuild_statement(void)
{
    const struct embedded_file *f = embedded_find("rebuild_daily_metrics.sql");
    if (!f)
        util_fatal("rebuild statement missing from the binary");
    return f->data;
}

static void progress(struct job_run *run, const char *phase)
{
    if (run->progress)
        run->progress(run->progress_ctx, phase);
}

static long long int_at(PGresult *r, int col)
{
    long long v = 0;
    v = util_i64_or(PQgetvalue(r, 0, col), 0);
    return v;
}

static MUSTCHECK json_t *rebuild_run(struct job_run *run, struct err *e)
{
    const char *tenant = run->tenant_id;
    const char *from = json_string_value(json_object_get(run->params, "from"));
    const char *to = json_string_value(json_object_get(run->params, "to"));
    if (!util_is_uuid(tenant) || !from || !to || !util_is_date(from) || !util_is_date(to)) {
        err_set(e, 500, "internal_error", "job %s has an invalid stored request", run->id);
        return NULL;
    }
    PGconn *c = run->conn;
    long long timeout_ms = run->cfg->rebuild_timeout_seconds * 1000;
    const char *p1[] = {tenant};
    progress(run, "waiting for the tenant's rebuild lock");
    if (db_begin(c, timeout_ms, e) != 0)
        goto fail;
    /* The transaction's settings: sql/queries/rebuild_prologue.sql (shared with the bench). */
    if (db_exec_script(c, rebuild_prologue(), e) != 0 ||
        db_exec(c, "SELECT pg_advisory_xact_lock(hashtextextended('jobsd:metrics:' || $1, 0))", 1,
                p1, e) != 0)
        goto fail;
    progress(run, "computing and writing the window");
    const char *params[] = {tenant, from, to, run->cfg->jobs_timezone, run->id};
    long long t0 = util_mono_ms();
    PGresult *r = db_query(c, rebuild_statement(), 5, params, e);
    if (!r)
        goto fail;
    if (log_enabled(LOG_DEBUG)) {
        char ms[24];
        util_fmt(ms, sizeof ms, "%lld", util_mono_ms() - t0);
        log_event(LOG_DEBUG, "rebuild statement done", "jobLogId", run->id, "ms", ms, NULL);
    }
    long long upserted = int_at(r, 0), deleted = int_at(r, 1), listings = int_at(r, 2),
              days = int_at(r, 3);
    PQclear(r);
    r = db_query(c,
                 "SELECT to_char(max(date), 'YYYY-MM-DD') FROM listing_metrics_daily "
                 "WHERE tenant_id = $1",
                 1, p1, e);
    if (!r)
        goto fail;
    json_t *max_date = PQgetisnull(r, 0, 0) ? json_null() : json_string(PQgetvalue(r, 0, 0));
    PQclear(r);
    long long total = listings * days;
    json_t *result = json_pack(
        "{s:b, s:s, s:I, s:I, s:I, s:I, s:I, s:I, s:{s:s, s:s, s:o}}", "success", 1, "jobLogId",
        run->id, "duration", (json_int_t)0, "daysProcessed", (json_int_t)days, "rowsUpserted",
        (json_int_t)upserted, "rowsUnchanged", (json_int_t)(total - upserted), "rowsDeleted",
        (json_int_t)deleted, "listingsProcessed", (json_int_t)listings, "dateRange", "from", from,
        "to", to, "maxDateAfterRebuild", max_date);
    if (!result)
        util_fatal("out of memory");
    progress(run, "committing");
    long long duration = 0;
    if (job_store_finish_success(c, run->id, run->worker_id, upserted + deleted, result, &duration,
                                 e) != 0 ||
        db_commit(c, e) != 0) {
        json_decref(result);
        goto fail;
    }
    json_object_set_new(result, "duration", json_integer(duration));
    return result;
fail:
    db_rollback(c);
    if (strcmp(e->code, "timeout") == 0)
        err_set(e, 503, "timeout",
                "the rebuild did not finish within %lld s (REBUILD_TIMEOUT_SECONDS); nothing "
                "was changed",
                run->cfg->rebuild_timeout_seconds);
    return NULL;
}

static const char *const RESULT_KEYS[] = {
    "success",      "jobLogId",      "duration",    "daysProcessed",
    "rowsUpserted", "rowsUnchanged", "rowsDeleted", "listingsProcessed",
    "dateRange",    "deduplicated",  NULL};

static const char *const RANGE_KEYS[] = {"from", "to", "maxDateAfterRebuild", NULL};

static json_t *rebuild_present(json_t *result)
{
    json_t *out = job_json_ordered(result, RESULT_KEYS);
    json_t *range = json_object_get(out, "dateRange");
    if (json_is_object(range))
        json_object_set_new(out, "dateRange", job_json_ordered(range, RANGE_KEYS));
    return out;
}

static const char USAGE[] =
    "usage: jobsd rebuild-daily-metrics (--tenant ID | --all-tenants)\n"
    "                                   [--from YYYY-MM-DD --to YYYY-MM-DD | --days-back N [--to "
    "DATE]]\n"
    "Rebuilds listing_metrics_daily for one tenant and window, in this process (no server\n"
    "needed), recorded in job_logs with trigger=cli. Without a window: yesterday and today in\n"
    "JOBS_TIMEZONE. Dates may also be RFC 3339 timestamps. Prints the result JSON on stdout;\n"
    "progress on stderr when it is a terminal. Needs DATABASE_URL.\n"
    "--all-tenants: one job per active tenant (queued for every instance's workers, this\n"
    "process runs them too), with a progress line on stderr; the result counts them.\n"
    "Exit codes: 0 done, 1 the job failed, 2 bad arguments or configuration, 3 transient\n"
    "(database unavailable, or the same job is already running: its id is printed).\n";

/* clang-format off */
static const struct job_option OPTIONS[] = {
    {"--tenant",    "tenantId", JOB_OPTION_STRING,  true},
    {"--all-tenants", "allTenants", JOB_OPTION_FLAG, false},
    {"--from",      "from",     JOB_OPTION_STRING,  false},
    {"--to",        "to",       JOB_OPTION_STRING,  false},
    {"--days-back", "daysBack", JOB_OPTION_INTEGER, false},
    {NULL, NULL, JOB_OPTION_STRING, false},
};
/* clang-format on */

const struct job_kind job_rebuild_kind = {
    .type = "metrics_aggregation",
    .name = "rebuild-daily-metrics",
    .synopsis = "--tenant ID|--all-tenants [--from D --to D | --days-back N [--to D]]",
    .summary = "rebuild listing_metrics_daily for one tenant, in-process",
    .usage = USAGE,
    .options = OPTIONS,
    .resolve = rebuild_resolve,
    .run = rebuild_run,
    .present = rebuild_present,
    .fleet_tenants = "SELECT id FROM tenants WHERE status = 'active'",
};
