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
    struct order *orders; /* sorted by (created_ms, id) */
    size_t norders, caporders;
    /* generate_visits: days [gv_first, gv_last] computed from a hash, not stored */
    bool gen_visits;
    long long gv_first, gv_last, gv_max;
    uint64_t gv_seed;
};

struct client {
    char *id;
    char *secret;
};

struct scroll {
    char id[64];
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
    struct scroll *scrolls;
    size_t nscrolls, capscrolls;
    uint64_t seed;
    struct rng token_rng;
    unsigned long long token_serial;
    unsigned long long scroll_serial;
};

extern struct world g_world;

/* Helpers shared by the loader and the handlers (world.lock held). */
struct seller *world_seller(long long user_id);
struct item *world_item(const char *id, struct seller **owner);
/* Explicit count, else the generated one, else 0. */
long long world_visits(const struct seller *s, const struct item *it, long long day);
/* Sets new tokens for s (rotation). */
void world_rotate_tokens(struct seller *s);

#endif
