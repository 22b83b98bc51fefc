/* job: states and small helpers every kind shares. */
#include "jobsd/job.h"
#include "jobsd/util.h"

#include <stdio.h>
#include <string.h>
#include <unistd.h>

const char *job_status_name(enum job_status s)
{
    switch (s) {
    case JOB_QUEUED:
        return "queued";
    case JOB_RUNNING:
        return "running";
    case JOB_SUCCESS:
        return "success";
    case JOB_ERROR:
        return "error";
    case JOB_CANCELLED:
        return "cancelled";
    }
    return "queued";
}

bool job_status_parse(const char *s, enum job_status *out)
{
    static const enum job_status all[] = {JOB_QUEUED, JOB_RUNNING, JOB_SUCCESS, JOB_ERROR,
                                          JOB_CANCELLED};
    for (size_t i = 0; s && i < sizeof all / sizeof all[0]; i++) {
        if (strcmp(s, job_status_name(all[i])) == 0) {
            *out = all[i];
            return true;
        }
    }
    return false;
}

bool job_status_finished(enum job_status s)
{
    return s == JOB_SUCCESS || s == JOB_ERROR || s == JOB_CANCELLED;
}

bool job_run_stopping(const struct job_run *run)
{
    return (run->cancel && *run->cancel) || (run->cancel_op && atomic_load(run->cancel_op));
}

void job_request_clear(struct job_request *r)
{
    json_decref(r->params);
    memset(r, 0, sizeof *r);
}

json_t *job_json_ordered(json_t *obj, const char *const *order)
{
    json_t *out = json_object();
    if (!out)
        util_fatal("out of memory");
    for (size_t i = 0; order && order[i]; i++) {
        json_t *v = json_object_get(obj, order[i]);
        if (v)
            json_object_set(out, order[i], v);
    }
    const char *k;
    json_t *v;
    json_object_foreach(obj, k, v)
    {
        if (!json_object_get(out, k))
            json_object_set(out, k, v);
    }
    return out;
}

void job_worker_id(char *out, size_t cap, const char *suffix)
{
    char host[64];
    if (gethostname(host, sizeof host) != 0)
        snprintf(host, sizeof host, "unknown");
    host[sizeof host - 1] = '\0';
    snprintf(out, cap, "%s:%ld:%s", host, (long)getpid(), suffix);
}
