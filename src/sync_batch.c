/* sync_batch: Mercado Livre batches run with the connection's access token (see sync_ml.h).
 * When a batch answers ML_BATCH_TOKEN (a 401), the token is renewed here, between two pulls
 * of the batch, in the job's own thread: the connection's first 401 forces one refresh
 * through sync_token_ensure; every later one gets the current token, or that refresh's error,
 * so a connection is refreshed at most once by 401s whatever the number of batches. */
#include "jobsd/util.h"
#include "sync_ml.h"

#include <stdio.h>

struct ml_batch *sync_batch_start(struct sync *s, struct ml_request *reqs, size_t n)
{
    return ml_batch_start(s->run->ml, reqs, n, s->token);
}

static void renew(struct sync *s, struct ml_batch *b)
{
    if (!s->forced_refresh) {
        s->forced_refresh = true;
        char fresh[SYNC_TOKEN_MAX];
        if (sync_token_ensure(s, s->token, fresh, sizeof fresh, &s->refresh_err) == 0)
            snprintf(s->token, sizeof s->token, "%s", fresh);
        util_wipe(fresh, sizeof fresh);
    }
    ml_batch_set_token(b, s->token, err_is_set(&s->refresh_err) ? &s->refresh_err : NULL);
}

static bool stop_asked(const void *run)
{
    return job_run_stopping(run);
}

enum ml_batch_event sync_batch_next(struct sync *s, struct ml_batch *b, size_t *index)
{
    for (;;) {
        enum ml_batch_event ev = ml_batch_next(b, stop_asked, s->run, index);
        if (ev != ML_BATCH_TOKEN)
            return ev;
        renew(s, b);
    }
}

void sync_batch_run(struct sync *s, struct ml_request *reqs, size_t n)
{
    if (n == 0)
        return;
    struct ml_batch *b = sync_batch_start(s, reqs, n);
    size_t i;
    while (sync_batch_next(s, b, &i) == ML_BATCH_ANSWER)
        continue;
    ml_batch_end(b);
}
