/*
 * meshcc-spawn: starts programs for the agent (node/spawner/lean-spawn.ts).
 *
 * Why C: every sandboxed job and every -M scan is a program started here. From the Node helper
 * a start cost ~2 ms of CPU (a fork of a 40 MB process and its event loop's work), and prlimit,
 * exec'd between it and bubblewrap only because Node cannot call setrlimit, another ~0.9 ms.
 * This process is a few hundred kilobytes: its fork costs little, and it sets a job's limits
 * itself between fork and exec.
 *
 * Two forms:
 *   meshcc-spawn                      serve requests on stdin, replies on stdout (below)
 *   meshcc-spawn --inside             the same as a kept sandbox's first process (PID 1 of
 *                                     bubblewrap's PID namespace, kept-sandboxes.ts): each
 *                                     program in a session of its own; once it has ended,
 *                                     whatever it started is killed, and if it left anything
 *                                     in the sandbox's own /dev or System V IPC, this process
 *                                     exits after its reply, ending the sandbox (the next job
 *                                     gets a fresh one)
 *   meshcc-spawn LIMITS -- PROG ARGS  set the limits and exec PROG, as prlimit would
 *     LIMITS: --cpu=SOFT:HARD --as=BYTES --fsize=BYTES --core=BYTES (each optional)
 *
 * The protocol, little-endian, each message a u32 length and that many bytes:
 *   request  u8 kind: 1 run, 2 kill; u32 id
 *     run:   u8 flags (1 capture fd 3, 2 limits follow, 4 environment follows),
 *            u64 output limit (stdout + stderr; past it the program is killed),
 *            u32 timeout in ms (0: none),
 *            [limits: u64 cpu soft, cpu hard, address space, file size, core],
 *            str file, str argv0 (empty: file), str cwd (empty: ours), u32 argc, argc × str,
 *            [u32 envc, envc × str "NAME=value"]
 *            a str is a u32 length and its bytes
 *   reply    u32 id, u8 how (0 exited, 1 signalled, 2 not started), i32 exit code / signal /
 *            errno, u8 step that failed (0 fork, 1 chdir, 2 limits, 3 exec), u8 output over
 *            limit, u8 timed out, u8 this process ends after this reply (--inside: the job
 *            left something behind), then stdout, stderr, fd 3 as u32 length and bytes each
 *
 * The agent is its only peer: a malformed request ends this process (the agent then starts
 * another and falls back for what was running). When the agent goes (stdin ends), every
 * program still running is killed, as the Node helper did.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "exec-program.h"
#include "sandbox-state.h"

#define MAX_REQUEST (64u << 20)

typedef struct {
    uint8_t *p;
    size_t len, cap;
} buffer;

static void append(buffer *b, const void *p, size_t n) {
    if (b->len + n > b->cap) {
        size_t cap = b->cap ? b->cap : 4096;
        while (cap < b->len + n) cap *= 2;
        uint8_t *grown = realloc(b->p, cap);
        if (!grown) {
            fputs("meshcc-spawn: out of memory\n", stderr);
            _exit(3);
        }
        b->p = grown;
        b->cap = cap;
    }
    memcpy(b->p + b->len, p, n);
    b->len += n;
}

typedef struct {
    uint32_t id;
    pid_t pid;
    int fd[3]; /* stdout, stderr, fd 3; -1 once closed */
    buffer out[3];
    uint64_t bytes, output_limit;
    int64_t deadline_ms; /* 0: none */
    int exited, status, over_limit, timed_out;
} child;

static child *children;
static size_t nchildren, children_cap;
static int sigchld_pipe[2];
static int inside;

static int64_t now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void on_sigchld(int sig) {
    (void)sig;
    int saved = errno;
    char c = 0;
    if (write(sigchld_pipe[1], &c, 1) < 0) { /* full: a wake-up is already pending */ }
    errno = saved;
}

/* ---- reading requests ---- */

typedef struct {
    const uint8_t *p, *end;
    int bad;
} cursor;

static uint64_t get_le(cursor *c, int n) {
    if (c->bad || c->end - c->p < n) {
        c->bad = 1;
        return 0;
    }
    uint64_t v = 0;
    for (int i = n - 1; i >= 0; i--) v = (v << 8) | c->p[i];
    c->p += n;
    return v;
}

/* A NUL-terminated copy of the next str (NUL inside is malformed: it could not reach exec). */
static char *get_str(cursor *c) {
    uint32_t n = (uint32_t)get_le(c, 4);
    if (c->bad || (size_t)(c->end - c->p) < n || memchr(c->p, 0, n)) {
        c->bad = 1;
        return NULL;
    }
    char *s = malloc(n + 1);
    if (!s) {
        c->bad = 1;
        return NULL;
    }
    memcpy(s, c->p, n);
    s[n] = 0;
    c->p += n;
    return s;
}

static char **get_strs(cursor *c, uint32_t count) {
    if (c->bad || count > (size_t)(c->end - c->p) / 4) {
        c->bad = 1;
        return NULL;
    }
    char **v = calloc(count + 1, sizeof *v);
    if (!v) {
        c->bad = 1;
        return NULL;
    }
    for (uint32_t i = 0; i < count && !c->bad; i++) v[i] = get_str(c);
    return v;
}

static void free_strs(char **v) {
    if (!v) return;
    for (char **s = v; *s; s++) free(*s);
    free(v);
}

static void reply_start_failure(uint32_t id, int step, int err);

static void start(uint32_t id, uint8_t flags, uint64_t output_limit, uint32_t timeout_ms, const limits *lim, const char *file, const char *argv0, const char *cwd, char **args, char **envp) {
    int out[2] = {-1, -1}, err[2] = {-1, -1}, fd3[2] = {-1, -1}, report[2] = {-1, -1};
    int devnull = open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (pipe2(out, O_CLOEXEC) || pipe2(err, O_CLOEXEC) || ((flags & 1) && pipe2(fd3, O_CLOEXEC)) || pipe2(report, O_CLOEXEC) || devnull < 0) {
        int e = errno;
        int all[] = {out[0], out[1], err[0], err[1], fd3[0], fd3[1], report[0], report[1], devnull};
        for (size_t i = 0; i < sizeof all / sizeof *all; i++)
            if (all[i] >= 0) close(all[i]);
        reply_start_failure(id, STEP_FORK, e);
        return;
    }
    /* argv[0] as asked; the rest as given. */
    size_t argc = 0;
    while (args[argc]) argc++;
    char **argv = calloc(argc + 2, sizeof *argv);
    argv[0] = (char *)(argv0 && *argv0 ? argv0 : file);
    for (size_t i = 0; i < argc; i++) argv[i + 1] = args[i];
    pid_t pid = fork();
    if (pid == 0) {
        int fds[4] = {devnull, out[1], err[1], fd3[1]};
        become(report[1], fds, inside, cwd && *cwd ? cwd : NULL, lim, file, argv, envp);
    }
    int fork_errno = errno;
    free(argv);
    close(devnull);
    close(out[1]);
    close(err[1]);
    if (fd3[1] >= 0) close(fd3[1]);
    close(report[1]);
    if (pid < 0) {
        close(out[0]);
        close(err[0]);
        if (fd3[0] >= 0) close(fd3[0]);
        close(report[0]);
        reply_start_failure(id, STEP_FORK, fork_errno);
        return;
    }
    /* The child closes its end by exec (close-on-exec) or after reporting: a short wait. */
    int32_t failure[2];
    ssize_t got;
    do got = read(report[0], failure, sizeof failure);
    while (got < 0 && errno == EINTR);
    close(report[0]);
    if (nchildren == children_cap) {
        children_cap = children_cap ? children_cap * 2 : 16;
        children = realloc(children, children_cap * sizeof *children);
        if (!children) {
            fputs("meshcc-spawn: out of memory\n", stderr);
            _exit(3);
        }
    }
    child *c = &children[nchildren++];
    memset(c, 0, sizeof *c);
    c->id = id;
    c->pid = pid;
    c->fd[0] = out[0];
    c->fd[1] = err[0];
    c->fd[2] = fd3[0];
    c->output_limit = output_limit;
    c->deadline_ms = timeout_ms ? now_ms() + timeout_ms : 0;
    if (got == (ssize_t)sizeof failure) {
        /* Not started: reaped below like any child, but replied to as a failed start. */
        for (int i = 0; i < 3; i++)
            if (c->fd[i] >= 0) close(c->fd[i]), c->fd[i] = -1;
        waitpid(pid, NULL, 0);
        nchildren--;
        reply_start_failure(id, failure[0], failure[1]);
    }
}

/* ---- replies ---- */

static void write_all(const void *p, size_t n) {
    const uint8_t *b = p;
    while (n) {
        ssize_t w = write(1, b, n);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) _exit(0); /* the agent is gone */
        b += w;
        n -= (size_t)w;
    }
}

static void put_le(buffer *b, uint64_t v, int n) {
    uint8_t bytes[8];
    for (int i = 0; i < n; i++) bytes[i] = (uint8_t)(v >> (8 * i));
    append(b, bytes, (size_t)n);
}

static int ending; /* --inside: the sandbox is not as it was; exit after this reply */

static void send_reply(uint32_t id, int how, int32_t value, int step, int over, int timed_out, buffer *outs) {
    buffer b = {0};
    put_le(&b, 0, 4); /* the length, filled in below */
    put_le(&b, id, 4);
    put_le(&b, (uint64_t)how, 1);
    put_le(&b, (uint32_t)value, 4);
    put_le(&b, (uint64_t)step, 1);
    put_le(&b, (uint64_t)over, 1);
    put_le(&b, (uint64_t)timed_out, 1);
    put_le(&b, (uint64_t)ending, 1);
    for (int i = 0; i < 3; i++) {
        size_t n = outs ? outs[i].len : 0;
        put_le(&b, n, 4);
        if (n) append(&b, outs[i].p, n);
    }
    uint32_t len = (uint32_t)(b.len - 4);
    for (int i = 0; i < 4; i++) b.p[i] = (uint8_t)(len >> (8 * i));
    write_all(b.p, b.len);
    free(b.p);
}

static void reply_start_failure(uint32_t id, int step, int err) {
    send_reply(id, 2, err, step, 0, 0, NULL);
}

static void finish_if_done(size_t i) {
    child *c = &children[i];
    if (!c->exited || c->fd[0] >= 0 || c->fd[1] >= 0 || c->fd[2] >= 0) return;
    /* A job that left something behind ends this sandbox, not the next job's. */
    if (inside && nchildren == 1 && !sandbox_clean()) ending = 1;
    int signalled = WIFSIGNALED(c->status);
    send_reply(c->id, signalled ? 1 : 0, signalled ? WTERMSIG(c->status) : WEXITSTATUS(c->status), 0, c->over_limit, c->timed_out, c->out);
    for (int k = 0; k < 3; k++) free(c->out[k].p);
    children[i] = children[--nchildren];
}

/* Inside a kept sandbox (one job at a time): every process but this one, as the end of a
 * bubblewrap's PID namespace would. kill(-1) spares PID 1, this process, and nothing outside
 * the namespace is visible. */
static void end_sandboxed_processes(void) {
    if (inside) kill(-1, SIGKILL);
}

static void end_sandboxed_processes(void);

static void kill_child(child *c) {
    if (!c->exited) kill(c->pid, SIGKILL);
    end_sandboxed_processes();
}

static void read_output(child *c, int k) {
    uint8_t chunk[65536];
    ssize_t n = read(c->fd[k], chunk, sizeof chunk);
    if (n < 0 && (errno == EINTR || errno == EAGAIN)) return;
    if (n <= 0) {
        close(c->fd[k]);
        c->fd[k] = -1;
        return;
    }
    if (k == 2) {
        append(&c->out[k], chunk, (size_t)n);
        return;
    }
    c->bytes += (uint64_t)n;
    if (c->bytes > c->output_limit) {
        /* Past the limit: killed, and no more read (a program of its own that still holds
         * the pipe must not keep the reply waiting). */
        kill_child(c);
        c->over_limit = 1;
        for (int i = 0; i < 2; i++)
            if (c->fd[i] >= 0) close(c->fd[i]), c->fd[i] = -1;
    } else append(&c->out[k], chunk, (size_t)n);
}

static void reap(void) {
    int status;
    pid_t pid;
    while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
        for (size_t i = 0; i < nchildren; i++) {
            if (children[i].pid != pid) continue;
            children[i].exited = 1;
            children[i].status = status;
            /* What it left running would hold its pipes open, and its reply, for ever. */
            end_sandboxed_processes();
            break;
        }
    }
}

/* ---- the request loop ---- */

static void handle(const uint8_t *p, size_t n) {
    cursor c = {p, p + n, 0};
    uint8_t kind = (uint8_t)get_le(&c, 1);
    uint32_t id = (uint32_t)get_le(&c, 4);
    if (kind == 2 && !c.bad) {
        for (size_t i = 0; i < nchildren; i++)
            if (children[i].id == id) kill_child(&children[i]);
        return;
    }
    uint8_t flags = (uint8_t)get_le(&c, 1);
    uint64_t output_limit = get_le(&c, 8);
    uint32_t timeout_ms = (uint32_t)get_le(&c, 4);
    limits lim = {0};
    if (flags & 2) {
        lim.set = 1;
        lim.cpu.rlim_cur = get_le(&c, 8);
        lim.cpu.rlim_max = get_le(&c, 8);
        lim.as.rlim_cur = lim.as.rlim_max = get_le(&c, 8);
        lim.fsize.rlim_cur = lim.fsize.rlim_max = get_le(&c, 8);
        lim.core.rlim_cur = lim.core.rlim_max = get_le(&c, 8);
    }
    char *file = get_str(&c), *argv0 = get_str(&c), *cwd = get_str(&c);
    char **args = get_strs(&c, (uint32_t)get_le(&c, 4));
    char **envp = (flags & 4) ? get_strs(&c, (uint32_t)get_le(&c, 4)) : NULL;
    if (kind != 1 || c.bad || c.p != c.end || !file || !*file) {
        fputs("meshcc-spawn: a malformed request\n", stderr);
        _exit(2);
    }
    start(id, flags, output_limit, timeout_ms, &lim, file, argv0, cwd, args, envp);
    free(file);
    free(argv0);
    free(cwd);
    free_strs(args);
    free_strs(envp);
}

static int serve(void) {
    signal(SIGPIPE, SIG_IGN);
    if (pipe2(sigchld_pipe, O_CLOEXEC | O_NONBLOCK)) return 1;
    struct sigaction sa = {0};
    sa.sa_handler = on_sigchld;
    sa.sa_flags = SA_RESTART | SA_NOCLDSTOP;
    sigaction(SIGCHLD, &sa, NULL);
    buffer in = {0};
    int input_open = 1;
    struct pollfd *pfds = NULL;
    size_t pfds_cap = 0;
    while (input_open || nchildren) {
        size_t need = 2 + nchildren * 3;
        if (need > pfds_cap) {
            pfds_cap = need * 2;
            pfds = realloc(pfds, pfds_cap * sizeof *pfds);
            if (!pfds) return 3;
        }
        size_t n = 0;
        pfds[n++] = (struct pollfd){.fd = input_open ? 0 : -1, .events = POLLIN};
        pfds[n++] = (struct pollfd){.fd = sigchld_pipe[0], .events = POLLIN};
        int64_t now = now_ms(), wait_ms = -1;
        for (size_t i = 0; i < nchildren; i++) {
            for (int k = 0; k < 3; k++) pfds[n++] = (struct pollfd){.fd = children[i].fd[k], .events = POLLIN};
            int64_t d = children[i].deadline_ms;
            if (d && !children[i].exited && !children[i].timed_out) {
                int64_t left = d > now ? d - now : 0;
                if (wait_ms < 0 || left < wait_ms) wait_ms = left;
            }
        }
        if (poll(pfds, n, (int)(wait_ms > 0x7fffffff ? 0x7fffffff : wait_ms)) < 0 && errno != EINTR) return 1;
        if (pfds[1].revents) {
            char drain[64];
            while (read(sigchld_pipe[0], drain, sizeof drain) > 0) {}
        }
        reap();
        /* Outputs first, then exits: a program's last bytes are read before its reply goes. */
        size_t slot = 2;
        size_t running = nchildren;
        for (size_t i = 0; i < running; i++, slot += 3)
            for (int k = 0; k < 3; k++)
                if (pfds[slot + k].revents && children[i].fd[k] >= 0) read_output(&children[i], k);
        now = now_ms();
        for (size_t i = 0; i < nchildren; i++) {
            child *c = &children[i];
            if (c->deadline_ms && !c->exited && !c->timed_out && now >= c->deadline_ms) {
                c->timed_out = 1;
                kill_child(c);
            }
        }
        for (size_t i = nchildren; i-- > 0;) finish_if_done(i);
        if (ending) return 0;
        if (pfds[0].revents) {
            uint8_t chunk[65536];
            ssize_t got = read(0, chunk, sizeof chunk);
            if (got < 0 && errno == EINTR) continue;
            if (got <= 0) {
                /* The agent went away: take our children with us. */
                for (size_t i = 0; i < nchildren; i++) kill_child(&children[i]);
                return 0;
            }
            append(&in, chunk, (size_t)got);
            size_t at = 0;
            while (in.len - at >= 4) {
                uint32_t len = (uint32_t)in.p[at] | (uint32_t)in.p[at + 1] << 8 | (uint32_t)in.p[at + 2] << 16 | (uint32_t)in.p[at + 3] << 24;
                if (len > MAX_REQUEST) {
                    fputs("meshcc-spawn: a request over 64 MiB\n", stderr);
                    return 2;
                }
                if (in.len - at - 4 < len) break;
                handle(in.p + at + 4, len);
                at += 4 + len;
            }
            memmove(in.p, in.p + at, in.len - at);
            in.len -= at;
        }
    }
    return 0;
}

int main(int argc, char **argv) {
    if (argc == 2 && strcmp(argv[1], "--inside") == 0) {
        inside = 1;
        /* Started from a descriptor of its own binary (/proc/self/fd/3): not the jobs'. */
        for (int fd = 3; fd < 64; fd++) fcntl(fd, F_SETFD, FD_CLOEXEC);
        if (sandbox_record()) return 1;
        return serve();
    }
    if (argc > 1) return limited_exec(argc, argv);
    return serve();
}
