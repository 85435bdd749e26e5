/*
 * exec-program.h: the child's side of a start in meshcc-spawn (its descriptors, directory,
 * limits and the exec itself), and the spawner's prlimit form.
 */
#ifndef MESHCC_EXEC_PROGRAM_H
#define MESHCC_EXEC_PROGRAM_H

#include <sys/resource.h>

typedef struct {
    int set;
    struct rlimit cpu, as, fsize, core;
} limits;

enum { STEP_FORK, STEP_CHDIR, STEP_LIMITS, STEP_EXEC };

/* execve of file, searched on PATH (the program's own environment's, as Node's spawn does) when
 * it names no directory. Returns only on failure, with errno as execvp would leave it. */
void exec_searching(const char *file, char **argv, char **envp);

/* In the forked child: fds[0..3] become descriptors 0-3 (-1: closed), a session of its own if
 * asked, then its directory, its limits and the exec. Reports a failure (step, errno) on
 * `report` and exits 127. */
void become(int report, const int fds[4], int new_session, const char *cwd, const limits *lim, const char *file, char **argv, char **envp);

/* meshcc-spawn LIMITS -- PROG ARGS: sets the limits and execs PROG, as prlimit would. */
int limited_exec(int argc, char **argv);

#endif
