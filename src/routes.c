/* routes: every route on one screen: method, path, guard, body, handler. The trigger
 * routes come from the job kind registry; the operator routes take GUARD_OPERATOR. */
#include "jobsd/api.h"
#include "jobsd/util.h"

/* clang-format off */
static const struct route FIXED[] = {
    /* method  path                  guard                  body   job    handler */
    {"GET",  "/api/v1/jobs/status",  GUARD_JWT,             false, true,  api_get_status, NULL},
    {"GET",  "/api/v1/jobs/stats",   GUARD_JWT,             false, true,  api_get_stats,  NULL},
    {"GET",  "/api/v1/jobs/freshness", GUARD_INTERNAL,       false, true,  api_get_freshness, NULL},
    {"GET",  "/api/v1/jobs/{id}",    GUARD_INTERNAL_OR_JWT, false, true,  api_get_job,    NULL},
    {"POST", "/api/v1/jobs/{id}/retry",  GUARD_OPERATOR,    false, true,  api_post_retry,  NULL},
    {"POST", "/api/v1/jobs/{id}/cancel", GUARD_OPERATOR,    false, true,  api_post_cancel, NULL},
    {"GET",  "/api/v1/operator/queue", GUARD_OPERATOR,      false, false, api_get_operator_queue, NULL},
    {"GET",  "/api/v1/operator/jobs",  GUARD_OPERATOR,      false, false, api_get_operator_jobs, NULL},
    {"GET",  "/api/v1/operator/jobs/{id}", GUARD_OPERATOR,  false, false, api_get_operator_job, NULL},
    {"GET",  "/api/v1/operator/trends", GUARD_OPERATOR,     false, false, api_get_operator_trends, NULL},
    {"GET",  "/api/v1/operator/fleet", GUARD_OPERATOR,      false, false, api_get_operator_fleet, NULL},
    {"GET",  "/healthz",             GUARD_NONE,            false, false, api_healthz,    NULL},
    {"GET",  "/readyz",              GUARD_NONE,            false, false, api_readyz,     NULL},
    {"GET",  "/metrics",             GUARD_METRICS,         false, false, api_metrics,    NULL},
    /* The operator console's static files (api_console.c): no data in them, no guard. */
    {"GET",  "/console",             GUARD_NONE,            false, false, api_console,    NULL},
    {"GET",  "/console/app.js",      GUARD_NONE,            false, false, api_console,    NULL},
    {"GET",  "/console/app.css",     GUARD_NONE,            false, false, api_console,    NULL},
};
/* clang-format on */

_Static_assert(JOB_KINDS_MAX + sizeof FIXED / sizeof FIXED[0] <= API_ROUTES_MAX,
               "raise API_ROUTES_MAX");

void api_routes_build(struct api_routes *out)
{
    size_t n = 0;
    for (const struct job_kind *const *k = job_kinds(); *k && n < JOB_KINDS_MAX; k++, n++) {
        util_fmt(out->job_paths[n], sizeof out->job_paths[n], "/api/v1/jobs/%s", (*k)->name);
        out->route[n] =
            (struct route){"POST", out->job_paths[n], GUARD_INTERNAL, true, true, api_post_job, *k};
    }
    for (size_t i = 0; i < sizeof FIXED / sizeof FIXED[0]; i++)
        out->route[n++] = FIXED[i];
    out->n = n;
}
