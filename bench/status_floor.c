/* The database's floor for GET /api/v1/jobs/status: jobsd's own read (stats_status: the
 * same statement, the same pipelined BEGIN / settings / query / COMMIT round trip, the same
 * JSON compaction) in a closed loop on N connections, with no HTTP, JWT or routing in front.
 * bench/http.sh compares the endpoint's requests per second with it.
 *
 *   DATABASE_URL=... status_floor TENANT_UUID CONNECTIONS SECONDS
 * prints "reads_per_second mean_ms". */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "jobsd/stats.h"

#define MAX_CONNECTIONS 64

static const char *tenant;
static const char *url;
static double seconds;
static atomic_long reads;
static atomic_int failures;

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void *reader(void *arg)
{
    (void)arg;
    PGconn *c = PQconnectdb(url);
    if (PQstatus(c) != CONNECTION_OK) {
        fprintf(stderr, "status_floor: cannot connect: %s", PQerrorMessage(c));
        atomic_fetch_add(&failures, 1);
        PQfinish(c);
        return NULL;
    }
    struct status_query q = {tenant, NULL, NULL, 10, NULL};
    double end = now_s() + seconds;
    long n = 0;
    while (now_s() < end) {
        struct err e;
        err_clear(&e);
        char *body = stats_status(c, &q, 5000, &e);
        if (!body) {
            fprintf(stderr, "status_floor: read failed: %s\n", e.message);
            atomic_fetch_add(&failures, 1);
            break;
        }
        free(body);
        n++;
    }
    atomic_fetch_add(&reads, n);
    PQfinish(c);
    return NULL;
}

static long parse_long(const char *s, const char *what, long lo, long hi)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end || v < lo || v > hi) {
        fprintf(stderr, "status_floor: %s must be an integer in %ld..%ld\n", what, lo, hi);
        exit(2);
    }
    return v;
}

int main(int argc, char **argv)
{
    url = getenv("DATABASE_URL");
    if (argc != 4 || !url) {
        fprintf(stderr, "usage: DATABASE_URL=... status_floor TENANT CONNECTIONS SECONDS\n");
        return 2;
    }
    tenant = argv[1];
    long conns = parse_long(argv[2], "CONNECTIONS", 1, MAX_CONNECTIONS);
    seconds = (double)parse_long(argv[3], "SECONDS", 1, 3600);
    pthread_t t[MAX_CONNECTIONS];
    double start = now_s();
    long started = 0;
    for (; started < conns; started++)
        if (pthread_create(&t[started], NULL, reader, NULL) != 0)
            break;
    for (long i = 0; i < started; i++)
        pthread_join(t[i], NULL);
    double elapsed = now_s() - start;
    if (started != conns || atomic_load(&failures) || atomic_load(&reads) == 0) {
        fprintf(stderr, "status_floor: failed\n");
        return 1;
    }
    double rps = (double)atomic_load(&reads) / elapsed;
    printf("%.0f %.2f\n", rps, 1000.0 * (double)conns / rps);
    return 0;
}
