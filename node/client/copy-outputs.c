/*
 * copy-outputs.c: a cached result's output files, written by the client from the agent's
 * store. The client is the process that stands for the compiler, so the files are created
 * as the compiler would create them: by this process, with its uid and its umask. A new
 * file is created exclusively in place; an existing one is replaced atomically (a
 * temporary file beside it, then rename), because it may be a hard link into another tree
 * or a cache, which writing through would change. The agent checked each object's bytes
 * against its hash; the kernel copies them (copy_file_range), none pass through here.
 * Creating the files here rather than in the agent takes their cost (an inode each, the
 * dearest part of a hit on some filesystems) off the agent's one event loop, and runs it
 * in parallel across the build's clients.
 */
#define _GNU_SOURCE
#include "copy-outputs.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* The rest of `in` into `out`, from both files' current offsets. */
static int copy_rest(int in, int out, int64_t left) {
    while (left > 0) {
        ssize_t n = copy_file_range(in, NULL, out, NULL, (size_t)left, 0);
        if (n > 0) {
            left -= n;
            continue;
        }
        if (n == 0) return -1; /* the object is shorter than it said */
        if (errno == EINTR) continue;
        if (errno != EXDEV && errno != ENOSYS && errno != EINVAL && errno != EOPNOTSUPP) return -1;
        /* No kernel copy between these files (older kernels across filesystems): by hand. */
        char buf[65536];
        while (left > 0) {
            ssize_t r = read(in, buf, left < (int64_t)sizeof buf ? (size_t)left : sizeof buf);
            if (r < 0 && errno == EINTR) continue;
            if (r <= 0) return -1;
            for (ssize_t done = 0; done < r;) {
                ssize_t w = write(out, buf + done, (size_t)(r - done));
                if (w < 0 && errno == EINTR) continue;
                if (w < 0) return -1;
                done += w;
            }
            left -= r;
        }
    }
    return 0;
}

int copy_output(const char *from, const char *to, int64_t size, int executable) {
    mode_t mode = executable ? 0777 : 0666; /* the kernel applies our umask, as to the compiler's */
    struct stat st = {0};
    int in = open(from, O_RDONLY | O_CLOEXEC);
    if (in < 0) return -1;
    if (fstat(in, &st) || st.st_size != size) {
        int err = st.st_size != size ? EIO : errno;
        close(in);
        errno = err;
        return -1;
    }
    char *temp = NULL;
    int out = open(to, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
    if (out < 0 && errno == EEXIST) {
        struct timespec now;
        clock_gettime(CLOCK_MONOTONIC, &now);
        if (asprintf(&temp, "%s.meshcc-%08lx", to, (unsigned long)((now.tv_nsec ^ (long)getpid() << 12) & 0xffffffffUL)) < 0) temp = NULL;
        out = temp ? open(temp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode) : -1;
    }
    if (out < 0) {
        int err = errno;
        close(in);
        free(temp);
        errno = err;
        return -1;
    }
    int failed = copy_rest(in, out, size);
    int err = errno;
    if (close(out)) failed = 1, err = errno;
    close(in);
    if (!failed && temp && rename(temp, to)) failed = 1, err = errno;
    if (failed) unlink(temp ? temp : to);
    free(temp);
    errno = err;
    return failed ? -1 : 0;
}

int copy_outputs(mp_reader r) {
    uint32_t n, fields, from_len, to_len;
    const char *from, *to;
    int64_t size;
    int executable;
    if (mp_get_array(&r, &n)) return errno = EPROTO, -1;
    for (uint32_t i = 0; i < n; i++) {
        if (mp_get_array(&r, &fields) || fields != 4 || mp_get_str(&r, &from, &from_len) || mp_get_str(&r, &to, &to_len) ||
            mp_get_int(&r, &size) || mp_get_bool(&r, &executable))
            return errno = EPROTO, -1;
        char *f = strndup(from, from_len), *t = strndup(to, to_len);
        int failed = !f || !t || copy_output(f, t, size, executable);
        int err = errno;
        free(f), free(t);
        if (failed) return errno = err, -1;
    }
    return 0;
}
