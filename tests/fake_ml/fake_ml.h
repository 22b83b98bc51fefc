/* fake_ml: a fake Mercado Livre API for tests, the demo and the benchmark (README.md).
 * One process-wide world (sellers, items, orders, visits, tokens) loaded from a scenario
 * file and guarded by one mutex; statistics and fault rules have their own lock. */
#ifndef FAKE_ML_H
#define FAKE_ML_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define MAX_BODY_BYTES   (1024 * 1024) /* request bodies above this get 413 */
#define LOG_PER_ENDPOINT 1000
#define VISITS_MAX_DAYS  150
#define DATE_BUF         32 /* date_format output */
#define TS_BUF           64 /* ts_format output */

/* ------------------------------------------------------------------ endpoints */
enum endpoint {
    EP_OAUTH_TOKEN,
    EP_USERS_ME,
    EP_ITEMS_SEARCH,
    EP_ITEMS_MULTIGET,
    EP_ORDERS_SEARCH,
    EP_ORDERS_GET,
    EP_VISITS,
    EP_OTHER, /* an unknown path outside /__fake/ (404) */
    EP_COUNT
};
const char *endpoint_name(enum endpoint ep);
/* Parses a fault rule's endpoint name; "any" gives -1. Returns false when unknown. */
bool endpoint_parse(const char *name, int *ep);
/* Which endpoint a path names (by path only; the handler checks the method). */
enum endpoint endpoint_classify(const char *path);

/* ------------------------------------------------------------------ bounded string buffer */
struct sbuf {
    char *data; /* always NUL-terminated once anything was added */
    size_t len;
    size_t cap;
};
void sb_add(struct sbuf *b, const char *s, size_t n);
void sb_adds(struct sbuf *b, const char *s);
void sb_addf(struct sbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Hands the contents over (caller frees; never NULL) and resets the buffer. */
char *sb_take(struct sbuf *b, size_t *len);
void sb_free(struct sbuf *b);

/* Aborts with a message (out of memory and broken invariants only). */
void fatal(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
void *xmalloc(size_t n);
void *xcalloc(size_t n, size_t size);
void *xrealloc(void *p, size_t n);
char *xstrdup(const char *s);
char *xstrndup(const char *s, size_t n);
/* json_dumps that aborts on failure; caller frees. */
char *dump_json(const json_t *j);

/* ------------------------------------------------------------------ parsing */
/* Whole string is a base-10 integer within [min, max]. */
bool parse_ll(const char *s, long long min, long long max, long long *out);
/* Query string / form body: key=value pairs split on '&', percent-decoded, '+' = space. */
struct params {
    size_t n;
    char **keys;
    char **vals;
};
void params_parse(struct params *p, const char *s, size_t len);
/* First value of key, or NULL. */
const char *params_get(const struct params *p, const char *key);
void params_free(struct params *p);
/* Percent-decodes into a new string (plus_is_space for query/form data); NULL on bad escape. */
char *url_decode(const char *s, size_t len, bool plus_is_space);

/* ------------------------------------------------------------------ time */
long long now_ms(void);  /* wall clock, ms since the epoch */
long long mono_us(void); /* monotonic, µs */
long long days_from_civil(long long y, unsigned m, unsigned d);
void civil_from_days(long long z, long long *y, unsigned *m, unsigned *d);
/* YYYY-MM-DDTHH:MM:SS[.fraction](Z|±HH:MM). offset_min receives the offset (0 for Z). */
bool ts_parse(const char *s, long long *ms, int *offset_min);
/* "2024-01-15T23:30:00.000-03:00" (offset_min != 0 or !zulu) or "...000Z" (zulu). */
void ts_format(long long ms, int offset_min, bool zulu, char out[TS_BUF]);
/* YYYY-MM-DD → day number (days since 1970-01-01). */
bool date_parse(const char *s, long long *day);
void date_format(long long day, char out[DATE_BUF]);
static inline long long floor_div(long long a, long long b)
{
    long long q = a / b;
    return (a % b != 0 && ((a < 0) != (b < 0))) ? q - 1 : q;
}

/* ------------------------------------------------------------------ deterministic PRNG */
uint64_t mix64(uint64_t x);
uint64_t hash_str(const char *s);
struct rng {
    uint64_t s;
};
uint64_t rng_next(struct rng *r);
/* Uniform in [0, n) (n > 0). */
uint64_t rng_below(struct rng *r, uint64_t n);

/* ------------------------------------------------------------------ replies */
enum stream_mode { STREAM_NONE, STREAM_DRIP, STREAM_OVERSIZED };
struct reply {
    unsigned status;
    char *body; /* malloc'ed JSON text */
    size_t len;
    char retry_after[64];     /* "" = no Retry-After */
    char *location;           /* malloc'ed, NULL = none */
    char content_missing[96]; /* X-Content-Missing value, "" = none (206 answers) */
    enum stream_mode stream;
    long long drip_ms;
    long long oversized_bytes;
};
/* Sets status and takes ownership of j (a new reference). */
void reply_json(struct reply *r, unsigned status, json_t *j);
/* The usual {"message","error","status","cause":[]} body. */
void reply_error(struct reply *r, unsigned status, const char *error, const char *message);
void reply_free(struct reply *r);

/* ------------------------------------------------------------------ the world (fake_state.c) */
struct world_config {
    uint64_t seed;
    bool seed_set;        /* --seed given: overrides the scenario's "seed" */
    long long rebase_day; /* --rebase DATE: day number, or LLONG_MIN */
    long long start_ms;   /* process start, the default generator anchor */
};
/* Loads and validates the scenario; prints the reason to stderr and returns false. */
bool world_load(const char *path, const struct world_config *cfg);
void world_free(void);

/* Runtime knobs (/__fake/config). */
long long world_scroll_ttl_s(void);
void world_set_scroll_ttl_s(long long s);
long long world_access_ttl_s(void);
void world_set_access_ttl_s(long long s);
bool world_visits_future_error(void);
void world_set_visits_future_error(bool error);
long long world_scroll_id_length(void);
void world_set_scroll_id_length(long long n);
#define SCROLL_ID_MIN     90
#define SCROLL_ID_MAX     4096
#define SCROLL_ID_DEFAULT 114 /* the length of the example in ML's "Items y búsquedas" page */

/* One API request as the handlers see it. */
struct api_request {
    const char *method;
    const char *path;           /* raw, not decoded */
    const struct params *query; /* decoded */
    const char *authorization;  /* header value or NULL */
    const char *content_type;   /* header value or NULL */
    const char *body;
    size_t body_len;
    enum endpoint endpoint;
    json_t *log_params; /* borrowed: the handler may add parameters worth logging */
};
/* Answers a Mercado Livre API request (auth included). */
void api_handle(const struct api_request *rq, struct reply *out);

/* Control API helpers on the world (fake_control.c calls these). Each returns the HTTP status
 * and fills *out (new reference) with the body. */
unsigned world_tokens(long long user_id, json_t **out);
unsigned world_expire_access_token(long long user_id, json_t **out);
unsigned world_revoke_refresh_token(long long user_id, json_t **out);
unsigned world_upsert_orders(long long user_id, json_t *orders, json_t **out);
unsigned world_upsert_items(long long user_id, json_t *items, json_t **out);
unsigned world_set_visits(long long user_id, json_t *visits, json_t **out);
unsigned world_set_visits_permission(long long user_id, json_t *body, json_t **out);
unsigned world_summary(json_t **out);
/* POST /__fake/sellers/{id}/orders/{order_id}/{action} (fake_orders.c): cancel, pay, refund,
 * partial-refund, close; now, or as a hook when an orders search page is served. */
unsigned world_order_action(long long user_id, long long order_id, const char *action, json_t *body,
                            json_t **out);
unsigned world_hooks(json_t **out);
unsigned world_hooks_clear(json_t **out);

/* ------------------------------------------------------------------ stats and faults */
struct fault_action {
    bool fired;
    unsigned status; /* 0 = answer normally (latency or a streaming mode only) */
    char retry_after[64];
    long long latency_ms;
    int mode;   /* FAULT_MODE_* */
    char *body; /* malloc'ed JSON body override or NULL */
    long long drip_ms;
    long long size_bytes;
    char *location;   /* malloc'ed redirect target override or NULL */
    unsigned omit;    /* partial: MISSING_* bits */
    bool omit_absent; /* partial: remove the keys instead of answering {} */
};
enum {
    FAULT_MODE_NONE,
    FAULT_MODE_SLOW_DRIP,
    FAULT_MODE_OVERSIZED,
    FAULT_MODE_REDIRECT_HTTP,
    FAULT_MODE_PARTIAL
};
/* The order fields a 206 may lack (ML's orders page, "Código de respuesta HTTP"). */
enum {
    MISSING_BUYER = 1,
    MISSING_FEEDBACK = 2,
    MISSING_MEDIATIONS = 4,
    MISSING_SELLER = 8,
    MISSING_SHIPPING = 16,
    MISSING_COUNT = 5
};
const char *missing_name(int bit_index);
/* Turns a 200 orders answer (a search page or one order) into the 206 partial answer. */
void partial_apply(struct reply *r, unsigned omit, bool absent);

void stats_init(void);
void stats_free(void);
/* A request to the API started / was answered (status 0 = abandoned). */
void stats_begin(enum endpoint ep);
void stats_end(enum endpoint ep, long long start_wall_ms, long long start_us, const char *method,
               const char *path, const char *query, json_t *params, unsigned status, bool fault,
               bool leave_in_flight);
void stats_in_flight_done(void);
void stats_note_orders_limit(long long limit);
void stats_note_multiget_ids(long long n);
void stats_note_search_limit(long long limit);
enum counter {
    C_EXPIRED_TOKEN,
    C_INVALID_TOKEN,
    C_REFRESH,
    C_INVALID_GRANT,
    C_INVALID_CLIENT,
    C_SCAN_PAGES,
    C_SCROLL_ERRORS,
    C_FAULTS_SERVED,
    C_PARTIAL_ANSWERS,
    C_VISITS_FORBIDDEN,
    C_VISITS_FUTURE_ENDINGS,
    C_HOOKS_APPLIED,
    C_COUNT
};
void stats_count(enum counter c);

void faults_init(void);
void faults_free(void);
/* Installs the rules (a JSON array); on error fills errbuf and changes nothing. */
bool faults_install(const json_t *rules, char *errbuf, size_t errlen);
/* Picks the rule that fires for this request, if any (counts it as served). */
void faults_pick(enum endpoint ep, struct fault_action *a);
void fault_action_free(struct fault_action *a);

/* The control API (/__fake/...). */
void control_handle(const char *method, const char *path, const struct params *query,
                    const char *body, size_t body_len, struct reply *out);

/* Process-wide settings the handlers read. */
long long latency_get(void);
void latency_set(long long ms);
bool verbose_get(void);
/* Sleeps up to ms; returns false when the process is stopping (sleep cut short). */
bool fake_sleep_ms(long long ms);
bool fake_stopping(void);

#endif
