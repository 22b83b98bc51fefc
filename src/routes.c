/* routes: every route on one screen: method, path, guard, body, handler. */
#include "jobsd/api.h"

/* clang-format off */
static const struct route ROUTES[] = {
    /* method  path                                   guard                  body   job    handler */
    {"POST", "/api/v1/jobs/rebuild-daily-metrics", GUARD_INTERNAL,        true,  true,  api_post_rebuild},
    {"POST", "/api/v1/jobs/sync-mercadolivre",     GUARD_INTERNAL,        true,  true,  api_post_sync},
    {"GET",  "/api/v1/jobs/status",                GUARD_JWT,             false, true,  api_get_status},
    {"GET",  "/api/v1/jobs/stats",                 GUARD_JWT,             false, true,  api_get_stats},
    {"GET",  "/api/v1/jobs/{id}",                  GUARD_INTERNAL_OR_JWT, false, true,  api_get_job},
    {"GET",  "/healthz",                           GUARD_NONE,            false, false, api_healthz},
    {"GET",  "/readyz",                            GUARD_NONE,            false, false, api_readyz},
    {"GET",  "/metrics",                           GUARD_METRICS,         false, false, api_metrics},
};
/* clang-format on */

const struct route *api_routes(size_t *n)
{
    *n = sizeof ROUTES / sizeof ROUTES[0];
    return ROUTES;
}
