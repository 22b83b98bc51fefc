/* instance: this process as a member of the fleet (issue 20 item 4). Mercado Livre limits
 * the application, not the process: every `jobsd serve` registers in jobsd_instances and
 * renews its row every INSTANCE_HEARTBEAT_SECONDS from a thread with its own connection (as
 * the lease keeper does). An instance is live while its heartbeat is younger than
 * INSTANCE_DEAD_SECONDS (database clock); older rows are deleted by whoever sees them. Each
 * live instance with workers applies ML_MAX_RPS / live and ML_CONCURRENCY / live (floor, at
 * least 1) to its Mercado Livre client:
 *  - the heartbeats of all instances are serialised (a transaction-scoped advisory lock), so
 *    each sees every earlier one;
 *  - an instance that sees more instances shrinks before its heartbeat commits; one that
 *    sees fewer grows after;
 *  - a newcomer (or an instance back after a lapse) starts no request until every instance
 *    already taking a share has applied a count that includes it, and then one second more
 *    (their last second's requests leave the window);
 *  - an instance whose heartbeats failed stops starting requests before the others can count
 *    it out (INSTANCE_DEAD_SECONDS - 1.5 s after its last successful heartbeat began).
 * README "Decisions" explains why the sum stays within ML_MAX_RPS in every second. */
#ifndef JOBSD_INSTANCE_H
#define JOBSD_INSTANCE_H

#include <stdbool.h>

struct ml_client;
struct instance;

struct instance_config {
    const char *db_url;
    const char *version; /* recorded in the row, for operators */
    int workers;         /* 0 = runs no job: registered, not counted */
    long long max_rps;
    long long concurrency;
    long long heartbeat_seconds;
    long long dead_seconds;
};

/* One instance's share of a fleet-wide limit among `live` instances: floor(total / live),
 * at least 1 (more than `total` instances each still make progress). */
long long instance_share(long long total, long long live);

/* Pauses ml's requests (a newcomer takes no share before the others made room), registers
 * and starts heartbeating. Never fails: without the database it retries, paused. */
struct instance *instance_start(const struct instance_config *cfg, struct ml_client *ml);
/* This instance's id (host:pid:random), static for its lifetime. */
const char *instance_id(const struct instance *in);
/* Stops heartbeating and Mercado Livre requests, waits until the last request it started
 * left every sliding second (at most 1.1 s), then deletes this instance's row (the others
 * grow at their next heartbeat). Call once no job runs any more. NULL is a no-op. */
void instance_stop(struct instance *in);

#endif
