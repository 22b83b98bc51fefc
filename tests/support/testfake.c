/* testfake: see testfake.h. */
#include "testfake.h"
#include "testhttp.h"
#include "testproc.h"
#include "testtime.h"
#include "testutil.h"

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define MAX_ARGS 32

bool fake_ml_start(struct fake_ml *f, const char *scenario, const char *const *args)
{
    memset(f, 0, sizeof *f);
    const char *bin = getenv("FAKE_ML_BIN");
    const char *dir = getenv("FAKE_ML_SCENARIOS");
    if (!bin || !*bin)
        tu_die("FAKE_ML_BIN is not set (ctest sets it)");
    char path[1024];
    if (strchr(scenario, '/') || !dir)
        snprintf(path, sizeof path, "%s", scenario);
    else
        snprintf(path, sizeof path, "%s/%s", dir, scenario);
    /* The command line, built before fork: the child only calls execv. */
    char *argv[MAX_ARGS];
    const char *fixed[] = {bin, "--scenario", path, "--port", "0"};
    size_t n = 0;
    for (size_t i = 0; i < sizeof fixed / sizeof fixed[0]; i++)
        argv[n++] = strdup(fixed[i]);
    for (size_t i = 0; args && args[i] && n < MAX_ARGS - 1; i++)
        argv[n++] = strdup(args[i]);
    argv[n] = NULL;
    for (size_t i = 0; i < n; i++)
        if (!argv[i])
            tu_die("out of memory");
    int out[2];
    if (pipe(out) != 0)
        tu_die("pipe: %s", strerror(errno));
    pid_t pid = fork();
    if (pid < 0)
        tu_die("fork: %s", strerror(errno));
    if (pid == 0) {
        dup2(out[1], STDOUT_FILENO);
        close(out[0]);
        close(out[1]);
        execv(bin, argv);
        _exit(127);
    }
    for (size_t i = 0; i < n; i++)
        free(argv[i]);
    close(out[1]);
    f->pid = pid;
    children_track(pid, bin);
    char line[256];
    size_t len = 0;
    long long end = t_now_ms() + 30000;
    while (t_now_ms() < end && len < sizeof line - 1) {
        struct pollfd pfd = {out[0], POLLIN, 0};
        if (poll(&pfd, 1, 200) <= 0)
            continue;
        ssize_t r = read(out[0], line + len, 1);
        if (r <= 0)
            break;
        if (line[len] == '\n')
            break;
        len++;
    }
    line[len] = '\0';
    close(out[0]);
    const char *p = strstr(line, "port=");
    if (!p) {
        fprintf(stderr, "fake_ml did not start (got \"%s\")\n", line);
        kill(pid, SIGKILL);
        waitpid(pid, NULL, 0);
        children_forget(pid);
        f->pid = 0;
        return false;
    }
    f->port = (unsigned)strtoul(p + 5, NULL, 10);
    snprintf(f->url, sizeof f->url, "http://127.0.0.1:%u", f->port);
    return true;
}

void fake_ml_stop(struct fake_ml *f)
{
    if (f->pid <= 0)
        return;
    kill(f->pid, SIGTERM);
    int status;
    long long end = t_now_ms() + 10000;
    while (waitpid(f->pid, &status, WNOHANG) == 0) {
        if (t_now_ms() > end) {
            kill(f->pid, SIGKILL);
            waitpid(f->pid, &status, 0);
            break;
        }
        t_sleep_ms(20);
    }
    children_forget(f->pid);
    f->pid = 0;
}

static json_t *fake_call(const struct fake_ml *f, const char *method, const char *path,
                         const char *body)
{
    struct th_response r;
    const char *h = body ? "Content-Type: application/json\r\n" : NULL;
    if (!th_request(f->port, method, path, h, body, &r))
        return NULL;
    json_t *j = r.json ? json_incref(r.json) : NULL;
    if (r.status >= 400) {
        fprintf(stderr, "fake_ml %s %s: %d %s\n", method, path, r.status, r.body);
        json_decref(j);
        j = NULL;
    }
    th_free(&r);
    return j;
}

json_t *fake_ml_get(const struct fake_ml *f, const char *path)
{
    return fake_call(f, "GET", path, NULL);
}

json_t *fake_ml_post(const struct fake_ml *f, const char *path, const char *json_body)
{
    json_t *j = fake_call(f, "POST", path, json_body ? json_body : "");
    return j ? j : json_object();
}

int fake_ml_delete(const struct fake_ml *f, const char *path)
{
    struct th_response r;
    if (!th_request(f->port, "DELETE", path, NULL, NULL, &r))
        return 0;
    int st = r.status;
    th_free(&r);
    return st;
}

long long fake_ml_stat(const struct fake_ml *f, const char *dotted)
{
    json_t *root = fake_ml_get(f, "/__fake/stats");
    if (!root)
        tu_die("fake_ml stats unavailable");
    json_t *cur = root;
    char key[128];
    const char *p = dotted;
    while (cur && *p) {
        size_t n = strcspn(p, ".");
        if (n >= sizeof key)
            n = sizeof key - 1;
        memcpy(key, p, n);
        key[n] = '\0';
        cur = json_object_get(cur, key);
        p += n;
        if (*p == '.')
            p++;
    }
    long long v = cur && json_is_integer(cur) ? (long long)json_integer_value(cur) : -1;
    json_decref(root);
    return v;
}
