/* app: builds the running daemon in order (config → database checks and migrations → pool →
 * lease keeper → waiters → workers → HTTP server), waits for a signal, and tears it down in
 * the reverse order (SPEC 1.3 "Shutdown"). Also the start-up checks the CLI shares. */
#ifndef JOBSD_APP_H
#define JOBSD_APP_H

#include <libpq-fe.h>

#include "jobsd/config.h"
#include "jobsd/err.h"

#define JOBSD_VERSION "0.1.0"

/* `jobsd serve`: returns the process exit code. */
int app_serve(void);

/* Connects, retrying for up to wait_ms (a database that is still starting). */
MUSTCHECK PGconn *app_connect_retry(const char *url, long long wait_ms, struct err *e);

struct ml_client;
/* The process's Mercado Livre client from the configuration; NULL + e when the base URL is
 * not acceptable. */
MUSTCHECK struct ml_client *app_ml_client(const struct config *cfg, struct err *e);

/* JOBS_TIMEZONE must be a name PostgreSQL knows. */
MUSTCHECK int app_check_timezone(PGconn *c, const char *tz, struct err *e);

#endif
