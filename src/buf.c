/* buf: see buf.h. */
#include "jobsd/buf.h"
#include "jobsd/util.h"

#include <stdlib.h>
#include <string.h>

void buf_init(struct buf *b, size_t max)
{
    b->data = NULL;
    b->len = 0;
    b->cap = 0;
    b->max = max;
}

bool buf_append(struct buf *b, const void *p, size_t n)
{
    if (n > b->max || b->len > b->max - n)
        return false;
    size_t need = b->len + n + 1; /* room for the NUL */
    if (need > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < need)
            cap = cap > SIZE_MAX / 2 ? need : cap * 2;
        char *d = realloc(b->data, cap);
        if (!d)
            util_fatal("out of memory");
        b->data = d;
        b->cap = cap;
    }
    if (n)
        memcpy(b->data + b->len, p, n);
    b->len += n;
    b->data[b->len] = '\0';
    return true;
}

bool buf_append_str(struct buf *b, const char *s)
{
    return buf_append(b, s, strlen(s));
}

const char *buf_str(struct buf *b)
{
    return b->data ? b->data : "";
}

char *buf_take(struct buf *b)
{
    char *d = b->data;
    if (!d)
        d = util_strdup("");
    b->data = NULL;
    b->len = 0;
    b->cap = 0;
    return d;
}

void buf_reset(struct buf *b)
{
    b->len = 0;
    if (b->data)
        b->data[0] = '\0';
}

void buf_free(struct buf *b)
{
    free(b->data);
    b->data = NULL;
    b->len = 0;
    b->cap = 0;
}
