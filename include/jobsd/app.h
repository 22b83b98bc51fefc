/* app: builds the running daemon in order (config → database checks and migrations → pool →
 * lease keeper → waiters → workers → HTTP server), waits for a signal, and tears it down in
 * the reverse order (SPEC 1.3 "Shutdown"). Also the start-up checks the CLI shares. */
#ifndef JOBSD_APP_H
#define JOBSD_APP_H

#include <libpq-fe.h>

#include "jobsd/config.h"
#include "jobsd/err.h"

#define JOBSD_VERSION "0.1.0"

/* `jobsd serve`: returns the process exit code (0 after SIGTERM/SIGINT, also while it was
 * still waiting for the database; 2 configuration; 3 the database did not come within
 * DATABASE_WAIT_SECONDS). */
int app_serve(void);

struct ml_client;
/* The process's Mercado Livre client from the configuration; NULL + e when the base URL is
 * not acceptable. */
MUSTCHECK struct ml_client *app_ml_client(const struct config *cfg, struct err *e);

/* JOBS_TIMEZONE must be a name PostgreSQL knows. */
MUSTCHECK int app_check_timezone(PGconn *c, const char *tz, struct err *e);

#endif
