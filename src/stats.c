/* stats: see stats.h. JSON is built by PostgreSQL (json_build_object keeps key order): the
 * status page is passed through, compacted; the statistics (sql/queries/job_stats.sql) are
 * parsed once to add "window". */
#include "jobsd/stats.h"
#include "jobsd/buf.h"
#include "jobsd/db.h"
#include "jobsd/job_store.h"
#include "jobsd/embedded.h"
#include "jobsd/util.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* Cursor = base64url("<created_at, microseconds, UTC>|<id>"): opaque to callers, checked
 * strictly when it comes back. */
#define CURSOR_TS "to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"')"

static bool decode_cursor(const char *cursor, char ts[40], char id[37])
{
    unsigned char raw[128];
    size_t n;
    if (!cursor || strlen(cursor) > 160 ||
        !util_base64_decode(cursor, strlen(cursor), true, raw, sizeof raw - 1, &n))
        return false;
    raw[n] = '\0';
    if (memchr(raw, '\0', n))
        return false;
    const char *bar = strchr((const char *)raw, '|');
    if (!bar || (size_t)(bar - (const char *)raw) >= 40)
        return false;
    memcpy(ts, raw, (size_t)(bar - (const char *)raw));
    ts[bar - (const char *)raw] = '\0';
    return util_is_rfc3339(ts) && util_uuid_normalize(bar + 1, id);
}

int stats_cursor_check(const char *cursor, struct err *e)
{
    char ts[40], id[37];
    if (!decode_cursor(cursor, ts, id))
        return err_set(e, 400, "invalid_field", "before must be the nextCursor of a previous page");
    return 0;
}

/* One page, newest first: the page as a JSON array (built by PostgreSQL, so no job is parsed
 * and re-serialised here), and the position of the page's last job when more jobs follow. */
static const char STATUS_SQL[] =
    "WITH page AS ("
    "  SELECT id, created_at, " JOB_STORE_JOB_JSON " AS job, "
    "         row_number() OVER (ORDER BY created_at DESC, id DESC) AS n "
    "  FROM job_logs "
    "  WHERE tenant_id = $1 "
    "    AND ($2::text IS NULL OR job_type = $2) "
    "    AND ($3::text IS NULL OR status = $3) "
    "    AND ($4::timestamptz IS NULL OR (created_at, id) < ($4::timestamptz, $5::uuid)) "
    "  ORDER BY created_at DESC, id DESC "
    "  LIMIT $6::int + 1) "
    "SELECT coalesce(json_agg(job ORDER BY n) FILTER (WHERE n <= $6::int), '[]')::text, "
    "       CASE WHEN count(*) > $6::int "
    "            THEN max(" CURSOR_TS " || '|' || id) FILTER (WHERE n = $6::int) END "
    "FROM page";

const char *stats_status_sql(void)
{
    return STATUS_SQL;
}

char *stats_status(PGconn *c, const struct status_query *q, long long timeout_ms, struct err *e)
{
    char ts[40], id[37];
    const char *cts = NULL, *cid = NULL;
    if (q->before) {
        if (stats_cursor_check(q->before, e) != 0)
            return NULL;
        (void)decode_cursor(q->before, ts, id);
        cts = ts;
        cid = id;
    }
    char limit[24];
    util_fmt(limit, sizeof limit, "%lld", q->limit);
    const char *params[] = {q->tenant_id, q->job_type, q->status, cts, cid, limit};
    PGresult *r = db_read(c, timeout_ms, STATUS_SQL, 6, params, e);
    if (!r)
        return NULL;
    if (PQntuples(r) != 1) {
        PQclear(r);
        err_set(e, 500, "internal_error", "the jobs page could not be read");
        return NULL;
    }
    /* {"jobs":<page>,"nextCursor":"<base64url>"|null} */
    struct buf out;
    buf_init(&out, SIZE_MAX);
    char *page = PQgetvalue(r, 0, 0);
    util_json_compact(page);
    bool ok = buf_append_str(&out, "{\"jobs\":") && buf_append_str(&out, page) &&
              buf_append_str(&out, ",\"nextCursor\":");
    if (PQgetisnull(r, 0, 1)) {
        ok = ok && buf_append_str(&out, "null}");
    } else {
        const char *raw = PQgetvalue(r, 0, 1);
        char enc[256];
        util_base64url_encode((const unsigned char *)raw, strlen(raw), enc, sizeof enc);
        ok = ok && buf_append_str(&out, "\"") && buf_append_str(&out, enc) &&
             buf_append_str(&out, "\"}");
    }
    PQclear(r);
    if (!ok)
        util_fatal("out of memory (jobs page)");
    return buf_take(&out);
}

/* The statement: sql/queries/job_stats.sql, compiled into the binary. */
static const char *stats_sql(void)
{
    const struct embedded_file *f = embedded_find("job_stats.sql");
    if (!f)
        util_fatal("statistics query missing from the binary");
    return f->data;
}

json_t *stats_compute(PGconn *c, const struct stats_query *q, long long timeout_ms, struct err *e)
{
    const char *interval = NULL;
    if (strcmp(q->window, "24h") == 0)
        interval = "24 hours";
    else if (strcmp(q->window, "7d") == 0)
        interval = "7 days";
    else if (strcmp(q->window, "30d") == 0)
        interval = "30 days";
    if (!interval) {
        err_set(e, 400, "invalid_field", "window must be 24h, 7d or 30d");
        return NULL;
    }
    char *types = db_array_literal(q->types, q->ntypes);
    const char *params[] = {q->tenant_id, interval, q->tz, q->now_rfc3339, types};
    PGresult *r = db_read(c, timeout_ms, stats_sql(), 5, params, e);
    free(types);
    if (!r)
        return NULL;
    json_t *body = json_loads(PQgetvalue(r, 0, 0), 0, NULL);
    PQclear(r);
    if (!body) {
        err_set(e, 500, "internal_error", "statistics could not be read");
        return NULL;
    }
    json_t *out = json_pack("{s:s}", "window", q->window);
    json_object_update(out, body);
    json_decref(body);
    return out;
}
