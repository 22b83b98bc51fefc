/* Unit tests of the Mercado Livre endpoint paths: the exact bytes jobsd sends (the fake API
 * and the real one parse them), URL escaping of ids and scroll ids, no truncation. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jobsd/ml_path.h"

static void expect(char *got, const char *want)
{
    assert_non_null(got);
    assert_string_equal(got, want);
    free(got);
}

static void test_items_scan(void **state)
{
    (void)state;
    expect(ml_path_items_scan(2210987654LL, NULL),
           "/users/2210987654/items/search?search_type=scan&limit=100");
    expect(ml_path_items_scan(2210987654LL, ""),
           "/users/2210987654/items/search?search_type=scan&limit=100");
    expect(ml_path_items_scan(77, "YXBpY29yZS1pdGVtcw==:a b/c"),
           "/users/77/items/search?search_type=scan&limit=100"
           "&scroll_id=YXBpY29yZS1pdGVtcw%3D%3D%3Aa%20b%2Fc");
    /* A long scroll id is escaped whole (3 bytes per escaped byte), never cut. */
    char scroll[256];
    memset(scroll, '+', sizeof scroll - 1);
    scroll[sizeof scroll - 1] = '\0';
    char *p = ml_path_items_scan(1, scroll);
    assert_int_equal(strlen(p), strlen("/users/1/items/search?search_type=scan&limit=100"
                                       "&scroll_id=") +
                                    3 * 255);
    free(p);
}

static void test_items_multiget(void **state)
{
    (void)state;
    const char *ids[] = {"MLB1100000001", "MLB1100000002", "MLB 3,x"};
    const char *attrs = "&attributes=id,title,status,sub_status,price,currency_id,"
                        "available_quantity,sold_quantity,permalink,category_id,listing_type_id,"
                        "last_updated";
    char want[512];
    snprintf(want, sizeof want, "/items?ids=MLB1100000001%s", attrs);
    expect(ml_path_items_multiget(ids, 1), want);
    snprintf(want, sizeof want, "/items?ids=MLB1100000001,MLB1100000002,MLB%%203%%2Cx%s", attrs);
    expect(ml_path_items_multiget(ids, 3), want);
    /* Twenty ids of 39 bytes that all need escaping: longer than any fixed buffer had. */
    char id[40];
    memset(id, '/', 39);
    id[39] = '\0';
    const char *many[ML_MULTIGET_MAX];
    for (size_t i = 0; i < ML_MULTIGET_MAX; i++)
        many[i] = id;
    char *p = ml_path_items_multiget(many, ML_MULTIGET_MAX);
    assert_int_equal(strlen(p), strlen("/items?ids=") + 20 * 39 * 3 + 19 + strlen(attrs));
    free(p);
}

static void test_orders_search(void **state)
{
    (void)state;
    /* 2023-12-31T03:00Z (São Paulo midnight) to 2024-01-31T06:00Z. */
    struct ml_orders_query q = {2210987654LL, 1703991600LL, 1706680800LL, 0, 0, NULL};
    expect(ml_path_orders_search(&q, 0),
           "/orders/search?seller=2210987654&order.date_created.from=2023-12-31T03:00:00.000-00:00"
           "&order.date_created.to=2024-01-31T06:00:00.000-00:00&sort=date_asc&limit=50&offset=0");
    struct ml_orders_query q2 = {3300000001LL, 1703991600LL, 1703995200LL, 0, 0, NULL};
    expect(ml_path_orders_search(&q2, 9950),
           "/orders/search?seller=3300000001&order.date_created.from=2023-12-31T03:00:00.000-00:00"
           "&order.date_created.to=2023-12-31T04:00:00.000-00:00&sort=date_asc&limit=50"
           "&offset=9950");
    /* Orders created before the window and changed since an instant, and the cancelled ones
     * a seller's search leaves out. */
    struct ml_orders_query q3 = {2210987654LL, 0, 1703991600LL, 1703988000LL, 1706680800LL, NULL};
    expect(ml_path_orders_search(&q3, 50),
           "/orders/search?seller=2210987654&order.date_created.to=2023-12-31T03:00:00.000-00:00"
           "&order.date_last_updated.from=2023-12-31T02:00:00.000-00:00&order.date_last_updated."
           "to=2024-01-31T06:00:00.000-00:00&sort=date_asc&limit=50&offset=50");
    struct ml_orders_query q4 = {2210987654LL, 1703991600LL, 1706680800LL, 0, 0, "cancelled"};
    expect(ml_path_orders_search(&q4, 0),
           "/orders/search?seller=2210987654&order.status=cancelled&order.date_created.from=2023-"
           "12-31T03:00:00.000-00:00&order.date_created.to=2024-01-31T06:00:00.000-00:00&sort=date_"
           "asc&limit=50&offset=0");
    expect(ml_path_order(2000003508419013LL), "/orders/2000003508419013");
}

static void test_item_visits(void **state)
{
    (void)state;
    /* No ending: the documented default (now); a future date is not documented. */
    expect(ml_path_item_visits("MLB1100000001", 30),
           "/items/MLB1100000001/visits/time_window?last=30&unit=day");
    expect(ml_path_item_visits("MLB/1?", 150),
           "/items/MLB%2F1%3F/visits/time_window?last=150&unit=day");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_items_scan),
        cmocka_unit_test(test_items_multiget),
        cmocka_unit_test(test_orders_search),
        cmocka_unit_test(test_item_visits),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
