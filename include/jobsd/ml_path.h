/* ml_path: the paths (with their query strings) of the Mercado Livre endpoints jobsd reads,
 * relative to the API's base URL, and the API limits they respect. Callers pass values, never
 * URLs: ids and scroll ids are URL-escaped here. Every function returns a new string (caller
 * frees); none fails (allocation failure aborts). */
#ifndef JOBSD_ML_PATH_H
#define JOBSD_ML_PATH_H

#include <stdbool.h>
#include <stddef.h>

#define ML_SCAN_LIMIT        100   /* ids per page of an items scan (the API's maximum) */
#define ML_MULTIGET_MAX      20    /* ids per /items multiget (the API's maximum) */
#define ML_ORDERS_PAGE       50    /* orders per page (the API refuses more than 51) */
#define ML_ORDERS_OFFSET_CAP 10000 /* the API pages through this many results at most */
#define ML_VISITS_MAX_DAYS   150   /* the longest visits window the API serves */
#define ML_SCROLL_ID_MAX     8192  /* the longest scan scroll id jobsd accepts */

/* /users/{seller}/items/search?search_type=scan&limit=100[&scroll_id=...]: scroll_id NULL or
 * "" for the first page, else the scroll id of the previous page. */
char *ml_path_items_scan(long long seller, const char *scroll_id);

/* /items?ids=A,B,...&attributes=...: the details jobsd stores for 1..ML_MULTIGET_MAX ids. */
char *ml_path_items_multiget(const char *const *ids, size_t n);

/* An orders search: the seller's orders created in [created_from, created_to) and/or last
 * updated in [updated_from, updated_to) (seconds, UTC, hour-aligned: the API truncates these
 * filters to the hour; 0 = that filter is not sent); status NULL = the API's default for a
 * seller, which leaves cancelled orders out, or one status ("cancelled") to ask for those. */
struct ml_orders_query {
    long long seller;
    long long created_from, created_to;
    long long updated_from, updated_to;
    const char *status;
};

/* /orders/search for q, sort=date_asc (for a seller the API sorts by date_closed), one page
 * of ML_ORDERS_PAGE from offset. */
char *ml_path_orders_search(const struct ml_orders_query *q, long long offset);

/* /orders/{id}: one order. */
char *ml_path_order(long long order_id);

/* /items/{id}/visits/time_window?last=N&unit=day: daily visits of the last last_days UTC
 * days, ending where the API's documented default puts it (now): no ending is sent. */
char *ml_path_item_visits(const char *item_id, long long last_days);

#endif
