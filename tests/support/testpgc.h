/* testpgc: a private PostgreSQL cluster (scripts/pg.sh) for the tests that stop, restart or
 * kill the database, never the shared cluster (other test programs run against it). Its
 * directory is under TMPDIR, which scripts/test.sh searches for clusters left running. */
#ifndef JOBSD_TESTPGC_H
#define JOBSD_TESTPGC_H

#include <stdbool.h>

struct pgcluster {
    char dir[512];
    char url[600]; /* admin URL (superuser, database `postgres`) */
    unsigned port;
};
/* A new private cluster under TMPDIR (scripts/pg.sh start --durable, JOBSD_SOURCE_DIR):
 * durable, so that an immediate stop loses no commit. */
bool pgc_start(struct pgcluster *c);
/* Stops it with mode "fast" or "immediate" (pg_ctl -m); the files stay. */
bool pgc_stop(struct pgcluster *c, const char *mode);
/* Starts it again on the same port (after pgc_stop); returns when it accepts connections. */
bool pgc_resume(struct pgcluster *c);
/* Stops it (if running) and removes its directory. */
void pgc_destroy(struct pgcluster *c);

#endif
