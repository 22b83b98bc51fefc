/* cli_schedules: `jobsd schedules`, the configured schedules (SCHEDULES, SCHEDULES_FILE) with
 * their next fire (computed in JOBS_TIMEZONE) and last fire (schedule_fires). */
#ifndef JOBSD_CLI_SCHEDULES_H
#define JOBSD_CLI_SCHEDULES_H

extern const char CLI_SCHEDULES_USAGE[];

#include "jobsd/config.h"
#include "jobsd/err.h"

/* For `jobsd check-config`: SCHEDULES and SCHEDULES_FILE parse (the bodies are checked by
 * their kinds at start-up, which needs the database). */
MUSTCHECK int cli_schedules_check(const struct config *cfg, struct err *e);

/* The command's exit code: 0, 2 configuration, 3 the database is unavailable. */
int cli_schedules_run(int argc, char **argv);

#endif
