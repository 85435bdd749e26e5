/*
 * sandbox-state.h: whether a kept sandbox is, outside its root, as the first job found it: its
 * own /dev and /dev/shm (bubblewrap's tmpfs, writable by its jobs) and System V IPC.
 */
#ifndef MESHCC_SANDBOX_STATE_H
#define MESHCC_SANDBOX_STATE_H

/* Records /dev and /dev/shm as they are now (before the first job); 0, or -1 on failure. */
int sandbox_record(void);

/* 1 when /dev, /dev/shm and System V IPC are as recorded, 0 otherwise. */
int sandbox_clean(void);

#endif
