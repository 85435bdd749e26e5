// Shared by every part of bench/mesh-build: one place for where builds happen (one absolute
// path, because objects record it), the environment every build and daemon sees, and the list
// of what must be undone on any exit, so that the rival tools' modules cannot drift from the
// setup meshcc is measured with, and a failure or Ctrl-C in any of them leaves nothing behind.
import { execFileSync, type ChildProcess } from 'node:child_process';
import { closeSync, openSync, readdirSync, readFileSync, rmSync, writeSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
export const MESHCC_BIN = path.join(repo, 'bin', 'meshcc.js');
export const FETCH = path.join(repo, 'bench', 'fetch-project.sh');
/** Every build happens at this path (objects record it: DW_AT_comp_dir, __FILE__);
 *  MESHCC_BENCH_BUILD_ROOT gives another, for two runs at once (each compares its own builds). */
export const BUILD_ROOT = process.env.MESHCC_BENCH_BUILD_ROOT ?? '/tmp/meshcc-bench-build';
export const CORES = os.availableParallelism();

export function say(line: string): void {
  console.log(line);
}

/** The environment of every build and agent: ours without any MESHCC_* a user's shell may carry. */
export function baseEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('MESHCC_')) env[k] = v;
  // The kernel writes the build's time, user, host and number (.version, which counts builds)
  // into init/version.o and from there into the boot image: fixed, so that two
  // builds of the same tree are byte-identical.
  Object.assign(env, { KBUILD_BUILD_TIMESTAMP: 'Thu Jan  1 00:00:00 UTC 2026', KBUILD_BUILD_USER: 'meshcc', KBUILD_BUILD_HOST: 'bench', KBUILD_BUILD_VERSION: '1' });
  return env;
}

export const shq = (a: string) => (/^[\w@%+=:,./-]+$/.test(a) ? a : `'${a.replace(/'/g, `'\\''`)}'`);
export const secs = (ms: number) => `${(ms / 1000).toFixed(1)} s`;
export const pct = (a: number, b: number) => `${((100 * a) / b).toFixed(1)} %`;
export const clock = (ms: number) => `${Math.floor(ms / 60000)}m${String(Math.floor((ms % 60000) / 1000)).padStart(2, '0')}s`;

export function bytes(n: number | undefined): string {
  if (n === undefined) return 'n/a';
  if (n < 10 * 1024) return `${n} B`;
  if (n < 10 * 1024 * 1024) return `${(n / 1024).toFixed(1)} KiB`;
  return `${(n / 1048576).toFixed(1)} MiB`;
}

/** Files under dir (relative paths) whose names end in one of exts; symlinks are not followed. */
export function filesUnder(dir: string, exts: string[]): string[] {
  const out: string[] = [];
  const walk = (rel: string): void => {
    let entries;
    try {
      entries = readdirSync(path.join(dir, rel), { withFileTypes: true });
    } catch {
      return; // vanished meanwhile (make removes temporaries)
    }
    for (const e of entries) {
      const r = rel ? `${rel}/${e.name}` : e.name;
      if (e.isDirectory()) walk(r);
      else if (e.isFile() && exts.some((x) => e.name.endsWith(x))) out.push(r);
    }
  };
  walk('');
  return out.sort();
}

export async function until(probe: () => Promise<boolean>, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await probe().catch(() => false))) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** A fresh copy of the configured tree at the build path (cp -a: timestamps kept, so make sees a configured tree). */
export function freshTree(template: string, tree: string): void {
  rmSync(tree, { recursive: true, force: true });
  execFileSync('cp', ['-a', template, tree]);
}

/** Stops a process we spawned (by its PID): SIGTERM, then SIGKILL after graceMs; resolves once it has exited. */
export function stopChild(child: ChildProcess, graceMs = 10_000): Promise<void> {
  return new Promise<void>((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) return resolve();
    const timer = setTimeout(() => {
      try {
        child.kill('SIGKILL');
      } catch {
        // gone meanwhile
      }
    }, graceMs);
    child.once('exit', () => (clearTimeout(timer), resolve()));
    child.kill('SIGTERM');
  });
}

// ---------------------------------------------------------------------------------------------
// what to undo on exit

/** Processes of ours to kill on SIGINT: the builds run in process groups of their own. */
export const running = new Set<ChildProcess>();
/** Directories of ours to remove on exit (agents' homes, the rival tools' daemons' directories). */
export const tempDirs: string[] = [];
/** Other things to undo, synchronously, on exit (e.g. a run directory a daemon created). */
export const undoOnExit: (() => void)[] = [];
export const cleanupOptions = { keepTrees: false };

/**
 * BUILD_ROOT is one fixed path (objects record it), so two runs at once would delete each
 * other's trees: a run claims it with a lock file holding its PID, and takes over only a lock
 * whose process is gone.
 */
const BUILD_ROOT_LOCK = `${BUILD_ROOT}.lock`;
let holdsBuildRoot = false;

export function claimBuildRoot(): void {
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      const fd = openSync(BUILD_ROOT_LOCK, 'wx');
      writeSync(fd, `${process.pid}\n`);
      closeSync(fd);
      holdsBuildRoot = true;
      return;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
    const owner = Number(readFileSync(BUILD_ROOT_LOCK, 'utf8').trim());
    let alive = false;
    try {
      process.kill(owner, 0);
      alive = true;
    } catch (err) {
      alive = (err as NodeJS.ErrnoException).code === 'EPERM';
    }
    if (alive) throw new Error(`another mesh-build run (pid ${owner}) is using ${BUILD_ROOT}; wait for it (lock ${BUILD_ROOT_LOCK})`);
    rmSync(BUILD_ROOT_LOCK, { force: true }); // left by a run that died without cleaning up
  }
  throw new Error(`cannot claim ${BUILD_ROOT_LOCK}`);
}

export function cleanupSync(): void {
  for (const child of running) {
    if (child.pid === undefined || child.exitCode !== null || child.signalCode !== null) continue;
    try {
      process.kill(-child.pid, 'SIGKILL'); // the build's own process group (spawned detached)
    } catch {
      try {
        process.kill(child.pid, 'SIGKILL');
      } catch {
        // gone
      }
    }
  }
  for (const d of tempDirs.splice(0)) rmSync(d, { recursive: true, force: true });
  for (const undo of undoOnExit.splice(0)) {
    try {
      undo();
    } catch {
      // best effort
    }
  }
  if (!holdsBuildRoot) return;
  if (!cleanupOptions.keepTrees) rmSync(BUILD_ROOT, { recursive: true, force: true });
  rmSync(BUILD_ROOT_LOCK, { force: true });
  holdsBuildRoot = false;
}
