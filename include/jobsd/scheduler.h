/* scheduler: the built-in scheduler (README "Schedules"). Schedules come from SCHEDULES and
 * SCHEDULES_FILE, one a line (or separated by `;`, `#` comments):
 *     <name> <cron: 5 fields, or 6 with leading seconds> <kind> <JSON body>
 * cron times are in JOBS_TIMEZONE (cron.h). Every serving instance ticks; a slot fires
 * exactly once across instances: its row in schedule_fires is inserted (ON CONFLICT DO
 * NOTHING) in the transaction that submits the body through job_exec (trigger "schedule").
 * At start-up, the newest slot missed while every instance was down fires once when it is
 * younger than SCHEDULE_CATCHUP_SECONDS. The body is opaque here: its kind validates it. */
#ifndef JOBSD_SCHEDULER_H
#define JOBSD_SCHEDULER_H

#include <jansson.h>
#include <libpq-fe.h>
#include <stdint.h>

#include "jobsd/config.h"
#include "jobsd/cron.h"
#include "jobsd/err.h"
#include "jobsd/job.h"

#define SCHEDULE_NAME_MAX             41 /* [A-Za-z0-9_.-]{1,40} */
#define SCHEDULE_CRON_MAX             128
#define SCHEDULER_FIRE_RETENTION_DAYS 30
#define SCHEDULER_MAX_SCHEDULES       256

struct schedule {
    char name[SCHEDULE_NAME_MAX];
    char cron_text[SCHEDULE_CRON_MAX];
    struct cron_expr cron;
    const struct job_kind *kind;
    json_t *body; /* owned: a JSON object */
};

struct schedule_set {
    struct schedule *items;
    size_t n;
    struct cron_zone zone; /* JOBS_TIMEZONE */
};

/* Parses SCHEDULES, then SCHEDULES_FILE, and loads JOBS_TIMEZONE. On failure (400) e's
 * message names the source, the line and the schedule. An empty set is not an error. */
MUSTCHECK int scheduler_load(const struct config *cfg, struct schedule_set *set, struct err *e);
/* Parses text (source names it in errors) and appends its schedules to set. */
MUSTCHECK int scheduler_parse(const char *text, const char *source, struct schedule_set *set,
                              struct err *e);
void scheduler_clear(struct schedule_set *set);

/* Every schedule's body resolved by its kind, in a transaction rolled back. A body its kind
 * refuses as invalid (400) is an error naming the schedule, as is a 503 (the database); any
 * other refusal (404: its tenant is unknown now) is logged as a warning: the tenant may come
 * back, and its fires are recorded as failed meanwhile. */
MUSTCHECK int scheduler_validate(PGconn *c, const struct config *cfg,
                                 const struct schedule_set *set, struct err *e);

/* The newest fire of a schedule: 1 with its slot (UTC seconds) and job id ("" when none,
 * e.g. a failed fire), 0 when it never fired, -1 with e. */
MUSTCHECK int scheduler_last_fire(PGconn *c, const char *name, int64_t *slot,
                                  char job_id[JOB_ID_LEN], struct err *e);

/* Fires slot of sched unless any instance did: 1 fired (job_id filled), 0 already fired, -1
 * with e (a 503: try again; otherwise the slot is recorded as spent with the error). */
MUSTCHECK int scheduler_fire(PGconn *c, const struct config *cfg, const struct schedule *sched,
                             int64_t slot, bool catch_up, const char *instance,
                             char job_id[JOB_ID_LEN], struct err *e);

struct db_pool;
struct scheduler;
/* Starts the tick thread (takes set over). NULL when set is empty. */
struct scheduler *scheduler_start(const struct config *cfg, struct db_pool *pool,
                                  struct schedule_set *set);
void scheduler_stop(struct scheduler *s); /* NULL is fine */

#endif
