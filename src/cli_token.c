/* cli_token: see cli_token.h. */
#include "jobsd/cli_token.h"
#include "jobsd/config.h"
#include "jobsd/jwt.h"
#include "jobsd/log.h"
#include "jobsd/util.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

const char CLI_TOKEN_USAGE[] =
    "usage: jobsd token (--tenant ID [--user ID] | --operator) [--ttl SECONDS]\n"
    "Prints an HS256 JWT signed with JWT_SECRET (plus iss/aud when JWT_ISSUER/JWT_AUDIENCE\n"
    "are set), valid for --ttl seconds (default 3600). --tenant: {userId, tenantId, iat, exp}\n"
    "as the product's main API would issue it (GET /api/v1/jobs/status and /stats).\n"
    "--operator: {\"role\": \"operator\", iat, exp}, for the operator API and /console.\n";

enum { OK = 0, FAILED = 1, USAGE = 2 };

__attribute__((format(printf, 1, 2))) static int usage_error(const char *fmt, ...)
{
    fprintf(stderr, "jobsd: ");
    va_list ap;
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\n%s", CLI_TOKEN_USAGE);
    return USAGE;
}

struct token_args {
    const char *tenant, *user;
    bool operator_role;
    long long ttl;
};

static int parse(int argc, char **argv, struct token_args *a)
{
    for (int i = 0; i < argc; i++) {
        if (strcmp(argv[i], "--operator") == 0) {
            a->operator_role = true;
            continue;
        }
        const char *val = i + 1 < argc ? argv[i + 1] : NULL;
        if (!val)
            return usage_error("%s needs a value", argv[i]);
        if (strcmp(argv[i], "--tenant") == 0)
            a->tenant = val;
        else if (strcmp(argv[i], "--user") == 0)
            a->user = val;
        else if (strcmp(argv[i], "--ttl") == 0) {
            if (!util_parse_i64(val, 1, 31536000, &a->ttl))
                return usage_error("--ttl must be 1..31536000 seconds (got %s)", val);
        } else
            return usage_error("unknown option %s", argv[i]);
        i++;
    }
    if (a->operator_role && (a->tenant || a->user))
        return usage_error("--operator takes no --tenant or --user");
    if (!a->operator_role && !a->tenant)
        return usage_error("--tenant (or --operator) is required");
    if (a->user && (strlen(a->user) == 0 || strlen(a->user) > 128))
        return usage_error("--user must be 1..128 characters");
    return OK;
}

int cli_token_run(int argc, char **argv)
{
    struct token_args a = {NULL, NULL, false, 3600};
    int rc = parse(argc, argv, &a);
    if (rc != OK)
        return rc;
    char norm[37];
    if (a.tenant && !util_uuid_normalize(a.tenant, norm))
        return usage_error("--tenant must be a UUID (got %s)", a.tenant);
    struct config c;
    if (config_load(&c, CONFIG_TOKEN, NULL, NULL, stderr) != 0) {
        config_free(&c);
        fprintf(stderr, "jobsd: configuration invalid; see the lines above\n");
        return USAGE;
    }
    log_setup(c.log_level, c.log_format);
    long long now = util_now_ms() / 1000;
    char token[JWT_MAX_TOKEN];
    size_t n = jwt_sign((const unsigned char *)c.jwt_secret, strlen(c.jwt_secret),
                        a.operator_role ? NULL : norm, a.user, now, now + a.ttl, c.jwt_issuer,
                        c.jwt_audience, token, sizeof token);
    config_free(&c);
    if (n == 0) {
        fprintf(stderr, "jobsd token: the token does not fit\n");
        return FAILED;
    }
    printf("%s\n", token);
    return OK;
}
