/* sync_write: the sync's writes (see sync_ml.h). Each is its own short transaction (a chunk of
 * listings, a batch of orders with their items, a chunk of visits), so a failure keeps
 * everything written before it. Orders and visits are pipelined (db_tx_send): the server runs
 * the transaction while the next requests are in flight, and it is collected before the
 * connection is used for anything else. The statements are sql/queries/sync_*.sql, compiled
 * into the binary. */
#include "jobsd/embedded.h"
#include "jobsd/util.h"
#include "sync_ml.h"

#include <stdlib.h>
#include <string.h>

#define WRITE_TIMEOUT_MS 60000

static const char *query(const char *name)
{
    const struct embedded_file *f = embedded_find(name);
    if (!f)
        util_fatal("a sync statement is missing from the binary");
    return f->data;
}

/* One statement in a transaction of its own, now (after collecting the write in flight). */
static MUSTCHECK int write_tx(struct sync *s, const char *sql, int n, const char *const *params,
                              PGresult **res, struct err *e)
{
    sync_write_collect(s);
    long long t0 = util_mono_ms();
    PGresult *r = NULL;
    int rc = -1;
    if (db_begin(s->c, WRITE_TIMEOUT_MS, e) != 0)
        goto out;
    r = db_query(s->c, sql, n, params, e);
    if (!r || db_commit(s->c, e) != 0) {
        db_rollback(s->c);
        goto out;
    }
    rc = 0;
    if (res) {
        *res = r;
        r = NULL;
    }
out:
    PQclear(r);
    s->db_ms += util_mono_ms() - t0;
    return rc;
}

void sync_write_collect(struct sync *s)
{
    if (!s->writing)
        return;
    s->writing = false;
    long long t0 = util_mono_ms();
    PGresult *res[2] = {NULL, NULL};
    struct err e;
    err_clear(&e);
    bool orders = strcmp(s->write_step, "orders") == 0;
    if (db_tx_wait(s->c, orders ? 2 : 1, res, &e) != 0) {
        sync_add_error(s, s->write_step, &e);
    } else if (orders) {
        long long up = sync_count(res[1], 0);
        sync_bump(s->write_counts, "upserted", up);
        sync_bump(s->write_counts, "items", sync_count(res[1], 1));
        s->records += up;
    } else {
        sync_bump(s->write_counts, "days", s->write_rows);
        s->records += s->write_rows;
    }
    PQclear(res[0]);
    PQclear(res[1]);
    s->db_ms += util_mono_ms() - t0;
}

/* Sends a pipelined transaction after collecting the one before; the counts are added when
 * it is collected. */
static void send_write(struct sync *s, const char *step, const struct db_stmt *stmts, size_t n,
                       json_t *counts, long long rows)
{
    sync_write_collect(s);
    struct err e;
    err_clear(&e);
    if (db_tx_send(s->c, WRITE_TIMEOUT_MS, stmts, n, &e) != 0) {
        sync_add_error(s, step, &e);
        return;
    }
    s->writing = true;
    s->write_step = step;
    s->write_counts = counts;
    s->write_rows = rows;
}

void sync_write_listings(struct sync *s, json_t *items, json_t *blocked, json_t *counts)
{
    char *items_text = json_dumps(items, JSON_COMPACT);
    char *blocked_text = json_dumps(blocked, JSON_COMPACT);
    const char *p[] = {s->tenant, s->conn_id, items_text, blocked_text};
    PGresult *r = NULL;
    struct err e;
    err_clear(&e);
    if (write_tx(s, query("sync_listings_upsert.sql"), 4, p, &r, &e) == 0) {
        json_object_set_new(counts, "upserted", json_integer(sync_count(r, 0)));
        json_object_set_new(counts, "blocked", json_integer(sync_count(r, 1)));
        s->records += sync_count(r, 0);
        PQclear(r);
    } else {
        sync_add_error(s, "listings", &e);
    }
    free(items_text);
    free(blocked_text);
}

void sync_write_orders(struct sync *s, json_t *orders, json_t *counts)
{
    if (json_array_size(orders) == 0)
        return;
    char *text = json_dumps(orders, JSON_COMPACT);
    const char *p[] = {s->tenant, s->conn_id, text};
    const struct db_stmt stmts[] = {{query("sync_orders_listings.sql"), 3, p},
                                    {query("sync_orders_upsert.sql"), 3, p}};
    long long t0 = util_mono_ms();
    send_write(s, "orders", stmts, 2, counts, 0);
    s->db_ms += util_mono_ms() - t0;
    free(text);
}

void sync_write_visits(struct sync *s, json_t *rows, json_t *counts)
{
    size_t n = json_array_size(rows);
    if (n == 0)
        return;
    char *text = json_dumps(rows, JSON_COMPACT);
    const char *p[] = {s->tenant, text};
    const struct db_stmt stmt = {query("sync_visits_upsert.sql"), 2, p};
    long long t0 = util_mono_ms();
    send_write(s, "visits", &stmt, 1, counts, (long long)n);
    s->db_ms += util_mono_ms() - t0;
    free(text);
}

void sync_write_blocked(struct sync *s, json_t *listing_ids)
{
    if (json_array_size(listing_ids) == 0)
        return;
    char *text = json_dumps(listing_ids, JSON_COMPACT);
    const char *p[] = {s->tenant, text};
    struct err e;
    err_clear(&e);
    if (write_tx(s, query("sync_listings_blocked.sql"), 2, p, NULL, &e) != 0)
        sync_add_error(s, "visits", &e);
    free(text);
}
