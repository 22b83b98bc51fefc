/* ml_path: the paths (with their query strings) of the Mercado Livre endpoints jobsd reads,
 * relative to the API's base URL, and the API limits they respect. Callers pass values, never
 * URLs: ids and scroll ids are URL-escaped here. Every function returns a new string (caller
 * frees); none fails (allocation failure aborts). */
#ifndef JOBSD_ML_PATH_H
#define JOBSD_ML_PATH_H

#include <stddef.h>

#define ML_SCAN_LIMIT        100   /* ids per page of an items scan (the API's maximum) */
#define ML_MULTIGET_MAX      20    /* ids per /items multiget (the API's maximum) */
#define ML_ORDERS_PAGE       50    /* orders per page (the API refuses more than 51) */
#define ML_ORDERS_OFFSET_CAP 10000 /* the API pages through this many results at most */
#define ML_VISITS_MAX_DAYS   150   /* the longest visits window the API serves */

/* /users/{seller}/items/search?search_type=scan&limit=100[&scroll_id=...]: scroll_id NULL or
 * "" for the first page, else the scroll id of the previous page. */
char *ml_path_items_scan(long long seller, const char *scroll_id);

/* /items?ids=A,B,...&attributes=...: the details jobsd stores for 1..ML_MULTIGET_MAX ids. */
char *ml_path_items_multiget(const char *const *ids, size_t n);

/* /orders/search for the seller's orders created in [from_epoch, to_epoch) (seconds, UTC,
 * hour-aligned: the API truncates these filters to the hour), oldest first, one page of
 * ML_ORDERS_PAGE from offset. */
char *ml_path_orders_search(long long seller, long long from_epoch, long long to_epoch,
                            long long offset);

/* /items/{id}/visits/time_window?last=N&unit=day&ending=YYYY-MM-DD: daily visits of the
 * last_days days before ending (the API's window excludes ending itself). */
char *ml_path_item_visits(const char *item_id, long long last_days, const char *ending);

#endif
