/* testhttp: see testhttp.h. */
#include "testhttp.h"
#include "testtime.h"
#include "testutil.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/file.h>
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

/* ------------------------------------------------------------------ recording
 * With JOBSD_TEST_RECORD naming a file, every response a jobsd process gives th_raw_ex is
 * appended to it as one JSON line (scripts/check-contract.mjs validates them against
 * docs/openapi.yaml). A jobsd is a process running JOBSD_BIN (itself, or under valgrind)
 * that holds the socket listening on the port: the fake Mercado Livre API and any other server
 * a test talks to are not recorded. The owner is looked up once the connection is made, while
 * the server still listens (it may exit right after answering). */

static pthread_mutex_t rec_lock = PTHREAD_MUTEX_INITIALIZER;
/* Listening sockets already looked up (inode numbers are unique while the socket lives). */
static struct {
    unsigned port;
    unsigned long inode;
    bool jobsd;
} rec_seen[64];
static size_t rec_nseen, rec_next;

static const char *record_path(void)
{
    const char *p = getenv("JOBSD_TEST_RECORD");
    const char *bin = getenv("JOBSD_BIN");
    return p && *p && bin && *bin ? p : NULL;
}

/* The inode of the socket listening on the loopback port, 0 when none. */
static unsigned long listen_inode(unsigned port)
{
    static const char *const tables[] = {"/proc/net/tcp", "/proc/net/tcp6"};
    for (size_t t = 0; t < sizeof tables / sizeof tables[0]; t++) {
        FILE *f = fopen(tables[t], "re");
        if (!f)
            continue;
        char line[512];
        unsigned long found = 0;
        while (!found && fgets(line, sizeof line, f)) {
            unsigned lport, state;
            unsigned long inode;
            if (sscanf(
                    line,
                    " %*u: %*[0-9A-Fa-f]:%X %*[0-9A-Fa-f]:%*X %X %*X:%*X %*X:%*X %*X %*u %*u %lu",
                    &lport, &state, &inode) == 3 &&
                lport == port && state == 0x0A /* LISTEN */)
                found = inode;
        }
        fclose(f);
        if (found)
            return found;
    }
    return 0;
}

/* Does process pid run JOBSD_BIN (as its executable, or as an argument: valgrind)? */
static bool runs_jobsd(const char *pid, const char *bin, const char *bin_real)
{
    char path[64], exe[PATH_MAX];
    snprintf(path, sizeof path, "/proc/%s/exe", pid);
    ssize_t n = readlink(path, exe, sizeof exe - 1);
    if (n > 0) {
        exe[n] = '\0';
        if (strcmp(exe, bin_real) == 0)
            return true;
    }
    snprintf(path, sizeof path, "/proc/%s/cmdline", pid);
    FILE *f = fopen(path, "re");
    if (!f)
        return false;
    char args[8192];
    size_t len = fread(args, 1, sizeof args - 1, f);
    fclose(f);
    args[len] = '\0';
    for (size_t i = 0; i < len; i += strlen(args + i) + 1)
        if (strcmp(args + i, bin) == 0 || strcmp(args + i, bin_real) == 0)
            return true;
    return false;
}

static bool holds_socket(const char *pid, unsigned long inode)
{
    char path[64], want[64], link[64];
    snprintf(path, sizeof path, "/proc/%s/fd", pid);
    snprintf(want, sizeof want, "socket:[%lu]", inode);
    DIR *d = opendir(path);
    if (!d)
        return false;
    bool found = false;
    struct dirent *e;
    while (!found && (e = readdir(d))) {
        char fd_path[320];
        snprintf(fd_path, sizeof fd_path, "%s/%s", path, e->d_name);
        ssize_t n = readlink(fd_path, link, sizeof link - 1);
        if (n > 0) {
            link[n] = '\0';
            found = strcmp(link, want) == 0;
        }
    }
    closedir(d);
    return found;
}

/* Is the server listening on port a jobsd? */
static bool port_is_jobsd(unsigned port)
{
    unsigned long inode = listen_inode(port);
    if (!inode)
        return false;
    pthread_mutex_lock(&rec_lock);
    for (size_t i = 0; i < rec_nseen; i++) {
        if (rec_seen[i].port == port && rec_seen[i].inode == inode) {
            bool known = rec_seen[i].jobsd;
            pthread_mutex_unlock(&rec_lock);
            return known;
        }
    }
    pthread_mutex_unlock(&rec_lock);
    const char *bin = getenv("JOBSD_BIN");
    char bin_real[PATH_MAX];
    if (!realpath(bin, bin_real))
        snprintf(bin_real, sizeof bin_real, "%s", bin);
    bool jobsd = false;
    DIR *d = opendir("/proc");
    struct dirent *e;
    while (d && !jobsd && (e = readdir(d))) {
        if (!isdigit((unsigned char)e->d_name[0]))
            continue;
        jobsd = runs_jobsd(e->d_name, bin, bin_real) && holds_socket(e->d_name, inode);
    }
    if (d)
        closedir(d);
    pthread_mutex_lock(&rec_lock);
    size_t slot =
        rec_nseen < sizeof rec_seen / sizeof rec_seen[0] ? rec_nseen++ : rec_next++ % rec_nseen;
    rec_seen[slot].port = port;
    rec_seen[slot].inode = inode;
    rec_seen[slot].jobsd = jobsd;
    pthread_mutex_unlock(&rec_lock);
    return jobsd;
}

/* A JSON string of bytes that may not be UTF-8 (anything outside printable ASCII is '?'). */
static json_t *ascii_string(const char *s, size_t n)
{
    char *c = xmalloc(n + 1); /* not strndup: the bytes may hold a NUL */
    memcpy(c, s, n);
    c[n] = '\0';
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)c[i] < 0x20 || (unsigned char)c[i] > 0x7e)
            c[i] = '?';
    json_t *j = json_stringn(c, n);
    free(c);
    return j;
}

/* The request line's method and target; the raw line when it has not that form. */
static void record_request(json_t *rec, const char *data, size_t len)
{
    /* Empty lines before the request line are ignored (RFC 9112 2.2). */
    while (len > 0 && (*data == '\r' || *data == '\n')) {
        data++;
        len--;
    }
    const char *eol = memchr(data, '\n', len);
    size_t n = eol ? (size_t)(eol - data) : len;
    if (n > 0 && data[n - 1] == '\r')
        n--;
    const char *sp1 = memchr(data, ' ', n);
    const char *sp2 = sp1 ? memchr(sp1 + 1, ' ', n - (size_t)(sp1 + 1 - data)) : NULL;
    if (sp1 && sp2 && sp1 > data && sp2 > sp1 + 1 &&
        !memchr(sp2 + 1, ' ', n - (size_t)(sp2 + 1 - data))) {
        json_object_set_new(rec, "method", ascii_string(data, (size_t)(sp1 - data)));
        size_t tlen = (size_t)(sp2 - sp1 - 1);
        /* The longest targets are the 414 tests'. */
        json_object_set_new(rec, "target", ascii_string(sp1 + 1, tlen > 2048 ? 2048 : tlen));
        if (tlen > 2048)
            json_object_set_new(rec, "targetBytes", json_integer((json_int_t)tlen));
    } else {
        json_object_set_new(rec, "requestLine", ascii_string(data, n > 2048 ? 2048 : n));
    }
}

/* The response's header fields: lower-case name -> [values, in order]. */
static json_t *record_headers(const char *headers)
{
    json_t *h = json_object();
    const char *p = strstr(headers, "\r\n");
    while (p && p[2] != '\r' && p[2] != '\0') {
        p += 2;
        const char *eol = strstr(p, "\r\n");
        const char *colon = memchr(p, ':', eol ? (size_t)(eol - p) : strlen(p));
        if (!eol || !colon)
            break;
        char *name = xstrndup(p, (size_t)(colon - p));
        for (char *c = name; *c; c++)
            *c = (char)tolower((unsigned char)*c);
        const char *v = colon + 1;
        while (*v == ' ' || *v == '\t')
            v++;
        json_t *list = json_object_get(h, name);
        if (!list) {
            list = json_array();
            json_object_set_new(h, name, list);
        }
        json_array_append_new(list, ascii_string(v, (size_t)(eol - v)));
        free(name);
        p = eol;
    }
    return h;
}

static void record_response(const char *data, size_t len, const struct th_response *r)
{
    const char *path = record_path();
    json_t *rec = json_object();
    json_object_set_new(rec, "test", json_string(program_invocation_short_name));
    record_request(rec, data, len);
    json_object_set_new(rec, "status", json_integer(r->status));
    json_object_set_new(rec, "headers", record_headers(r->headers));
    json_t *body = json_stringn(r->body, r->body_len);
    json_object_set_new(rec, "body", body ? body : json_null());
    if (!body)
        json_object_set_new(rec, "bodyNotUtf8", json_true());
    char *line = json_dumps(rec, JSON_COMPACT | JSON_ENSURE_ASCII);
    json_decref(rec);
    if (!line)
        tu_die("th_raw: could not encode a response for %s", path);
    size_t n = strlen(line);
    line[n] = '\n'; /* replaces the NUL: written with its length */
    /* One write per line under an exclusive lock: tests run in parallel and threads. */
    int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0)
        tu_die("JOBSD_TEST_RECORD=%s: %s", path, strerror(errno));
    flock(fd, LOCK_EX);
    ssize_t w = write(fd, line, n + 1);
    flock(fd, LOCK_UN);
    close(fd);
    if (w != (ssize_t)(n + 1))
        tu_die("JOBSD_TEST_RECORD=%s: short write", path);
    free(line);
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
    bool record = record_path() && port_is_jobsd(port);
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
    if (record)
        record_response(data, len, r);
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
