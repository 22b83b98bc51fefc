/* http_wire: the header lines RFC 9112 says a server must reject (section 5.1: whitespace
 * between a field name and its colon; section 5.2: obsolete line folding; section 2.2: a bare
 * CR, and line endings that are not CRLF; RFC 9110 section 5.5: NUL, CR or LF in a value).
 * libmicrohttpd 0.9.75 accepts them all (it splits lines at a bare LF, keeps a bare CR in the
 * value, joins a folded line onto the field's *name*, cuts a value at a NUL and rejects
 * whitespace before the colon only with MHD_OPTION_STRICT_FOR_CLIENT at -1, which also drops
 * the checks of 1): a Content-Length it did not recognise is then not read, and the body is
 * parsed as a second request.
 *
 * jobsd does not see the raw bytes, but libmicrohttpd 0.9.75 parses the request line and the
 * header lines in place in the connection's read buffer: it writes NUL over the colon and over
 * each line's CR and LF, and every parsed name and value points into that buffer. The block
 * from the method to the end of the empty line is `header_size` bytes long
 * (MHD_CONNECTION_INFO_REQUEST_HEADER_SIZE). So the lines can be re-walked: after the HTTP
 * version, each field name must start right after the previous line's two NULs (CR LF), be a
 * token followed by the colon's NUL, optional SP/HT, the value, and two NULs again; the
 * block must end with the empty line's two NULs. A bare LF leaves one NUL, a folded line
 * leaves a line that is no field (and a name moved out of the buffer), a NUL in a value leaves
 * bytes after the value's end. tests/e2e/test_http_framing.c pins this to the library's
 * behaviour: a libmicrohttpd that parses differently fails it, it is not silently let
 * through. */
#include "http_internal.h"

#include <stdint.h>
#include <string.h>

struct walk {
    uintptr_t lo, hi; /* [method, method + header_size) */
    const char *next; /* where the next line must start */
    const char *why;  /* the first problem, or NULL */
};

static bool in_block(const struct walk *w, const char *p, size_t len)
{
    uintptr_t a = (uintptr_t)p;
    return a >= w->lo && a <= w->hi && len <= w->hi - a;
}

/* RFC 9110 section 5.6.2: tchar. */
static bool is_tchar(unsigned char c)
{
    if ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'))
        return true;
    return c != '\0' && strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

/* The line ends here with CR LF (two NULs once parsed). */
static bool crlf_at(const struct walk *w, const char *p)
{
    return in_block(w, p, 2) && p[0] == '\0' && p[1] == '\0';
}

static const char *check_field(struct walk *w, const char *key, size_t key_size, const char *value,
                               size_t value_size)
{
    if (key_size == 0)
        return "a header line without a field name";
    for (size_t i = 0; i < key_size; i++)
        if (!is_tchar((unsigned char)key[i]))
            return key[i] == ' ' || key[i] == '\t'
                       ? "whitespace in a header field name or before its colon"
                       : "a character not allowed in a header field name";
    for (size_t i = 0; i < value_size; i++) {
        unsigned char c = (unsigned char)value[i];
        if (c == '\0')
            return "a NUL in a header value";
        if (c == '\r' || c == '\n')
            return "a bare CR in a header value";
        if ((c < 0x20 && c != '\t') || c == 0x7f)
            return "a control character in a header value";
    }
    /* The layout: name, colon (NUL), SP/HT, value, CR LF. */
    if (key != w->next || !in_block(w, key, key_size + 1) || key[key_size] != '\0')
        return "a header line that is not \"name: value\" CRLF (obsolete line folding?)";
    const char *p = key + key_size + 1;
    if (!in_block(w, value, value_size) || (uintptr_t)value < (uintptr_t)p)
        return "a header value outside its line (obsolete line folding?)";
    for (; p < value; p++)
        if (*p != ' ' && *p != '\t')
            return "a header line that is not \"name: value\" CRLF";
    if (!crlf_at(w, value + value_size))
        return "a header line not ending in CRLF (a bare LF, or a NUL in the value)";
    w->next = value + value_size + 2;
    return NULL;
}

static enum MHD_Result walk_field(void *cls, enum MHD_ValueKind kind, const char *key,
                                  size_t key_size, const char *value, size_t value_size)
{
    (void)kind;
    struct walk *w = cls;
    if (w->why)
        return MHD_NO;
    if (!key || !value) {
        w->why = "a header line without a value";
        return MHD_NO;
    }
    w->why = check_field(w, key, key_size, value, value_size);
    return w->why ? MHD_NO : MHD_YES;
}

const char *http_wire_check(struct MHD_Connection *c, const char *method, const char *version)
{
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(c, MHD_CONNECTION_INFO_REQUEST_HEADER_SIZE);
    if (!ci || !method || !version)
        return "the request's header block cannot be checked";
    struct walk w = {(uintptr_t)method, 0, NULL, NULL};
    if (ci->header_size > UINTPTR_MAX - w.lo)
        return "the request's header block cannot be checked";
    w.hi = w.lo + ci->header_size;
    size_t vlen = strnlen(version, 16);
    if (!in_block(&w, version, vlen + 2) || !crlf_at(&w, version + vlen))
        return "a request line not ending in CRLF";
    w.next = version + vlen + 2;
    MHD_get_connection_values_n(c, MHD_HEADER_KIND, walk_field, &w);
    if (w.why)
        return w.why;
    if (!crlf_at(&w, w.next) || (uintptr_t)w.next + 2 != w.hi)
        return "a header block not ending in an empty CRLF line";
    return NULL;
}
