/* The database's floor for GET /api/v1/jobs/status: jobsd's own read (stats_status: the
 * same statement, the same pipelined BEGIN / settings / query / COMMIT round trip, the same
 * JSON compaction) in a closed loop on N connections, with no HTTP, JWT or routing in front.
 * bench/http.sh compares the endpoint's requests per second with it.
 *
 *   DATABASE_URL=... status_floor TENANT_UUID CONNECTIONS SECONDS
 * prints the reads per second. */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>

#include "jobsd/stats.h"
#include "jobsd/util.h"

#define MAX_CONNECTIONS 64

static const char *tenant;
static const char *url;
static long long seconds;
static atomic_long reads;
static atomic_int failures;

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
    long long end = util_mono_ms() + seconds * 1000;
    long n = 0;
    while (util_mono_ms() < end) {
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

int main(int argc, char **argv)
{
    url = getenv("DATABASE_URL");
    if (argc != 4 || !url) {
        fprintf(stderr, "usage: DATABASE_URL=... status_floor TENANT CONNECTIONS SECONDS\n");
        return 2;
    }
    tenant = argv[1];
    long long conns;
    if (!util_parse_i64(argv[2], 1, MAX_CONNECTIONS, &conns) ||
        !util_parse_i64(argv[3], 1, 3600, &seconds)) {
        fprintf(stderr, "status_floor: CONNECTIONS must be 1..%d and SECONDS 1..3600\n",
                MAX_CONNECTIONS);
        return 2;
    }
    pthread_t t[MAX_CONNECTIONS];
    long long start = util_mono_ms();
    long long started = 0;
    for (; started < conns; started++)
        if (pthread_create(&t[started], NULL, reader, NULL) != 0)
            break;
    for (long long i = 0; i < started; i++)
        pthread_join(t[i], NULL);
    long long elapsed_ms = util_mono_ms() - start;
    if (started != conns || atomic_load(&failures) || atomic_load(&reads) == 0) {
        fprintf(stderr, "status_floor: failed\n");
        return 1;
    }
    printf("%.0f\n", 1000.0 * (double)atomic_load(&reads) / (double)elapsed_ms);
    return 0;
}
