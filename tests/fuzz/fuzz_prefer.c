/* libFuzzer harness: the Prefer header parser and the router's path matching. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "jobsd/api.h"
#include "jobsd/http.h"
#include "jobsd/router.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *s = malloc(size + 1);
    if (!s)
        return 0;
    memcpy(s, data, size);
    s[size] = '\0';
    struct http_prefer p = {false, false, 0};
    http_prefer_parse(&p, s);
    struct api_routes routes;
    api_routes_build(&routes);
    struct router_match m;
    (void)router_match(routes.route, routes.n, "GET", s, &m);
    (void)router_match(routes.route, routes.n, "POST", s, &m);
    free(s);
    return 0;
}
