/* ml_path: see ml_path.h. Strings are sized to what they hold (no truncation): every input is
 * already in memory, and an escaped byte takes at most three. */
#include "jobsd/ml_path.h"
#include "jobsd/util.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* The item fields the sync stores (ml_parse_multiget reads these). */
static const char ITEM_ATTRIBUTES[] =
    "id,title,status,sub_status,price,currency_id,available_quantity,sold_quantity,permalink,"
    "category_id,listing_type_id,last_updated";

__attribute__((format(printf, 1, 2))) static char *path_new(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0)
        util_fatal("ml_path: bad format");
    char *out = util_xmalloc((size_t)n + 1);
    va_start(ap, fmt);
    vsnprintf(out, (size_t)n + 1, fmt, ap);
    va_end(ap);
    return out;
}

static bool unreserved(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '_' || c == '.' || c == '~';
}

/* Percent-encodes every byte outside RFC 3986's unreserved set; writes at most 3 * strlen(in)
 * bytes at out (no NUL) and returns the end. */
static char *escape_to(char *out, const char *in)
{
    static const char hex[] = "0123456789ABCDEF";
    for (const unsigned char *p = (const unsigned char *)in; *p; p++) {
        if (unreserved(*p)) {
            *out++ = (char)*p;
        } else {
            *out++ = '%';
            *out++ = hex[*p >> 4];
            *out++ = hex[*p & 15];
        }
    }
    return out;
}

/* A new escaped copy of s (NULL = ""). */
static char *escape_new(const char *s)
{
    size_t n = s ? strlen(s) : 0;
    char *out = util_calloc(n + 1, 3);
    *escape_to(out, s ? s : "") = '\0';
    return out;
}

char *ml_path_items_scan(long long seller, const char *scroll_id)
{
    char *esc = escape_new(scroll_id);
    char *path = path_new("/users/%lld/items/search?search_type=scan&limit=%d%s%s", seller,
                          ML_SCAN_LIMIT, esc[0] ? "&scroll_id=" : "", esc);
    free(esc);
    return path;
}

char *ml_path_items_multiget(const char *const *ids, size_t n)
{
    size_t cap = 1;
    for (size_t i = 0; i < n; i++) {
        size_t len = strlen(ids[i]);
        if (len > (SIZE_MAX - cap) / 4)
            util_fatal("ml_path: ids too long");
        cap += 3 * len + 1;
    }
    char *list = util_xmalloc(cap);
    char *end = list;
    for (size_t i = 0; i < n; i++) {
        if (i > 0)
            *end++ = ',';
        end = escape_to(end, ids[i]);
    }
    *end = '\0';
    char *path = path_new("/items?ids=%s&attributes=%s", list, ITEM_ATTRIBUTES);
    free(list);
    return path;
}

/* The API's date filter format, at the hour: 2024-01-31T06:00:00.000-00:00. */
static void iso_hour(long long epoch, char *out, size_t cap)
{
    time_t t = (time_t)epoch;
    struct tm tm;
    gmtime_r(&t, &tm);
    /* Years are 4 digits here (the range is within the last 365 days). */
    snprintf(out, cap, "%04d-%02d-%02dT%02d:00:00.000-00:00", (tm.tm_year + 1900) % 10000,
             (tm.tm_mon + 1) % 100, tm.tm_mday % 100, tm.tm_hour % 100);
}

/* "&order.<field>.from=...&order.<field>.to=..." when the range is given, else "". */
static void date_filter(const char *field, long long from, long long to, char *out, size_t cap)
{
    if (from <= 0 && to <= 0) {
        out[0] = '\0';
        return;
    }
    char f[64] = "", t[64] = "";
    if (from > 0)
        iso_hour(from, f, sizeof f);
    if (to > 0)
        iso_hour(to, t, sizeof t);
    snprintf(out, cap, "%s%s%s%s%s%s%s%s", from > 0 ? "&order." : "", from > 0 ? field : "",
             from > 0 ? ".from=" : "", f, to > 0 ? "&order." : "", to > 0 ? field : "",
             to > 0 ? ".to=" : "", t);
}

char *ml_path_orders_search(const struct ml_orders_query *q, long long offset)
{
    char created[160], updated[160];
    date_filter("date_created", q->created_from, q->created_to, created, sizeof created);
    date_filter("date_last_updated", q->updated_from, q->updated_to, updated, sizeof updated);
    char *status = escape_new(q->status);
    char *path = path_new("/orders/search?seller=%lld%s%s%s%s&sort=date_asc&limit=%d&offset=%lld",
                          q->seller, status[0] ? "&order.status=" : "", status, created, updated,
                          ML_ORDERS_PAGE, offset);
    free(status);
    return path;
}

char *ml_path_order(long long order_id)
{
    return path_new("/orders/%lld", order_id);
}

char *ml_path_item_visits(const char *item_id, long long last_days)
{
    char *id = escape_new(item_id);
    char *path = path_new("/items/%s/visits/time_window?last=%lld&unit=day", id, last_days);
    free(id);
    return path;
}
