/* testfx: fixtures, the raw facts a test's expectations are computed from (tenants,
 * listings, orders with their items, daily visits), inserted with literal values. A failed
 * insert aborts the program. */
#ifndef JOBSD_TESTFX_H
#define JOBSD_TESTFX_H

#include <libpq-fe.h>

/* Inserts a tenant with a fixed id. */
void fx_tenant(PGconn *c, const char *id);
/* Inserts a listing (status e.g. "active"/"deleted"); returns its id (static buffer rotates
 * among 8 slots). */
const char *fx_listing(PGconn *c, const char *tenant, const char *external_id, const char *status);
/* Inserts an order at ordered_at (timestamptz text) with status; returns its id (the same
 * rotating slots). */
const char *fx_order(PGconn *c, const char *tenant, long long external_id, const char *status,
                     const char *ordered_at);
void fx_item(PGconn *c, const char *tenant, const char *order_id, const char *listing_id,
             int quantity, const char *unit_price);
/* Inserts or replaces the listing's visits of one date. */
void fx_visits(PGconn *c, const char *tenant, const char *listing_id, const char *date, int visits);

#endif
