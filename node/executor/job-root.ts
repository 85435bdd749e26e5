// Builds a job's root: exactly the job's input files at their original absolute paths
// (hard links into the store), the search directories with placeholder entries, and the
// output directories, so that the original command sees the client's file system.
import { promises as fs } from 'node:fs';
import path from 'node:path';
import pLimit from 'p-limit';
import type { Job } from '../../protocol/messages.js';
import type { Store } from '../store.js';

const ioLimit = pLimit(64);

function inRoot(root: string, absolute: string): string {
  return path.join(root, absolute);
}

async function placeFile(source: string, target: string): Promise<void> {
  try {
    await fs.link(source, target);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'EEXIST') {
      await fs.rm(target, { force: true });
      return placeFile(source, target);
    }
    if (code === 'EXDEV' || code === 'EMLINK' || code === 'EPERM') {
      await fs.copyFile(source, target);
      return;
    }
    throw err;
  }
}

export async function buildJobRoot(job: Job, store: Store, root: string): Promise<void> {
  const inputPaths = new Set(job.inputs.map((f) => f.path));
  const dirs = new Set<string>(job.dirs);
  for (const f of job.inputs) dirs.add(path.dirname(f.path));
  for (const l of job.listings) dirs.add(l.path);
  for (const o of job.outputs) dirs.add(path.dirname(o));
  dirs.add(job.cwd);
  const placeholders: string[] = [];
  for (const listing of job.listings) {
    for (const entry of listing.entries) {
      const full = path.join(listing.path, entry.name);
      if (inputPaths.has(full)) continue;
      if (entry.dir) dirs.add(full);
      else placeholders.push(full);
    }
  }
  // Sorted, so parents come first and each mkdir is a single syscall.
  for (const dir of [...dirs].sort()) {
    await fs.mkdir(inRoot(root, dir), { recursive: true });
  }
  await Promise.all(
    placeholders
      .filter((p) => !dirs.has(p))
      .map((p) => ioLimit(() => fs.writeFile(inRoot(root, p), '', { flag: 'wx' }).catch(() => undefined))),
  );
  await Promise.all(job.inputs.map((f) => ioLimit(() => placeFile(store.pathOf(f.hash), inRoot(root, f.path)))));
  await fs.mkdir(inRoot(root, '/tmp'), { recursive: true, mode: 0o1777 });
  // An output must be a fresh file: never write through a hard link into the store.
  await Promise.all(job.outputs.map((o) => fs.rm(inRoot(root, o), { force: true })));
}

/** Names in each output directory before the run, to find the extra files the run wrote. */
export async function snapshotOutputDirs(job: Job, root: string): Promise<Map<string, Set<string>>> {
  const snapshot = new Map<string, Set<string>>();
  for (const dir of new Set(job.outputs.map((o) => path.dirname(o)))) {
    snapshot.set(dir, new Set(await fs.readdir(inRoot(root, dir))));
  }
  return snapshot;
}

export async function collectOutputs(
  job: Job,
  root: string,
  before: Map<string, Set<string>>,
  maxBytes: number,
): Promise<{ path: string; data: Buffer; executable: boolean }[]> {
  const candidates = new Set(job.outputs);
  for (const [dir, names] of before) {
    for (const name of await fs.readdir(inRoot(root, dir))) {
      if (!names.has(name)) candidates.add(path.join(dir, name));
    }
  }
  const outputs: { path: string; data: Buffer; executable: boolean }[] = [];
  let total = 0;
  for (const file of candidates) {
    const st = await fs.lstat(inRoot(root, file)).catch(() => undefined);
    if (!st?.isFile()) continue;
    total += st.size;
    if (total > maxBytes) throw new Error(`outputs exceed ${maxBytes} bytes`);
    outputs.push({ path: file, data: await fs.readFile(inRoot(root, file)), executable: (st.mode & 0o111) !== 0 });
  }
  return outputs;
}
