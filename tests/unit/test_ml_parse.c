/* Unit tests of the Mercado Livre response parsers: every shape of ML_API.md, tolerance of
 * missing fields, `code` vs `status_code`, 64-bit ids, and the order status mapping. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include "jobsd/ml_parse.h"

static json_t *parse_multiget(const char *body, const char *const *ids, size_t n)
{
    struct err e;
    err_clear(&e);
    return ml_parse_multiget(body, strlen(body), ids, n, &e);
}

static void test_error_bodies(void **state)
{
    (void)state;
    struct ml_error me;
    const char *b1 = "{\"message\":\"invalid_token\",\"error\":\"not_found\",\"status\":401,"
                     "\"cause\":[]}";
    ml_parse_error(b1, strlen(b1), &me);
    assert_string_equal(me.error, "not_found");
    assert_string_equal(me.message, "invalid_token");
    assert_int_equal(me.status, 401);
    const char *b2 = "{\"error\":\"invalid_grant\",\"error_description\":\"Invalid grant\"}";
    ml_parse_error(b2, strlen(b2), &me);
    assert_string_equal(me.error, "invalid_grant");
    assert_string_equal(me.message, "Invalid grant");
    const char *b3 = "{\"code\":\"PA_UNAUTHORIZED_RESULT_FROM_POLICIES\",\"blocked_by\":"
                     "\"PolicyAgent\",\"status\":\"403\"}";
    ml_parse_error(b3, strlen(b3), &me);
    assert_string_equal(me.error, "PA_UNAUTHORIZED_RESULT_FROM_POLICIES");
    assert_int_equal(me.status, 403);
    ml_parse_error("<html>", 6, &me);
    assert_string_equal(me.error, "");
    ml_parse_error(NULL, 0, &me);
    assert_int_equal(me.status, 0);
}

static void test_token(void **state)
{
    (void)state;
    struct ml_token t;
    struct err e;
    err_clear(&e);
    const char *b = "{\"access_token\":\"APP_USR-1\",\"token_type\":\"bearer\",\"expires_in\":"
                    "21600,\"scope\":\"offline_access read write\",\"user_id\":9007199254740993,"
                    "\"refresh_token\":\"TG-2\"}";
    assert_int_equal(ml_parse_token(b, strlen(b), &t, &e), 0);
    assert_string_equal(t.access_token, "APP_USR-1");
    assert_string_equal(t.refresh_token, "TG-2");
    assert_int_equal(t.expires_in, 21600);
    assert_int_equal(t.user_id, 9007199254740993LL);
    const char *missing = "{\"access_token\":\"APP_USR-1\",\"expires_in\":21600}";
    assert_int_equal(ml_parse_token(missing, strlen(missing), &t, &e), -1);
    assert_int_equal(e.http_status, 503);
}

static void test_search(void **state)
{
    (void)state;
    struct err e;
    err_clear(&e);
    char scroll[64];
    long long total;
    const char *b = "{\"seller_id\":\"123\",\"results\":[\"MLB1\",\"MLB2\",42,\"\"],"
                    "\"paging\":{\"limit\":100,\"offset\":0,\"total\":1500},\"scroll_id\":\"abc\"}";
    json_t *ids = ml_parse_search(b, strlen(b), scroll, sizeof scroll, &total, &e);
    assert_int_equal(json_array_size(ids), 2);
    assert_string_equal(scroll, "abc");
    assert_int_equal(total, 1500);
    json_decref(ids);
    const char *end = "{\"results\":null,\"paging\":{\"total\":1500}}";
    ids = ml_parse_search(end, strlen(end), scroll, sizeof scroll, &total, &e);
    assert_int_equal(json_array_size(ids), 0);
    assert_string_equal(scroll, "");
    json_decref(ids);
    assert_null(ml_parse_search("[]", 2, scroll, sizeof scroll, &total, &e));
    /* A scroll id longer than the buffer is an error, never dropped (the scan would end). */
    char body[512];
    snprintf(body, sizeof body, "{\"results\":[\"MLB1\"],\"scroll_id\":\"%0100d\"}", 7);
    err_clear(&e);
    assert_null(ml_parse_search(body, strlen(body), scroll, sizeof scroll, &total, &e));
    assert_string_equal(e.code, "ml_unavailable");
    assert_non_null(strstr(e.message, "100 characters"));
    char big[256];
    ids = ml_parse_search(body, strlen(body), big, sizeof big, &total, &e);
    assert_int_equal(strlen(big), 100);
    json_decref(ids);
}

static void test_multiget(void **state)
{
    (void)state;
    const char *ids[] = {"MLB1", "MLB2", "MLB3", "MLB4"};
    const char *b =
        "[{\"code\":200,\"body\":{\"id\":\"MLB1\",\"title\":\"Camiseta\",\"price\":59.9,"
        "\"currency_id\":\"BRL\",\"available_quantity\":3,\"sold_quantity\":10,\"status\":"
        "\"active\",\"permalink\":\"https://x\",\"category_id\":\"MLB1\",\"listing_type_id\":"
        "\"gold_special\",\"last_updated\":\"2018-02-26T18:15:05.000Z\"}},"
        "{\"code\":404,\"body\":{\"message\":\"Item not found\",\"error\":\"not_found\","
        "\"status\":404}},"
        "{\"code\":403,\"body\":{\"code\":\"PA_UNAUTHORIZED_RESULT_FROM_POLICIES\",\"blocked_by\":"
        "\"PolicyAgent\",\"message\":\"At least one policy returned "
        "UNAUTHORIZED.\",\"status\":403}},"
        "{\"status_code\":200,\"body\":{\"id\":\"MLB4\",\"status\":\"closed\",\"sub_status\":"
        "[\"deleted\"]}}]";
    json_t *els = parse_multiget(b, ids, 4);
    assert_int_equal(json_array_size(els), 4);
    json_t *item = json_object_get(json_array_get(els, 0), "item");
    assert_string_equal(json_string_value(json_object_get(item, "external_id")), "MLB1");
    assert_true(json_real_value(json_object_get(item, "price")) == 59.9);
    assert_string_equal(json_string_value(json_object_get(item, "status")), "active");
    assert_int_equal(json_integer_value(json_object_get(json_array_get(els, 1), "code")), 404);
    assert_string_equal(json_string_value(json_object_get(json_array_get(els, 1), "id")), "MLB2");
    assert_true(json_is_true(json_object_get(json_array_get(els, 2), "blocked")));
    /* status_code works like code; a deleted sub_status maps to deleted; missing fields null. */
    json_t *four = json_object_get(json_array_get(els, 3), "item");
    assert_string_equal(json_string_value(json_object_get(four, "status")), "deleted");
    assert_true(json_is_null(json_object_get(four, "price")));
    assert_true(json_is_null(json_object_get(four, "title")));
    json_decref(els);
    /* A 403 that is not PolicyAgent is not a policy block. */
    const char *other =
        "[{\"code\":403,\"body\":{\"error\":\"access_denied\",\"code\":\"FORBIDDEN\"}}]";
    els = parse_multiget(other, ids, 1);
    assert_false(json_is_true(json_object_get(json_array_get(els, 0), "blocked")));
    json_decref(els);
    struct err e;
    assert_null(ml_parse_multiget("{}", 2, ids, 1, &e));
}

static void test_orders(void **state)
{
    (void)state;
    const char *b =
        "{\"query\":\"\",\"paging\":{\"total\":12345,\"offset\":0,\"limit\":50},\"results\":["
        "{\"id\":2000003508419013,\"status\":\"paid\",\"date_created\":"
        "\"2013-05-27T10:01:50.000-04:00\",\"date_closed\":\"2013-05-27T10:04:07.000-04:00\","
        "\"last_updated\":\"2013-05-27T10:04:07.000-04:00\",\"total_amount\":100.5,"
        "\"paid_amount\":100.5,\"currency_id\":\"BRL\",\"buyer\":{\"id\":9000000000000001},"
        "\"payments\":[{\"status\":\"approved\",\"date_approved\":\"2013-05-27T10:02:00.000-04:"
        "00\"}],"
        "\"shipping\":{\"id\":1,\"status\":\"delivered\"},"
        "\"order_items\":[{\"item\":{\"id\":\"MLB1\",\"title\":\"A\",\"variation_id\":null},"
        "\"quantity\":2,\"unit_price\":50.25,\"full_unit_price\":55}]},"
        "{\"id\":\"2000003508419014\",\"status\":\"partially_refunded\",\"date_created\":"
        "\"2013-05-28T10:01:50Z\",\"order_items\":[],\"payments\":[{\"transaction_amount\":"
        "100,\"transaction_amount_refunded\":12.345},{\"transaction_amount_refunded\":5}]},"
        "{\"id\":1,\"status\":\"paid\"},"
        "{\"id\":3,\"status\":\"paid\",\"date_created\":\"2013-05-28T10:01:50Z\","
        "\"buyer\":{},\"shipping\":{}}]}";
    struct err e;
    err_clear(&e);
    long long total;
    json_t *orders = ml_parse_orders(b, strlen(b), &total, &e);
    assert_int_equal(total, 12345);
    /* The order without a date is dropped (it cannot be put on a day). */
    assert_int_equal(json_array_size(orders), 3);
    json_t *o = json_array_get(orders, 0);
    assert_int_equal(json_integer_value(json_object_get(o, "external_id")), 2000003508419013LL);
    assert_string_equal(json_string_value(json_object_get(o, "status")), "delivered");
    assert_string_equal(json_string_value(json_object_get(o, "external_status")), "paid");
    assert_int_equal(json_integer_value(json_object_get(o, "buyer_id")), 9000000000000001LL);
    assert_string_equal(json_string_value(json_object_get(o, "paid_at")),
                        "2013-05-27T10:02:00.000-04:00");
    json_t *item = json_array_get(json_object_get(o, "items"), 0);
    assert_string_equal(json_string_value(json_object_get(item, "listing_external_id")), "MLB1");
    assert_int_equal(json_integer_value(json_object_get(item, "quantity")), 2);
    json_t *o2 = json_array_get(orders, 1);
    assert_int_equal(json_integer_value(json_object_get(o2, "external_id")), 2000003508419014LL);
    assert_string_equal(json_string_value(json_object_get(o2, "status")), "partially_refunded");
    /* The refunds of every payment, 2 decimals. */
    assert_true(json_number_value(json_object_get(o2, "refunded_amount")) > 17.34 &&
                json_number_value(json_object_get(o2, "refunded_amount")) < 17.36);
    assert_true(json_number_value(json_object_get(o, "refunded_amount")) == 0.0);
    /* What an answer leaves out (a 206) is unknown, not empty. */
    assert_true(json_is_true(json_object_get(o, "buyer_known")));
    assert_true(json_is_true(json_object_get(o, "shipping_known")));
    assert_true(json_is_false(json_object_get(o2, "buyer_known")));
    assert_true(json_is_false(json_object_get(o2, "shipping_known")));
    assert_true(json_is_null(json_object_get(o2, "buyer_id")));
    /* ... and the documented 206 example sends them as empty objects. */
    json_t *o3 = json_array_get(orders, 2);
    assert_true(json_is_false(json_object_get(o3, "buyer_known")));
    assert_true(json_is_false(json_object_get(o3, "shipping_known")));
    json_decref(orders);
}

static void test_visits(void **state)
{
    (void)state;
    const char *b = "{\"item_id\":\"MLB1\",\"date_from\":\"2021-06-13T00:00:00Z\",\"date_to\":"
                    "\"2021-06-16T00:00:00Z\",\"total_visits\":7,\"last\":3,\"unit\":\"day\","
                    "\"results\":[{\"date\":\"2021-06-13T00:00:00Z\",\"total\":0,"
                    "\"visits_detail\":[]},{\"date\":\"2021-06-14T00:00:00Z\",\"total\":7},"
                    "{\"date\":\"bad\",\"total\":1},{\"date\":\"2021-06-15T00:00:00Z\"}]}";
    struct err e;
    err_clear(&e);
    json_t *v = ml_parse_visits(b, strlen(b), &e);
    assert_int_equal(json_array_size(v), 2);
    assert_string_equal(json_string_value(json_object_get(json_array_get(v, 0), "date")),
                        "2021-06-13");
    assert_int_equal(json_integer_value(json_object_get(json_array_get(v, 0), "visits")), 0);
    assert_int_equal(json_integer_value(json_object_get(json_array_get(v, 1), "visits")), 7);
    json_decref(v);
    /* The field that does not exist ("visits") is not what is read. */
    const char *wrong = "{\"visits\":10}";
    assert_null(ml_parse_visits(wrong, strlen(wrong), &e));
}

static void test_status_mapping(void **state)
{
    (void)state;
    struct {
        const char *ml, *ship, *want;
    } cases[] = {
        {"confirmed", NULL, "pending"},
        {"payment_required", NULL, "pending"},
        {"payment_in_process", NULL, "pending"},
        {"paid", NULL, "paid"},
        {"partially_paid", NULL, "pending"},
        {"cancelled", NULL, "cancelled"},
        {"invalid", NULL, "cancelled"},
        {"pending_cancel", NULL, "cancelled"},
        {"partially_refunded", NULL, "partially_refunded"},
        {"partially_refunded", "delivered", "partially_refunded"},
        {"paid", "shipped", "shipped"},
        {"paid", "delivered", "delivered"},
        {"cancelled", "delivered", "cancelled"},
        {"something_new", NULL, "pending"},
        {NULL, NULL, "pending"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        assert_string_equal(ml_map_order_status(cases[i].ml, cases[i].ship), cases[i].want);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_error_bodies),   cmocka_unit_test(test_token),
        cmocka_unit_test(test_search),         cmocka_unit_test(test_multiget),
        cmocka_unit_test(test_orders),         cmocka_unit_test(test_visits),
        cmocka_unit_test(test_status_mapping),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
