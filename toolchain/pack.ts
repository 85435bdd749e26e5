// A toolchain as a deterministic tarball: the same files give the same bytes on every machine
// and every run, so the tarball's sha256 can be the toolchain's name (its id) everywhere.
//
// Determinism comes from the plan: entries sorted by path bytewise, every parent directory
// listed, fixed modes (0755 directories and executables, 0644 the rest), mtime 0, owner 0:0
// with no names. Files sit at their real paths; every symlink met on the way to them (and to the
// invoked compiler) is an entry of its own with the target readlink gives, so inside a sandbox
// the compiler is found by the name it was invoked by and the loader by the path in PT_INTERP.
//
// The same plan can be made from an installed tree (planFromTree): unpack.ts writes exactly
// what the tarball says, so re-packing an installed toolchain gives the same bytes and id. That
// is how a cache checks that nobody touched a toolchain it holds.
import { createHash } from 'node:crypto';
import { constants, lstatSync, readdirSync, readFileSync, readlinkSync, type BigIntStats } from 'node:fs';
import { open } from 'node:fs/promises';
import path from 'node:path';
import { Readable, Transform, type Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import tar, { type Header, type Pack } from 'tar-stream';
import {
  DESCRIPTION_MAX_BYTES,
  DESCRIPTION_PATH,
  TAR_SCHEME,
  descriptionBytes,
  elfArch,
  parseDescription,
  type ToolchainDescription,
} from './description.js';
import type { Toolchain } from './types.js';

export type PlanEntry =
  | { type: 'directory'; name: string }
  | { type: 'symlink'; name: string; target: string }
  | {
      type: 'file';
      name: string;
      size: number;
      executable: boolean;
      /** the file to read, or the content itself */
      source: string | Buffer;
      /** device, inode, size and mtime when planned: streaming fails if the file is no longer that one */
      stamp?: string;
    };

export interface ToolchainTarPlan {
  description: ToolchainDescription;
  /** sorted by name bytewise; names are relative, without a leading or trailing slash */
  entries: PlanEntry[];
}

export interface TarDigest {
  /** sha256 (hex) of the tarball: the toolchain id */
  id: string;
  /** bytes in the tarball */
  size: number;
}

const MAX_SYMLINK_HOPS = 40;
const READ_CHUNK = 512 * 1024;
const EPOCH = new Date(0);

type EntryHeader = Partial<Header> & Pick<Header, 'name'>;
type EntrySink = ReturnType<Pack['entry']>;

function stampOf(st: BigIntStats): string {
  return `${st.dev}:${st.ino}:${st.size}:${st.mtimeNs}`;
}

function byteOrder(a: PlanEntry, b: PlanEntry): number {
  return Buffer.compare(Buffer.from(a.name), Buffer.from(b.name));
}

/** Entries by name; the same path met twice (directories shared by many files) is one entry. */
class EntrySet {
  private readonly byName = new Map<string, PlanEntry>();

  add(entry: PlanEntry): void {
    const known = this.byName.get(entry.name);
    if (!known) {
      this.byName.set(entry.name, entry);
      return;
    }
    const sameLink = known.type === 'symlink' && entry.type === 'symlink' && known.target === entry.target;
    if (known.type !== entry.type || (known.type === 'symlink' && !sameLink)) {
      throw new Error(`/${entry.name} changed while the toolchain was planned`);
    }
  }

  sorted(): PlanEntry[] {
    return [...this.byName.values()].sort(byteOrder);
  }
}

function fileEntry(name: string, source: string, st: BigIntStats): PlanEntry {
  return { type: 'file', name, size: Number(st.size), executable: (st.mode & 0o111n) !== 0n, source, stamp: stampOf(st) };
}

function components(p: string): string[] {
  return p.split('/').filter((c) => c !== '' && c !== '.');
}

/**
 * Resolves an absolute host path component by component, adding each directory passed, each
 * symlink met (as readlink gives it) and the regular file it ends at.
 */
function addHostPath(entries: EntrySet, file: string): void {
  if (!path.isAbsolute(file)) throw new Error(`${file} is not an absolute path`);
  let pending = components(file);
  let real: string[] = [];
  let hops = 0;
  while (pending.length > 0) {
    const part = pending.shift()!;
    if (part === '..') {
      real.pop();
      continue;
    }
    const next = [...real, part];
    const host = `/${next.join('/')}`;
    const st = lstatSync(host, { bigint: true });
    if (st.isSymbolicLink()) {
      if (++hops > MAX_SYMLINK_HOPS) throw new Error(`${file}: too many levels of symbolic links`);
      const target = readlinkSync(host);
      entries.add({ type: 'symlink', name: next.join('/'), target });
      if (target.startsWith('/')) real = [];
      pending = [...components(target), ...pending];
    } else if (st.isDirectory()) {
      entries.add({ type: 'directory', name: next.join('/') });
      real = next;
    } else if (st.isFile() && pending.length === 0) {
      entries.add(fileEntry(next.join('/'), host, st));
      return;
    } else {
      throw new Error(`${host} (on the way to ${file}) is not a directory, regular file or symbolic link`);
    }
  }
  throw new Error(`${file} is not a regular file`);
}

function addDescription(entries: EntrySet, description: ToolchainDescription): void {
  const bytes = descriptionBytes(description);
  entries.add({ type: 'directory', name: path.dirname(DESCRIPTION_PATH) });
  entries.add({ type: 'file', name: DESCRIPTION_PATH, size: bytes.length, executable: false, source: bytes });
}

/**
 * The plan of an identified toolchain as invoked by `compilerPath` (e.g. /usr/bin/gcc, which
 * may be a chain of symlinks to the driver): the compiler path, the driver and every file of
 * the toolchain, the directories and symlinks on their way, and the description.
 */
export async function planToolchainTar(toolchain: Toolchain, compilerPath: string): Promise<ToolchainTarPlan> {
  if (!path.isAbsolute(compilerPath)) throw new Error(`the compiler path ${compilerPath} is not absolute`);
  const description: ToolchainDescription = {
    scheme: TAR_SCHEME,
    family: toolchain.family,
    mode: toolchain.mode,
    version: toolchain.version,
    target: toolchain.target,
    compiler: compilerPath,
    driver: toolchain.driver,
    arch: await elfArch(toolchain.driver),
    os: 'linux',
  };
  const entries = new EntrySet();
  for (const file of [compilerPath, toolchain.driver, ...toolchain.files.map((f) => f.path)]) addHostPath(entries, file);
  addDescription(entries, description);
  return { description, entries: entries.sorted() };
}

/**
 * The plan of a toolchain installed under rootDir (as unpack.ts leaves it), never following
 * its symlinks. Its tarball has the bytes the tree was unpacked from if nothing was touched.
 */
export async function planFromTree(rootDir: string): Promise<ToolchainTarPlan> {
  const entries = new EntrySet();
  const walk = (relative: string): void => {
    const dir = path.join(rootDir, relative);
    for (const name of readdirSync(dir)) {
      const rel = relative ? `${relative}/${name}` : name;
      const full = path.join(dir, name);
      const st = lstatSync(full, { bigint: true });
      if (st.isDirectory()) {
        entries.add({ type: 'directory', name: rel });
        walk(rel);
      } else if (st.isSymbolicLink()) {
        entries.add({ type: 'symlink', name: rel, target: readlinkSync(full) });
      } else if (st.isFile()) {
        entries.add(fileEntry(rel, full, st));
      } else {
        throw new Error(`${full} is not a directory, regular file or symbolic link`);
      }
    }
  };
  if (!lstatSync(rootDir).isDirectory()) throw new Error(`${rootDir} is not a directory`);
  walk('');
  const descriptionFile = path.join(rootDir, DESCRIPTION_PATH);
  const st = lstatSync(descriptionFile, { throwIfNoEntry: false });
  if (!st?.isFile() || st.size > DESCRIPTION_MAX_BYTES) throw new Error(`${descriptionFile} is missing or not a small regular file`);
  const parsed = parseDescription(readFileSync(descriptionFile));
  if ('problem' in parsed) throw new Error(parsed.problem);
  return { description: parsed.description, entries: entries.sorted() };
}

/** Bytes of the files a plan holds (for progress and bounds; the tarball adds headers). */
export function planFileBytes(plan: ToolchainTarPlan): number {
  return plan.entries.reduce((n, e) => n + (e.type === 'file' ? e.size : 0), 0);
}

function headerOf(entry: PlanEntry): EntryHeader {
  const common = { uid: 0, gid: 0, uname: '', gname: '', mtime: EPOCH };
  switch (entry.type) {
    // tar-stream leaves directory names as given; the trailing slash is what other tars write.
    case 'directory':
      return { ...common, name: `${entry.name}/`, type: 'directory', mode: 0o755, size: 0 };
    case 'symlink':
      return { ...common, name: entry.name, type: 'symlink', mode: 0o777, size: 0, linkname: entry.target };
    case 'file':
      return { ...common, name: entry.name, type: 'file', mode: entry.executable ? 0o755 : 0o644, size: entry.size };
  }
}

function changed(file: string, why: string): Error {
  return new Error(`${file} changed while the toolchain was packed (${why}): not the file its id was computed from`);
}

/** Resolves when the entry's sink takes more data; rejects if the tarball was closed meanwhile. */
function drained(sink: EntrySink, pack: Pack): Promise<void> {
  return new Promise((resolve, reject) => {
    const cleanup = (): void => {
      sink.off('drain', onDrain);
      sink.off('close', onClose);
      pack.off('close', onClose);
    };
    const onDrain = (): void => {
      cleanup();
      resolve();
    };
    const onClose = (): void => {
      cleanup();
      reject(new Error('the tarball stream was closed'));
    };
    sink.on('drain', onDrain);
    sink.on('close', onClose);
    pack.on('close', onClose);
  });
}

function entryWritten(pack: Pack, header: EntryHeader, content?: Buffer): { sink: EntrySink; done: Promise<void> } {
  let sink!: EntrySink;
  const done = new Promise<void>((resolve, reject) => {
    const callback = (err?: Error | null): void => (err ? reject(err) : resolve());
    sink = content ? pack.entry(header, content, callback) : pack.entry(header, callback);
  });
  return { sink, done };
}

async function streamFile(pack: Pack, header: EntryHeader, file: string, size: number, stamp: string | undefined): Promise<void> {
  const handle = await open(file, constants.O_RDONLY | constants.O_NOFOLLOW);
  try {
    const before = await handle.stat({ bigint: true });
    if (!before.isFile()) throw changed(file, 'no longer a regular file');
    if (before.size !== BigInt(size)) throw changed(file, `${before.size} bytes where ${size} were planned`);
    if (stamp !== undefined && stampOf(before) !== stamp) throw changed(file, 'another inode or mtime');
    const { sink, done } = entryWritten(pack, header);
    // Awaited below; when reading fails first, the pack is destroyed and this rejects unheard.
    done.catch(() => undefined);
    let position = 0;
    while (position < size) {
      const want = Math.min(READ_CHUNK, size - position);
      const chunk = Buffer.allocUnsafe(want);
      const { bytesRead } = await handle.read(chunk, 0, want, position);
      if (bytesRead === 0) throw changed(file, 'shorter than planned');
      position += bytesRead;
      if (sink.destroying) throw new Error('the tarball stream was closed');
      if (!sink.write(bytesRead === want ? chunk : chunk.subarray(0, bytesRead))) await drained(sink, pack);
    }
    const after = await handle.stat({ bigint: true });
    if (stampOf(after) !== stampOf(before)) throw changed(file, 'written to while it was read');
    sink.end(undefined);
    await done;
  } finally {
    await handle.close();
  }
}

async function produce(pack: Pack, plan: ToolchainTarPlan): Promise<void> {
  try {
    for (const entry of plan.entries) {
      const header = headerOf(entry);
      if (entry.type !== 'file') await entryWritten(pack, header).done;
      else if (Buffer.isBuffer(entry.source)) await entryWritten(pack, header, entry.source).done;
      else await streamFile(pack, header, entry.source, entry.size, entry.stamp);
    }
    pack.finalize();
  } catch (err) {
    pack.destroy(err as Error);
  }
}

/**
 * The uncompressed tarball of the plan. Errors (a file changed since it was planned, so the
 * bytes would not be the ones the id names) end the stream with an error, never with a
 * different tarball.
 */
export function toolchainTarStream(plan: ToolchainTarPlan): Readable {
  const pack = tar.pack();
  void produce(pack, plan);
  // A Node stream over tar-stream's own (streamx) one: pipeline and destroy behave as everywhere
  // else, and destroying it stops the producer.
  return Readable.from(pack, { objectMode: false });
}

/** sha256 and length of everything passing through. */
class Digester extends Transform {
  private readonly hash = createHash('sha256');
  size = 0;

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: (err?: Error | null, data?: Buffer) => void): void {
    this.hash.update(chunk);
    this.size += chunk.length;
    callback(null, chunk);
  }

  digest(): TarDigest {
    return { id: this.hash.digest('hex'), size: this.size };
  }
}

/** The id (sha256 of the tarball) and size, streaming the tarball without storing it. */
export async function toolchainTarId(plan: ToolchainTarPlan): Promise<TarDigest> {
  const hash = createHash('sha256');
  let size = 0;
  for await (const chunk of toolchainTarStream(plan) as AsyncIterable<Buffer>) {
    hash.update(chunk);
    size += chunk.length;
  }
  return { id: hash.digest('hex'), size };
}

/** Writes the tarball into `destination` (and ends it); returns its id and size as written. */
export async function writeToolchainTar(plan: ToolchainTarPlan, destination: Writable): Promise<TarDigest> {
  const digester = new Digester();
  await pipeline(toolchainTarStream(plan), digester, destination);
  return digester.digest();
}
