/* config: the table below is the single place that knows every variable. */
#include "jobsd/config.h"
#include "jobsd/util.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

enum kind { K_STR, K_INT, K_BOOL, K_LOG_FORMAT, K_LOG_LEVEL };

enum flag {
    F_SECRET = 1 << 0,   /* never printed; may come from NAME_FILE */
    F_REQUIRED = 1 << 1, /* required by the uses in `required_by` */
};

struct var {
    const char *name;
    enum kind kind;
    size_t offset;
    const char *def; /* default as text (NULL = unset) */
    long long min, max;
    unsigned flags;
    unsigned used_by;     /* enum config_use mask */
    unsigned required_by; /* enum config_use mask */
    /* Extra check for strings; returns a reason or NULL. */
    const char *(*check)(const char *value);
};

#define ALL    (CONFIG_SERVE | CONFIG_MIGRATE | CONFIG_JOB | CONFIG_TOKEN | CONFIG_HEALTHCHECK)
#define SJ     (CONFIG_SERVE | CONFIG_JOB)
#define OFF(f) offsetof(struct config, f)

static const char *check_key32(const char *v)
{
    return strlen(v) < 32 ? "must be at least 32 bytes" : NULL;
}

static const char *check_timezone(const char *v)
{
    size_t n = strlen(v);
    if (n == 0 || n > 64)
        return "must be a time zone name such as America/Sao_Paulo";
    for (size_t i = 0; i < n; i++) {
        char c = v[i];
        bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                  c == '/' || c == '_' || c == '+' || c == '-';
        if (!ok)
            return "must be a time zone name such as America/Sao_Paulo";
    }
    return NULL;
}

static const char *check_bind(const char *v)
{
    unsigned char addr[16];
    if (inet_pton(AF_INET, v, addr) == 1 || inet_pton(AF_INET6, v, addr) == 1)
        return NULL;
    return "must be an IPv4 or IPv6 address such as 0.0.0.0";
}

static const char *check_url(const char *v)
{
    if (strncmp(v, "https://", 8) == 0 || strncmp(v, "http://", 7) == 0)
        return strlen(v) > 1024 ? "is too long" : NULL;
    return "must be an https:// URL";
}

static const char *check_origins(const char *v)
{
    /* origin[,origin...], each scheme://host[:port] without a path. */
    const char *p = v;
    while (*p) {
        const char *end = strchr(p, ',');
        size_t n = end ? (size_t)(end - p) : strlen(p);
        while (n > 0 && *p == ' ') {
            p++;
            n--;
        }
        while (n > 0 && p[n - 1] == ' ')
            n--;
        bool http = n > 7 && strncmp(p, "http://", 7) == 0;
        bool https = n > 8 && strncmp(p, "https://", 8) == 0;
        if (!http && !https)
            return "must be a comma-separated list of origins such as https://app.example.com";
        const char *host = p + (https ? 8 : 7);
        if (memchr(host, '/', n - (size_t)(host - p)))
            return "origins have no path (https://app.example.com, not https://app.example.com/)";
        if (!end)
            break;
        p = end + 1;
    }
    return NULL;
}

static const char *check_b64key32(const char *v)
{
    unsigned char out[64];
    size_t n = 0;
    if (!util_base64_decode(v, strlen(v), false, out, sizeof out, &n) || n != 32)
        return "must be 32 bytes encoded in base64 (openssl rand -base64 32)";
    return NULL;
}

static const char *check_nonempty_line(const char *v)
{
    if (strlen(v) > 1024)
        return "is too long";
    for (const char *p = v; *p; p++)
        if ((unsigned char)*p < 0x20)
            return "must not contain control characters";
    return NULL;
}

/* SCHEDULES: lines of printable text (tabs allowed), 64 KiB at most. */
static const char *check_schedules(const char *v)
{
    if (strlen(v) > 65536)
        return "is longer than 64 KiB (use SCHEDULES_FILE)";
    for (const char *p = v; *p; p++)
        if ((unsigned char)*p < 0x20 && *p != '\n' && *p != '\r' && *p != '\t')
            return "must not contain control characters other than newlines and tabs";
    return NULL;
}

/* clang-format off */
static const struct var VARS[] = {
    {"DATABASE_URL", K_STR, OFF(database_url), NULL, 0, 0, F_SECRET | F_REQUIRED,
     CONFIG_SERVE | CONFIG_MIGRATE | CONFIG_JOB, CONFIG_SERVE | CONFIG_MIGRATE | CONFIG_JOB, NULL},
    {"INTERNAL_JOBS_KEY", K_STR, OFF(internal_key), NULL, 0, 0, F_SECRET | F_REQUIRED,
     CONFIG_SERVE, CONFIG_SERVE, check_key32},
    {"INTERNAL_JOBS_KEY_PREVIOUS", K_STR, OFF(internal_key_previous), NULL, 0, 0, F_SECRET,
     CONFIG_SERVE, 0, check_key32},
    {"JWT_SECRET", K_STR, OFF(jwt_secret), NULL, 0, 0, F_SECRET | F_REQUIRED,
     CONFIG_SERVE | CONFIG_TOKEN, CONFIG_TOKEN, check_key32},
    {"JWT_SECRET_PREVIOUS", K_STR, OFF(jwt_secret_previous), NULL, 0, 0, F_SECRET,
     CONFIG_SERVE, 0, check_key32},
    {"JWT_ISSUER", K_STR, OFF(jwt_issuer), NULL, 0, 0, 0, CONFIG_SERVE | CONFIG_TOKEN, 0,
     check_nonempty_line},
    {"JWT_AUDIENCE", K_STR, OFF(jwt_audience), NULL, 0, 0, 0, CONFIG_SERVE | CONFIG_TOKEN, 0,
     check_nonempty_line},
    {"JWT_LEEWAY_SECONDS", K_INT, OFF(jwt_leeway_seconds), "30", 0, 300, 0, CONFIG_SERVE, 0, NULL},
    {"CORS_ALLOWED_ORIGINS", K_STR, OFF(cors_allowed_origins), NULL, 0, 0, 0, CONFIG_SERVE, 0,
     check_origins},
    {"PORT", K_INT, OFF(port), "8080", 0, 65535, 0, CONFIG_SERVE | CONFIG_HEALTHCHECK, 0, NULL},
    {"BIND_ADDRESS", K_STR, OFF(bind_address), "0.0.0.0", 0, 0, 0, CONFIG_SERVE, 0, check_bind},
    {"JOBS_TIMEZONE", K_STR, OFF(jobs_timezone), "America/Sao_Paulo", 0, 0, 0, SJ, 0,
     check_timezone},
    {"REBUILD_MAX_RANGE_DAYS", K_INT, OFF(rebuild_max_range_days), "366", 1, 3660, 0, SJ, 0, NULL},
    {"REBUILD_TIMEOUT_SECONDS", K_INT, OFF(rebuild_timeout_seconds), "600", 1, 86400, 0, SJ, 0,
     NULL},
    {"DB_QUERY_TIMEOUT_MS", K_INT, OFF(db_query_timeout_ms), "5000", 100, 600000, 0, SJ, 0, NULL},
    {"HTTP_THREADS", K_INT, OFF(http_threads), "4", 1, 64, 0, CONFIG_SERVE, 0, NULL},
    {"JOB_WORKERS", K_INT, OFF(job_workers), "2", 1, 64, 0, CONFIG_SERVE, 0, NULL},
    {"DB_POOL_SIZE", K_INT, OFF(db_pool_size), NULL, 2, 1000, 0, CONFIG_SERVE, 0, NULL},
    {"MAX_BODY_BYTES", K_INT, OFF(max_body_bytes), "65536", 1024, 16777216, 0, CONFIG_SERVE, 0,
     NULL},
    {"MAX_CONNECTIONS", K_INT, OFF(max_connections), "4096", 1, 100000, 0, CONFIG_SERVE, 0, NULL},
    {"PER_IP_CONNECTIONS", K_INT, OFF(per_ip_connections), "32", 0, 100000, 0, CONFIG_SERVE, 0,
     NULL},
    {"HEADER_TIMEOUT_SECONDS", K_INT, OFF(header_timeout_seconds), "10", 1, 300, 0, CONFIG_SERVE,
     0, NULL},
    {"SYNC_WAIT_SECONDS", K_INT, OFF(sync_wait_seconds), "100", 0, 3600, 0, CONFIG_SERVE, 0, NULL},
    {"JOB_LEASE_SECONDS", K_INT, OFF(job_lease_seconds), "60", 2, 3600, 0, SJ, 0, NULL},
    {"JOB_MAX_ATTEMPTS", K_INT, OFF(job_max_attempts), "3", 1, 100, 0, SJ, 0, NULL},
    {"SHUTDOWN_GRACE_SECONDS", K_INT, OFF(shutdown_grace_seconds), "25", 0, 3600, 0, CONFIG_SERVE,
     0, NULL},
    {"QUEUE_MAX_QUEUED", K_INT, OFF(queue_max_queued), "1000", 0, 1000000, 0, CONFIG_SERVE, 0,
     NULL},
    {"FLEET_MAX_RUNNING", K_INT, OFF(fleet_max_running), "4", 1, 10000, 0, SJ, 0, NULL},
    {"JOB_RETENTION_DAYS", K_INT, OFF(job_retention_days), "90", 0, 36500, 0,
     CONFIG_SERVE | CONFIG_PRUNE, 0, NULL},
    {"FRESHNESS_MAX_AGE_HOURS", K_INT, OFF(freshness_max_age_hours), "26", 1, 8760, 0,
     CONFIG_SERVE, 0, NULL},
    {"FRESHNESS_CHECK_SECONDS", K_INT, OFF(freshness_check_seconds), "300", 0, 86400, 0,
     CONFIG_SERVE, 0, NULL},
    {"DATABASE_WAIT_SECONDS", K_INT, OFF(database_wait_seconds), "60", 0, 3600, 0, CONFIG_SERVE,
     0, NULL},
    {"SCHEDULES", K_STR, OFF(schedules), NULL, 0, 0, 0, SJ, 0, check_schedules},
    {"SCHEDULES_FILE", K_STR, OFF(schedules_file), NULL, 0, 0, 0, SJ, 0, check_nonempty_line},
    {"SCHEDULE_CATCHUP_SECONDS", K_INT, OFF(schedule_catchup_seconds), "21600", 0, 604800, 0, SJ,
     0, NULL},
    {"MIGRATE_ON_START", K_BOOL, OFF(migrate_on_start), "true", 0, 0, 0, CONFIG_SERVE, 0, NULL},
    {"ML_API_BASE_URL", K_STR, OFF(ml_api_base_url), "https://api.mercadolibre.com", 0, 0, 0, SJ,
     0, check_url},
    {"ML_CLIENT_ID", K_STR, OFF(ml_client_id), NULL, 0, 0, 0, SJ, 0, check_nonempty_line},
    {"ML_CLIENT_SECRET", K_STR, OFF(ml_client_secret), NULL, 0, 0, F_SECRET, SJ, 0, NULL},
    {"ML_MAX_RPS", K_INT, OFF(ml_max_rps), "5", 1, 10000, 0, SJ, 0, NULL},
    {"ML_CONCURRENCY", K_INT, OFF(ml_concurrency), "4", 1, 64, 0, SJ, 0, NULL},
    {"ML_HTTP_TIMEOUT_MS", K_INT, OFF(ml_http_timeout_ms), "30000", 1000, 600000, 0, SJ, 0, NULL},
    {"INSTANCE_HEARTBEAT_SECONDS", K_INT, OFF(instance_heartbeat_seconds), "2", 1, 60, 0, SJ, 0,
     NULL},
    {"INSTANCE_DEAD_SECONDS", K_INT, OFF(instance_dead_seconds), "10", 4, 600, 0, SJ, 0, NULL},
    {"TOKEN_ENCRYPTION_KEY", K_STR, OFF(token_encryption_key), NULL, 0, 0, F_SECRET, SJ, 0,
     check_b64key32},
    {"LOG_FORMAT", K_LOG_FORMAT, OFF(log_format), "text", 0, 0, 0, ALL, 0, NULL},
    {"LOG_LEVEL", K_LOG_LEVEL, OFF(log_level), "info", 0, 0, 0, ALL, 0, NULL},
};
/* clang-format on */

#define NVARS (sizeof VARS / sizeof VARS[0])

static const char *default_getenv(void *ctx, const char *name)
{
    (void)ctx;
    return getenv(name);
}

/* Reads a secret file: at most 64 KiB, one trailing newline stripped. Returns a reason on
 * failure (naming the path, which is not secret). */
static char *read_secret_file(const char *path, char *why, size_t why_cap)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        snprintf(why, why_cap, "cannot read %s: %s", path, strerror(errno));
        return NULL;
    }
    size_t cap = 65536, len = 0;
    char *data = util_xmalloc(cap + 1);
    size_t n;
    while ((n = fread(data + len, 1, cap - len, f)) > 0) {
        len += n;
        if (len == cap)
            break;
    }
    bool too_big = len == cap && fgetc(f) != EOF;
    bool failed = ferror(f);
    fclose(f);
    if (too_big || failed) {
        free(data);
        snprintf(why, why_cap, too_big ? "%s is larger than 64 KiB" : "cannot read %s", path);
        return NULL;
    }
    if (len > 0 && data[len - 1] == '\n') {
        len--;
        if (len > 0 && data[len - 1] == '\r')
            len--;
    }
    data[len] = '\0';
    if (memchr(data, '\0', len)) {
        free(data);
        snprintf(why, why_cap, "%s contains a NUL byte", path);
        return NULL;
    }
    return data;
}

static bool parse_bool(const char *v, bool *out)
{
    static const char *yes[] = {"true", "1", "yes", "on"};
    static const char *no[] = {"false", "0", "no", "off"};
    for (size_t i = 0; i < 4; i++) {
        if (util_strcaseeq(v, yes[i])) {
            *out = true;
            return true;
        }
        if (util_strcaseeq(v, no[i])) {
            *out = false;
            return true;
        }
    }
    return false;
}

__attribute__((format(printf, 4, 5))) static void report(FILE *errors, int *problems,
                                                         const char *name, const char *fmt, ...)
{
    (*problems)++;
    if (!errors)
        return;
    fprintf(errors, "config: %s: ", name);
    va_list ap;
    va_start(ap, fmt);
    vfprintf(errors, fmt, ap);
    va_end(ap);
    fputc('\n', errors);
}

/* Value shown in an error message: secrets never; long values cut. */
static const char *shown(const struct var *v, const char *value, char *tmp, size_t cap)
{
    if (v->flags & F_SECRET)
        return "<redacted>";
    snprintf(tmp, cap, "%.60s%s", value, strlen(value) > 60 ? "..." : "");
    return tmp;
}

/* A variable's text: from the environment, or from NAME_FILE for a secret (*owned then holds
 * the file's content, to wipe and free), or its default; NULL when it stays unset. Returns
 * the number of problems reported. */
static int raw_value(const struct var *v, enum config_use use, config_getenv_fn get, void *ctx,
                     FILE *errors, const char **out, char **owned)
{
    int problems = 0;
    const char *value = get(ctx, v->name);
    *out = NULL;
    *owned = NULL;
    if (value && !*value)
        value = NULL; /* an empty variable counts as unset */
    char fname[96];
    util_fmt(fname, sizeof fname, "%s_FILE", v->name);
    const char *path = (v->flags & F_SECRET) ? get(ctx, fname) : NULL;
    if (path && *path && value) {
        report(errors, &problems, v->name, "both %s and its _FILE variant are set; set only one",
               v->name);
        return problems;
    }
    if (path && *path) {
        char why[512];
        *owned = read_secret_file(path, why, sizeof why);
        if (!*owned) {
            report(errors, &problems, fname, "%s", why);
            return problems;
        }
        if (!**owned) { /* an empty file counts as unset */
            free(*owned);
            *owned = NULL;
        }
        value = *owned;
    }
    if (!value && (v->required_by & use)) {
        if (v->flags & F_SECRET)
            report(errors, &problems, v->name, "is required (set it or %s_FILE)", v->name);
        else
            report(errors, &problems, v->name, "is required");
        return problems;
    }
    *out = value ? value : v->def;
    return problems;
}

/* The log level by name. */
static bool parse_level(const char *value, enum log_level *out)
{
    static const char *names[] = {"debug", "info", "warn", "error"};
    for (int i = 0; i < 4; i++) {
        if (util_strcaseeq(value, names[i])) {
            *out = (enum log_level)i;
            return true;
        }
    }
    return false;
}

/* Checks value against the variable's kind and stores it (a string takes *owned when set).
 * Returns the number of problems reported. */
static int store_value(struct config *c, const struct var *v, const char *value, char **owned,
                       FILE *errors)
{
    int problems = 0;
    char *slot = (char *)c + v->offset;
    char tmp[96];
    long long n;
    bool b;
    switch (v->kind) {
    case K_STR: {
        const char *why = v->check ? v->check(value) : NULL;
        if (why) {
            report(errors, &problems, v->name, "%s", why);
            break;
        }
        char **str = (char **)(void *)slot;
        free(*str);
        *str = *owned ? *owned : util_strdup(value);
        *owned = NULL;
        break;
    }
    case K_INT:
        if (util_parse_i64(value, v->min, v->max, &n))
            *(long long *)(void *)slot = n;
        else
            report(errors, &problems, v->name, "must be an integer from %lld to %lld (got \"%s\")",
                   v->min, v->max, shown(v, value, tmp, sizeof tmp));
        break;
    case K_BOOL:
        if (parse_bool(value, &b))
            *(bool *)(void *)slot = b;
        else
            report(errors, &problems, v->name, "must be true or false (got \"%s\")",
                   shown(v, value, tmp, sizeof tmp));
        break;
    case K_LOG_FORMAT:
        if (util_strcaseeq(value, "text"))
            *(enum log_format *)(void *)slot = LOG_TEXT;
        else if (util_strcaseeq(value, "json"))
            *(enum log_format *)(void *)slot = LOG_JSON;
        else
            report(errors, &problems, v->name, "must be text or json (got \"%s\")",
                   shown(v, value, tmp, sizeof tmp));
        break;
    case K_LOG_LEVEL:
        if (!parse_level(value, (enum log_level *)(void *)slot))
            report(errors, &problems, v->name, "must be debug, info, warn or error (got \"%s\")",
                   shown(v, value, tmp, sizeof tmp));
        break;
    }
    return problems;
}

static int load_var(struct config *c, const struct var *v, enum config_use use,
                    config_getenv_fn get, void *ctx, FILE *errors)
{
    const char *value;
    char *owned;
    int problems = raw_value(v, use, get, ctx, errors, &value, &owned);
    if (problems == 0 && value)
        problems = store_value(c, v, value, &owned, errors);
    if (owned) {
        util_wipe_str(owned);
        free(owned);
    }
    return problems;
}

static const char *default_getenv_none(void *ctx, const char *name)
{
    (void)ctx;
    (void)name;
    return NULL;
}

int config_load(struct config *c, enum config_use use, config_getenv_fn get, void *ctx,
                FILE *errors)
{
    memset(c, 0, sizeof *c);
    if (!get)
        get = default_getenv;
    int problems = 0;
    /* Defaults first for every variable, so a config is complete whatever the use. */
    for (size_t i = 0; i < NVARS; i++) {
        const struct var *v = &VARS[i];
        if (!(v->used_by & use) && v->def) {
            int ignored = load_var(c, v, 0, default_getenv_none, NULL, NULL);
            (void)ignored;
        }
    }
    for (size_t i = 0; i < NVARS; i++) {
        const struct var *v = &VARS[i];
        if (v->used_by & use)
            problems += load_var(c, v, use, get, ctx, errors);
    }
    if (c->db_pool_size == 0)
        c->db_pool_size = c->http_threads + c->job_workers + 4;
    if ((use & CONFIG_SERVE) && c->internal_key && c->internal_key_previous &&
        strcmp(c->internal_key, c->internal_key_previous) == 0) {
        /* Step 1 of the documented rotation (docs/operations.md section 4) runs with both
         * holding the old key, so this is a warning, never a reason to refuse to start. */
        if (errors)
            fprintf(errors, "config: warning: INTERNAL_JOBS_KEY_PREVIOUS: equals "
                            "INTERNAL_JOBS_KEY (expected only in step 1 of a key rotation)\n");
    }
    if ((use & CONFIG_JOB || use & CONFIG_SERVE) &&
        ((c->ml_client_id != NULL) != (c->ml_client_secret != NULL))) {
        problems++;
        if (errors)
            fprintf(errors, "config: %s: is required when %s is set\n",
                    c->ml_client_id ? "ML_CLIENT_SECRET" : "ML_CLIENT_ID",
                    c->ml_client_id ? "ML_CLIENT_ID" : "ML_CLIENT_SECRET");
    }
    if ((use & SJ) && c->instance_dead_seconds < 2 * c->instance_heartbeat_seconds + 2) {
        /* A live instance must renew at least twice within the window, and stop 1.5 s
         * before the others may count it out (jobsd/instance.h). */
        problems++;
        if (errors)
            fprintf(errors, "config: INSTANCE_DEAD_SECONDS: must be at least "
                            "2 x INSTANCE_HEARTBEAT_SECONDS + 2\n");
    }
    return problems;
}

void config_free(struct config *c)
{
    for (size_t i = 0; i < NVARS; i++) {
        const struct var *v = &VARS[i];
        if (v->kind != K_STR)
            continue;
        char **slot = (char **)(void *)((char *)c + v->offset);
        if (*slot && (v->flags & F_SECRET))
            util_wipe_str(*slot);
        free(*slot);
        *slot = NULL;
    }
}

void config_print(const struct config *c, enum config_use use, FILE *out,
                  char *(*redact_url)(const char *url))
{
    const char *base = (const char *)c;
    for (size_t i = 0; i < NVARS; i++) {
        const struct var *v = &VARS[i];
        if (!(v->used_by & use))
            continue;
        switch (v->kind) {
        case K_STR: {
            const char *s = *(char *const *)(const void *)(base + v->offset);
            if (!s) {
                fprintf(out, "%s=<unset>\n", v->name);
            } else if (v->offset == OFF(database_url) && redact_url) {
                char *r = redact_url(s);
                fprintf(out, "%s=%s\n", v->name, r ? r : "<redacted>");
                free(r);
            } else if (v->flags & F_SECRET) {
                fprintf(out, "%s=<redacted>\n", v->name);
            } else {
                fprintf(out, "%s=%s\n", v->name, s);
            }
            break;
        }
        case K_INT:
            fprintf(out, "%s=%lld\n", v->name,
                    *(const long long *)(const void *)(base + v->offset));
            break;
        case K_BOOL:
            fprintf(out, "%s=%s\n", v->name,
                    *(const bool *)(const void *)(base + v->offset) ? "true" : "false");
            break;
        case K_LOG_FORMAT:
            fprintf(out, "%s=%s\n", v->name, c->log_format == LOG_JSON ? "json" : "text");
            break;
        case K_LOG_LEVEL:
            fprintf(out, "%s=%s\n", v->name, log_level_name(c->log_level));
            break;
        }
    }
}
