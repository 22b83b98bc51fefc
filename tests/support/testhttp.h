/* testhttp: a raw HTTP/1.1 client over a loopback socket, so a test controls every byte it
 * sends (framing, header order, truncation, slow senders) and sees every byte of the answer.
 * One request per connection; the response is read to its Content-Length, the end of its
 * chunked body, or the server's close. It knows nothing of jobsd or cmocka: the jobsd tests
 * and the fake Mercado Livre API's self-test (tests/fake_ml/test_fake_ml.c) both use it.
 * Waits are scaled by t_scale().
 *
 * JOBSD_TEST_RECORD=FILE (scripts/test.sh sets it): every response a jobsd gives th_raw_ex
 * (and so th_raw, th_request, th_post_job) is appended to FILE as one JSON line {test,
 * method, target (or requestLine when the request line has not that form), status, headers:
 * {lower-case name: [values]}, body}, for scripts/check-contract.mjs. A jobsd is the process
 * running JOBSD_BIN (itself or under valgrind) that listens on the port; responses of any
 * other server (the fake Mercado Livre API) are not recorded. */
#ifndef JOBSD_TESTHTTP_H
#define JOBSD_TESTHTTP_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

struct th_response {
    int status;    /* 0 = no response (connection closed) */
    char *headers; /* raw header block, status line included (owned) */
    char *body;    /* NUL-terminated (owned); a chunked body is decoded */
    size_t body_len;
    json_t *json;   /* the body parsed as any JSON value, or NULL (owned) */
    bool timed_out; /* th_raw_ex: no answer and no close before the timeout */
};

/* Sends raw bytes, reads one response; timeout in ms. False when nothing that looks like an
 * HTTP response came back (r is then empty and needs no th_free). */
bool th_raw(unsigned port, const char *data, size_t len, struct th_response *r,
            long long timeout_ms);
/* th_raw with options: TH_HALF_CLOSE shuts the sending side down once everything is sent (the
 * server sees end of input: truncated requests), TH_TRICKLE sends in pieces of 1-16 bytes a
 * millisecond apart (a slow client). On false, r->timed_out tells a silent server (nothing
 * before the timeout) from a closed connection. */
#define TH_HALF_CLOSE 1u
#define TH_TRICKLE    2u
bool th_raw_ex(unsigned port, const char *data, size_t len, unsigned flags, struct th_response *r,
               long long timeout_ms);
/* A request built from parts: extra_headers is "Name: value\r\n..." (may be NULL); body may
 * be NULL. Adds Host, Connection: close and Content-Length (when body is not NULL). Waits up
 * to 120 s for the answer. */
bool th_request(unsigned port, const char *method, const char *path, const char *extra_headers,
                const char *body, struct th_response *r);
/* POST JSON with X-Internal-Key (key may be NULL) and optional extra headers. */
bool th_post_job(unsigned port, const char *path, const char *key, const char *body,
                 const char *extra_headers, struct th_response *r);
/* First value of a response header (case-insensitive name), new (caller frees), or NULL. */
char *th_header(const struct th_response *r, const char *name);
void th_free(struct th_response *r);
/* error.code of a jobsd error body (borrowed), or "". */
const char *th_error_code(const struct th_response *r);

/* For tests that drive a connection themselves: a connected socket to 127.0.0.1:port (the
 * caller closes it), or -1 when nothing listens. */
int th_connect(unsigned port);
/* Sends everything (no SIGPIPE); false when the peer stopped reading. */
bool th_send_all(int fd, const void *data, size_t len);

#endif
