/* instance: see instance.h. */
#include "jobsd/instance.h"
#include "jobsd/db.h"
#include "jobsd/job.h"
#include "jobsd/log.h"
#include "jobsd/ml_client.h"
#include "jobsd/util.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

/* A newcomer starts one second (plus a margin) after it saw every other instance apply the
 * count that includes it: the larger shares' last second has left every window by then. */
#define ACTIVATE_DELAY_MS 1100
/* An instance stops starting requests this long before the others may count it out. */
#define LAPSE_MARGIN_MS 1500

struct instance {
    char *url;
    char *version;
    int workers;
    long long max_rps, concurrency;
    long long heartbeat_ms, dead_ms;
    char id[JOB_WORKER_ID_MAX];
    struct ml_client *ml;
    pthread_t thread;
    pthread_mutex_t lock;
    pthread_cond_t cond;
    bool stop;
    /* Heartbeat thread only. */
    bool active;           /* takes its share (false: waits for the others to make room) */
    long long valid_from;  /* mono ms from which the current share may start requests */
    long long valid_until; /* ... and until which (the last good heartbeat's start + dead -
                            * LAPSE_MARGIN_MS) */
    long long shown_live, shown_rps, shown_conc; /* last logged, -1 = never */
    bool shown_active;
};

/* What one heartbeat saw. */
struct view {
    long long live;     /* live instances with workers, this one included when it has some */
    bool others_ready;  /* every other instance taking a share applies a count >= live */
    bool others_taking; /* some other instance takes a share */
    bool inserted;      /* this instance's row did not exist (first time, or counted out) */
};

long long instance_share(long long total, long long live)
{
    long long s = total / (live < 1 ? 1 : live);
    return s < 1 ? 1 : s;
}

const char *instance_id(const struct instance *in)
{
    return in->id;
}

/* Renews (or recreates) this instance's row, then under the fleet's lock deletes the dead
 * rows and reads the live ones. The renewal comes first: a renewal that waits (its row
 * locked) must not hold up the others' heartbeats. Rows someone holds are neither deleted
 * (SKIP LOCKED) nor, once too old, counted. */
static MUSTCHECK int register_and_read(struct instance *in, PGconn *c, struct view *v,
                                       struct err *e)
{
    char workers[16], dead[32];
    util_fmt(workers, sizeof workers, "%d", in->workers);
    util_fmt(dead, sizeof dead, "%lld.%03lld", in->dead_ms / 1000, in->dead_ms % 1000);
    const char *p_up[] = {in->id, workers, in->version};
    const char *p_dead[] = {dead};
    PGresult *r = db_query(c,
                           "INSERT INTO jobsd_instances (id, workers, version) VALUES ($1, $2, $3) "
                           "ON CONFLICT (id) DO UPDATE SET heartbeat_at = clock_timestamp(), "
                           "workers = EXCLUDED.workers RETURNING (xmax = 0)",
                           3, p_up, e);
    if (!r)
        return -1;
    v->inserted = strcmp(PQgetvalue(r, 0, 0), "t") == 0;
    PQclear(r);
    if (db_exec(c, "SELECT pg_advisory_xact_lock(hashtextextended('jobsd:instances', 0))", 0, NULL,
                e) != 0 ||
        db_exec(c,
                "DELETE FROM jobsd_instances WHERE id IN (SELECT id FROM jobsd_instances WHERE "
                "heartbeat_at < clock_timestamp() - make_interval(secs => $1::double precision) "
                "FOR UPDATE SKIP LOCKED)",
                1, p_dead, e) != 0)
        return -1;
    r = db_query(c,
                 "SELECT id, applied_count FROM jobsd_instances WHERE workers > 0 AND "
                 "heartbeat_at >= clock_timestamp() - make_interval(secs => $1::double precision)",
                 1, p_dead, e);
    if (!r)
        return -1;
    long long live = PQntuples(r);
    v->live = live;
    v->others_ready = true;
    for (int i = 0; i < PQntuples(r); i++) {
        long long applied = strtoll(PQgetvalue(r, i, 1), NULL, 10);
        if (strcmp(PQgetvalue(r, i, 0), in->id) == 0 || applied == 0)
            continue;
        v->others_taking = true;
        if (applied < live)
            v->others_ready = false;
    }
    PQclear(r);
    return 0;
}

/* Records what this instance applies (applied 0 = waiting). */
static MUSTCHECK int record(struct instance *in, PGconn *c, long long applied, long long rps,
                            long long conc, struct err *e)
{
    char a[24], r[24], k[24];
    util_fmt(a, sizeof a, "%lld", applied);
    util_fmt(r, sizeof r, "%lld", rps);
    util_fmt(k, sizeof k, "%lld", conc);
    const char *p[] = {in->id, a, r, k};
    return db_exec(c,
                   "UPDATE jobsd_instances SET applied_count = $2, rps_share = $3, "
                   "concurrency_share = $4 WHERE id = $1",
                   4, p, e);
}

static void log_share(struct instance *in, long long live, long long rps, long long conc)
{
    if (in->shown_live == live && in->shown_rps == rps && in->shown_conc == conc &&
        in->shown_active == in->active)
        return;
    char l[24], r[24], k[24];
    util_fmt(l, sizeof l, "%lld", live);
    util_fmt(r, sizeof r, "%lld", rps);
    util_fmt(k, sizeof k, "%lld", conc);
    log_event(LOG_INFO, "Mercado Livre share of the fleet", "instanceId", in->id, "liveInstances",
              l, "rpsShare", r, "concurrencyShare", k, "state",
              in->active ? "active" : "waiting for the others to make room", NULL);
    in->shown_live = live;
    in->shown_rps = rps;
    in->shown_conc = conc;
    in->shown_active = in->active;
}

/* One heartbeat: register, count, take the share (see instance.h for the order). */
static void heartbeat(struct instance *in, PGconn *c)
{
    long long began = util_mono_ms();
    if (in->active && began >= in->valid_until) {
        /* Heartbeats failed for long enough that the others may have counted this instance
         * out (its client stopped at valid_until): it comes back as a newcomer. */
        in->active = false;
        log_event(LOG_WARN, "fleet heartbeat lapsed: waiting for the others to make room",
                  "instanceId", in->id, NULL);
    }
    struct err e;
    err_clear(&e);
    struct view v = {0};
    if (db_begin(c, in->heartbeat_ms, &e) != 0 || register_and_read(in, c, &v, &e) != 0)
        goto fail;
    if (v.inserted && in->active) {
        /* Counted out meanwhile (the others may have grown): stop now, a newcomer again. */
        in->active = false;
        ml_client_set_share(in->ml, 0, 1, 0, 0);
    }
    bool activate = !in->active && v.others_ready;
    bool taking = in->active || activate;
    long long rps = taking ? instance_share(in->max_rps, v.live) : 0;
    long long conc = taking ? instance_share(in->concurrency, v.live) : 0;
    if (in->active) {
        /* Shrink before the others can read this heartbeat; grow only after it. */
        long long cur_rps;
        int cur_conc;
        ml_client_share(in->ml, &cur_rps, &cur_conc);
        ml_client_set_share(in->ml, rps < cur_rps ? rps : cur_rps,
                            (int)(conc < cur_conc ? conc : cur_conc), in->valid_from,
                            in->valid_until);
    }
    if (record(in, c, taking ? v.live : 0, rps, conc, &e) != 0 || db_commit(c, &e) != 0)
        goto fail;
    in->valid_until = began + in->dead_ms - LAPSE_MARGIN_MS;
    if (activate) {
        in->active = true;
        /* Alone (or only with newcomers, which wait for this one): nothing to wait for. */
        in->valid_from = v.others_taking ? util_mono_ms() + ACTIVATE_DELAY_MS : 0;
    }
    ml_client_set_share(in->ml, rps, (int)(conc > 0 ? conc : 1), in->valid_from, in->valid_until);
    log_share(in, v.live, rps, conc);
    return;
fail:
    db_rollback(c);
    log_event(LOG_WARN, "fleet heartbeat failed", "instanceId", in->id, "error", e.message, NULL);
}

/* Waits up to ms unless stopping; returns whether to stop. */
static bool pause_ms(struct instance *in, long long ms)
{
    pthread_mutex_lock(&in->lock);
    if (!in->stop)
        util_cond_wait_ms(&in->cond, &in->lock, ms);
    bool stop = in->stop;
    pthread_mutex_unlock(&in->lock);
    return stop;
}

static void deregister(struct instance *in, PGconn *c)
{
    struct err e;
    err_clear(&e);
    const char *p[] = {in->id};
    if (db_begin(c, 2000, &e) != 0 ||
        db_exec(c, "DELETE FROM jobsd_instances WHERE id = $1", 1, p, &e) != 0 ||
        db_commit(c, &e) != 0) {
        db_rollback(c);
        log_event(LOG_WARN, "could not deregister from the fleet (the row expires)", "instanceId",
                  in->id, "error", e.message, NULL);
    }
}

static void *run(void *arg)
{
    struct instance *in = arg;
    PGconn *c = NULL;
    long long backoff = 500;
    for (;;) {
        if (!c || db_is_broken(c)) {
            if (c)
                PQfinish(c);
            struct err e;
            err_clear(&e);
            c = db_connect(in->url, &e);
            if (!c) {
                log_event(LOG_WARN, "fleet heartbeat cannot reach the database", "error", e.message,
                          NULL);
                if (pause_ms(in, backoff))
                    break;
                backoff = backoff * 2 > 5000 ? 5000 : backoff * 2;
                continue;
            }
            backoff = 500;
        }
        heartbeat(in, c);
        if (pause_ms(in, in->heartbeat_ms))
            break;
    }
    /* Leaving: no request from now on, and the row goes only once the last one left every
     * sliding second, since the others grow into this share at their next heartbeat. */
    ml_client_set_share(in->ml, 0, 1, 0, 0);
    long long quiet = ml_client_quiet_at(in->ml) - util_mono_ms();
    if (quiet > 0)
        util_sleep_ms(quiet, NULL);
    if (c && !db_is_broken(c))
        deregister(in, c);
    if (c)
        PQfinish(c);
    return NULL;
}

struct instance *instance_start(const struct instance_config *cfg, struct ml_client *ml)
{
    struct instance *in = util_calloc(1, sizeof *in);
    in->url = util_strdup(cfg->db_url);
    in->version = util_strdup(cfg->version ? cfg->version : "?");
    in->workers = cfg->workers;
    in->max_rps = cfg->max_rps;
    in->concurrency = cfg->concurrency;
    in->heartbeat_ms = cfg->heartbeat_seconds * 1000;
    in->dead_ms = cfg->dead_seconds * 1000;
    in->ml = ml;
    in->shown_live = in->shown_rps = in->shown_conc = -1;
    unsigned char rnd[4];
    util_random_bytes(rnd, sizeof rnd);
    char suffix[16];
    util_fmt(suffix, sizeof suffix, "%02x%02x%02x%02x", rnd[0], rnd[1], rnd[2], rnd[3]);
    job_worker_id(in->id, sizeof in->id, suffix);
    ml_client_set_share(ml, 0, 1, 0, 0); /* no request before the fleet made room */
    pthread_mutex_init(&in->lock, NULL);
    util_cond_init(&in->cond);
    if (pthread_create(&in->thread, NULL, run, in) != 0)
        util_fatal("cannot start the fleet heartbeat thread");
    return in;
}

void instance_stop(struct instance *in)
{
    if (!in)
        return;
    pthread_mutex_lock(&in->lock);
    in->stop = true;
    pthread_cond_broadcast(&in->cond);
    pthread_mutex_unlock(&in->lock);
    pthread_join(in->thread, NULL);
    pthread_mutex_destroy(&in->lock);
    pthread_cond_destroy(&in->cond);
    free(in->url);
    free(in->version);
    free(in);
}
