/*
 * meshcc-client.c: the per-invocation compiler client.
 *
 * make starts the compiler once per file (and configure scripts probe it hundreds of
 * times more), so this program must cost about a millisecond. It only forwards the
 * invocation (cwd, argv, an environment subset) to the long-lived local agent over a
 * unix socket and does what the agent answers; every decision lives in the agent.
 * Whenever anything goes wrong it execs the real compiler: a build must never fail,
 * nor print anything different, because of meshcc.
 *
 *   meshcc-cc gcc -c a.c    launcher form: the compiler is argv[1]
 *   gcc -c a.c              masquerade form: a symlink named gcc points at this binary
 *
 * Wire (protocol/framing.ts, protocol/messages.ts): frames of a 4-byte big-endian
 * length and one msgpack value. One request {t:"compile", ...}, then one reply:
 * "run-local" (run the compiler as our child, holding the connection as the lease on
 * a local slot, then send {t:"done", exit}), "result" (write the outputs it lists in
 * "copy" from the agent's store, if any, print the agent's stdout and stderr, exit with
 * its code), anything else: exec the compiler ourselves.
 *
 * Linux only (/proc/self/exe, MSG_NOSIGNAL, SOCK_CLOEXEC).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "copy-outputs.h"
#include "msgpack.h"

#define PROTOCOL_VERSION 1
#define MAX_REPLY_BYTES (256u << 20) /* a reply beyond this is not from a sane agent */

extern char **environ;

/* Names the masquerade directory holds: a PATH directory with any of them linking to
 * us is ours, and is dropped from the search and from the PATH passed on. */
static const char *const masquerade_names[] = {"gcc", "g++", "cc", "c++", "clang", "clang++", NULL};

/* The environment the agent gets (PATH already cleaned); plus every LC_* and MESHCC_*. */
static const char *const sent_env[] = {
    "PATH", "PWD", "LANG", "LANGUAGE", "TERM", "NO_COLOR", "CLICOLOR_FORCE", "GCC_COLORS", "GCC_URLS",
    "TERM_URLS", "CPATH", "C_INCLUDE_PATH", "CPLUS_INCLUDE_PATH", "OBJC_INCLUDE_PATH",
    "OBJCPLUS_INCLUDE_PATH", "COMPILER_PATH", "LIBRARY_PATH", "GCC_EXEC_PREFIX",
    "GCC_COMPARE_DEBUG", "SOURCE_DATE_EPOCH", "DEPENDENCIES_OUTPUT", "SUNPRO_DEPENDENCIES",
    "TMPDIR", "SDKROOT", "MACOSX_DEPLOYMENT_TARGET", "CCC_OVERRIDE_OPTIONS",
    "QA_OVERRIDE_GCC3_OPTIONS", NULL};

static char *cwd;          /* getcwd(), or NULL if it has none (then no agent) */
static int64_t started_us; /* CLOCK_MONOTONIC at start: files the agent looked at since are as this compile would see them */
static struct stat self;   /* /proc/self/exe: identity, so hard links count too */
static int self_known;
static char *compiler;     /* absolute path of the real compiler */
static char **cc_argv;     /* its argv, argv[0] as the build named it */
static char **cc_envp;     /* our environment, PATH cleaned */
static volatile sig_atomic_t child_pid;

static int env_is(const char *name, const char *value) {
    const char *v = getenv(name);
    return v && strcmp(v, value) == 0;
}

static const char *base_name(const char *path) {
    const char *slash = strrchr(path, '/');
    return slash ? slash + 1 : path;
}

/* Runs the real compiler in place of this process. Used for every fallback, so that a
 * broken or absent agent leaves the build exactly as it would be without meshcc. */
static void exec_compiler(void) {
    execve(compiler, cc_argv, cc_envp);
    int err = errno;
    fprintf(stderr, "meshcc: cannot run '%s': %s\n", compiler, strerror(err));
    _exit(err == ENOENT ? 127 : 126);
}

/* Gives up on the agent. Silent unless MESHCC_DEBUG=1: stderr must match a plain build. */
__attribute__((format(printf, 1, 2), noreturn)) static void fallback(const char *fmt, ...) {
    if (env_is("MESHCC_DEBUG", "1")) {
        va_list ap;
        va_start(ap, fmt);
        fputs("meshcc: ", stderr);
        vfprintf(stderr, fmt, ap);
        fputc('\n', stderr);
        va_end(ap);
    }
    exec_compiler();
    _exit(127); /* not reached */
}

static int is_self(const char *path) {
    struct stat st;
    return self_known && stat(path, &st) == 0 && st.st_dev == self.st_dev && st.st_ino == self.st_ino;
}

static char *absolute(const char *path) {
    char *out;
    if (path[0] == '/' || !cwd) return strdup(path);
    while (path[0] == '.' && path[1] == '/') path += 2;
    return asprintf(&out, "%s/%s", cwd, path) < 0 ? NULL : out;
}

/* Whether dir holds a link to this binary under the compiler's name or a masquerade
 * name. Sets *exec when dir/name is an executable file (that is not us). */
static int holds_us(const char *dir, const char *name, int *exec) {
    char buf[PATH_MAX];
    struct stat st;
    *exec = 0;
    if (name && snprintf(buf, sizeof buf, "%s/%s", dir, name) < (int)sizeof buf && stat(buf, &st) == 0) {
        if (self_known && st.st_dev == self.st_dev && st.st_ino == self.st_ino) return 1;
        *exec = S_ISREG(st.st_mode) && access(buf, X_OK) == 0;
    }
    for (int i = 0; masquerade_names[i]; i++) {
        if (name && strcmp(name, masquerade_names[i]) == 0) continue;
        if (snprintf(buf, sizeof buf, "%s/%s", dir, masquerade_names[i]) < (int)sizeof buf && is_self(buf))
            return 1;
    }
    return 0;
}

/* Walks PATH once: returns the first executable `name` (if name is not NULL) outside
 * our own directories, and sets *clean to PATH without them. Dropping the whole
 * directory, rather than only the link, keeps the compiler we found the first `name`
 * on the cleaned PATH, which matters because gcc finds its installation from argv[0]
 * through PATH, and nothing the compiler runs by name can loop back into meshcc. */
static char *search_path(const char *path, const char *name, char **clean) {
    size_t kept = 0, olen = 0;
    int exec;
    char *out = malloc(strlen(path) + 1), *found = NULL, dir[PATH_MAX], buf[PATH_MAX];
    if (!out) return NULL;
    for (const char *p = path;;) {
        const char *colon = strchr(p, ':');
        size_t n = colon ? (size_t)(colon - p) : strlen(p);
        exec = 0;
        if (n < sizeof dir) {
            memcpy(dir, p, n);
            strcpy(dir + n, n ? "" : "."); /* an empty entry means the current directory */
        }
        if (n >= sizeof dir || !holds_us(dir, name, &exec)) {
            if (kept++) out[olen++] = ':';
            memcpy(out + olen, p, n);
            olen += n;
            if (exec && !found && snprintf(buf, sizeof buf, "%s/%s", dir, name) < (int)sizeof buf)
                found = absolute(buf);
        }
        if (!colon) break;
        p = colon + 1;
    }
    out[olen] = '\0';
    *clean = out;
    return found;
}

/* Sets compiler and cc_envp; returns the name it looked for on PATH if none was found. */
static const char *resolve(void) {
    const char *path = getenv("PATH"), *name = cc_argv[0], *wanted = name;
    char *clean = NULL;
    int path_to_us = 0;
    if (strchr(name, '/')) {
        compiler = absolute(name);
        if (compiler && !is_self(compiler)) wanted = NULL; /* an explicit real compiler */
        else wanted = base_name(name), compiler = NULL, path_to_us = 1; /* look further */
    }
    /* Without PATH, search where execvp would, and pass no PATH on. */
    char *found = search_path(path ? path : "/bin:/usr/bin", wanted, &clean);
    if (wanted) compiler = found;
    /* gcc locates its installation from argv[0] (following symlinks), so a path to us
     * there would send it looking for cc1 beside meshcc: name the real compiler instead,
     * as ccache does. Same basename, so diagnostics still say "gcc: ...". A bare name
     * stays: gcc finds it on the cleaned PATH, and it is the compiler we found. */
    if (path_to_us && compiler) cc_argv[0] = compiler;
    size_t n = 0;
    while (environ[n]) n++;
    char *path_var = NULL, **envp = malloc((n + 1) * sizeof *envp);
    if (!envp || !clean || (path && asprintf(&path_var, "PATH=%s", clean) < 0)) return wanted ? wanted : name;
    for (size_t i = 0; i < n; i++)
        envp[i] = path_var && strncmp(environ[i], "PATH=", 5) == 0 ? path_var : environ[i];
    envp[n] = NULL;
    cc_envp = envp;
    return compiler ? NULL : wanted;
}

static int env_sent(const char *entry, size_t name_len) {
    if ((name_len > 3 && strncmp(entry, "LC_", 3) == 0) || (name_len > 7 && strncmp(entry, "MESHCC_", 7) == 0))
        return 1;
    for (int i = 0; sent_env[i]; i++)
        if (strlen(sent_env[i]) == name_len && strncmp(entry, sent_env[i], name_len) == 0) return 1;
    return 0;
}

/* Fills in the 4-byte length reserved at the start of a frame. */
static void end_frame(mp_writer *w) {
    size_t body = w->len - 4;
    for (int i = 0; i < 4; i++) w->buf[i] = (uint8_t)(body >> (24 - 8 * i));
}

/* The request frame: its 4-byte length, then {t, v, cwd, argv, compiler, env, umask, tty, startedUs, uid}. */
static int build_request(mp_writer *w) {
    uint32_t argc = 0, envc = 0;
    mode_t mask = umask(0);
    umask(mask);
    mp_put_raw(w, "\0\0\0\0", 4);
    mp_put_map(w, 10);
    mp_put_cstr(w, "t"), mp_put_cstr(w, "compile");
    mp_put_cstr(w, "v"), mp_put_int(w, PROTOCOL_VERSION);
    mp_put_cstr(w, "cwd"), mp_put_cstr(w, cwd);
    while (cc_argv[argc]) argc++;
    mp_put_cstr(w, "argv"), mp_put_array(w, argc);
    for (uint32_t i = 0; i < argc; i++) mp_put_cstr(w, cc_argv[i]);
    mp_put_cstr(w, "compiler"), mp_put_cstr(w, compiler);
    for (int pass = 0; pass < 2; pass++) { /* count, then write: the map header comes first */
        if (pass) mp_put_cstr(w, "env"), mp_put_map(w, envc);
        for (char **e = cc_envp; *e; e++) {
            const char *eq = strchr(*e, '=');
            if (!eq || !env_sent(*e, (size_t)(eq - *e))) continue;
            if (!pass) envc++;
            else mp_put_str(w, *e, (size_t)(eq - *e)), mp_put_cstr(w, eq + 1);
        }
    }
    mp_put_cstr(w, "umask"), mp_put_int(w, mask);
    mp_put_cstr(w, "tty"), mp_put_bool(w, isatty(2));
    mp_put_cstr(w, "startedUs"), mp_put_int(w, started_us);
    /* The agent hands a client of its own uid a cached result's outputs to copy from its store. */
    mp_put_cstr(w, "uid"), mp_put_int(w, getuid());
    if (w->failed) return -1;
    end_frame(w);
    return 0;
}

static int connect_agent(void) {
    struct sockaddr_un addr = {.sun_family = AF_UNIX};
    const char *s;
    int n;
    if ((s = getenv("MESHCC_SOCKET")) && *s) n = snprintf(addr.sun_path, sizeof addr.sun_path, "%s", s);
    else if ((s = getenv("MESHCC_HOME")) && *s) n = snprintf(addr.sun_path, sizeof addr.sun_path, "%s/agent.sock", s);
    else if ((s = getenv("HOME")) && *s) n = snprintf(addr.sun_path, sizeof addr.sun_path, "%s/.meshcc/agent.sock", s);
    else fallback("no socket path: MESHCC_SOCKET, MESHCC_HOME and HOME are all unset");
    if (n < 0 || (size_t)n >= sizeof addr.sun_path) fallback("socket path too long: %s", s);
    /* CLOEXEC: the compiler we run must not hold the lease after we are gone. */
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) fallback("socket: %s", strerror(errno));
    int rc;
    while ((rc = connect(fd, (struct sockaddr *)&addr, sizeof addr)) < 0 && errno == EINTR) {}
    if (rc < 0 && errno != EISCONN) fallback("cannot connect to %s: %s", addr.sun_path, strerror(errno));
    return fd;
}

/* MSG_NOSIGNAL rather than ignoring SIGPIPE: an ignored signal survives exec, and the
 * compiler must get the signal dispositions make gave us. */
static int send_all(int fd, const uint8_t *p, size_t n) {
    while (n) {
        ssize_t k = send(fd, p, n, MSG_NOSIGNAL);
        if (k < 0 && errno == EINTR) continue;
        if (k < 0) return -1;
        p += k, n -= (size_t)k;
    }
    return 0;
}

static int read_all(int fd, uint8_t *p, size_t n) {
    while (n) {
        ssize_t k = read(fd, p, n);
        if (k < 0 && errno == EINTR) continue;
        if (k <= 0) return -1; /* error, or the agent closed early */
        p += k, n -= (size_t)k;
    }
    return 0;
}

/* Writes all of p to fd 1 or 2, which make may have left non-blocking. */
static void write_all(int fd, const uint8_t *p, size_t n) {
    while (n) {
        ssize_t k = write(fd, p, n);
        if (k < 0 && errno == EAGAIN) {
            struct pollfd pfd = {.fd = fd, .events = POLLOUT};
            poll(&pfd, 1, -1);
            continue;
        }
        if (k < 0 && errno == EINTR) continue;
        if (k < 0) return;
        p += k, n -= (size_t)k;
    }
}

static int key_is(const char *s, uint32_t n, const char *lit) { return strlen(lit) == n && memcmp(s, lit, n) == 0; }

static void forward_signal(int sig) {
    if (child_pid > 0) kill(child_pid, sig);
}

/* The agent said "run it yourself": run the compiler as our child, like system() but
 * with the connection held open as the lease on the agent's local slot. */
__attribute__((noreturn)) static void run_local(int sock) {
    /* Signals: the terminal delivers SIGINT/SIGQUIT to the compiler too, so we ignore
     * them while waiting (as system() does) and die of whatever the compiler died of.
     * A SIGTERM or SIGHUP aimed at us alone is passed on. The child gets back exactly
     * the dispositions we were started with. */
    static const int sigs[] = {SIGINT, SIGQUIT, SIGTERM, SIGHUP, SIGCHLD};
    struct sigaction old[5], act = {0};
    sigset_t forwarded, mask;
    sigemptyset(&act.sa_mask);
    act.sa_flags = SA_RESTART;
    for (int i = 0; i < 5; i++) {
        sigaction(sigs[i], NULL, &old[i]);
        if (sigs[i] == SIGCHLD) act.sa_handler = SIG_DFL; /* an inherited SIG_IGN would lose the status */
        else if (old[i].sa_handler == SIG_IGN) continue;
        else act.sa_handler = i < 2 ? SIG_IGN : forward_signal;
        sigaction(sigs[i], &act, NULL);
    }
    /* Hold SIGTERM/SIGHUP until child_pid is known, so none is lost around fork. */
    sigemptyset(&forwarded);
    sigaddset(&forwarded, SIGTERM);
    sigaddset(&forwarded, SIGHUP);
    sigprocmask(SIG_BLOCK, &forwarded, &mask);
    pid_t pid = fork();
    if (pid <= 0) {
        int fork_errno = errno;
        for (int i = 0; i < 5; i++) sigaction(sigs[i], &old[i], NULL);
        sigprocmask(SIG_SETMASK, &mask, NULL);
        if (pid == 0) exec_compiler();
        fallback("fork: %s", strerror(fork_errno));
    }
    child_pid = pid;
    sigprocmask(SIG_SETMASK, &mask, NULL);
    int status, code = 127;
    pid_t w;
    while ((w = waitpid(pid, &status, 0)) < 0 && errno == EINTR) {}
    if (w == pid && WIFEXITED(status)) code = WEXITSTATUS(status);
    else if (w == pid && WIFSIGNALED(status)) code = 128 + WTERMSIG(status);

    mp_writer done = {0};
    mp_put_raw(&done, "\0\0\0\0", 4);
    mp_put_map(&done, 2);
    mp_put_cstr(&done, "t"), mp_put_cstr(&done, "done");
    mp_put_cstr(&done, "exit"), mp_put_int(&done, code);
    if (!done.failed) {
        end_frame(&done);
        send_all(sock, done.buf, done.len); /* the agent may be gone: nothing to do about it */
    }
    close(sock);

    if (w == pid && WIFSIGNALED(status)) {
        /* Die the same way so make reports the same thing, but without a core file of
         * our own that could overwrite the compiler's. */
        int sig = WTERMSIG(status);
        struct rlimit no_core = {0, 0};
        sigset_t set;
        setrlimit(RLIMIT_CORE, &no_core);
        signal(sig, SIG_DFL);
        sigemptyset(&set);
        sigaddset(&set, sig);
        sigprocmask(SIG_UNBLOCK, &set, NULL);
        raise(sig);
    }
    exit(code);
}

int main(int argc, char **argv) {
    struct timespec now;
    if (clock_gettime(CLOCK_MONOTONIC, &now) == 0) started_us = (int64_t)now.tv_sec * 1000000 + now.tv_nsec / 1000;
    if (argc < 1) return 127;
    cc_argv = argv;
    if (strcmp(base_name(argv[0]), "meshcc-cc") == 0) {
        if (argc < 2) {
            fputs("usage: meshcc-cc COMPILER [ARGUMENT...]\n", stderr);
            return 2;
        }
        cc_argv = argv + 1;
    }
    cwd = getcwd(NULL, 0);
    /* Who we are, to skip ourselves on PATH; without /proc, argv[0] if it is a path. */
    self_known = stat("/proc/self/exe", &self) == 0 || (strchr(argv[0], '/') && stat(argv[0], &self) == 0);
    const char *missing = resolve();
    if (missing) {
        fprintf(stderr, "meshcc: cannot find the real compiler '%s' on PATH\n", missing);
        return 127;
    }
    if (access(compiler, X_OK)) exec_compiler(); /* an explicit path that is not there: fail as make would */
    if (env_is("MESHCC_DISABLE", "1")) fallback("MESHCC_DISABLE=1");
    if (!cwd) fallback("cannot get the current directory");

    mp_writer req = {0};
    if (build_request(&req)) fallback("out of memory");
    int sock = connect_agent();
    if (send_all(sock, req.buf, req.len)) fallback("cannot send the request: %s", strerror(errno));
    free(req.buf);

    uint8_t head[4];
    if (read_all(sock, head, 4)) fallback("the agent closed the connection without a reply");
    uint32_t len = (uint32_t)head[0] << 24 | (uint32_t)head[1] << 16 | (uint32_t)head[2] << 8 | head[3];
    if (len > MAX_REPLY_BYTES) fallback("reply frame of %u bytes is over the limit", len);
    uint8_t *body = malloc(len ? len : 1);
    if (!body) fallback("out of memory for a reply of %u bytes", len);
    if (read_all(sock, body, len)) fallback("the agent closed the connection in the middle of a reply");

    /* The reply: a map; we read the keys we know and skip everything else. */
    mp_reader r = {body, body + len};
    const char *t = "", *message = "", *key;
    const uint8_t *out = NULL, *err = NULL;
    uint32_t n, klen, tlen = 0, mlen = 0, out_len = 0, err_len = 0;
    int64_t exit_code = 0;
    mp_reader copies = {0}; /* where "copy" starts, if the reply has one */
    int has_exit = 0, bad = mp_get_map(&r, &n);
    for (uint32_t i = 0; !bad && i < n; i++) {
        if (mp_get_str(&r, &key, &klen)) bad = 1;
        else if (key_is(key, klen, "t")) bad = mp_get_str(&r, &t, &tlen);
        else if (key_is(key, klen, "exit")) bad = mp_get_int(&r, &exit_code), has_exit = !bad;
        else if (key_is(key, klen, "stdout")) bad = mp_get_bytes(&r, &out, &out_len);
        else if (key_is(key, klen, "stderr")) bad = mp_get_bytes(&r, &err, &err_len);
        else if (key_is(key, klen, "message")) bad = mp_get_str(&r, &message, &mlen);
        else if (key_is(key, klen, "copy")) copies = r, bad = mp_skip(&r);
        else bad = mp_skip(&r);
    }
    if (bad) fallback("malformed reply from the agent");
    if (key_is(t, tlen, "run-local")) run_local(sock);
    if (key_is(t, tlen, "result") && has_exit) {
        if (copies.p && copy_outputs(copies)) fallback("could not write a cached output: %s", strerror(errno));
        write_all(1, out, out_len);
        write_all(2, err, err_len);
        exit((int)exit_code);
    }
    if (key_is(t, tlen, "error")) fallback("the agent answered an error: %.*s", (int)mlen, message);
    fallback("unexpected reply from the agent: '%.*s'", (int)tlen, t);
}
