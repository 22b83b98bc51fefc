/* buf: a growable byte buffer with a hard maximum size given at init (network-fed data is
 * always bounded). Appending past the maximum fails and leaves the buffer as it was;
 * buf_take hands the bytes (NUL-terminated) to the caller. */
#ifndef JOBSD_BUF_H
#define JOBSD_BUF_H

#include <stdbool.h>
#include <stddef.h>

struct buf {
    char *data;
    size_t len;
    size_t cap;
    size_t max;
};

void buf_init(struct buf *b, size_t max);
/* false when len + n would pass max (nothing appended). Aborts on out-of-memory. */
__attribute__((warn_unused_result)) bool buf_append(struct buf *b, const void *p, size_t n);
__attribute__((warn_unused_result)) bool buf_append_str(struct buf *b, const char *s);
/* Always NUL-terminated (data may be NULL when nothing was ever appended). */
const char *buf_str(struct buf *b);
/* Hands over the bytes (caller frees); the buffer is reset. Never NULL. */
char *buf_take(struct buf *b);
void buf_reset(struct buf *b);
void buf_free(struct buf *b);

#endif
