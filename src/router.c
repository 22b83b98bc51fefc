/* router: see router.h. Tables are tiny (a dozen routes): a linear scan is the fastest
 * structure and the easiest to read. */
#include "jobsd/router.h"

#include <string.h>

/* Returns the number of {param} segments matched (>= 0), or -1 when the path does not fit
 * the pattern. The value of the (single) parameter goes to param. */
static int match_path(const char *pattern, const char *path, char *param, size_t cap)
{
    int params = 0;
    const char *p = pattern, *s = path;
    while (*p && *s) {
        if (*p == '{') {
            const char *pe = strchr(p, '}');
            if (!pe)
                return -1;
            const char *se = strchr(s, '/');
            size_t n = se ? (size_t)(se - s) : strlen(s);
            if (n == 0 || n >= cap)
                return -1;
            memcpy(param, s, n);
            param[n] = '\0';
            params++;
            p = pe + 1;
            s += n;
            continue;
        }
        if (*p != *s)
            return -1;
        p++;
        s++;
    }
    return (*p == '\0' && *s == '\0') ? params : -1;
}

enum router_result router_match(const struct route *routes, size_t n, const char *method,
                                const char *path, struct router_match *out)
{
    memset(out, 0, sizeof *out);
    const char *m = strcmp(method, "HEAD") == 0 ? "GET" : method;
    /* Find the most specific pattern that fits the path (fewest parameters). */
    int best = -1;
    const char *best_pattern = NULL;
    char param[ROUTER_PARAM_MAX];
    for (size_t i = 0; i < n; i++) {
        int k = match_path(routes[i].path, path, param, sizeof param);
        if (k >= 0 && (best < 0 || k < best)) {
            best = k;
            best_pattern = routes[i].path;
        }
    }
    if (!best_pattern)
        return ROUTER_NOT_FOUND;
    out->pattern = best_pattern;
    size_t alen = 0;
    for (size_t i = 0; i < n; i++) {
        if (strcmp(routes[i].path, best_pattern) != 0)
            continue;
        if (strcmp(routes[i].method, m) == 0) {
            out->route = &routes[i];
            (void)match_path(routes[i].path, path, out->param, sizeof out->param);
            return ROUTER_FOUND;
        }
        const char *name = routes[i].method;
        size_t need = strlen(name) + (alen ? 2 : 0);
        if (alen + need < sizeof out->allow) {
            if (alen) {
                memcpy(out->allow + alen, ", ", 2);
                alen += 2;
            }
            memcpy(out->allow + alen, name, strlen(name));
            alen += strlen(name);
            if (strcmp(name, "GET") == 0 && alen + 6 < sizeof out->allow) {
                memcpy(out->allow + alen, ", HEAD", 6);
                alen += 6;
            }
            out->allow[alen] = '\0';
        }
    }
    return ROUTER_METHOD_NOT_ALLOWED;
}
