/* testhttp: see testhttp.h. */
#include "testhttp.h"
#include "testtime.h"
#include "testutil.h"

#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

int th_connect(unsigned port)
{
    if (port == 0 || port > 65535)
        tu_die("th_connect: port %u out of range", port);
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        tu_die("socket: %s", strerror(errno));
    struct sockaddr_in sa;
    memset(&sa, 0, sizeof sa);
    sa.sin_family = AF_INET;
    sa.sin_port = htons((uint16_t)port);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

bool th_send_all(int fd, const void *data, size_t len)
{
    const char *p = data;
    while (len > 0) {
        ssize_t w = send(fd, p, len, MSG_NOSIGNAL);
        if (w <= 0)
            return false;
        p += w;
        len -= (size_t)w;
    }
    return true;
}

static void *xmalloc(size_t n)
{
    void *p = malloc(n);
    if (!p)
        tu_die("out of memory");
    return p;
}

static char *xstrndup(const char *s, size_t n)
{
    char *d = strndup(s, n);
    if (!d)
        tu_die("out of memory");
    return d;
}

static const char *find_header(const char *headers, const char *name, size_t *len)
{
    size_t n = strlen(name);
    const char *p = headers;
    while (p && *p) {
        const char *eol = strstr(p, "\r\n");
        if (!eol)
            eol = p + strlen(p);
        if ((size_t)(eol - p) > n && p[n] == ':' && strncasecmp(p, name, n) == 0) {
            const char *v = p + n + 1;
            while (*v == ' ')
                v++;
            *len = (size_t)(eol - v);
            return v;
        }
        p = *eol ? eol + 2 : eol;
    }
    return NULL;
}

char *th_header(const struct th_response *r, const char *name)
{
    size_t len;
    const char *v = r->headers ? find_header(r->headers, name, &len) : NULL;
    return v ? xstrndup(v, len) : NULL;
}

/* Decodes a chunked body into a new buffer; false when it is incomplete. */
static bool dechunk(const char *in, size_t n, char **out, size_t *out_len)
{
    size_t pos = 0, len = 0;
    char *b = xmalloc(n + 1);
    for (;;) {
        const char *eol = memmem(in + pos, n - pos, "\r\n", 2);
        if (!eol) {
            free(b);
            return false;
        }
        size_t sz = strtoul(in + pos, NULL, 16);
        pos = (size_t)(eol - in) + 2;
        if (sz == 0)
            break;
        if (sz > n || pos + sz + 2 > n) {
            free(b);
            return false;
        }
        memcpy(b + len, in + pos, sz);
        len += sz;
        pos += sz + 2;
    }
    b[len] = '\0';
    *out = b;
    *out_len = len;
    return true;
}

/* Has buf (got bytes) a complete response: headers and the whole body their framing names? */
static bool response_complete(const char *buf, size_t got)
{
    const char *hend = strstr(buf, "\r\n\r\n");
    if (!hend)
        return false;
    size_t hlen = (size_t)(hend - buf) + 4;
    char *headers = xstrndup(buf, hlen);
    size_t vlen;
    const char *cl = find_header(headers, "Content-Length", &vlen);
    const char *te = find_header(headers, "Transfer-Encoding", &vlen);
    bool done = false;
    if (cl) {
        done = got - hlen >= strtoul(cl, NULL, 10);
    } else if (te) {
        char *tmp;
        size_t tl;
        done = dechunk(buf + hlen, got - hlen, &tmp, &tl);
        if (done)
            free(tmp);
    }
    free(headers);
    return done;
}

bool th_raw(unsigned port, const char *data, size_t len, struct th_response *r,
            long long timeout_ms)
{
    return th_raw_ex(port, data, len, 0, r, timeout_ms);
}

bool th_raw_ex(unsigned port, const char *data, size_t len, unsigned flags, struct th_response *r,
               long long timeout_ms)
{
    memset(r, 0, sizeof *r);
    int fd = th_connect(port);
    if (fd < 0)
        return false;
    size_t sent = 0;
    unsigned piece = 7;
    while (sent < len) {
        size_t n = len - sent;
        if (flags & TH_TRICKLE) {
            piece = piece * 1103515245u + 12345u;
            size_t most = 1 + (piece >> 16) % 16;
            n = n < most ? n : most;
            if (sent > 0)
                t_sleep_ms(1);
        }
        ssize_t w = send(fd, data + sent, n, MSG_NOSIGNAL);
        if (w <= 0)
            break; /* the server may answer and close before reading everything */
        sent += (size_t)w;
    }
    if (flags & TH_HALF_CLOSE)
        shutdown(fd, SHUT_WR);
    size_t cap = 8192, got = 0;
    char *buf = xmalloc(cap);
    buf[0] = '\0';
    long long end = t_now_ms() + timeout_ms * t_scale();
    while (!response_complete(buf, got)) {
        long long left = end - t_now_ms();
        if (left <= 0) {
            r->timed_out = got == 0;
            break;
        }
        struct pollfd pfd = {fd, POLLIN, 0};
        if (poll(&pfd, 1, left > INT_MAX ? INT_MAX : (int)left) <= 0) {
            r->timed_out = got == 0;
            break;
        }
        if (cap - got < 4096) {
            cap *= 2;
            char *bigger = realloc(buf, cap);
            if (!bigger)
                tu_die("out of memory reading a response of %zu bytes", got);
            buf = bigger;
        }
        ssize_t n = recv(fd, buf + got, cap - got - 1, 0);
        if (n <= 0)
            break;
        got += (size_t)n;
        buf[got] = '\0';
    }
    close(fd);
    const char *hend = strstr(buf, "\r\n\r\n");
    if (!hend || strncmp(buf, "HTTP/1.", 7) != 0) {
        free(buf);
        return false;
    }
    size_t hlen = (size_t)(hend - buf) + 4;
    r->status = (int)strtol(buf + 9, NULL, 10);
    r->headers = xstrndup(buf, hlen);
    size_t vlen;
    if (find_header(r->headers, "Transfer-Encoding", &vlen)) {
        if (!dechunk(buf + hlen, got - hlen, &r->body, &r->body_len)) {
            r->body = xstrndup("", 0);
            r->body_len = 0;
        }
    } else {
        r->body_len = got - hlen;
        r->body = xstrndup(buf + hlen, r->body_len);
    }
    free(buf);
    r->json = json_loadb(r->body, r->body_len, JSON_DECODE_ANY, NULL);
    return true;
}

bool th_request(unsigned port, const char *method, const char *path, const char *extra_headers,
                const char *body, struct th_response *r)
{
    size_t blen = body ? strlen(body) : 0;
    size_t cap =
        1024 + strlen(method) + strlen(path) + (extra_headers ? strlen(extra_headers) : 0) + blen;
    char *req = xmalloc(cap);
    int head = snprintf(req, cap, "%s %s HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n%s",
                        method, path, extra_headers ? extra_headers : "");
    if (head < 0 || (size_t)head >= cap)
        tu_die("th_request: request head too long");
    size_t n = (size_t)head;
    int k = body ? snprintf(req + n, cap - n, "Content-Length: %zu\r\n\r\n", blen)
                 : snprintf(req + n, cap - n, "\r\n");
    if (k < 0 || (size_t)k >= cap - n)
        tu_die("th_request: request head too long");
    n += (size_t)k;
    if (body) {
        memcpy(req + n, body, blen);
        n += blen;
    }
    bool ok = th_raw(port, req, n, r, 120000);
    free(req);
    return ok;
}

bool th_post_job(unsigned port, const char *path, const char *key, const char *body,
                 const char *extra_headers, struct th_response *r)
{
    char headers[2048];
    int n = snprintf(headers, sizeof headers, "%s%s%sContent-Type: application/json\r\n%s",
                     key ? "X-Internal-Key: " : "", key ? key : "", key ? "\r\n" : "",
                     extra_headers ? extra_headers : "");
    if (n < 0 || (size_t)n >= sizeof headers)
        tu_die("th_post_job: headers too long");
    return th_request(port, "POST", path, headers, body ? body : "", r);
}

void th_free(struct th_response *r)
{
    free(r->headers);
    free(r->body);
    json_decref(r->json);
    memset(r, 0, sizeof *r);
}

const char *th_error_code(const struct th_response *r)
{
    const char *c = json_string_value(json_object_get(json_object_get(r->json, "error"), "code"));
    return c ? c : "";
}
