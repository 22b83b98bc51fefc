/* fake_world: the in-memory world shared by the scenario loader (fake_state.c) and the API
 * handlers (fake_api.c). Everything here is guarded by world.lock. Items and orders are kept
 * as compact JSON text (a 20,000-order world is ~20 MB, not the ~200 MB of jansson trees);
 * the fields the API filters on are copied out next to the text. */
#ifndef FAKE_WORLD_H
#define FAKE_WORLD_H

#include "fake_ml.h"

#include <pthread.h>

struct item {
    char *id;
    char *status;
    char *title;
    double price;
    char *json; /* the body served by multiget (no scenario-only flags) */
    bool policy_blocked;
    bool missing;
    json_t *visits; /* explicit counts {"YYYY-MM-DD": n}, or NULL */
};

struct order {
    long long id;
    long long created_ms;
    long long updated_ms;
    long long closed_ms; /* LLONG_MIN when date_closed is null */
    long long sort_ms;   /* a seller's search sorts by date_closed, else date_created */
    char *status;
    char *json;
};

struct seller {
    long long user_id;
    char *nickname;
    char *client_id;
    char *access_token; /* NULL = none (revoked) */
    long long access_expires_ms;
    char *refresh_token; /* NULL = revoked */
    struct item *items;
    size_t nitems, capitems;
    json_t *item_index;   /* id → index into items */
    struct order *orders; /* sorted by (sort_ms, id) */
    size_t norders, caporders;
    /* generate_visits: days [gv_first, gv_last] computed from a hash, not stored */
    bool gen_visits;
    long long gv_first, gv_last, gv_max;
    uint64_t gv_seed;
    bool visits_permission; /* false: every visits request answers the PolicyAgent 403 */
};

struct client {
    char *id;
    char *secret;
};

struct scroll {
    char *id;
    size_t seller;
    size_t pos;
    long long issued_ms;
    char *status_filter; /* NULL = all */
};

struct world {
    pthread_mutex_t lock;
    struct client *clients;
    size_t nclients;
    struct seller *sellers;
    size_t nsellers;
    long long access_ttl_s;
    long long scroll_ttl_s;
    bool multiget_status_code_key;
    bool scan_end_null;
    bool visits_over_max_error;
    bool visits_future_error; /* an ending after today (UTC) answers 400 */
    long long scroll_id_length;
    struct scroll *scrolls;
    size_t nscrolls, capscrolls;
    uint64_t seed;
    struct rng token_rng;
    unsigned long long token_serial;
    unsigned long long scroll_serial;
    struct hook *hooks;
    size_t nhooks, caphooks;
    long long hook_serial;
};

/* An order change deferred until a seller's orders search page is served (fake_orders.c). */
struct hook {
    long long id;
    long long seller; /* user id */
    long long order_id;
    char action[16];
    json_t *body;        /* the action's parameters */
    long long on_page;   /* fire after the N-th page served since installed (0 = unused) */
    long long on_offset; /* or after the first page served at this offset (-1 = unused) */
    long long pages_seen;
    bool applied;
    long long applied_ms;
    json_t *result; /* the order after the change, or {"error": ...} */
};

extern struct world g_world;

/* Helpers shared by the loader and the handlers (world.lock held). */
struct seller *world_seller(long long user_id);
struct item *world_item(const char *id, struct seller **owner);
/* Explicit count, else the generated one, else 0. */
long long world_visits(const struct seller *s, const struct item *it, long long day);
/* Sets new tokens for s (rotation). */
void world_rotate_tokens(struct seller *s);
struct order *world_order_find(struct seller *s, long long id);
struct order *world_order_find_any(long long id, struct seller **owner);
/* Normalizes o (a whole order, no --rebase) and stores it over its slot or as a new order,
 * keeping the seller's orders sorted. false (with the reason in err) changes nothing. */
bool world_order_put(struct seller *s, json_t *o, char *err, size_t errlen);
/* A page of s's orders search was served (fake_orders.c: due hooks are applied). */
void hooks_page_served(struct seller *s, long long offset);
void hooks_free(void);
/* The orders endpoints (fake_api_orders.c), world.lock held. */
void orders_search(const struct api_request *rq, struct seller *s, struct reply *out);
void orders_get(const struct api_request *rq, struct seller *s, struct reply *out);
/* The real API's style for last_updated: "2024-01-15T23:30:00.000-03:00". */
void ts_now_sp(char out[TS_BUF]);

#endif
