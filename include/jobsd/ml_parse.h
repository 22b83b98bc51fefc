/* ml_parse: the Mercado Livre response parsers (../shared/ML_API.md). Pure functions of the
 * response body: they tolerate missing fields, accept `code` or `status_code` in multiget
 * elements and int or string error codes, keep 64-bit ids, and return NORMALISED jansson
 * values (new references) that the sync hands to SQL as jsonb. */
#ifndef JOBSD_ML_PARSE_H
#define JOBSD_ML_PARSE_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "jobsd/err.h"

/* An error body {"message","error","status","cause"} (every field optional). */
struct ml_error {
    char error[64];    /* "invalid_grant", "not_found", ...; "" when absent */
    char message[256]; /* "" when absent */
    int status;        /* 0 when absent */
};
void ml_parse_error(const char *body, size_t len, struct ml_error *out);

/* POST /oauth/token answer. */
struct ml_token {
    char access_token[512];
    char refresh_token[512];
    long long expires_in; /* seconds */
    long long user_id;
};
MUSTCHECK int ml_parse_token(const char *body, size_t len, struct ml_token *out, struct err *e);

/* GET /users/{id}/items/search: the ids of this page (array of strings), the scroll id for
 * scan mode ("" when absent) and paging.total (-1 when absent). results null/empty = done.
 * A scroll id that does not fit scroll_cap is an error (503), never cut or dropped. */
MUSTCHECK json_t *ml_parse_search(const char *body, size_t len, char *scroll_id, size_t scroll_cap,
                                  long long *total, struct err *e);

/* GET /items?ids=...: one element per id, in order:
 *   {"id": "MLB1", "code": 200, "item": {external_id, title, status, price, currency,
 *    available_quantity, sold_quantity, permalink, category_id, listing_type_id,
 *    external_updated_at, seller_id}}
 *   {"id": "MLB2", "code": 404}        {"id": "MLB3", "code": 403, "blocked": true}
 * `ids` gives the requested ids, used when an element carries none. */
MUSTCHECK json_t *ml_parse_multiget(const char *body, size_t len, const char *const *ids,
                                    size_t nids, struct err *e);

/* GET /orders/search: normalised orders and paging.total:
 *   {external_id, status (jobsd's), external_status, total_amount, paid_amount,
 *    refunded_amount (the payments' transaction_amount_refunded), currency, buyer_id,
 *    buyer_known and shipping_known (false when a partial answer left them out), ordered_at,
 *    closed_at, paid_at, external_updated_at,
 *    items: [{listing_external_id, variation_id, title, quantity, unit_price,
 *             full_unit_price}]} */
MUSTCHECK json_t *ml_parse_orders(const char *body, size_t len, long long *total, struct err *e);

/* GET /orders/{id}: the order normalised as one element of ml_parse_orders (new), or NULL
 * with e when the body is not an order. */
MUSTCHECK json_t *ml_parse_order(const char *body, size_t len, struct err *e);

/* GET /items/{id}/visits/time_window: [{"date": "YYYY-MM-DD", "visits": N}] (UTC days as
 * the API gives them, zeros included). */
MUSTCHECK json_t *ml_parse_visits(const char *body, size_t len, struct err *e);

/* Mercado Livre order status (+ shipment status, may be NULL) → jobsd's status (SPEC 3). */
const char *ml_map_order_status(const char *status, const char *shipping_status);

#endif
