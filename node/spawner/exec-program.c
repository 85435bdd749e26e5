/*
 * exec-program.c: see exec-program.h.
 */
#define _GNU_SOURCE
#include "exec-program.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int apply_limits(const limits *l) {
    if (!l->set) return 0;
    if (setrlimit(RLIMIT_CPU, &l->cpu) || setrlimit(RLIMIT_AS, &l->as) || setrlimit(RLIMIT_FSIZE, &l->fsize) || setrlimit(RLIMIT_CORE, &l->core)) return -1;
    return 0;
}

static const char *env_path(char **envp) {
    if (envp) {
        for (char **e = envp; *e; e++)
            if (strncmp(*e, "PATH=", 5) == 0) return *e + 5;
        return "/usr/local/bin:/usr/bin:/bin";
    }
    const char *p = getenv("PATH");
    return p ? p : "/usr/local/bin:/usr/bin:/bin";
}

/* execve of file, searched on PATH (the program's own environment's, as Node's spawn does) when
 * it names no directory. Returns only on failure, with errno as execvp would leave it. */
void exec_searching(const char *file, char **argv, char **envp) {
    char **env = envp ? envp : environ;
    if (strchr(file, '/')) {
        execve(file, argv, env);
        return;
    }
    const char *dirs = env_path(envp);
    size_t flen = strlen(file);
    int saw_eacces = 0;
    for (const char *d = dirs;; d++) {
        const char *colon = strchr(d, ':');
        size_t dlen = colon ? (size_t)(colon - d) : strlen(d);
        char full[4096];
        if (dlen + flen + 2 <= sizeof full) {
            if (dlen) {
                memcpy(full, d, dlen);
                full[dlen] = '/';
                memcpy(full + dlen + 1, file, flen + 1);
            } else memcpy(full, file, flen + 1);
            execve(full, argv, env);
            if (errno == EACCES) saw_eacces = 1;
        }
        if (!colon) break;
        d = colon;
    }
    errno = saw_eacces ? EACCES : ENOENT;
}

/* In the forked child: its descriptors in place, limits set, the program exec'd. Reports a
 * failure (step and errno) on `report` and exits 127. */
void become(int report, const int fds[4], int new_session, const char *cwd, const limits *lim, const char *file, char **argv, char **envp) {
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    signal(SIGPIPE, SIG_DFL);
    signal(SIGCHLD, SIG_DFL);
    /* No job can reach its parent's terminal (bubblewrap's --new-session, per job). */
    if (new_session) setsid();
    /* Above 10 first, so that no dup2 below overwrites a descriptor another one still needs. */
    int high[4];
    for (int i = 0; i < 4; i++) high[i] = fds[i] < 0 ? -1 : fcntl(fds[i], F_DUPFD, 10);
    for (int i = 0; i < 4; i++) {
        if (high[i] < 0) close(i);
        else dup2(high[i], i);
    }
    for (int i = 0; i < 4; i++)
        if (high[i] >= 0) close(high[i]);
    int32_t failure[2];
    if (cwd && chdir(cwd)) failure[0] = STEP_CHDIR;
    else if (apply_limits(lim)) failure[0] = STEP_LIMITS;
    else {
        exec_searching(file, argv, envp);
        failure[0] = STEP_EXEC;
    }
    failure[1] = errno;
    if (write(report, failure, sizeof failure) < 0) { /* the parent then sees a start without a report: 127 */ }
    _exit(127);
}

/* ---- the prlimit form ---- */

static int parse_number(const char *s, rlim_t *v) {
    char *end;
    errno = 0;
    unsigned long long n = strtoull(s, &end, 10);
    if (errno || end == s || *end) return -1;
    *v = (rlim_t)n;
    return 0;
}

int limited_exec(int argc, char **argv) {
    int i = 1;
    for (; i < argc && strcmp(argv[i], "--") != 0; i++) {
        const char *a = argv[i];
        struct rlimit r;
        int resource;
        const char *value = strchr(a, '=');
        if (!value) goto usage;
        value++;
        if (strncmp(a, "--cpu=", 6) == 0) {
            resource = RLIMIT_CPU;
            char soft[32];
            const char *colon = strchr(value, ':');
            if (!colon || (size_t)(colon - value) >= sizeof soft) goto usage;
            memcpy(soft, value, (size_t)(colon - value));
            soft[colon - value] = 0;
            if (parse_number(soft, &r.rlim_cur) || parse_number(colon + 1, &r.rlim_max)) goto usage;
        } else {
            if (strncmp(a, "--as=", 5) == 0) resource = RLIMIT_AS;
            else if (strncmp(a, "--fsize=", 8) == 0) resource = RLIMIT_FSIZE;
            else if (strncmp(a, "--core=", 7) == 0) resource = RLIMIT_CORE;
            else goto usage;
            if (parse_number(value, &r.rlim_cur)) goto usage;
            r.rlim_max = r.rlim_cur;
        }
        if (setrlimit(resource, &r)) {
            fprintf(stderr, "meshcc-spawn: cannot set %.*s: %s\n", (int)(value - a - 3), a + 2, strerror(errno));
            return 1;
        }
    }
    if (i + 1 >= argc) goto usage;
    exec_searching(argv[i + 1], argv + i + 1, NULL);
    fprintf(stderr, "meshcc-spawn: cannot run %s: %s\n", argv[i + 1], strerror(errno));
    return 127;
usage:
    fputs("usage: meshcc-spawn [--cpu=SOFT:HARD] [--as=N] [--fsize=N] [--core=N] -- PROGRAM [ARGS]\n", stderr);
    return 2;
}
