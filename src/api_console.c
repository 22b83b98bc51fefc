/* api_console: GET/HEAD /console, /console/app.js and /console/app.css, the operator console's
 * static files (console/ in the repository, compiled into the binary by tools/embed_sql.c). No
 * authentication: they hold no data; the page asks the operator for a token and keeps it in
 * memory. Every answer carries a strict Content-Security-Policy (only this origin's script,
 * style and API; no inline script or style; no framing) and revalidation caching: an ETag
 * (the content's hash) with Cache-Control: no-cache, so a new binary's files are never
 * served stale from a browser cache and an unchanged file costs a 304. */
#include "jobsd/api.h"
#include "jobsd/embedded.h"
#include "jobsd/http.h"
#include "jobsd/util.h"

#include <stdint.h>
#include <string.h>

#define CONSOLE_CSP                                                                                \
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "              \
    "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

struct console_asset {
    const char *path;
    const char *file;
    const char *content_type;
};

static const struct console_asset ASSETS[] = {
    {"/console", "index.html", "text/html; charset=utf-8"},
    {"/console/app.js", "app.js", "text/javascript; charset=utf-8"},
    {"/console/app.css", "app.css", "text/css; charset=utf-8"},
};

/* A strong validator: FNV-1a 64 of the file, quoted. */
static void console_etag(const struct embedded_file *f, char *out, size_t cap)
{
    uint64_t h = 1469598103934665603ULL;
    for (size_t i = 0; i < f->len; i++) {
        h ^= (unsigned char)f->data[i];
        h *= 1099511628211ULL;
    }
    util_fmt(out, cap, "\"%016llx\"", (unsigned long long)h);
}

void api_console(void *app, struct http_request *req)
{
    (void)app;
    const struct route *route = http_request_route(req);
    const struct console_asset *asset = NULL;
    for (size_t i = 0; i < sizeof ASSETS / sizeof ASSETS[0]; i++)
        if (route && strcmp(route->path, ASSETS[i].path) == 0)
            asset = &ASSETS[i];
    const struct embedded_file *f = asset ? embedded_find(asset->file) : NULL;
    if (!f) {
        http_respond_error(req, 404, "not_found", "no such console file");
        return;
    }
    char etag[24];
    console_etag(f, etag, sizeof etag);
    http_add_header(req, "Content-Security-Policy", CONSOLE_CSP);
    http_add_header(req, "X-Content-Type-Options", "nosniff");
    http_add_header(req, "Referrer-Policy", "no-referrer");
    http_add_header(req, "Cache-Control", "no-cache");
    http_add_header(req, "ETag", etag);
    const char *inm = http_request_header(req, "If-None-Match");
    if (inm && strstr(inm, etag)) {
        http_respond_text(req, 304, asset->content_type, "");
        return;
    }
    http_respond_text(req, 200, asset->content_type, f->data);
}
