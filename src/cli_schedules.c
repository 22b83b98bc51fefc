/* cli_schedules: see cli_schedules.h. */
#include "jobsd/cli_schedules.h"
#include "jobsd/config.h"
#include "jobsd/db.h"
#include "jobsd/scheduler.h"
#include "jobsd/util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char CLI_SCHEDULES_USAGE[] =
    "usage: jobsd schedules\n"
    "\n"
    "Lists the built-in scheduler's schedules (SCHEDULES, SCHEDULES_FILE), one a line: name,\n"
    "cron expression, job kind, next fire and last fire in JOBS_TIMEZONE (from the\n"
    "schedule_fires table: \"-\" when it never fired), the last fire's job id, and the body.\n"
    "Needs DATABASE_URL. Exit codes: 0 ok, 2 configuration, 3 database unavailable.\n";

static void print_one(PGconn *c, const struct schedule_set *set, const struct schedule *sc,
                      int64_t now)
{
    char next[40] = "never", last[40] = "-", job[JOB_ID_LEN] = "";
    int64_t at = 0;
    if (cron_next(&sc->cron, &set->zone, now, &at))
        cron_format(&set->zone, at, next, sizeof next);
    struct err e;
    err_clear(&e);
    int found = scheduler_last_fire(c, sc->name, &at, job, &e);
    if (found > 0)
        cron_format(&set->zone, at, last, sizeof last);
    else if (found < 0)
        util_fmt(last, sizeof last, "? (%s)", e.code);
    char *body = json_dumps(sc->body, JSON_COMPACT);
    printf("%s\t%s\t%s\tnext=%s\tlast=%s\tjob=%s\t%s\n", sc->name, sc->cron_text, sc->kind->name,
           next, last, job[0] ? job : "-", body ? body : "{}");
    free(body);
}

int cli_schedules_check(const struct config *cfg, struct err *e)
{
    struct schedule_set set;
    if (scheduler_load(cfg, &set, e) != 0)
        return -1;
    scheduler_clear(&set);
    return 0;
}

int cli_schedules_run(int argc, char **argv)
{
    if (argc > 0) {
        fprintf(stderr, "jobsd: schedules takes no arguments (got %s)\n\n%s", argv[0],
                CLI_SCHEDULES_USAGE);
        return 2;
    }
    struct config cfg;
    if (config_load(&cfg, CONFIG_JOB, NULL, NULL, stderr) != 0) {
        fprintf(stderr, "jobsd: configuration invalid; see the lines above (jobsd --help)\n");
        config_free(&cfg);
        return 2;
    }
    struct schedule_set set;
    struct err e;
    err_clear(&e);
    if (scheduler_load(&cfg, &set, &e) != 0) {
        fprintf(stderr, "config: %s\n", e.message);
        config_free(&cfg);
        return 2;
    }
    int rc = 0;
    if (set.n == 0) {
        printf("no schedules (SCHEDULES and SCHEDULES_FILE are unset)\n");
    } else {
        PGconn *c = db_connect(cfg.database_url, &e);
        if (!c) {
            fprintf(stderr, "jobsd: %s\n", e.message);
            rc = 3;
        } else {
            int64_t now = util_now_ms() / 1000;
            for (size_t i = 0; i < set.n; i++)
                print_one(c, &set, &set.items[i], now);
            PQfinish(c);
        }
    }
    scheduler_clear(&set);
    config_free(&cfg);
    return rc;
}
