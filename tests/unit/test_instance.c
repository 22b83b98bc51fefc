/* Unit tests of the fleet's arithmetic and configuration (issue 20 item 4): an instance's
 * share never lets the live instances' sum pass the application's limit (floor, at least
 * 1), and INSTANCE_DEAD_SECONDS must leave room for two heartbeats and the lapse margin. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <string.h>

#include "jobsd/config.h"
#include "jobsd/instance.h"

static void test_share_is_floor_at_least_one(void **state)
{
    (void)state;
    assert_int_equal(instance_share(30, 3), 10);
    assert_int_equal(instance_share(30, 2), 15);
    assert_int_equal(instance_share(30, 1), 30);
    assert_int_equal(instance_share(10, 3), 3); /* not 4: 4 + 4 + 4 > 10 */
    assert_int_equal(instance_share(5, 0), 5);  /* no live row yet: itself */
    assert_int_equal(instance_share(2, 3), 1);  /* more instances than the limit */
    for (long long total = 1; total <= 200; total++)
        for (long long live = 1; live <= total; live++)
            if (live * instance_share(total, live) > total)
                fail_msg("%lld instances x share of %lld > %lld", live, total, total);
}

struct env {
    const char *const *kv;
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

static int load(const char *hb, const char *dead, char *err, size_t cap, struct config *c)
{
    char h[64], d[64];
    snprintf(h, sizeof h, "INSTANCE_HEARTBEAT_SECONDS=%s", hb);
    snprintf(d, sizeof d, "INSTANCE_DEAD_SECONDS=%s", dead);
    const char *kv[] = {"DATABASE_URL=postgresql://x/y",
                        "INTERNAL_JOBS_KEY=0123456789abcdef0123456789abcdef", h, d, NULL};
    struct env e = {kv};
    FILE *f = fmemopen(err, cap, "w");
    int n = config_load(c, CONFIG_SERVE, fake_getenv, &e, f);
    fclose(f);
    return n;
}

static void test_config(void **state)
{
    (void)state;
    struct config c;
    char err[512] = "";
    assert_int_equal(load("2", "10", err, sizeof err, &c), 0);
    assert_int_equal(c.instance_heartbeat_seconds, 2);
    assert_int_equal(c.instance_dead_seconds, 10);
    config_free(&c);
    assert_int_equal(load("3", "8", err, sizeof err, &c), 0);
    config_free(&c);
    memset(err, 0, sizeof err);
    assert_int_equal(load("3", "7", err, sizeof err, &c), 1);
    assert_non_null(strstr(err, "INSTANCE_DEAD_SECONDS"));
    config_free(&c);
    memset(err, 0, sizeof err);
    assert_int_equal(load("0", "10", err, sizeof err, &c), 1);
    assert_non_null(strstr(err, "INSTANCE_HEARTBEAT_SECONDS"));
    config_free(&c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_share_is_floor_at_least_one),
        cmocka_unit_test(test_config),
    };
    return cmocka_run_group_tests_name("instance", tests, NULL, NULL);
}
