// Sandboxes kept from one job to the next, one per kept job root (warm-roots.ts).
//
// Why: a bubblewrap per job cost the machine ~10 ms of CPU a git job during a real mesh build
// (perf, whole machine: cloning the namespaces, a mount and a remount per bound directory,
// reading /proc/self/mountinfo for each, tearing it all down, and a kernel worker freeing the
// network namespace), more than either agent's main thread. A kept sandbox is made once for
// its root: bubblewrap with the same mounts, and as its PID 1 the native spawner
// (meshcc-spawn --inside), which then starts each job's original command in it (its own
// session, its directory, environment and limits) and, once the command has ended, kills
// whatever it left running. The root's files are brought to each job's plan from outside, as
// before: the sandbox sees the root through its bind mount.
//
// A kept sandbox serves the next job only if that job's mounts are the very same (the
// toolchain tree's files bound over the root, or the host's compiler directories), from the
// same installed tree. A job with mounts of its own (inputs that differ from the host's files
// in the host's compiler directories, listings there) runs in a bubblewrap of its own, as
// before; a kept sandbox of its root is stopped first.
import { closeSync, lstatSync, openSync, unlinkSync } from 'node:fs';
import path from 'node:path';
import type { Logger } from '../log.js';
import { LeanSpawner, type SpawnOptions, type SpawnReply } from '../spawner/lean-spawn.js';

/** Kept sandboxes at most (a process pair each, a few MB); the least recently used goes first. */
const MAX_KEPT = 16;
/** A sandbox unused this long is stopped: an idle agent keeps nothing running. */
const IDLE_MS = 30_000;
/** Consecutive sandboxes that would not start before keeping them is given up. */
const MAX_START_FAILURES = 3;

interface Kept {
  key: string;
  spawner: LeanSpawner;
  /** Symlinks bubblewrap made in the root (removed with the sandbox: a bubblewrap of the
   *  root's next job would refuse to make them where they exist). */
  links: string[];
  lastUsed: number;
  /** Running a job now: never stopped for being idle or the least recently used. */
  busy: boolean;
}

export class KeptSandboxes {
  private readonly kept = new Map<string, Kept>();
  private startFailures = 0;
  private timer?: NodeJS.Timeout;
  private disabled?: string;

  constructor(
    private readonly nativeSpawner: string | undefined,
    private readonly nice: number,
    private readonly log: Logger,
  ) {
    if (!nativeSpawner) this.disabled = 'no native spawner was built';
  }

  get usable(): boolean {
    return !this.disabled;
  }

  has(root: string): boolean {
    return this.kept.has(root);
  }

  /**
   * Runs a program in the root's kept sandbox, made with `mounts` (bubblewrap's options up to
   * the job's own) unless it is there with those already. Undefined when the sandbox could not
   * run it (it did not start, or ended): the caller runs the job in a bubblewrap of its own.
   */
  async run(root: string, mounts: string[], identity: string, links: string[], options: SpawnOptions): Promise<SpawnReply | undefined> {
    if (this.disabled) return undefined;
    const key = `${identity}\0${mounts.join('\0')}`;
    let sandbox = this.kept.get(root);
    if (sandbox && (sandbox.key !== key || !sandbox.spawner.running)) {
      this.stop(root);
      sandbox = undefined;
    }
    if (!sandbox) sandbox = this.start(root, mounts, links, key);
    sandbox.lastUsed = Date.now();
    sandbox.busy = true;
    const reply = await sandbox.spawner.run(options).finally(() => {
      sandbox.busy = false;
      sandbox.lastUsed = Date.now();
    });
    if (reply.error && reply.code === null && !reply.signal) {
      // It never ran the program: the sandbox did not start or ended under it.
      this.stop(root);
      if (++this.startFailures >= MAX_START_FAILURES) {
        this.disabled = `kept sandboxes failed to start ${MAX_START_FAILURES} times in a row (${reply.error})`;
        this.log.warn({ reason: this.disabled }, 'jobs run in a bubblewrap each from now on');
      }
      return undefined;
    }
    this.startFailures = 0;
    // The job left something in the sandbox's own /dev or IPC: it ends, and the next job gets a fresh one.
    if (reply.helperEnds) this.stop(root);
    return reply;
  }

  /** Stops the root's kept sandbox, if it has one (its root is about to change hands or go). */
  stop(root: string): void {
    const sandbox = this.kept.get(root);
    if (!sandbox) return;
    this.kept.delete(root);
    sandbox.spawner.stop();
    for (const link of sandbox.links) {
      const file = path.join(root, link);
      try {
        if (lstatSync(file).isSymbolicLink()) unlinkSync(file);
      } catch {
        // the root is gone already
      }
    }
  }

  stopAll(): void {
    for (const root of [...this.kept.keys()]) this.stop(root);
    clearInterval(this.timer);
    this.timer = undefined;
  }

  private start(root: string, mounts: string[], links: string[], key: string): Kept {
    for (const [r, s] of [...this.kept].sort((a, b) => a[1].lastUsed - b[1].lastUsed)) {
      if (this.kept.size < MAX_KEPT) break;
      if (!s.busy) this.stop(r);
    }
    // The spawner runs inside from a descriptor of its binary: nothing of the host is mounted for it.
    const fd = openSync(this.nativeSpawner!, 'r');
    const args = [...mounts, '--as-pid-1', '--chdir', '/', '--clearenv', '--', '/proc/self/fd/3', '--inside'];
    const nice = this.nice > 0 ? ['-n', String(this.nice), 'bwrap'] : [];
    const spawner = new LeanSpawner(0, this.nativeSpawner, {
      file: nice.length ? 'nice' : 'bwrap',
      args: [...nice, ...args],
      fd3: fd,
      onStderr: (text) => this.log.debug({ root, stderr: text.trim().split('\n')[0] }, 'a kept sandbox said'),
    });
    const sandbox: Kept = { key, spawner, links, lastUsed: Date.now(), busy: false };
    this.kept.set(root, sandbox);
    // Started with its first request; the descriptor is the child's from then on.
    setImmediate(() => closeSync(fd));
    this.timer ??= setInterval(() => this.stopIdle(), IDLE_MS).unref();
    return sandbox;
  }

  private stopIdle(): void {
    const now = Date.now();
    for (const [root, s] of [...this.kept]) if (!s.busy && now - s.lastUsed >= IDLE_MS) this.stop(root);
    if (this.kept.size === 0) {
      clearInterval(this.timer);
      this.timer = undefined;
    }
  }
}
