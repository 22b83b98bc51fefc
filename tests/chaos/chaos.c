/* chaos: see chaos.h. */
#include "chaos.h"
#include "testdb.h"
#include "testfx.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void chaos_seed(PGconn *c, const char *tenant, int nlistings, const char *from, const char *to)
{
    fx_tenant(c, tenant);
    tdb_execf(c,
              "INSERT INTO listings (tenant_id, external_id, status, title) "
              "SELECT '%s', 'MLB' || g, 'active', 'listing ' || g FROM generate_series(1, %d) g",
              tenant, nlistings);
    tdb_execf(c,
              "INSERT INTO listing_visits_daily (tenant_id, listing_id, date, visits) "
              "SELECT l.tenant_id, l.id, d::date, abs(hashtext(l.external_id || d::text)) %% 7 "
              "FROM listings l, generate_series('%s'::date, '%s'::date, interval '1 day') d "
              "WHERE l.tenant_id = '%s'",
              from, to, tenant);
}

void chaos_prefill_stale(PGconn *c, const char *tenant, const char *from, const char *to)
{
    tdb_execf(c,
              "INSERT INTO listing_metrics_daily (tenant_id, listing_id, date, visits, orders, "
              "units, gmv, source) "
              "SELECT l.tenant_id, l.id, d::date, -1, 0, 0, 0, 'stale' FROM listings l, "
              "generate_series('%s'::date, '%s'::date, interval '1 day') d "
              "WHERE l.tenant_id = '%s'",
              from, to, tenant);
}

void chaos_slow_writes(PGconn *c, const char *seconds)
{
    tdb_execf(c,
              "CREATE OR REPLACE FUNCTION chaos_slow() RETURNS trigger LANGUAGE plpgsql AS $$ "
              "BEGIN PERFORM pg_sleep(%s); RETURN NEW; END $$",
              seconds);
    tdb_exec(c, "DROP TRIGGER IF EXISTS chaos_slow ON listing_metrics_daily");
    tdb_exec(c, "CREATE TRIGGER chaos_slow BEFORE INSERT OR UPDATE ON listing_metrics_daily "
                "FOR EACH ROW EXECUTE FUNCTION chaos_slow()");
}

void chaos_fast_writes(PGconn *c)
{
    tdb_exec(c, "DROP TRIGGER IF EXISTS chaos_slow ON listing_metrics_daily");
}

char *chaos_window_digest(PGconn *c, const char *tenant, const char *from, const char *to)
{
    return tdb_value(
        c,
        "SELECT count(*) || ':' || coalesce(md5(string_agg(concat_ws('|', listing_id, date, "
        "coalesce(visits::text, '-'), orders, units, gmv, coalesce(conversion::text, '-'), "
        "source), ',' ORDER BY listing_id, date)), '') "
        "FROM listing_metrics_daily WHERE tenant_id = '%s' AND date BETWEEN '%s' AND '%s'",
        tenant, from, to);
}

char *chaos_expected_digest(PGconn *c, const char *tenant, const char *from, const char *to)
{
    return tdb_value(
        c,
        "SELECT count(*) || ':' || coalesce(md5(string_agg(concat_ws('|', l.id, d::date, "
        "coalesce(v.visits::text, '-'), 0, 0, 0::numeric(14,2), coalesce((CASE WHEN v.visits > 0 "
        "THEN 0 END)::numeric(12,4)::text, '-'), 'internal_job'), ',' ORDER BY l.id, d::date)), "
        "'') "
        "FROM listings l CROSS JOIN generate_series('%s'::date, '%s'::date, interval '1 day') d "
        "LEFT JOIN listing_visits_daily v ON v.tenant_id = l.tenant_id AND v.listing_id = l.id "
        "AND v.date = d::date "
        "WHERE l.tenant_id = '%s' AND l.status <> 'deleted'",
        from, to, tenant);
}

char *chaos_job_status(PGconn *c, const char *id)
{
    char *s =
        tdb_value(c, "SELECT coalesce((SELECT status FROM job_logs WHERE id = '%s'), '')", id);
    return s ? s : strdup("");
}

bool chaos_job_is(PGconn *c, const char *id, const char *status)
{
    char *s = chaos_job_status(c, id);
    bool ok = s && strcmp(s, status) == 0;
    free(s);
    return ok;
}

bool chaos_job_final(PGconn *c, const char *id)
{
    char *s = chaos_job_status(c, id);
    bool ok = s && (strcmp(s, "success") == 0 || strcmp(s, "error") == 0);
    free(s);
    return ok;
}

int chaos_worker_pid(const char *worker_id)
{
    const char *p = worker_id ? strchr(worker_id, ':') : NULL;
    return p ? (int)strtol(p + 1, NULL, 10) : 0;
}

bool chaos_post_rebuild(unsigned port, const char *tenant, const char *from, const char *to,
                        const char *extra, struct th_response *r)
{
    char body[256];
    snprintf(body, sizeof body, "{\"tenantId\": \"%s\", \"from\": \"%s\", \"to\": \"%s\"}", tenant,
             from, to);
    return th_post_job(port, CHAOS_REBUILD, TEST_KEY, body, extra, r);
}

int chaos_log_count(const struct jobsd_proc *p, const char *a, const char *b)
{
    FILE *f = fopen(p->log_path, "r");
    if (!f)
        return 0;
    char line[8192];
    int n = 0;
    while (fgets(line, sizeof line, f))
        n += strstr(line, a) != NULL && (!b || strstr(line, b) != NULL);
    fclose(f);
    return n;
}

void chaos_day(PGconn *c, const char *base, int offset, char out[11])
{
    char *d = tdb_value(c, "SELECT to_char('%s'::date + %d, 'YYYY-MM-DD')", base, offset);
    snprintf(out, 11, "%s", d ? d : "");
    free(d);
}
