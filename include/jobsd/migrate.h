/* migrate: applies the migrations compiled into the binary (sql/NNNN_name.sql), each in its
 * own transaction under a transaction-scoped advisory lock, recorded with a SHA-256 checksum
 * in schema_migrations. An applied migration whose checksum differs is an error. */
#ifndef JOBSD_MIGRATE_H
#define JOBSD_MIGRATE_H

#include <libpq-fe.h>
#include <stdbool.h>
#include <stdio.h>

#include "jobsd/err.h"

/* Applies what is pending. Progress lines go to `progress` when not NULL. Returns the number
 * applied, or -1 with e filled. */
MUSTCHECK int migrate_apply(PGconn *c, FILE *progress, struct err *e);

/* Prints each known migration with its state (applied / pending / checksum mismatch) and any
 * newer ones applied by a newer binary. Returns 0 when everything is applied and matches. */
MUSTCHECK int migrate_status(PGconn *c, FILE *out, struct err *e);

/* True when every migration this binary knows is applied with a matching checksum (newer
 * ones are fine). Fills e with the reason otherwise. */
MUSTCHECK bool migrate_is_current(PGconn *c, struct err *e);

/* The highest version this binary knows. */
int migrate_latest_version(void);

#endif
