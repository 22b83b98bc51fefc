/* testutil: see testutil.h. */
#include "testutil.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

void tu_die(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "testsupport: ");
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n");
    va_end(ap);
    abort();
}

const char *tu_tmp_dir(void)
{
    const char *t = getenv("TMPDIR");
    return t && *t ? t : "/tmp";
}

char *tu_read_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        char *empty = strdup("");
        if (!empty)
            tu_die("out of memory");
        return empty;
    }
    size_t cap = 4096, len = 0;
    char *s = malloc(cap);
    if (!s)
        tu_die("out of memory");
    size_t n;
    while ((n = fread(s + len, 1, cap - len - 1, f)) > 0) {
        len += n;
        if (cap - len < 2) {
            cap *= 2;
            char *bigger = realloc(s, cap);
            if (!bigger)
                tu_die("out of memory reading %s", path);
            s = bigger;
        }
    }
    s[len] = '\0';
    fclose(f);
    return s;
}

int tu_exit_code(int status)
{
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

bool tu_valgrind(void)
{
    const char *v = getenv("JOBSD_VALGRIND");
    return v && *v && strcmp(v, "0") != 0;
}
