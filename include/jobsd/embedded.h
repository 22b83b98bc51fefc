/* embedded: the files compiled into the binary (migrations sql/NNNN_name.sql, the
 * queries of sql/queries/ and the operator console's console/index.html, app.js, app.css). The
 * table is generated at build time by tools/embed_sql.c (embedded_data.c in the build directory);
 * embedded.c looks files up in it. */
#ifndef JOBSD_EMBEDDED_H
#define JOBSD_EMBEDDED_H

#include <stddef.h>

struct embedded_file {
    const char *name; /* base name, e.g. "0001_init.sql" */
    const char *data; /* NUL-terminated */
    size_t len;
};

extern const struct embedded_file embedded_files[];
extern const size_t embedded_files_count;

/* The file with that base name, or NULL. */
const struct embedded_file *embedded_find(const char *name);

#endif
