/* Unit tests of the schedule table's parser (scheduler_parse: SCHEDULES, SCHEDULES_FILE):
 * lines, `;` outside JSON strings, comments, and errors that name the line and the schedule. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <string.h>

#include "jobsd/scheduler.h"

static void test_schedule_table(void **state)
{
    (void)state;
    struct schedule_set set;
    memset(&set, 0, sizeof set);
    struct err e;
    err_clear(&e);
    const char *text = "# the fleet; \"one job\" per tenant\n"
                       "  rebuild-all 0 6 * * * rebuild-daily-metrics {\"allTenants\":true,"
                       "\"daysBack\":2}\n"
                       "\n"
                       "sync.1\t*/5 * * * * *  sync-mercadolivre {\"tenantId\":\"a;b\"}; "
                       "x_y 0 0 1 JAN * rebuild-daily-metrics {}\r\n";
    assert_int_equal(scheduler_parse(text, "SCHEDULES", &set, &e), 0);
    assert_int_equal(set.n, 3);
    assert_string_equal(set.items[0].name, "rebuild-all");
    assert_string_equal(set.items[0].cron_text, "0 6 * * *");
    assert_string_equal(set.items[0].kind->name, "rebuild-daily-metrics");
    assert_int_equal(json_integer_value(json_object_get(set.items[0].body, "daysBack")), 2);
    assert_string_equal(set.items[1].name, "sync.1");
    assert_string_equal(set.items[1].cron_text, "*/5 * * * * *");
    assert_string_equal(json_string_value(json_object_get(set.items[1].body, "tenantId")), "a;b");
    assert_string_equal(set.items[2].name, "x_y");
    scheduler_clear(&set);

    struct {
        const char *text, *needle;
    } bad[] = {
        {"a 0 6 * * * no-such-kind {}", "schedule a: unknown job kind \"no-such-kind\""},
        {"ok 0 6 * * * rebuild-daily-metrics {}\nb 0 25 * * * rebuild-daily-metrics {}",
         "SCHEDULES line 2: schedule b: hour field"},
        {"c 0 6 * * rebuild-daily-metrics {}", "schedule c: a cron expression has 5 or 6"},
        {"d 0 6 * * * rebuild-daily-metrics [1]", "no JSON body"},
        {"e 0 6 * * * rebuild-daily-metrics {\"a\":", "schedule e: the body is not a JSON"},
        {"f 0 6 * * * rebuild-daily-metrics {}; f 0 7 * * * rebuild-daily-metrics {}",
         "schedule f: defined twice"},
        {"bad/name 0 6 * * * rebuild-daily-metrics {}", "schedule name"},
        {"g 0 6 * * * {}", "schedule g: unknown job kind"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        memset(&set, 0, sizeof set);
        err_clear(&e);
        assert_int_equal(scheduler_parse(bad[i].text, "SCHEDULES", &set, &e), -1);
        if (!strstr(e.message, bad[i].needle))
            fail_msg("\"%s\": got \"%s\", want \"%s\"", bad[i].text, e.message, bad[i].needle);
        scheduler_clear(&set);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_schedule_table),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
