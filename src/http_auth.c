/* http_auth: the credentials a route's guard asks for (SPEC section 2): the internal key
 * (X-Internal-Key, or a bearer token on /metrics) compared in constant time, or a seller's JWT,
 * or an operator's JWT ("role": "operator") on the operator routes (else 403 forbidden).
 * A refusal is a 401 whose reason goes to the request's access line, never the credential. */
#include "http_internal.h"
#include "jobsd/internal_key.h"
#include "jobsd/log.h"
#include "jobsd/util.h"

#include <stdio.h>
#include <string.h>

/* The rejection is logged once, by the request's access line (which carries [INTERNAL-JOB]
 * on job routes) with the reason: one line per request, also under a flood of bad keys. */
static void reject_unauthorized(struct http_request *r, const char *reason, bool bearer)
{
    snprintf(r->reject_reason, sizeof r->reject_reason, "%s", reason);
    if (bearer)
        http_add_header(r, "WWW-Authenticate", "Bearer error=\"invalid_token\"");
    http_respond_error(r, 401, "unauthorized", UNAUTHORIZED_MESSAGE);
}

static bool check_internal_key(struct http_request *r, const struct header_scan *h,
                               const char *value, size_t len, size_t count)
{
    (void)h;
    if (count != 1) {
        reject_unauthorized(r, count == 0 ? "missing" : "repeated", false);
        return false;
    }
    enum internal_key_match m = internal_key_check(r->srv->cfg.key, value, len);
    if (m == INTERNAL_KEY_NONE) {
        reject_unauthorized(r, len == 0 ? "empty" : "invalid", false);
        return false;
    }
    r->auth.kind = HTTP_AUTH_INTERNAL;
    r->auth.key_match = (int)m;
    if (m == INTERNAL_KEY_PREVIOUS)
        log_event(LOG_INFO, "authenticated with INTERNAL_JOBS_KEY_PREVIOUS", "path", r->path,
                  "requestId", r->request_id, NULL);
    return true;
}

/* Splits "Bearer <token>" (scheme case-insensitive). */
static const char *bearer_token(const char *authorization)
{
    if (!authorization || strlen(authorization) < 7)
        return NULL;
    char scheme[7];
    memcpy(scheme, authorization, 6);
    scheme[6] = '\0';
    if (!util_strcaseeq(scheme, "Bearer") || authorization[6] != ' ')
        return NULL;
    const char *t = authorization + 7;
    while (*t == ' ')
        t++;
    return *t ? t : NULL;
}

static bool check_jwt(struct http_request *r, const struct header_scan *h)
{
    const struct http_server_config *cfg = &r->srv->cfg;
    if (!cfg->jwt_verify) {
        http_respond_error(r, 503, "jwt_not_configured",
                           "JWT authentication is not configured on this server (JWT_SECRET)");
        return false;
    }
    const char *token = h->authorization_count == 1 ? bearer_token(h->authorization) : NULL;
    if (!token) {
        reject_unauthorized(r, h->authorization_count ? "malformed" : "missing", true);
        return false;
    }
    struct err e;
    err_clear(&e);
    if (cfg->jwt_verify(cfg->jwt_ctx, token, &r->auth, &e) != 0) {
        if (e.http_status == 401 || e.http_status == 0) {
            char reason[64];
            snprintf(reason, sizeof reason, "invalid_token: %.40s", e.message);
            reject_unauthorized(r, reason, true);
        } else {
            http_respond_err(r, &e, NULL);
        }
        return false;
    }
    r->auth.kind = HTTP_AUTH_JWT;
    return true;
}

/* A verified token on a route it does not open: a tenant's token on an operator route, an
 * operator token without tenantId on a tenant's route. */
static bool forbid(struct http_request *r)
{
    snprintf(r->reject_reason, sizeof r->reject_reason, "%s", "forbidden role");
    http_respond_error(r, 403, "forbidden", "this token may not use this route");
    return false;
}

static bool check_tenant_jwt(struct http_request *r, const struct header_scan *h)
{
    if (!check_jwt(r, h))
        return false;
    return r->auth.tenant_id[0] ? true : forbid(r);
}

static bool check_operator(struct http_request *r, const struct header_scan *h)
{
    if (h->key_count > 0)
        return check_internal_key(r, h, h->key, h->key_len, h->key_count);
    if (!check_jwt(r, h))
        return false;
    return r->auth.operator_role ? true : forbid(r);
}

bool http_auth_check(struct http_request *r, const struct header_scan *h)
{
    switch (r->match.route->guard) {
    case GUARD_NONE:
        return true;
    case GUARD_INTERNAL:
        return check_internal_key(r, h, h->key, h->key_len, h->key_count);
    case GUARD_INTERNAL_OR_JWT:
        if (h->key_count > 0)
            return check_internal_key(r, h, h->key, h->key_len, h->key_count);
        return check_tenant_jwt(r, h);
    case GUARD_JWT:
        return check_tenant_jwt(r, h);
    case GUARD_OPERATOR:
        return check_operator(r, h);
    case GUARD_METRICS:
        if (h->key_count > 0)
            return check_internal_key(r, h, h->key, h->key_len, h->key_count);
        {
            const char *t = h->authorization_count == 1 ? bearer_token(h->authorization) : NULL;
            return check_internal_key(r, h, t, t ? strlen(t) : 0, t ? 1 : 0);
        }
    }
    return false;
}
