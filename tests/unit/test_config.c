/* Unit tests of config: defaults, validation (one line per problem naming the variable,
 * never printing a secret), NAME_FILE variants, per-subcommand needs. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "jobsd/config.h"

#define KEY32 "0123456789abcdef0123456789abcdef"

struct env {
    const char *const *kv; /* NAME=value, NULL-terminated */
};

static const char *fake_getenv(void *ctx, const char *name)
{
    const struct env *e = ctx;
    size_t n = strlen(name);
    for (size_t i = 0; e->kv[i]; i++)
        if (strncmp(e->kv[i], name, n) == 0 && e->kv[i][n] == '=')
            return e->kv[i] + n + 1;
    return NULL;
}

/* Loads and returns the problem count; the error text goes to errbuf. */
static int load(struct config *c, enum config_use use, const char *const *kv, char *errbuf,
                size_t cap)
{
    struct env e = {kv};
    FILE *f = fmemopen(errbuf, cap, "w");
    int n = config_load(c, use, fake_getenv, &e, f);
    fclose(f);
    return n;
}

static size_t lines(const char *s)
{
    size_t n = 0;
    for (; *s; s++)
        n += *s == '\n';
    return n;
}

static void test_defaults(void **state)
{
    (void)state;
    const char *kv[] = {"DATABASE_URL=postgresql://x/y", "INTERNAL_JOBS_KEY=" KEY32, NULL};
    struct config c;
    char err[1024] = "";
    assert_int_equal(load(&c, CONFIG_SERVE, kv, err, sizeof err), 0);
    assert_int_equal(c.port, 8080);
    assert_string_equal(c.bind_address, "0.0.0.0");
    assert_string_equal(c.jobs_timezone, "America/Sao_Paulo");
    assert_int_equal(c.rebuild_max_range_days, 366);
    assert_int_equal(c.rebuild_timeout_seconds, 600);
    assert_int_equal(c.db_query_timeout_ms, 5000);
    assert_int_equal(c.http_threads, 4);
    assert_int_equal(c.job_workers, 2);
    assert_int_equal(c.db_pool_size, 4 + 2 + 4);
    assert_int_equal(c.max_body_bytes, 65536);
    assert_int_equal(c.max_connections, 4096);
    assert_int_equal(c.per_ip_connections, 32);
    assert_int_equal(c.header_timeout_seconds, 10);
    assert_int_equal(c.sync_wait_seconds, 100);
    assert_int_equal(c.job_lease_seconds, 60);
    assert_int_equal(c.job_max_attempts, 3);
    assert_int_equal(c.shutdown_grace_seconds, 25);
    assert_true(c.migrate_on_start);
    assert_string_equal(c.ml_api_base_url, "https://api.mercadolibre.com");
    assert_int_equal(c.ml_max_rps, 5);
    assert_int_equal(c.ml_concurrency, 4);
    assert_int_equal(c.ml_http_timeout_ms, 30000);
    assert_int_equal(c.jwt_leeway_seconds, 30);
    assert_null(c.jwt_secret);
    assert_int_equal(c.log_format, LOG_TEXT);
    assert_int_equal(c.log_level, LOG_INFO);
    config_free(&c);
}

static void test_each_problem_named_once(void **state)
{
    (void)state;
    const char *kv[] = {"INTERNAL_JOBS_KEY=short-secret-value",
                        "PORT=80a",
                        "HTTP_THREADS=0",
                        "MIGRATE_ON_START=maybe",
                        "LOG_FORMAT=xml",
                        "JWT_SECRET=tiny-jwt-secret",
                        "BIND_ADDRESS=localhost",
                        NULL};
    struct config c;
    char err[4096] = "";
    int n = load(&c, CONFIG_SERVE, kv, err, sizeof err);
    assert_int_equal(n, 8);
    assert_int_equal(lines(err), 8);
    assert_non_null(strstr(err, "DATABASE_URL: is required"));
    assert_non_null(strstr(err, "INTERNAL_JOBS_KEY: must be at least 32 bytes"));
    assert_non_null(strstr(err, "PORT: must be an integer from 0 to 65535 (got \"80a\")"));
    assert_non_null(strstr(err, "HTTP_THREADS:"));
    assert_non_null(strstr(err, "MIGRATE_ON_START:"));
    assert_non_null(strstr(err, "LOG_FORMAT:"));
    assert_non_null(strstr(err, "JWT_SECRET: must be at least 32 bytes"));
    assert_non_null(strstr(err, "BIND_ADDRESS:"));
    /* Secrets are never echoed. */
    assert_null(strstr(err, "short-secret-value"));
    assert_null(strstr(err, "tiny-jwt-secret"));
    config_free(&c);
}

static void test_per_subcommand(void **state)
{
    (void)state;
    /* migrate needs only DATABASE_URL: a bad PORT or a missing key does not matter. */
    const char *kv[] = {"DATABASE_URL=postgresql://x/y", "PORT=nope", NULL};
    struct config c;
    char err[1024] = "";
    assert_int_equal(load(&c, CONFIG_MIGRATE, kv, err, sizeof err), 0);
    config_free(&c);
    /* healthcheck needs only PORT. */
    const char *kv2[] = {"PORT=9090", NULL};
    assert_int_equal(load(&c, CONFIG_HEALTHCHECK, kv2, err, sizeof err), 0);
    assert_int_equal(c.port, 9090);
    config_free(&c);
    /* token needs JWT_SECRET. */
    const char *kv3[] = {NULL};
    err[0] = '\0';
    assert_int_equal(load(&c, CONFIG_TOKEN, kv3, err, sizeof err), 1);
    assert_non_null(strstr(err, "JWT_SECRET: is required"));
    config_free(&c);
}

static void test_file_variants(void **state)
{
    (void)state;
    char path[] = "/tmp/jobsd-config-test-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    const char content[] = KEY32 "\n";
    assert_int_equal(write(fd, content, sizeof content - 1), (ssize_t)(sizeof content - 1));
    close(fd);
    char file_kv[128];
    snprintf(file_kv, sizeof file_kv, "INTERNAL_JOBS_KEY_FILE=%s", path);
    const char *kv[] = {"DATABASE_URL=postgresql://x/y", file_kv, NULL};
    struct config c;
    char err[1024] = "";
    assert_int_equal(load(&c, CONFIG_SERVE, kv, err, sizeof err), 0);
    assert_string_equal(c.internal_key, KEY32); /* trailing newline stripped */
    config_free(&c);

    /* Both NAME and NAME_FILE: an error. */
    const char *kv2[] = {"DATABASE_URL=postgresql://x/y", file_kv, "INTERNAL_JOBS_KEY=" KEY32,
                         NULL};
    err[0] = '\0';
    assert_int_equal(load(&c, CONFIG_SERVE, kv2, err, sizeof err), 1);
    assert_non_null(strstr(err, "INTERNAL_JOBS_KEY"));
    assert_null(strstr(err, KEY32));
    config_free(&c);
    unlink(path);

    /* A missing file names the _FILE variable. */
    const char *kv3[] = {"DATABASE_URL=postgresql://x/y",
                         "INTERNAL_JOBS_KEY_FILE=/nonexistent/jobsd-key", NULL};
    err[0] = '\0';
    assert_int_equal(load(&c, CONFIG_SERVE, kv3, err, sizeof err), 1);
    assert_non_null(strstr(err, "INTERNAL_JOBS_KEY_FILE: cannot read /nonexistent/jobsd-key"));
    config_free(&c);
}

static void test_values(void **state)
{
    (void)state;
    const char *kv[] = {"DATABASE_URL=postgresql://x/y",
                        "INTERNAL_JOBS_KEY=" KEY32,
                        "LOG_FORMAT=JSON",
                        "LOG_LEVEL=debug",
                        "MIGRATE_ON_START=off",
                        "HTTP_THREADS=8",
                        "JOB_WORKERS=3",
                        "CORS_ALLOWED_ORIGINS=https://app.example.com, http://localhost:5173",
                        "TOKEN_ENCRYPTION_KEY=AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=",
                        "ML_CLIENT_ID=123",
                        "ML_CLIENT_SECRET=s3cret",
                        NULL};
    struct config c;
    char err[1024] = "";
    assert_int_equal(load(&c, CONFIG_SERVE, kv, err, sizeof err), 0);
    assert_int_equal(c.log_format, LOG_JSON);
    assert_int_equal(c.log_level, LOG_DEBUG);
    assert_false(c.migrate_on_start);
    assert_int_equal(c.db_pool_size, 8 + 3 + 4);
    config_free(&c);

    const char *bad[] = {"DATABASE_URL=postgresql://x/y",
                         "INTERNAL_JOBS_KEY=" KEY32,
                         "INTERNAL_JOBS_KEY_PREVIOUS=" KEY32,
                         "CORS_ALLOWED_ORIGINS=app.example.com",
                         "TOKEN_ENCRYPTION_KEY=dG9vc2hvcnQ=",
                         "ML_CLIENT_ID=123",
                         "JOBS_TIMEZONE=America/Sao Paulo",
                         "ML_API_BASE_URL=ftp://x",
                         NULL};
    err[0] = '\0';
    assert_int_equal(load(&c, CONFIG_SERVE, bad, err, sizeof err), 5);
    /* equal keys are step 1 of the documented rotation: a warning, not a failure */
    assert_non_null(strstr(err, "warning: INTERNAL_JOBS_KEY_PREVIOUS: equals INTERNAL_JOBS_KEY"));
    assert_null(strstr(err, KEY32));
    assert_non_null(strstr(err, "CORS_ALLOWED_ORIGINS:"));
    assert_non_null(strstr(err, "TOKEN_ENCRYPTION_KEY:"));
    assert_non_null(strstr(err, "ML_CLIENT_SECRET: is required when ML_CLIENT_ID is set"));
    assert_non_null(strstr(err, "JOBS_TIMEZONE:"));
    assert_non_null(strstr(err, "ML_API_BASE_URL:"));
    config_free(&c);
}

static void test_print_redacts(void **state)
{
    (void)state;
    const char *kv[] = {"DATABASE_URL=postgresql://u:pw@h/db", "INTERNAL_JOBS_KEY=" KEY32,
                        "JWT_SECRET=jwt-secret-jwt-secret-jwt-secret-jwt", NULL};
    struct config c;
    char err[256] = "";
    assert_int_equal(load(&c, CONFIG_SERVE, kv, err, sizeof err), 0);
    char out[8192];
    FILE *f = fmemopen(out, sizeof out, "w");
    config_print(&c, CONFIG_SERVE, f, NULL);
    fclose(f);
    assert_null(strstr(out, KEY32));
    assert_null(strstr(out, "jwt-secret"));
    assert_null(strstr(out, "pw"));
    assert_non_null(strstr(out, "INTERNAL_JOBS_KEY=<redacted>"));
    assert_non_null(strstr(out, "INTERNAL_JOBS_KEY_PREVIOUS=<unset>"));
    assert_non_null(strstr(out, "PORT=8080"));
    config_free(&c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults),       cmocka_unit_test(test_each_problem_named_once),
        cmocka_unit_test(test_per_subcommand), cmocka_unit_test(test_file_variants),
        cmocka_unit_test(test_values),         cmocka_unit_test(test_print_redacts),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
