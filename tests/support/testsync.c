/* testsync: see testsync.h. */
#include "testsync.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "testdb.h"

const char *tsync_world(const struct tsync_seller *sellers, size_t n, const char *tag, json_t *top)
{
    static char paths[4][256];
    static unsigned slot;
    char *path = paths[slot++ % 4];
    snprintf(path, 256, "%s/jobsd-sync-%s-%d.json", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp",
             tag, (int)getpid());
    json_t *list = json_array();
    for (size_t i = 0; i < n; i++) {
        char nick[32];
        snprintf(nick, sizeof nick, "SELLER_%zu", i);
        json_t *s = json_pack("{s:I, s:s, s:s, s:s, s:I, s:s}", "user_id",
                              (json_int_t)sellers[i].user_id, "nickname", nick, "client_id",
                              TSYNC_CLIENT_ID, "access_token", sellers[i].access,
                              "access_token_expires_in", (json_int_t)sellers[i].access_expires_in,
                              "refresh_token", sellers[i].refresh);
        if (sellers[i].extra)
            json_object_update(s, sellers[i].extra);
        json_array_append_new(list, s);
    }
    json_t *world =
        json_pack("{s:i, s:[{s:s, s:s}], s:o}", "seed", 7, "clients", "client_id", TSYNC_CLIENT_ID,
                  "client_secret", TSYNC_CLIENT_SECRET, "sellers", list);
    if (top)
        json_object_update(world, top);
    assert_int_equal(json_dump_file(world, path, JSON_INDENT(1)), 0);
    json_decref(world);
    return path;
}

void tsync_connect(PGconn *c, const struct tsync_seller *s, const char *access_in_db,
                   const char *refresh_in_db, const char *expires_sql)
{
    tdb_execf(c, "INSERT INTO tenants (id, name) VALUES ('%s', 't') ON CONFLICT DO NOTHING",
              s->tenant);
    tdb_execf(c,
              "INSERT INTO marketplace_connections (tenant_id, provider, seller_id, access_token, "
              "refresh_token, expires_at, status) VALUES ('%s', 'mercadolivre', %lld, '%s', '%s', "
              "%s, 'active') ON CONFLICT (tenant_id, provider, seller_id) DO UPDATE SET "
              "access_token = EXCLUDED.access_token, refresh_token = EXCLUDED.refresh_token, "
              "expires_at = EXCLUDED.expires_at, status = 'active', last_error_code = NULL",
              s->tenant, s->user_id, access_in_db, refresh_in_db, expires_sql);
}

bool tsync_start_jobsd(struct jobsd_proc *p, const char *db_url, const struct fake_ml *f,
                       const char *rps, const char *concurrency, bool with_client,
                       const char *const *extra_env)
{
    char base[128], r[64], c[64];
    snprintf(base, sizeof base, "ML_API_BASE_URL=%s", f->url);
    snprintf(r, sizeof r, "ML_MAX_RPS=%s", rps);
    snprintf(c, sizeof c, "ML_CONCURRENCY=%s", concurrency);
    const char *env[24] = {base,
                           r,
                           c,
                           "ML_HTTP_TIMEOUT_MS=10000",
                           "SYNC_WAIT_SECONDS=300",
                           with_client ? "ML_CLIENT_ID=" TSYNC_CLIENT_ID : "ML_CLIENT_ID=",
                           with_client ? "ML_CLIENT_SECRET=" TSYNC_CLIENT_SECRET
                                       : "ML_CLIENT_SECRET="};
    size_t n = 7;
    for (size_t i = 0; extra_env && extra_env[i] && n < 23; i++)
        env[n++] = extra_env[i];
    env[n] = NULL;
    return jobsd_start(p, db_url, env);
}

int tsync_run(const struct jobsd_proc *p, const char *tenant, const char *extra,
              struct th_response *r)
{
    char body[256];
    snprintf(body, sizeof body, "{\"tenantId\": \"%s\"%s}", tenant, extra ? extra : "");
    assert_true(th_post_job(p->port, TSYNC_PATH, TEST_KEY, body, NULL, r));
    return r->status;
}

long long tsync_stat(const struct th_response *r, const char *section, const char *key)
{
    json_t *c = json_array_get(json_object_get(r->json, "connections"), 0);
    json_t *v =
        section ? json_object_get(json_object_get(c, section), key) : json_object_get(c, key);
    return json_is_integer(v) ? (long long)json_integer_value(v) : -1;
}

long long tsync_fake_orders_total(const struct fake_ml *f, long long seller, const char *token,
                                  const char *filter)
{
    char path[256], auth[256];
    snprintf(path, sizeof path, "/orders/search?seller=%lld%s&limit=1", seller, filter);
    snprintf(auth, sizeof auth, "Authorization: Bearer %s\r\n", token);
    struct th_response r;
    assert_true(th_request(f->port, "GET", path, auth, NULL, &r));
    assert_int_equal(r.status, 200);
    long long total =
        (long long)json_integer_value(json_object_get(json_object_get(r.json, "paging"), "total"));
    th_free(&r);
    return total;
}
