/* testfx: see testfx.h. */
#include "testfx.h"
#include "testdb.h"
#include "testutil.h"

#include <stdio.h>

void fx_tenant(PGconn *c, const char *id)
{
    tdb_execf(c, "INSERT INTO tenants (id, name) VALUES ('%s', 'tenant %s')", id, id);
}

static char slots[8][40];
static unsigned slot;

static const char *insert_returning(PGconn *c, const char *sql, int n, const char *const *params)
{
    PGresult *r = PQexecParams(c, sql, n, NULL, params, NULL, NULL, 0);
    if (PQresultStatus(r) != PGRES_TUPLES_OK || PQntuples(r) != 1)
        tu_die("fixture insert failed: %s\n--- %s", PQerrorMessage(c), sql);
    char *s = slots[slot++ % 8];
    snprintf(s, 40, "%s", PQgetvalue(r, 0, 0));
    PQclear(r);
    return s;
}

static void insert(PGconn *c, const char *what, const char *sql, int n, const char *const *params)
{
    PGresult *r = PQexecParams(c, sql, n, NULL, params, NULL, NULL, 0);
    if (PQresultStatus(r) != PGRES_COMMAND_OK)
        tu_die("fixture %s failed: %s", what, PQerrorMessage(c));
    PQclear(r);
}

const char *fx_listing(PGconn *c, const char *tenant, const char *external_id, const char *status)
{
    const char *p[] = {tenant, external_id, status};
    return insert_returning(c,
                            "INSERT INTO listings (tenant_id, external_id, status, title) "
                            "VALUES ($1, $2, $3, 'listing ' || $2) RETURNING id",
                            3, p);
}

const char *fx_order(PGconn *c, const char *tenant, long long external_id, const char *status,
                     const char *ordered_at)
{
    char ext[24];
    snprintf(ext, sizeof ext, "%lld", external_id);
    const char *p[] = {tenant, ext, status, ordered_at};
    return insert_returning(c,
                            "INSERT INTO orders (tenant_id, external_id, status, ordered_at) "
                            "VALUES ($1, $2, $3, $4) RETURNING id",
                            4, p);
}

void fx_item(PGconn *c, const char *tenant, const char *order_id, const char *listing_id,
             int quantity, const char *unit_price)
{
    char q[16];
    snprintf(q, sizeof q, "%d", quantity);
    const char *p[] = {tenant, order_id, listing_id, q, unit_price};
    insert(c, "item",
           "INSERT INTO order_items (tenant_id, order_id, listing_id, quantity, unit_price) "
           "VALUES ($1, $2, $3, $4, $5)",
           5, p);
}

void fx_visits(PGconn *c, const char *tenant, const char *listing_id, const char *date, int visits)
{
    char v[16];
    snprintf(v, sizeof v, "%d", visits);
    const char *p[] = {tenant, listing_id, date, v};
    insert(c, "visits",
           "INSERT INTO listing_visits_daily (tenant_id, listing_id, date, visits) VALUES ($1, "
           "$2, $3, $4) ON CONFLICT (tenant_id, listing_id, date) DO UPDATE SET visits = "
           "EXCLUDED.visits",
           4, p);
}
