/* scheduler: see scheduler.h. */
#include "jobsd/scheduler.h"
#include "jobsd/db.h"
#include "jobsd/job_exec.h"
#include "jobsd/job_kinds.h"
#include "jobsd/log.h"
#include "jobsd/util.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------------ parsing */

void scheduler_clear(struct schedule_set *set)
{
    for (size_t i = 0; i < set->n; i++)
        json_decref(set->items[i].body);
    free(set->items);
    cron_zone_free(&set->zone);
    memset(set, 0, sizeof *set);
}

static bool valid_name(const char *s, size_t n)
{
    if (n == 0 || n >= SCHEDULE_NAME_MAX)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == '-'))
            return false;
    }
    return true;
}

/* One schedule line [s, s + n) (no newline, not a comment, not blank) into *out. */
static int parse_line(const char *s, size_t n, struct schedule *out, struct err *e)
{
    const char *brace = memchr(s, '{', n);
    if (!brace)
        return err_set(e, 400, "invalid_field",
                       "expected <name> <cron fields> <kind> <JSON body>: no JSON body");
    size_t head = (size_t)(brace - s);
    const char *name_end = s;
    while (name_end < brace && *name_end != ' ' && *name_end != '\t')
        name_end++;
    if (!valid_name(s, (size_t)(name_end - s)))
        return err_set(e, 400, "invalid_field",
                       "the schedule name must be 1 to 40 of A-Z a-z 0-9 . _ -");
    memcpy(out->name, s, (size_t)(name_end - s));
    /* The kind: the last word before the body. */
    const char *kend = brace;
    while (kend > name_end && (kend[-1] == ' ' || kend[-1] == '\t'))
        kend--;
    const char *kstart = kend;
    while (kstart > name_end && kstart[-1] != ' ' && kstart[-1] != '\t')
        kstart--;
    char kind[JOB_TYPE_MAX];
    size_t klen = (size_t)(kend - kstart);
    if (klen == 0 || klen >= sizeof kind)
        return err_set(e, 400, "invalid_field", "schedule %s: no job kind", out->name);
    memcpy(kind, kstart, klen);
    kind[klen] = '\0';
    out->kind = job_kind_by_name(kind);
    if (!out->kind)
        return err_set(e, 400, "invalid_field",
                       "schedule %s: unknown job kind \"%s\" (jobsd kinds)", out->name, kind);
    size_t clen = (size_t)(kstart - name_end);
    if (clen >= sizeof out->cron_text)
        return err_set(e, 400, "invalid_field", "schedule %s: cron expression too long", out->name);
    memcpy(out->cron_text, name_end, clen);
    out->cron_text[clen] = '\0';
    struct err ce;
    err_clear(&ce);
    if (cron_parse(out->cron_text, &out->cron, &ce) != 0)
        return err_set(e, 400, "invalid_field", "schedule %s: %s", out->name, ce.message);
    /* The expression as written, trimmed: for `jobsd schedules`. */
    char *t = out->cron_text;
    while (*t == ' ' || *t == '\t')
        t++;
    memmove(out->cron_text, t, strlen(t) + 1);
    for (size_t l = strlen(out->cron_text); l > 0 && out->cron_text[l - 1] <= ' '; l--)
        out->cron_text[l - 1] = '\0';
    json_error_t je;
    out->body = json_loadb(brace, n - head, JSON_REJECT_DUPLICATES, &je);
    if (!out->body || !json_is_object(out->body)) {
        json_decref(out->body);
        out->body = NULL;
        return err_set(e, 400, "invalid_field", "schedule %s: the body is not a JSON object (%s)",
                       out->name, je.text);
    }
    return 0;
}

/* The end of the entry starting at p: a newline, or a `;` outside JSON strings. */
static const char *entry_end(const char *p)
{
    bool in_string = false;
    for (; *p; p++) {
        if (in_string) {
            if (*p == '\\' && p[1])
                p++;
            else if (*p == '"')
                in_string = false;
        } else if (*p == '"') {
            in_string = true;
        } else if (*p == '\n' || *p == ';') {
            break;
        }
    }
    return p;
}

static int add(struct schedule_set *set, const char *s, size_t n, struct err *e)
{
    if (set->n == SCHEDULER_MAX_SCHEDULES)
        return err_set(e, 400, "invalid_field", "more than %d schedules", SCHEDULER_MAX_SCHEDULES);
    struct schedule sched;
    memset(&sched, 0, sizeof sched);
    if (parse_line(s, n, &sched, e) != 0)
        return -1;
    for (size_t i = 0; i < set->n; i++) {
        if (strcmp(set->items[i].name, sched.name) == 0) {
            json_decref(sched.body);
            return err_set(e, 400, "invalid_field", "schedule %s: defined twice", sched.name);
        }
    }
    struct schedule *items = realloc(set->items, (set->n + 1) * sizeof *items);
    if (!items)
        util_fatal("out of memory");
    set->items = items;
    set->items[set->n++] = sched;
    return 0;
}

int scheduler_parse(const char *text, const char *source, struct schedule_set *set, struct err *e)
{
    int line = 1;
    for (const char *p = text; *p;) {
        const char *s = p;
        while (*s == ' ' || *s == '\t' || *s == '\r')
            s++;
        /* A comment runs to the end of its line, `;` included. */
        const char *end = *s == '#' ? s + strcspn(s, "\n") : entry_end(s);
        size_t n = (size_t)(end - s);
        while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\r'))
            n--;
        struct err le;
        err_clear(&le);
        if (n > 0 && *s != '#' && add(set, s, n, &le) != 0)
            return err_set(e, 400, "invalid_field", "%s line %d: %s", source, line, le.message);
        if (*end == '\n')
            line++;
        p = *end ? end + 1 : end;
    }
    return 0;
}

/* The file's content (at most 1 MiB), or NULL with e. */
static char *read_file(const char *path, struct err *e)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        (void)err_set(e, 400, "invalid_field", "SCHEDULES_FILE: cannot read %s: %s", path,
                      strerror(errno));
        return NULL;
    }
    enum { CAP = 1024 * 1024 };
    char *data = util_xmalloc(CAP + 1);
    size_t len = fread(data, 1, CAP + 1, f);
    bool bad = ferror(f) || len > CAP;
    fclose(f);
    if (bad || memchr(data, '\0', len)) {
        free(data);
        (void)err_set(e, 400, "invalid_field",
                      "SCHEDULES_FILE: %s is not a text file of at most 1 MiB", path);
        return NULL;
    }
    data[len] = '\0';
    return data;
}

int scheduler_load(const struct config *cfg, struct schedule_set *set, struct err *e)
{
    memset(set, 0, sizeof *set);
    if (cfg->schedules && scheduler_parse(cfg->schedules, "SCHEDULES", set, e) != 0)
        goto fail;
    if (cfg->schedules_file) {
        char *text = read_file(cfg->schedules_file, e);
        if (!text)
            goto fail;
        int rc = scheduler_parse(text, "SCHEDULES_FILE", set, e);
        free(text);
        if (rc != 0)
            goto fail;
    }
    if (set->n > 0 && cron_zone_load(&set->zone, cfg->jobs_timezone, e) != 0)
        goto fail;
    return 0;
fail:
    scheduler_clear(set);
    return -1;
}

/* ------------------------------------------------------------------ the database */

int scheduler_validate(PGconn *c, const struct config *cfg, const struct schedule_set *set,
                       struct err *e)
{
    for (size_t i = 0; i < set->n; i++) {
        const struct schedule *s = &set->items[i];
        json_t *body = json_deep_copy(s->body);
        struct job_request req;
        memset(&req, 0, sizeof req);
        struct err ke;
        err_clear(&ke);
        int rc = db_begin(c, cfg->db_query_timeout_ms, &ke);
        if (rc == 0)
            rc = s->kind->resolve(cfg, c, body, &req, &ke);
        db_rollback(c);
        job_request_clear(&req);
        json_decref(body);
        if (rc != 0 && (ke.http_status == 400 || err_is_transient(&ke)))
            return err_set(e, ke.http_status, ke.code, "schedule %s: its %s body is refused: %s",
                           s->name, s->kind->name, ke.message);
        if (rc != 0) /* e.g. its tenant is gone: its fires will be recorded as failed */
            log_event(LOG_WARN, "SCHEDULES: a schedule's body is refused now", "schedule", s->name,
                      "error", ke.message, NULL);
    }
    return 0;
}

int scheduler_last_fire(PGconn *c, const char *name, int64_t *slot, char job_id[JOB_ID_LEN],
                        struct err *e)
{
    const char *p[] = {name};
    PGresult *r =
        db_query(c,
                 "SELECT extract(epoch FROM slot)::bigint, coalesce(job_log_id::text, '') "
                 "FROM schedule_fires WHERE schedule = $1 ORDER BY slot DESC LIMIT 1",
                 1, p, e);
    if (!r)
        return -1;
    int found = PQntuples(r) == 1;
    if (found) {
        *slot = util_i64_or(PQgetvalue(r, 0, 0), 0);
        snprintf(job_id, JOB_ID_LEN, "%s", PQgetvalue(r, 0, 1));
    }
    PQclear(r);
    return found;
}

/* Inserts the slot's row (in the open transaction, if any): 1 when this call did, 0 when it
 * was there already, -1 with e. */
static MUSTCHECK int claim_slot(PGconn *c, const struct schedule *s, const char *slot,
                                bool catch_up, const char *instance, const char *error,
                                struct err *e)
{
    const char *p[] = {s->name, slot, instance, catch_up ? "true" : "false", error};
    PGresult *r = db_query(c,
                           "INSERT INTO schedule_fires (schedule, slot, instance, catch_up, error) "
                           "VALUES ($1, to_timestamp($2::bigint), $3, $4::boolean, $5) "
                           "ON CONFLICT (schedule, slot) DO NOTHING RETURNING 1",
                           5, p, e);
    if (!r)
        return -1;
    int won = PQntuples(r) == 1;
    PQclear(r);
    return won;
}

int scheduler_fire(PGconn *c, const struct config *cfg, const struct schedule *s, int64_t slot,
                   bool catch_up, const char *instance, char job_id[JOB_ID_LEN], struct err *e)
{
    char slot_s[24], rid[64];
    util_fmt(slot_s, sizeof slot_s, "%lld", (long long)slot);
    util_fmt(rid, sizeof rid, "sched-%s-%lld", s->name, (long long)slot);
    struct job_origin origin = {"schedule", "jobsd-scheduler", rid};
    struct job_submission sub;
    memset(&sub, 0, sizeof sub);
    json_t *body = json_deep_copy(s->body);
    int won = -1;
    if (db_begin(c, cfg->db_query_timeout_ms, e) != 0 ||
        (won = claim_slot(c, s, slot_s, catch_up, instance, NULL, e)) <= 0)
        goto done;
    won = -1;
    if (job_exec_submit_in(c, cfg, s->kind, body, &origin, NULL, &sub, e) != 0)
        goto done;
    const char *p[] = {s->name, slot_s, sub.enq.id, sub.enq.deduplicated ? "true" : "false"};
    if (db_exec(c,
                "UPDATE schedule_fires SET job_log_id = $3::uuid, deduplicated = $4::boolean "
                "WHERE schedule = $1 AND slot = to_timestamp($2::bigint)",
                4, p, e) != 0 ||
        db_commit(c, e) != 0)
        goto done;
    snprintf(job_id, JOB_ID_LEN, "%s", sub.enq.id);
    won = 1;
done:
    if (won <= 0)
        db_rollback(c);
    job_submission_clear(&sub);
    json_decref(body);
    if (won < 0 && !err_is_transient(e) && !db_is_broken(c)) {
        /* The body no longer resolves (its tenant is gone...): the slot is spent, with why. */
        struct err re;
        err_clear(&re);
        int spent = claim_slot(c, s, slot_s, catch_up, instance, e->message, &re);
        if (spent == 0)
            return 0; /* another instance had it meanwhile */
    }
    return won;
}

/* ------------------------------------------------------------------ the tick thread */

#define TICK_MS        1000
#define RETRY_MS       5000 /* after a failed fire (the database is away) */
#define LATE_GRACE     60   /* a due slot fires this late at least, whatever the catch-up */
#define PRUNE_EVERY_MS (3600LL * 1000)

struct scheduler {
    const struct config *cfg;
    struct db_pool *pool;
    struct schedule_set set;
    int64_t *pending;       /* per schedule: the slot to fire next (0: none) */
    long long *retry_at_ms; /* per schedule: no attempt before (monotonic) */
    bool *catch_up;         /* per schedule: pending is a catch-up */
    char instance[JOB_WORKER_ID_MAX];
    pthread_t thread;
    pthread_mutex_t lock;
    pthread_cond_t cond;
    int stopping;
};

static void log_schedule(enum log_level level, const char *msg, const struct scheduler *s, size_t i,
                         int64_t slot, const char *k1, const char *v1)
{
    char when[40];
    cron_format(&s->set.zone, slot, when, sizeof when);
    log_event(level, msg, "schedule", s->set.items[i].name, "slot", when, k1, v1, NULL);
}

/* At start-up: the newest slot at or before now, younger than the catch-up age and newer than
 * the last fire, becomes pending (as a catch-up); otherwise the next one to come. */
static void plan_start(struct scheduler *s, PGconn *c, size_t i, int64_t now)
{
    const struct schedule *sc = &s->set.items[i];
    int64_t last = 0, from = now - s->cfg->schedule_catchup_seconds - 1, slot, missed = 0;
    char job[JOB_ID_LEN];
    struct err e;
    err_clear(&e);
    int found = c ? scheduler_last_fire(c, sc->name, &last, job, &e) : -1;
    if (found < 0)
        log_event(LOG_WARN, "scheduler: cannot read the last fire (no catch-up)", "schedule",
                  sc->name, "error", c ? e.message : "no database connection", NULL);
    if (found > 0 && last > from)
        from = last;
    if (found >= 0 && s->cfg->schedule_catchup_seconds > 0)
        while (cron_next(&sc->cron, &s->set.zone, from, &slot) && slot <= now)
            missed = from = slot;
    s->catch_up[i] = missed != 0;
    s->pending[i] = missed;
    if (!missed && !cron_next(&sc->cron, &s->set.zone, now, &s->pending[i]))
        s->pending[i] = 0;
}

/* The slot to fire now for schedule i, or 0: the newest due one (older due ones are skipped
 * when the instance was held up), when it is young enough. */
static int64_t due_slot(struct scheduler *s, size_t i, int64_t now)
{
    const struct schedule *sc = &s->set.items[i];
    int64_t slot = s->pending[i], n;
    if (slot == 0 || slot > now)
        return 0;
    while (cron_next(&sc->cron, &s->set.zone, slot, &n) && n <= now) {
        slot = n;
        s->catch_up[i] = false;
    }
    s->pending[i] = slot;
    long long age = s->cfg->schedule_catchup_seconds;
    if (now - slot > (age > LATE_GRACE ? age : LATE_GRACE)) {
        log_schedule(LOG_WARN, "scheduler: slot skipped: too late to fire", s, i, slot, NULL, NULL);
        if (!cron_next(&sc->cron, &s->set.zone, now, &s->pending[i]))
            s->pending[i] = 0;
        return 0;
    }
    return slot;
}

static void fire_due(struct scheduler *s, size_t i, int64_t slot)
{
    const struct schedule *sc = &s->set.items[i];
    struct err e;
    err_clear(&e);
    char job[JOB_ID_LEN] = "";
    int rc = -1;
    PGconn *c = db_pool_acquire(s->pool, 2000, &e);
    if (c) {
        rc = scheduler_fire(c, s->cfg, sc, slot, s->catch_up[i], s->instance, job, &e);
        db_pool_release(s->pool, c);
    }
    if (rc < 0 && err_is_transient(&e)) {
        log_schedule(LOG_WARN, "scheduler: cannot fire now (retrying)", s, i, slot, "error",
                     e.message);
        s->retry_at_ms[i] = util_mono_ms() + RETRY_MS;
        return;
    }
    if (rc > 0)
        log_schedule(LOG_INFO,
                     s->catch_up[i] ? LOG_JOB_TAG "schedule fired (catch-up)"
                                    : LOG_JOB_TAG "schedule fired",
                     s, i, slot, "jobLogId", job);
    else if (rc < 0)
        log_schedule(LOG_ERROR, LOG_JOB_TAG "schedule fire failed: its body was refused", s, i,
                     slot, "error", e.message);
    s->catch_up[i] = false;
    if (!cron_next(&sc->cron, &s->set.zone, slot, &s->pending[i]))
        s->pending[i] = 0;
}

static void prune(struct scheduler *s)
{
    struct err e;
    err_clear(&e);
    char days[12];
    util_fmt(days, sizeof days, "%d", SCHEDULER_FIRE_RETENTION_DAYS);
    const char *p[] = {days};
    PGconn *c = db_pool_acquire(s->pool, 2000, &e);
    if (c) {
        if (db_exec(c,
                    "DELETE FROM schedule_fires WHERE fired_at < now() - make_interval(days => "
                    "$1::int)",
                    1, p, &e) != 0)
            log_event(LOG_WARN, "scheduler: pruning old fires failed", "error", e.message, NULL);
        db_pool_release(s->pool, c);
    }
}

/* Milliseconds until the earliest pending slot, at most TICK_MS. */
static long long wait_ms(const struct scheduler *s)
{
    long long now = util_now_ms(), wait = TICK_MS;
    for (size_t i = 0; i < s->set.n; i++) {
        long long at = s->pending[i] * 1000;
        if (s->pending[i] && at - now < wait && util_mono_ms() >= s->retry_at_ms[i])
            wait = at - now;
    }
    return wait < 10 ? 10 : wait;
}

static void *run(void *arg)
{
    struct scheduler *s = arg;
    struct err e;
    err_clear(&e);
    PGconn *c = db_pool_acquire(s->pool, 5000, &e);
    int64_t now = util_now_ms() / 1000;
    for (size_t i = 0; i < s->set.n; i++)
        plan_start(s, c, i, now);
    if (c)
        db_pool_release(s->pool, c);
    long long pruned_at = util_mono_ms() - PRUNE_EVERY_MS;
    for (;;) {
        now = util_now_ms() / 1000;
        for (size_t i = 0; i < s->set.n; i++) {
            int64_t slot = due_slot(s, i, now);
            if (slot && util_mono_ms() >= s->retry_at_ms[i])
                fire_due(s, i, slot);
        }
        if (util_mono_ms() - pruned_at >= PRUNE_EVERY_MS) {
            prune(s);
            pruned_at = util_mono_ms();
        }
        pthread_mutex_lock(&s->lock);
        if (!s->stopping)
            util_cond_wait_ms(&s->cond, &s->lock, wait_ms(s));
        bool stop = s->stopping;
        pthread_mutex_unlock(&s->lock);
        if (stop)
            return NULL;
    }
}

struct scheduler *scheduler_start(const struct config *cfg, struct db_pool *pool,
                                  struct schedule_set *set)
{
    if (set->n == 0)
        return NULL;
    struct scheduler *s = util_calloc(1, sizeof *s);
    s->cfg = cfg;
    s->pool = pool;
    s->set = *set;
    memset(set, 0, sizeof *set);
    s->pending = util_calloc(s->set.n, sizeof *s->pending);
    s->retry_at_ms = util_calloc(s->set.n, sizeof *s->retry_at_ms);
    s->catch_up = util_calloc(s->set.n, sizeof *s->catch_up);
    job_worker_id(s->instance, sizeof s->instance, "scheduler");
    pthread_mutex_init(&s->lock, NULL);
    util_cond_init(&s->cond);
    if (pthread_create(&s->thread, NULL, run, s) != 0)
        util_fatal("cannot start the scheduler thread");
    char n[12];
    util_fmt(n, sizeof n, "%zu", s->set.n);
    log_event(LOG_INFO, "scheduler started", "schedules", n, "timezone", cfg->jobs_timezone, NULL);
    return s;
}

void scheduler_stop(struct scheduler *s)
{
    if (!s)
        return;
    pthread_mutex_lock(&s->lock);
    s->stopping = 1;
    pthread_cond_broadcast(&s->cond);
    pthread_mutex_unlock(&s->lock);
    pthread_join(s->thread, NULL);
    pthread_mutex_destroy(&s->lock);
    pthread_cond_destroy(&s->cond);
    scheduler_clear(&s->set);
    free(s->pending);
    free(s->retry_at_ms);
    free(s->catch_up);
    free(s);
}
