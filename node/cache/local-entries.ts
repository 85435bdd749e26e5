// The result cache's entries held by this agent: each entry a small file under
// `<home>/cache/entries`, its output files objects of the agent's content-addressed store
// (evicted with the rest of the store: an entry whose object is gone is a miss, and is
// dropped). Bounded in bytes (MESHCC_CACHE_MB), least recently used dropped first. Every
// object is hashed again when read: bytes altered on disk are never handed out.
import { randomBytes } from 'node:crypto';
import { promises as fs, readFileSync } from 'node:fs';
import path from 'node:path';
import type { OutputFile } from '../../protocol/messages.js';
import type { Logger } from '../log.js';
import { sha256, type Store } from '../store.js';
import { decodeEntry, encodeEntry, entryBytes, type CacheEntry } from './entry.js';

interface Held {
  writer: string;
  bytes: number;
}

export interface CachedResult {
  entry: CacheEntry;
  outputs: OutputFile[];
}

export class LocalEntries {
  /** Insertion order is recency order. */
  private readonly held = new Map<string, Held>();
  private totalBytes = 0;

  constructor(
    private readonly dir: string,
    private readonly store: Store,
    private readonly maxBytes: number,
    private readonly log: Logger,
  ) {}

  async start(): Promise<void> {
    await fs.mkdir(path.join(this.dir, 'tmp'), { recursive: true });
    await fs.rm(path.join(this.dir, 'tmp'), { recursive: true, force: true });
    await fs.mkdir(path.join(this.dir, 'tmp'), { recursive: true });
    const found: { key: string; held: Held; mtimeMs: number }[] = [];
    for (const prefix of await fs.readdir(this.dir)) {
      if (!/^[0-9a-f]{2}$/.test(prefix)) continue;
      for (const name of await fs.readdir(path.join(this.dir, prefix))) {
        const file = path.join(this.dir, prefix, name);
        try {
          const [data, st] = await Promise.all([fs.readFile(file), fs.stat(file)]);
          const entry = decodeEntry(data);
          if (entry.key !== name) throw new Error('named for another key');
          found.push({ key: name, held: { writer: entry.writer, bytes: entryBytes(entry) }, mtimeMs: st.mtimeMs });
        } catch (err) {
          this.log.warn({ file, err: (err as Error).message }, 'cache: dropping an unreadable entry');
          await fs.rm(file, { force: true });
        }
      }
    }
    found.sort((a, b) => a.mtimeMs - b.mtimeMs);
    for (const f of found) this.remember(f.key, f.held);
    await this.evict();
  }

  get stats() {
    return { entries: this.held.size, bytes: this.totalBytes, maxBytes: this.maxBytes };
  }

  has(key: string): boolean {
    return this.held.has(key);
  }

  /** Writers of the entries held here, for the revocation sweep. */
  writers(): Set<string> {
    return new Set([...this.held.values()].map((h) => h.writer));
  }

  /** The entry and its outputs' bytes (each checked against its hash), or undefined. */
  async get(key: string): Promise<CachedResult | undefined> {
    if (!this.held.has(key)) return undefined;
    let entry: CacheEntry;
    try {
      // Synchronous reads: the promise API makes a FileHandle per file, which cost a direct-mode
      // hit about a millisecond of CPU here; an entry and its objects are small.
      entry = decodeEntry(readFileSync(this.fileOf(key)));
      if (entry.key !== key) throw new Error('the entry names another key');
    } catch (err) {
      this.log.warn({ key: key.slice(0, 12), err: (err as Error).message }, 'cache: dropping an unreadable entry');
      await this.drop(key);
      return undefined;
    }
    const outputs: OutputFile[] = [];
    for (const o of entry.outputs) {
      let data: Buffer | undefined;
      try {
        data = readFileSync(this.store.pathOf(o.hash));
      } catch {
        data = undefined;
      }
      if (!data || sha256(data) !== o.hash) {
        // Evicted from the store, or altered on disk: never used.
        if (data) this.log.error({ key: key.slice(0, 12), object: o.hash.slice(0, 12) }, 'cache: an output object does not match its hash; entry dropped');
        await this.drop(key);
        return undefined;
      }
      this.store.touch(o.hash);
      outputs.push({ path: o.path, data, executable: o.executable });
    }
    this.touch(key);
    return { entry, outputs };
  }

  /** Keeps an entry; `data[i]` are the bytes of `entry.outputs[i]`, checked against its hash. */
  async put(entry: CacheEntry, data: Uint8Array[]): Promise<void> {
    if (data.length !== entry.outputs.length) throw new Error('an output without its bytes');
    for (let i = 0; i < data.length; i++) {
      if (sha256(data[i]!) !== entry.outputs[i]!.hash || data[i]!.length !== entry.outputs[i]!.size) throw new Error(`output ${entry.outputs[i]!.path} does not match its hash`);
    }
    for (let i = 0; i < data.length; i++) await this.store.put(entry.outputs[i]!.hash, data[i]!);
    const file = this.fileOf(entry.key);
    const temp = path.join(this.dir, 'tmp', randomBytes(8).toString('hex'));
    await fs.mkdir(path.dirname(file), { recursive: true });
    await fs.writeFile(temp, encodeEntry(entry));
    await fs.rename(temp, file);
    this.forget(entry.key);
    this.remember(entry.key, { writer: entry.writer, bytes: entryBytes(entry) });
    await this.evict();
  }

  /** Drops every entry a writer made (revoked, or caught lying); returns how many. */
  async dropWriter(writer: string): Promise<number> {
    const keys = [...this.held].filter(([, h]) => h.writer === writer).map(([k]) => k);
    for (const key of keys) await this.drop(key);
    return keys.length;
  }

  async clear(): Promise<number> {
    const keys = [...this.held.keys()];
    for (const key of keys) await this.drop(key);
    return keys.length;
  }

  async drop(key: string): Promise<void> {
    this.forget(key);
    await fs.rm(this.fileOf(key), { force: true });
  }

  private fileOf(key: string): string {
    return path.join(this.dir, key.slice(0, 2), key);
  }

  private touch(key: string): void {
    const held = this.held.get(key);
    if (!held) return;
    this.held.delete(key);
    this.held.set(key, held);
  }

  private remember(key: string, held: Held): void {
    this.held.set(key, held);
    this.totalBytes += held.bytes;
  }

  private forget(key: string): void {
    const held = this.held.get(key);
    if (!held) return;
    this.held.delete(key);
    this.totalBytes -= held.bytes;
  }

  private async evict(): Promise<void> {
    for (const [key] of this.held) {
      if (this.totalBytes <= this.maxBytes) return;
      await this.drop(key);
    }
  }
}
