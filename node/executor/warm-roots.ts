// Job roots kept from one job to the next. Consecutive jobs of a build share most of their
// inputs (a kernel unit's ~900 headers, git's ~300), and building each root from nothing cost
// a peer a hard link per input and an `rm -rf` per job: the largest part of its CPU per job
// after the compile (bench/throughput). A kept root is brought to the next job's plan by
// difference: the inputs that left or changed are unlinked, the new ones linked, directories
// and placeholders added and removed, so that it holds exactly what a fresh root would.
//
// A root is kept only when the compile left it as it found it. After the job, the outputs and
// every new name in the output directories and in /tmp are removed (what collectOutputs
// looked at); every other directory must still have the modification time it had before the
// compile (a name created, removed or renamed changes it). Otherwise the root is removed.
// Runs in the job root workers (job-root-pool.ts): synchronous on purpose.
import { lstatSync, mkdirSync, readdirSync, rmdirSync, rmSync, statSync, unlinkSync } from 'node:fs';
import path from 'node:path';
import { threadId } from 'node:worker_threads';
import { placeInput, rootContents, writePlaceholder, type BuiltRoot, type RootContents, type RootPlan } from './job-root.js';

interface WarmRoot {
  dir: string;
  contents: RootContents;
  /** Every directory of the root (ancestors included) → its mtime after the last build. */
  mtimes: Map<string, bigint>;
  /** The output directories and /tmp, checked by their entries (name → inode), not by mtime:
   *  the compile writes there. */
  listed: Map<string, Map<string, number>>;
  /** What bubblewrap made in the root for its mounts (mount points and their parents). */
  sandbox: Set<string>;
}

/** Idle roots kept per worker: a peer's slots' worth is what consecutive jobs reuse. */
const KEPT_PER_WORKER = 4;

const idle: WarmRoot[] = [];
const busy = new Map<string, WarmRoot>();
let made = 0;

function inRoot(root: string, absolute: string): string {
  return path.join(root, absolute);
}

/** Every directory of `dirs` and their ancestors, '/' included. */
function withAncestors(dirs: Iterable<string>): Set<string> {
  const all = new Set<string>(['/']);
  for (const dir of dirs) {
    for (let d = dir; d !== '/' && !all.has(d); d = path.dirname(d)) all.add(d);
  }
  return all;
}

/**
 * A root for this plan under `rootsDir`: a kept one brought up to date, or a new one.
 * The returned root is this worker's until `release`.
 */
export function takeJobRoot(plan: RootPlan, storeDir: string, rootsDir: string, linkCache?: string): BuiltRoot & { root: string } {
  const want = rootContents(plan);
  let warm = idle.pop();
  if (warm) {
    try {
      return finish(warm, plan, update(warm, want, storeDir, linkCache));
    } catch {
      rmSync(warm.dir, { recursive: true, force: true });
      warm = undefined;
    }
  }
  const dir = path.join(rootsDir, `${threadId}-${++made}`);
  rmSync(dir, { recursive: true, force: true });
  const fresh: WarmRoot = { dir, contents: { files: new Map(), placeholders: new Set(), dirs: new Set() }, mtimes: new Map(), listed: new Map(), sandbox: new Set() };
  try {
    return finish(fresh, plan, update(fresh, want, storeDir, linkCache));
  } catch (err) {
    rmSync(dir, { recursive: true, force: true });
    throw err;
  }
}

/** Brings a root from what it holds to `want`; returns the bytes added to the link cache. */
function update(warm: WarmRoot, want: RootContents, storeDir: string, linkCache: string | undefined): number {
  const have = warm.contents;
  const root = warm.dir;
  for (const [file, hash] of have.files) {
    if (want.files.get(file) !== hash) unlinkSync(inRoot(root, file));
  }
  for (const p of have.placeholders) {
    if (!want.placeholders.has(p) || want.files.has(p)) unlinkSync(inRoot(root, p));
  }
  const haveDirs = withAncestors(have.dirs);
  const wantDirs = withAncestors(want.dirs);
  // Deepest first; a directory that is not empty now holds what no plan put there.
  for (const dir of [...haveDirs].filter((d) => !wantDirs.has(d) && !warm.sandbox.has(d)).sort().reverse()) rmdirSync(inRoot(root, dir));
  for (const dir of [...want.dirs].sort()) if (!haveDirs.has(dir)) mkdirSync(inRoot(root, dir), { recursive: true });
  mkdirSync(root, { recursive: true });
  for (const p of want.placeholders) {
    if (!have.placeholders.has(p) || have.files.has(p)) writePlaceholder(inRoot(root, p));
  }
  let cachedBytes = 0;
  for (const [file, hash] of want.files) {
    if (have.files.get(file) !== hash) cachedBytes += placeInput(storeDir, hash, inRoot(root, file), linkCache);
  }
  warm.contents = want;
  return cachedBytes;
}

function finish(warm: WarmRoot, plan: RootPlan, cachedBytes: number): BuiltRoot & { root: string } {
  const root = warm.dir;
  // An output must be a fresh file: never write through a hard link into the store.
  for (const o of plan.outputs) {
    rmSync(inRoot(root, o), { force: true });
    warm.contents.files.delete(o);
    warm.contents.placeholders.delete(o);
  }
  const before: Record<string, string[]> = {};
  for (const o of plan.outputs) {
    const dir = path.dirname(o);
    before[dir] ??= readdirSync(inRoot(root, dir));
  }
  warm.listed = new Map();
  for (const dir of [...Object.keys(before), '/tmp']) warm.listed.set(dir, entries(inRoot(root, dir)));
  warm.mtimes = new Map();
  for (const dir of withAncestors(warm.contents.dirs)) {
    if (!warm.listed.has(dir)) warm.mtimes.set(dir, statSync(inRoot(root, dir), { bigint: true }).mtimeNs);
  }
  for (const made of warm.sandbox) {
    const dir = path.dirname(made);
    if (!warm.listed.has(dir) && !warm.mtimes.has(dir)) warm.mtimes.set(dir, lstatSync(inRoot(root, dir), { bigint: true }).mtimeNs);
  }
  busy.set(root, warm);
  return { root, before, cachedBytes };
}

/**
 * The job is over (its outputs collected, or it failed): keep the root for the next job if the
 * compile left it as it was, else remove it. Returns whether it was kept. `sandboxKept`: a kept
 * sandbox still shows the root (kept-sandboxes.ts).
 */
export function releaseJobRoot(root: string, sandboxMounts: string[], sandboxKept = false): boolean {
  const warm = busy.get(root);
  busy.delete(root);
  if (!warm) {
    rmSync(root, { recursive: true, force: true });
    return false;
  }
  try {
    let clean = true;
    for (const [dir, existed] of warm.listed) {
      for (const name of readdirSync(inRoot(root, dir))) {
        if (!existed.has(name)) rmSync(inRoot(root, path.join(dir, name)), { recursive: true, force: true });
      }
      // Nothing removed, nothing replaced (a rename over an input changes its inode).
      const now = entries(inRoot(root, dir));
      clean &&= now.size === existed.size && [...existed].every(([name, ino]) => now.get(name) === ino);
    }
    // bubblewrap makes its mount points (and their parents) in the root the first time: those
    // are the only names a directory whose time changed may have gained.
    for (const mount of sandboxMounts) {
      for (let p = mount; p !== '/' && !warm.sandbox.has(p); p = path.dirname(p)) warm.sandbox.add(p);
    }
    const changed = [...warm.mtimes].filter(([dir, mtime]) => lstatSync(inRoot(root, dir), { bigint: true }).mtimeNs !== mtime).map(([dir]) => dir);
    if (changed.length > 0) {
      const planned = childrenOf([...warm.contents.files.keys(), ...warm.contents.placeholders, ...withAncestors(warm.contents.dirs)]);
      const made = childrenOf(warm.sandbox);
      for (const dir of changed) {
        const names = new Set(readdirSync(inRoot(root, dir)));
        clean &&= [...names].every((n) => planned.get(dir)?.has(n) || made.get(dir)?.has(n)) && [...(planned.get(dir) ?? [])].every((n) => names.has(n));
      }
    }
    if (clean && idle.length < KEPT_PER_WORKER) {
      // bubblewrap will not make a symlink where one exists (0.8): gone until the next job's own
      // (a kept sandbox of the root still shows them: kept-sandboxes.ts removes them when it stops).
      for (const made of sandboxKept ? [] : warm.sandbox) {
        if (lstatSync(inRoot(root, made), { throwIfNoEntry: false })?.isSymbolicLink()) {
          unlinkSync(inRoot(root, made));
          warm.sandbox.delete(made);
        }
      }
      idle.push(warm);
      return true;
    }
  } catch {
    // a directory gone: not reusable
  }
  rmSync(root, { recursive: true, force: true });
  return false;
}

/** Directory → the names of `paths` in it. */
function childrenOf(paths: Iterable<string>): Map<string, Set<string>> {
  const children = new Map<string, Set<string>>();
  for (const p of paths) {
    if (p === '/') continue;
    const dir = path.dirname(p);
    let names = children.get(dir);
    if (!names) children.set(dir, (names = new Set()));
    names.add(path.basename(p));
  }
  return children;
}

/** Name → inode of a directory's entries. Numbers, not bigints: roots live on tmpfs and ext4,
 *  whose inode numbers stay far below 2^53, and an output directory holds hundreds of inputs
 *  (git's top directory), looked at twice a job. */
function entries(dir: string): Map<string, number> {
  const at = dir.endsWith('/') ? dir : `${dir}/`;
  return new Map(readdirSync(dir).map((name) => [name, lstatSync(at + name).ino]));
}

/** Forgets every kept root (the link cache they point into was retired, or the pool stops). */
export function dropJobRoots(): void {
  for (const warm of idle.splice(0)) rmSync(warm.dir, { recursive: true, force: true });
}
