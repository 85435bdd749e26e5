// The content-addressed store: files named by their sha256, bounded in bytes, evicted
// least-recently-used first, never evicting what a running job has pinned. Writes are
// atomic (temporary file, then rename), so a crash never leaves a half-written object.
import { createHash, randomBytes } from 'node:crypto';
import { chmodSync, mkdirSync, promises as fs, renameSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { Logger } from './log.js';

interface Entry {
  size: number;
  pins: number;
  /** Used since it last reached the front of the eviction order (a second chance). */
  used: boolean;
}

export function sha256(data: Uint8Array): string {
  return createHash('sha256').update(data).digest('hex');
}

/** Where the store in `dir` keeps the object with this hash (also read by job-root workers). */
export function storeObjectPath(dir: string, hash: string): string {
  return path.join(dir, hash.slice(0, 2), hash);
}

/** Writes an object into the store in `dir` as the store does (a temporary file, read-only,
 *  renamed), from a worker thread; the store's index takes it in with adoptWritten(). */
export function writeStoreObjectSync(dir: string, hash: string, data: Uint8Array): void {
  const final = storeObjectPath(dir, hash);
  const temp = path.join(dir, 'tmp', randomBytes(8).toString('hex'));
  try {
    writeFileSync(temp, data, { mode: 0o444 });
    chmodSync(temp, 0o444);
    mkdirSync(path.dirname(final), { recursive: true });
    renameSync(temp, final);
  } catch (err) {
    rmSync(temp, { force: true });
    throw err;
  }
}

export class Store {
  /** Eviction order, oldest first: insertion order, and an entry used since it was inserted
   *  (or last passed over) goes back to the end when eviction reaches it instead of leaving
   *  (the CLOCK approximation of least-recently-used). A use is a flag, not a move: a job
   *  touches each of its hundreds of inputs, and moving an entry costs two map operations. */
  private readonly entries = new Map<string, Entry>();
  private totalBytes = 0;
  private readonly writing = new Map<string, Promise<boolean>>();

  constructor(
    readonly dir: string,
    private readonly maxBytes: number,
    private readonly log?: Logger,
  ) {}

  async start(): Promise<void> {
    await fs.mkdir(path.join(this.dir, 'tmp'), { recursive: true });
    await fs.rm(path.join(this.dir, 'tmp'), { recursive: true, force: true });
    await fs.mkdir(path.join(this.dir, 'tmp'), { recursive: true });
    const found: { hash: string; size: number; mtimeMs: number }[] = [];
    for (const prefix of await fs.readdir(this.dir)) {
      if (!/^[0-9a-f]{2}$/.test(prefix)) continue;
      for (const name of await fs.readdir(path.join(this.dir, prefix))) {
        const st = await fs.stat(path.join(this.dir, prefix, name)).catch(() => undefined);
        if (st?.isFile() && /^[0-9a-f]{64}$/.test(name)) found.push({ hash: name, size: st.size, mtimeMs: st.mtimeMs });
      }
    }
    found.sort((a, b) => a.mtimeMs - b.mtimeMs);
    for (const f of found) this.remember(f.hash, f.size);
    await this.evict();
    this.log?.debug({ files: this.entries.size, bytes: this.totalBytes }, 'store loaded');
  }

  get stats() {
    return { files: this.entries.size, bytes: this.totalBytes, maxBytes: this.maxBytes };
  }

  pathOf(hash: string): string {
    return storeObjectPath(this.dir, hash);
  }

  has(hash: string): boolean {
    return this.entries.has(hash);
  }

  /** The size of an object in the store, or undefined when it is not there. */
  sizeOf(hash: string): number | undefined {
    return this.entries.get(hash)?.size;
  }

  /** Marks a use (recency) without reading anything. */
  touch(hash: string): boolean {
    const entry = this.entries.get(hash);
    if (!entry) return false;
    entry.used = true;
    return true;
  }

  /** Stores bytes whose hash the caller computed; a no-op when already present. True when this
   *  call wrote the object, false when the store had it. */
  async put(hash: string, data: Uint8Array): Promise<boolean> {
    if (this.touch(hash)) return false;
    const pending = this.writing.get(hash);
    if (pending) return pending;
    const write = this.write(hash, data).finally(() => this.writing.delete(hash));
    this.writing.set(hash, write);
    return write;
  }

  private async write(hash: string, data: Uint8Array): Promise<boolean> {
    const temp = this.tempPath();
    await fs.writeFile(temp, data);
    return this.adopt(hash, temp, data.length);
  }

  /** A fresh temporary path inside the store, for a file that adopt() will take in. */
  tempPath(): string {
    return path.join(this.dir, 'tmp', randomBytes(8).toString('hex'));
  }

  /** Takes in a complete temporary file whose content the caller verified has this hash; false
   *  when the store had the object already (the file is dropped). */
  async adopt(hash: string, temp: string, size: number): Promise<boolean> {
    if (this.touch(hash)) {
      await fs.rm(temp, { force: true });
      return false;
    }
    const final = this.pathOf(hash);
    await fs.mkdir(path.dirname(final), { recursive: true });
    await fs.chmod(temp, 0o444);
    await fs.rename(temp, final);
    this.remember(hash, size);
    await this.evict();
    return true;
  }

  /** Takes into the index an object another thread wrote at pathOf(hash) (atomically, read-only). */
  async adoptWritten(hash: string, size: number): Promise<void> {
    if (this.touch(hash)) return;
    this.remember(hash, size);
    await this.evict();
  }

  /** Keeps these objects from eviction until unpin; throws if one is missing. */
  pin(hashes: Iterable<string>): void {
    const pinned: Entry[] = [];
    for (const hash of hashes) {
      const entry = this.entries.get(hash);
      if (!entry) {
        for (const e of pinned) e.pins--;
        throw new Error(`store object ${hash.slice(0, 12)} is missing`);
      }
      entry.pins++;
      pinned.push(entry);
    }
  }

  unpin(hashes: Iterable<string>): void {
    for (const hash of hashes) {
      const entry = this.entries.get(hash);
      if (entry && entry.pins > 0) entry.pins--;
    }
    void this.evict();
  }

  private remember(hash: string, size: number): void {
    if (this.entries.has(hash)) return;
    this.entries.set(hash, { size, pins: 0, used: false });
    this.totalBytes += size;
  }

  private async evict(): Promise<void> {
    if (this.totalBytes <= this.maxBytes) return;
    // An entry passed over goes to the end, used no longer: a second visit may evict it. Two
    // rounds at most, so this ends even when everything is pinned.
    const passes = 2 * this.entries.size;
    let seen = 0;
    for (const [hash, entry] of this.entries) {
      if (this.totalBytes <= this.maxBytes || seen++ >= passes) break;
      if (entry.pins > 0) continue;
      if (entry.used) {
        entry.used = false;
        this.entries.delete(hash);
        this.entries.set(hash, entry);
        continue;
      }
      this.entries.delete(hash);
      this.totalBytes -= entry.size;
      await fs.rm(this.pathOf(hash), { force: true });
      this.log?.debug({ hash: hash.slice(0, 12), size: entry.size }, 'store evicted');
    }
  }
}
