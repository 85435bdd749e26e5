// Builds a job's root: exactly the job's input files at their original absolute paths
// (copied or hard-linked from the store), the search directories with placeholder entries,
// and the output directories, so that the original command sees the client's file system.
// Synchronous on purpose: it runs in a worker thread (job-root-pool.ts), where a tmpfs
// syscall costs ~30 µs instead of ~120 µs through the async thread pool.
import { copyFileSync, linkSync, lstatSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { threadId } from 'node:worker_threads';
import path from 'node:path';
import type { DirListing, Job } from '../../protocol/messages.js';
import { storeObjectPath } from '../store.js';

export interface CollectedOutput {
  path: string;
  data: Uint8Array;
  executable: boolean;
}

/** What a listed name that is not an input holds: __has_include sees the file, and a compile
 *  that opens it anyway stops here instead of reading something else than the client has. */
export const PLACEHOLDER_MARK = 'meshcc: this file is not an input of the job';
const PLACEHOLDER = `#error "${PLACEHOLDER_MARK}"\n`;

function inRoot(root: string, absolute: string): string {
  return path.join(root, absolute);
}

function placeFile(source: string, target: string): void {
  try {
    linkSync(source, target);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'EEXIST') {
      rmSync(target, { force: true });
      placeFile(source, target);
    } else if (code === 'EXDEV' || code === 'EMLINK' || code === 'EPERM') {
      copyFileSync(source, target);
    } else {
      throw err;
    }
  }
}

/**
 * Places a store object through the link cache: a directory on the job roots' file system
 * holding one copy of each object a job used, so that the next jobs link it instead of copying
 * it out of a store on another file system (a failed link and a copy cost ~30 µs + the file's
 * bytes each time, for hundreds of headers per job). Objects never change, so a cached copy is
 * never stale. Returns the bytes it added to the cache.
 */
function placeThroughCache(source: string, cache: string, name: string, target: string): number {
  const cached = path.join(cache, name);
  try {
    linkSync(cached, target);
    return 0;
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'EEXIST') {
      rmSync(target, { force: true });
      return placeThroughCache(source, cache, name, target);
    }
    if (code !== 'ENOENT') {
      placeFile(source, target);
      return 0;
    }
  }
  // Not cached yet (or the cache was just cleared): copy it in under a name of its own, then
  // rename, so that another worker never links a half-written copy.
  try {
    mkdirSync(cache, { recursive: true });
    const partial = `${cached}.${process.pid}.${threadId}.partial`;
    copyFileSync(source, partial);
    renameSync(partial, cached);
    linkSync(cached, target);
    return statSync(cached).size;
  } catch {
    placeFile(source, target);
    return 0;
  }
}

export interface BuiltRoot {
  /** The names each output directory holds before the run. */
  before: Record<string, string[]>;
  /** Bytes this build added to the link cache. */
  cachedBytes: number;
}

/**
 * What building a root needs of a job, in the form that crosses to a worker thread cheaply:
 * structured cloning of a job's hundreds of input objects cost the peer's event loop ~2 ms a
 * job (git's mesh build); two strings are a copy each.
 */
export interface RootPlan {
  /** The inputs' paths, joined by NUL (which no path holds). */
  inputPaths: string;
  /** Their sha256s in hex, 64 characters each, in the same order. */
  inputHashes: string;
  dirs: string[];
  listings: DirListing[];
  outputs: string[];
  cwd: string;
}

export function rootPlan(job: Job): RootPlan {
  return {
    inputPaths: job.inputs.map((f) => f.path).join('\0'),
    inputHashes: job.inputs.map((f) => f.hash).join(''),
    dirs: job.dirs,
    listings: job.listings,
    outputs: job.outputs,
    cwd: job.cwd,
  };
}

function planInputs(plan: RootPlan): { path: string; hash: string }[] {
  if (plan.inputPaths === '') return [];
  const paths = plan.inputPaths.split('\0');
  if (paths.length * 64 !== plan.inputHashes.length) throw new Error('a job root plan whose input paths and hashes do not pair up (a NUL in a path?)');
  return paths.map((p, i) => ({ path: p, hash: plan.inputHashes.slice(64 * i, 64 * i + 64) }));
}

/** What a root holds for a plan: inputs by path, placeholders, directories. */
export interface RootContents {
  files: Map<string, string>;
  placeholders: Set<string>;
  dirs: Set<string>;
}

export function rootContents(plan: RootPlan): RootContents {
  const inputs = planInputs(plan);
  const files = new Map(inputs.map((f) => [f.path, f.hash]));
  const dirs = new Set<string>(plan.dirs);
  for (const f of inputs) dirs.add(path.dirname(f.path));
  for (const l of plan.listings) dirs.add(l.path);
  for (const o of plan.outputs) dirs.add(path.dirname(o));
  dirs.add(plan.cwd);
  dirs.add('/tmp');
  const placeholders = new Set<string>();
  for (const listing of plan.listings) {
    for (const entry of listing.entries) {
      const full = path.join(listing.path, entry.name);
      if (files.has(full)) continue;
      if (entry.dir) dirs.add(full);
      else placeholders.add(full);
    }
  }
  for (const d of dirs) placeholders.delete(d);
  return { files, placeholders, dirs };
}

export function writePlaceholder(target: string): void {
  try {
    writeFileSync(target, PLACEHOLDER, { flag: 'wx' });
  } catch {
    // a name listed twice: it exists already
  }
}

/** Places one input from the store; returns the bytes it added to the link cache. */
export function placeInput(storeDir: string, hash: string, target: string, linkCache?: string): number {
  const source = storeObjectPath(storeDir, hash);
  if (linkCache) return placeThroughCache(source, linkCache, hash, target);
  placeFile(source, target);
  return 0;
}

/** The expected outputs plus any new file in an output directory (.dwo, .su, … not predicted). */
export function collectOutputs(outputs: string[], root: string, before: Record<string, string[]>, maxBytes: number): CollectedOutput[] {
  const candidates = new Set(outputs);
  for (const [dir, names] of Object.entries(before)) {
    const existed = new Set(names);
    for (const name of readdirSync(inRoot(root, dir))) {
      if (!existed.has(name)) candidates.add(path.join(dir, name));
    }
  }
  const collected: CollectedOutput[] = [];
  let total = 0;
  for (const file of candidates) {
    let st;
    try {
      st = lstatSync(inRoot(root, file));
    } catch {
      continue;
    }
    if (!st.isFile()) continue;
    total += st.size;
    if (total > maxBytes) throw new Error(`the job's outputs exceed ${maxBytes} bytes`);
    collected.push({ path: file, data: readFileSync(inRoot(root, file)), executable: (st.mode & 0o111) !== 0 });
  }
  return collected;
}
