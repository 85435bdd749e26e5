// Installs a toolchain tarball that came from another machine, trusting nothing in it.
//
// Everything is written into a fresh staging directory inside the cache directory, and only a
// tarball that passed every check is renamed to <cacheDir>/<id> (one atomic rename); any
// failure removes the staging directory, so the cache is exactly as it was. Each entry is
// checked against the tree built so far (unpack-tree.ts) before anything touches the disk:
// names stay inside the root, only files, directories and symlinks exist, nothing is written
// through a symlink, links do not lead out of the root, sizes and counts stay within limits.
// Files are created with O_EXCL and O_NOFOLLOW and get 0755 or 0644 whatever the header says
// (no setuid, no group or world write). The sha256 of the bytes must be the id asked for,
// and the description must name this machine's architecture and OS.
import { createHash } from 'node:crypto';
import { constants } from 'node:fs';
import { chmod, mkdir, mkdtemp, open, rename, rm, symlink } from 'node:fs/promises';
import path from 'node:path';
import tar, { type Extract, type Header } from 'tar-stream';
import { DESCRIPTION_MAX_BYTES, DESCRIPTION_PATH, hostPlatform, parseDescription, type Platform, type ToolchainDescription } from './description.js';
import { ToolchainRejected } from './unpack-errors.js';
import { entryComponents, UnpackedTree } from './unpack-tree.js';

export { ToolchainRejected, type RejectionReason } from './unpack-errors.js';

export interface UnpackLimits {
  /** the sum of the sizes of all files */
  maxTotalBytes: number;
  maxFileBytes: number;
  maxEntries: number;
}

export const DEFAULT_UNPACK_LIMITS: UnpackLimits = { maxTotalBytes: 4 * 1024 ** 3, maxFileBytes: 1024 ** 3, maxEntries: 100_000 };

export interface InstallOptions {
  cacheDir: string;
  /** the sha256 (hex) the tarball must have */
  id: string;
  /** the uncompressed tarball; destroyed if the install fails before reading all of it */
  source: AsyncIterable<Uint8Array> & { destroy?: (err?: Error) => unknown };
  limits?: Partial<UnpackLimits>;
  /** the machine the toolchain must run on; this one by default */
  platform?: Platform;
}

export interface InstalledToolchain {
  id: string;
  /** <cacheDir>/<id> */
  root: string;
  description: ToolchainDescription;
  /** the sum of the file sizes */
  bytes: number;
  entries: number;
  /** another install of the same id got there first; its tree was kept */
  alreadyPresent: boolean;
}

const ID = /^[0-9a-f]{64}$/;
const END_OF_ARCHIVE_BYTES = 1024;
// Headers, long-name pax records and padding around each entry: generous, still a bound on a
// stream of empty blocks or headers that never ends.
const OVERHEAD_PER_ENTRY = 10 * 1024;

/** Unpacks entries into `root` as tar-stream parses them, checking each one first. */
class Unpacker {
  readonly tree = new UnpackedTree();
  entries = 0;
  fileBytes = 0;
  description: ToolchainDescription | undefined;

  constructor(
    private readonly root: string,
    private readonly limits: UnpackLimits,
    private readonly platform: Platform,
  ) {}

  async entry(header: Header, body: AsyncIterable<Buffer>): Promise<void> {
    if (++this.entries > this.limits.maxEntries) {
      throw new ToolchainRejected('too-many-entries', `more than ${this.limits.maxEntries} entries`);
    }
    const type = header.type;
    if (type !== 'file' && type !== 'directory' && type !== 'symlink') {
      throw new ToolchainRejected('entry-type', `${JSON.stringify(header.name)} is a ${type ?? 'unknown'} entry (only files, directories and symlinks are allowed)`);
    }
    const parts = entryComponents(header.name, type === 'directory');
    const name = parts.join('/');
    this.tree.checkPlace(parts);
    if (type !== 'file' && header.size > 0) throw new ToolchainRejected('malformed', `the ${type} ${name} has content`);
    if (name === DESCRIPTION_PATH && type !== 'file') throw new ToolchainRejected('description', `${DESCRIPTION_PATH} is not a regular file`);
    const onDisk = path.join(this.root, ...parts);
    if (type === 'directory') {
      await mkdir(onDisk, { mode: 0o755 });
      // mkdir's mode passes through the umask; the tree's modes must not depend on it.
      await chmod(onDisk, 0o755);
      this.tree.add(parts, 'directory');
    } else if (type === 'symlink') {
      const target = header.linkname ?? '';
      this.tree.checkLinkTarget(parts, target);
      await symlink(target, onDisk);
      this.tree.add(parts, 'symlink', { target });
    } else {
      await this.file(parts, header, body, onDisk);
    }
  }

  private async file(parts: string[], header: Header, body: AsyncIterable<Buffer>, onDisk: string): Promise<void> {
    const name = parts.join('/');
    if (header.size > this.limits.maxFileBytes) {
      throw new ToolchainRejected('file-too-large', `${name} claims ${header.size} bytes, more than the ${this.limits.maxFileBytes} allowed per file`);
    }
    this.fileBytes += header.size;
    if (this.fileBytes > this.limits.maxTotalBytes) {
      throw new ToolchainRejected('too-large', `the files exceed ${this.limits.maxTotalBytes} bytes in all (at ${name})`);
    }
    const isDescription = name === DESCRIPTION_PATH;
    if (isDescription && header.size > DESCRIPTION_MAX_BYTES) throw new ToolchainRejected('description', `${DESCRIPTION_PATH} is too large`);
    const kept: Buffer[] = [];
    const executable = (header.mode & 0o111) !== 0;
    const handle = await open(onDisk, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, 0o600);
    try {
      let written = 0;
      for await (const chunk of body) {
        written += chunk.length;
        if (written > header.size) throw new ToolchainRejected('malformed', `${name} has more bytes than its header says`);
        if (isDescription) kept.push(chunk);
        await handle.write(chunk);
      }
      if (written !== header.size) throw new ToolchainRejected('truncated', `${name} ends after ${written} of ${header.size} bytes`);
      await handle.chmod(executable ? 0o755 : 0o644);
    } finally {
      await handle.close();
    }
    this.tree.add(parts, 'file', { executable });
    if (isDescription) this.acceptDescription(Buffer.concat(kept));
  }

  private acceptDescription(bytes: Buffer): void {
    const parsed = parseDescription(bytes);
    if ('problem' in parsed) throw new ToolchainRejected('description', parsed.problem);
    const { arch, os } = parsed.description;
    if (arch !== this.platform.arch || os !== this.platform.os) {
      throw new ToolchainRejected('platform', `built for ${arch}/${os}, this machine is ${this.platform.arch}/${this.platform.os}`);
    }
    this.description = parsed.description;
  }

  /** The checks that need every entry: links through links, the description and its compiler. */
  finish(): ToolchainDescription {
    this.tree.checkLinks();
    const description = this.description;
    if (!description) throw new ToolchainRejected('description', `no ${DESCRIPTION_PATH}`);
    for (const program of [description.compiler, description.driver]) {
      if (!this.tree.isExecutable(program)) throw new ToolchainRejected('description', `${program} named by the description is not an executable file of the toolchain`);
    }
    return description;
  }
}

function rejectionOfParser(err: Error): ToolchainRejected {
  if (err instanceof ToolchainRejected) return err;
  if (/unexpected end/i.test(err.message)) return new ToolchainRejected('truncated', 'the tarball ends in the middle of an entry');
  return new ToolchainRejected('malformed', `not a valid tarball: ${err.message}`);
}

function drained(extract: Extract): Promise<void> {
  return new Promise((resolve) => {
    const done = (): void => {
      extract.off('drain', done);
      extract.off('close', done);
      resolve();
    };
    extract.on('drain', done);
    extract.on('close', done);
  });
}

interface StreamSummary {
  sha256: string;
  bytes: number;
  endsWithEndOfArchive: boolean;
}

/** Feeds the source through sha256 into tar-stream, unpacking each entry before taking the next. */
function unpackStream(source: InstallOptions['source'], unpacker: Unpacker, maxStreamBytes: number): Promise<StreamSummary> {
  return new Promise((resolve, reject) => {
    const extract = tar.extract();
    const hash = createHash('sha256');
    let bytes = 0;
    let tail: Buffer = Buffer.alloc(0);
    let settled = false;
    let lastEntry: Promise<void> = Promise.resolve();
    const fail = (err: unknown): void => {
      if (settled) return;
      settled = true;
      extract.destroy();
      source.destroy?.();
      // The entry being written may still create a file: let it end before the caller removes
      // the staging directory, or the removal could race it and leave something behind.
      void lastEntry.catch(() => undefined).finally(() => reject(err));
    };
    extract.on('entry', (header, body, next) => {
      // A body cut short errors too; the error reaches us through the extractor and the
      // entry's iteration, so an 'error' event without a listener must not crash the agent.
      body.on('error', () => undefined);
      lastEntry = unpacker.entry(header, body as AsyncIterable<Buffer>);
      lastEntry.then(() => next(), fail);
    });
    extract.on('error', (err: Error) => fail(rejectionOfParser(err)));
    extract.on('finish', () => {
      if (settled) return;
      settled = true;
      const endsWithEndOfArchive = tail.length === END_OF_ARCHIVE_BYTES && tail.every((b) => b === 0);
      const summary = { sha256: hash.digest('hex'), bytes, endsWithEndOfArchive };
      // tar-stream finishes only after the last entry's next(); waiting for it costs nothing.
      lastEntry.then(() => resolve(summary), reject);
    });
    void (async () => {
      for await (const data of source) {
        if (settled) return;
        const chunk = Buffer.from(data.buffer, data.byteOffset, data.byteLength);
        bytes += chunk.length;
        if (bytes > maxStreamBytes) throw new ToolchainRejected('too-large', `the tarball exceeds ${maxStreamBytes} bytes`);
        hash.update(chunk);
        tail = chunk.length >= END_OF_ARCHIVE_BYTES ? chunk.subarray(-END_OF_ARCHIVE_BYTES) : Buffer.concat([tail, chunk]).subarray(-END_OF_ARCHIVE_BYTES);
        if (!extract.write(chunk)) await drained(extract);
      }
      if (!settled) extract.end(undefined);
    })().catch((err: unknown) => fail(err instanceof ToolchainRejected ? err : new ToolchainRejected('io', `reading the tarball failed: ${(err as Error).message}`)));
  });
}

function asRejection(err: unknown): ToolchainRejected {
  if (err instanceof ToolchainRejected) return err;
  return new ToolchainRejected('io', (err as Error).message ?? String(err));
}

/**
 * Unpacks a toolchain tarball into <cacheDir>/<id>, or rejects with a ToolchainRejected and
 * leaves cacheDir as it was. When <cacheDir>/<id> exists already (another install won), that
 * tree is kept.
 */
export async function installToolchain(options: InstallOptions): Promise<InstalledToolchain> {
  const { cacheDir, id } = options;
  if (!ID.test(id)) {
    options.source.destroy?.();
    throw new ToolchainRejected('bad-id', `${JSON.stringify(id.slice(0, 80))} is not a sha256`);
  }
  const limits = { ...DEFAULT_UNPACK_LIMITS, ...options.limits };
  let staging: string;
  try {
    await mkdir(cacheDir, { recursive: true });
    staging = await mkdtemp(path.join(cacheDir, '.staging-'));
  } catch (err) {
    options.source.destroy?.();
    throw err;
  }
  try {
    const unpacker = new Unpacker(staging, limits, options.platform ?? hostPlatform());
    const maxStreamBytes = limits.maxTotalBytes + (limits.maxEntries + 1) * OVERHEAD_PER_ENTRY;
    const stream = await unpackStream(options.source, unpacker, maxStreamBytes);
    if (!stream.endsWithEndOfArchive) throw new ToolchainRejected('truncated', `the tarball ends without an end-of-archive marker (after ${stream.bytes} bytes)`);
    const description = unpacker.finish();
    if (stream.sha256 !== id) throw new ToolchainRejected('hash-mismatch', `its sha256 is ${stream.sha256}, not ${id}`);
    await chmod(staging, 0o755);
    const root = path.join(cacheDir, id);
    const installed = { id, root, description, bytes: unpacker.fileBytes, entries: unpacker.entries };
    try {
      await rename(staging, root);
      return { ...installed, alreadyPresent: false };
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code !== 'ENOTEMPTY' && code !== 'EEXIST') throw err;
      await rm(staging, { recursive: true, force: true });
      return { ...installed, alreadyPresent: true };
    }
  } catch (err) {
    await rm(staging, { recursive: true, force: true });
    throw asRejection(err);
  }
}
