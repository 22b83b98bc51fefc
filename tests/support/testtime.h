/* testtime: the clock of the tests: a monotonic now, the factor every wait is scaled by
 * (valgrind is ten times slower), a sleep for pacing, and polling a condition with a deadline
 * (TESTING.md: never a sleep where a condition can be polled). */
#ifndef JOBSD_TESTTIME_H
#define JOBSD_TESTTIME_H

#include <stdbool.h>

/* Milliseconds on the monotonic clock. */
long long t_now_ms(void);
/* The factor waits are scaled by: JOBSD_TEST_TIMEOUT_SCALE, else 10 under JOBSD_VALGRIND,
 * else 1. The harness applies it to jobsd start-up, jobsd_stop, th_raw and t_wait_until. */
long long t_scale(void);
/* Sleeps (for pacing and random moments, never for synchronisation). */
void t_sleep_ms(long long ms);
/* Polls cond(ctx) every 20 ms until true or timeout_ms (scaled) passed; returns its last
 * value. */
bool t_wait_until(bool (*cond)(void *ctx), void *ctx, long long timeout_ms);

#endif
