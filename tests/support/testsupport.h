/* testsupport: the umbrella over the support modules, for the tests that want all of them.
 * A test should rather include the headers of what it uses:
 *  - testdb.h    testdb_*, tdb_*: a fresh migrated database per program, SQL assertions;
 *  - testproc.h  jobsd_*, children_*: a real jobsd (serve, or the CLI), valgrind, pid files;
 *  - testhttp.h  th_*: a raw HTTP/1.1 client;
 *  - testfx.h    fx_*: fixtures (tenants, listings, orders, visits);
 *  - testfake.h  fake_ml_*: the fake Mercado Livre API as a child process;
 *  - testpgc.h   pgc_*: a private PostgreSQL cluster to stop and restart;
 *  - testtime.h  t_*: clock, wait scaling, polling with a deadline;
 *  - testgroup.h tgroup_run: cmocka groups whose teardown failures count. */
#ifndef JOBSD_TESTSUPPORT_H
#define JOBSD_TESTSUPPORT_H

#include "testdb.h"
#include "testfake.h"
#include "testfx.h"
#include "testgroup.h"
#include "testhttp.h"
#include "testpgc.h"
#include "testsync.h"
#include "testproc.h"
#include "testtime.h"

#endif
