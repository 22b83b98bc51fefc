/* testfake: the fake Mercado Livre API (tests/fake_ml, FAKE_ML_BIN) as a child of the test:
 * started on a free port with a scenario, driven and read through its control API
 * (/__fake/...), stopped. Its process is tracked like jobsd's (testproc: children_*). */
#ifndef JOBSD_TESTFAKE_H
#define JOBSD_TESTFAKE_H

#include <jansson.h>
#include <stdbool.h>
#include <sys/types.h>

struct fake_ml {
    pid_t pid;
    unsigned port;
    char url[64]; /* http://127.0.0.1:PORT */
};
/* Starts tests/fake_ml (FAKE_ML_BIN) with a scenario file (a name under FAKE_ML_SCENARIOS, or
 * a path) and extra arguments (NULL-terminated, e.g. "--latency-ms", "20"). */
bool fake_ml_start(struct fake_ml *f, const char *scenario, const char *const *args);
void fake_ml_stop(struct fake_ml *f);
/* GET/POST on the fake's control API: the parsed JSON answer (new reference), or NULL when it
 * did not answer or answered 4xx/5xx (printed). fake_ml_post never returns NULL: an empty
 * object stands for a failed call. */
json_t *fake_ml_get(const struct fake_ml *f, const char *path);
json_t *fake_ml_post(const struct fake_ml *f, const char *path, const char *json_body);
/* DELETE: the status (0 = no answer). */
int fake_ml_delete(const struct fake_ml *f, const char *path);
/* A counter of GET /__fake/stats by dotted path ("max_in_flight", "requests.visits"); -1 when
 * it is not an integer. */
long long fake_ml_stat(const struct fake_ml *f, const char *dotted);

#endif
