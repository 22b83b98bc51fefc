/* testutil: what the support modules share, and nothing of jobsd or cmocka (the raw HTTP
 * client, which the fake API's self-test uses too, sits on it): a fatal error that stops the
 * test program, the temporary directory, a whole file read into memory, a child's wait status
 * as an exit code, and the JOBSD_VALGRIND switch. */
#ifndef JOBSD_TESTUTIL_H
#define JOBSD_TESTUTIL_H

#include <stdbool.h>

/* Prints "testsupport: <message>" and aborts: a broken harness must never look like a passing
 * test. */
void tu_die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

/* TMPDIR, else /tmp (borrowed). */
const char *tu_tmp_dir(void);

/* The whole file as a NUL-terminated string (new: caller frees); "" when it cannot be read. */
char *tu_read_file(const char *path);

/* A waitpid status as an exit code: the code of a normal exit, 128 + the signal otherwise. */
int tu_exit_code(int status);

/* Is JOBSD_VALGRIND set (and not "0")? Every jobsd then runs under valgrind, and waits are
 * scaled (t_scale). */
bool tu_valgrind(void);

#endif
