/* testtime: see testtime.h. */
#include "testtime.h"
#include "testutil.h"

#include <errno.h>
#include <stdlib.h>
#include <time.h>

long long t_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void t_sleep_ms(long long ms)
{
    if (ms <= 0)
        return;
    struct timespec ts = {(time_t)(ms / 1000), (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

long long t_scale(void)
{
    const char *s = getenv("JOBSD_TEST_TIMEOUT_SCALE");
    long long n = s && *s ? strtoll(s, NULL, 10) : 0;
    if (n >= 1 && n <= 1000)
        return n;
    return tu_valgrind() ? 10 : 1;
}

bool t_wait_until(bool (*cond)(void *ctx), void *ctx, long long timeout_ms)
{
    long long end = t_now_ms() + timeout_ms * t_scale();
    for (;;) {
        if (cond(ctx))
            return true;
        if (t_now_ms() > end)
            return cond(ctx);
        t_sleep_ms(20);
    }
}
