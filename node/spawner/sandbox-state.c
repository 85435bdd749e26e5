/*
 * sandbox-state.c: see sandbox-state.h.
 */
#define _GNU_SOURCE
#include "sandbox-state.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>

/* What bubblewrap made in /dev and /dev/shm (the sandbox's own tmpfs, writable by its jobs):
 * names and inodes, as found before the first job. */
typedef struct {
    char name[300];
    ino_t ino;
} dev_entry;
static dev_entry *dev_entries;
static size_t ndev_entries;

static int dev_listing(dev_entry **out, size_t *n);

int sandbox_record(void) {
    return dev_listing(&dev_entries, &ndev_entries);
}

static int list_dir(const char *dir, dev_entry **out, size_t *n) {
    DIR *d = opendir(dir);
    *out = NULL;
    *n = 0;
    if (!d) return errno == ENOENT ? 0 : -1;
    size_t cap = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) continue;
        if (*n == cap) {
            cap = cap ? cap * 2 : 32;
            dev_entry *grown = realloc(*out, cap * sizeof **out);
            if (!grown) {
                closedir(d);
                return -1;
            }
            *out = grown;
        }
        int w = snprintf((*out)[*n].name, sizeof (*out)[*n].name, "%s/%s", dir, e->d_name);
        if (w < 0 || (size_t)w >= sizeof (*out)[*n].name) continue; /* cannot be: a name has 255 bytes at most */
        (*out)[(*n)++].ino = e->d_ino;
    }
    closedir(d);
    return 0;
}

static int dev_listing(dev_entry **out, size_t *n) {
    dev_entry *top, *shm;
    size_t ntop, nshm;
    if (list_dir("/dev", &top, &ntop) || list_dir("/dev/shm", &shm, &nshm)) return -1;
    dev_entry *all = realloc(top, (ntop + nshm + 1) * sizeof *all);
    if (!all) return -1;
    if (nshm) memcpy(all + ntop, shm, nshm * sizeof *all);
    free(shm);
    *out = all;
    *n = ntop + nshm;
    return 0;
}

/* Whether System V IPC of this namespace holds anything (a header line each, nothing more). */
static int ipc_used(void) {
    const char *files[] = {"/proc/sysvipc/shm", "/proc/sysvipc/sem", "/proc/sysvipc/msg"};
    for (size_t i = 0; i < 3; i++) {
        FILE *f = fopen(files[i], "r");
        if (!f) continue;
        int lines = 0, c;
        while ((c = fgetc(f)) != EOF)
            if (c == '\n') lines++;
        fclose(f);
        if (lines > 1) return 1;
    }
    return 0;
}

/* Whether the sandbox is as the first job found it, outside the root (which the agent checks). */
int sandbox_clean(void) {
    dev_entry *now;
    size_t n;
    if (ipc_used() || dev_listing(&now, &n)) return 0;
    int same = n == ndev_entries;
    for (size_t i = 0; same && i < n; i++) {
        same = 0;
        for (size_t k = 0; k < ndev_entries; k++)
            if (now[i].ino == dev_entries[k].ino && strcmp(now[i].name, dev_entries[k].name) == 0) same = 1;
    }
    free(now);
    return same;
}
