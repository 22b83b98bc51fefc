/* http_prefer: the Prefer header (RFC 7240):
 *   Prefer = preference *( "," preference )
 *   preference = token [ BWS "=" BWS word ] *( OWS ";" [ OWS parameter ] )
 * Only respond-async and wait mean something to jobsd. */
#include "jobsd/http.h"
#include "jobsd/util.h"

#include <string.h>

static bool is_ws(char c)
{
    return c == ' ' || c == '\t';
}

/* Trims [*s, *e) of whitespace and one level of double quotes (a quoted-string word). */
static void trim(const char **s, const char **e)
{
    while (*s < *e && is_ws(**s))
        (*s)++;
    while (*e > *s && is_ws((*e)[-1]))
        (*e)--;
    if (*e - *s >= 2 && **s == '"' && (*e)[-1] == '"') {
        (*s)++;
        (*e)--;
    }
}

static bool name_is(const char *s, const char *e, const char *want)
{
    size_t n = (size_t)(e - s);
    if (n != strlen(want))
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (c >= 'A' && c <= 'Z')
            c = (char)(c - 'A' + 'a');
        if (c != want[i])
            return false;
    }
    return true;
}

/* delta-seconds: 1*DIGIT. Values too large to represent saturate (RFC 9111 section 1.2.2;
 * they are capped by the server anyway). */
static bool parse_seconds(const char *s, const char *e, long long *out)
{
    if (s == e)
        return false;
    for (const char *c = s; c < e; c++)
        if (*c < '0' || *c > '9')
            return false;
    long long v;
    if (e - s > 18 || !util_parse_i64n(s, (size_t)(e - s), 0, 999999999999999999LL, &v))
        v = 999999999999999999LL;
    *out = v;
    return true;
}

/* One name[=value] part. */
static void apply(struct http_prefer *p, const char *s, const char *e, bool param_of_async)
{
    const char *eq = memchr(s, '=', (size_t)(e - s));
    const char *ns = s, *ne = eq ? eq : e;
    trim(&ns, &ne);
    if (eq) {
        const char *vs = eq + 1, *ve = e;
        trim(&vs, &ve);
        long long v;
        if (name_is(ns, ne, "wait") && !p->has_wait && parse_seconds(vs, ve, &v)) {
            p->has_wait = true;
            p->wait = v;
        }
        return;
    }
    if (!param_of_async && name_is(ns, ne, "respond-async"))
        p->respond_async = true;
}

void http_prefer_parse(struct http_prefer *p, const char *value)
{
    if (!value)
        return;
    const char *s = value;
    while (*s) {
        /* One preference ends at a comma outside quotes. */
        const char *e = s;
        bool quoted = false;
        while (*e && (quoted || *e != ',')) {
            if (*e == '"')
                quoted = !quoted;
            else if (*e == '\\' && quoted && e[1])
                e++;
            e++;
        }
        /* Its first part is the preference, the rest are parameters. */
        const char *part = s;
        bool first = true;
        bool async = false;
        while (part < e) {
            const char *pe = part;
            bool q = false;
            while (pe < e && (q || *pe != ';')) {
                if (*pe == '"')
                    q = !q;
                pe++;
            }
            if (first) {
                const char *ns = part, *ne = pe;
                trim(&ns, &ne);
                async = name_is(ns, ne, "respond-async");
                apply(p, part, pe, false);
            } else if (async) {
                apply(p, part, pe, true);
            }
            first = false;
            part = pe < e ? pe + 1 : e;
        }
        s = *e ? e + 1 : e;
    }
}
