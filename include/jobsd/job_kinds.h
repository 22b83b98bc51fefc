/* job_kinds: the registry of job kinds, the one place that names them. Routes, CLI
 * subcommands and options, queue gauges, status filters and statistics are derived from
 * it, so adding a kind is one file (its struct job_kind) and one line here (job_kinds.c). */
#ifndef JOBSD_JOB_KINDS_H
#define JOBSD_JOB_KINDS_H

#include <stddef.h>

#include "jobsd/job.h"

/* NULL-terminated list of every kind, in the order they are shown. */
const struct job_kind *const *job_kinds(void);
/* How many kinds there are. */
size_t job_kinds_count(void);
/* The kind with that job_type / that route and CLI name; NULL when unknown. */
const struct job_kind *job_kind_by_type(const char *type);
const struct job_kind *job_kind_by_name(const char *name);
/* Every job_type into out (borrowed strings), NULL-terminated when there is room; returns
 * how many (at most cap). JOB_KINDS_MAX is enough for all of them. */
#define JOB_KINDS_MAX 16
size_t job_kinds_types(const char **out, size_t cap);
/* The same for the kinds that call Mercado Livre (calls_ml): a tenant needs an active
 * connection for them, so one without is never stale on them (freshness, the console). */
size_t job_kinds_ml_types(const char **out, size_t cap);

#endif
