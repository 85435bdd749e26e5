// The result cache's entries held by this agent: each entry a small file under
// `<home>/cache/entries`, its output files objects of the agent's content-addressed store
// (evicted with the rest of the store: an entry whose object is gone is a miss, and is
// dropped). Bounded in bytes (MESHCC_CACHE_MB), least recently used dropped first. Every
// object is hashed again when read, unless its stat data, taken after the read, is what it
// was when it was last hashed (and old enough to trust: see file-state.ts) or when this
// process wrote it: bytes altered on disk are never handed out. An entry read or written once
// is kept decoded.
import { randomBytes } from 'node:crypto';
import { closeSync, fstatSync, promises as fs, openSync, readFileSync, statSync, type Stats } from 'node:fs';
import path from 'node:path';
import type { OutputFile } from '../../protocol/messages.js';
import type { Logger } from '../log.js';
import { sha256, type Store } from '../store.js';
import { decodeEntry, encodeEntry, entryBytes, type CacheEntry } from './entry.js';
import { numbersOf, sameStamp, settled, type NumericStamp } from '../file-stamp.js';

interface Held {
  writer: string;
  bytes: number;
  /** The entry, once read or written by this process (~0.3 ms of a hit to read and check). */
  entry?: CacheEntry;
}

/** Entries with long diagnostics are read from disk each time (memory). */
const keptDecoded = (entry: CacheEntry) => entry.stdout.length + entry.stderr.length <= 16 * 1024;

/** Objects whose hash was checked, by hash: their stat data then. */
const VERIFIED_KEPT = 100_000;

export interface CachedResult {
  entry: CacheEntry;
  /** Each output's path and bytes; with `objects`, the bytes may be left unread (empty). */
  outputs: OutputFile[];
  /** Each output's object in this agent's store, its bytes checked: where a client of the agent's
   *  own uid copies them from (asked for with get(key, true)). */
  objects?: string[];
}

const UNREAD = Buffer.alloc(0);

export class LocalEntries {
  /** Insertion order is recency order. */
  private readonly held = new Map<string, Held>();
  private readonly verified = new Map<string, NumericStamp>();
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

  /** The entry and its outputs' bytes (each checked against its hash), or undefined. With
   *  `objects`, an object whose stat data is as when its bytes were last checked is not read:
   *  the result names every object instead. */
  async get(key: string, objects = false): Promise<CachedResult | undefined> {
    const held = this.held.get(key);
    if (!held) return undefined;
    let entry = held.entry;
    if (!entry) {
      try {
        // Synchronous reads: the promise API makes a FileHandle per file, which cost a direct-mode
        // hit about a millisecond of CPU here; an entry and its objects are small.
        entry = decodeEntry(readFileSync(this.fileOf(key)));
        if (entry.key !== key) throw new Error('the entry names another key');
        if (keptDecoded(entry)) held.entry = entry;
      } catch (err) {
        this.log.warn({ key: key.slice(0, 12), err: (err as Error).message }, 'cache: dropping an unreadable entry');
        await this.drop(key);
        return undefined;
      }
    }
    const outputs: OutputFile[] = [];
    for (const o of entry.outputs) {
      if (objects && this.unchangedSinceChecked(o.hash)) {
        this.store.touch(o.hash);
        outputs.push({ path: o.path, data: UNREAD, executable: o.executable });
        continue;
      }
      const read = this.readObject(o.hash);
      if (!read || read === 'altered') {
        // Evicted from the store, or altered on disk: never used.
        if (read) this.log.error({ key: key.slice(0, 12), object: o.hash.slice(0, 12) }, 'cache: an output object does not match its hash; entry dropped');
        await this.drop(key);
        return undefined;
      }
      this.store.touch(o.hash);
      outputs.push({ path: o.path, data: read, executable: o.executable });
    }
    this.touch(key);
    return objects ? { entry, outputs, objects: entry.outputs.map((o) => this.store.pathOf(o.hash)) } : { entry, outputs };
  }

  /** An object this process just wrote, from bytes it checked: its stat data stands for them
   *  from now on, without the two seconds' wait (that wait is for files others write: a second
   *  write within one timestamp tick could keep the stat data; only a writer with the agent's
   *  own uid could make one here, and such a writer can change anything of the agent's). */
  private writtenHere(hash: string): void {
    const st = statSync(this.store.pathOf(hash), { throwIfNoEntry: false });
    if (st) this.checked(hash, st);
  }

  /** The object's bytes, as they were when its stat data was `st`, match its hash. */
  private checked(hash: string, st: Stats): void {
    if (this.verified.size >= VERIFIED_KEPT) this.verified.clear();
    this.verified.set(hash, numbersOf(st));
  }

  private unchangedSinceChecked(hash: string): boolean {
    const known = this.verified.get(hash);
    const st = known && statSync(this.store.pathOf(hash), { throwIfNoEntry: false });
    return !!st && sameStamp(st, known!);
  }

  /** An object's bytes if they are the ones its hash names; 'altered' if not; undefined if gone.
   *  The stat is taken after the read: a write during it changes the stat data too. */
  private readObject(hash: string): Buffer | 'altered' | undefined {
    let fd: number;
    try {
      fd = openSync(this.store.pathOf(hash), 'r');
    } catch {
      return undefined;
    }
    try {
      const data = readFileSync(fd);
      const st = fstatSync(fd);
      const known = this.verified.get(hash);
      if (known && sameStamp(st, known)) return data;
      if (sha256(data) !== hash) {
        this.verified.delete(hash);
        return 'altered';
      }
      if (settled(st)) this.checked(hash, st);
      return data;
    } catch {
      return undefined;
    } finally {
      closeSync(fd);
    }
  }

  /** Keeps an entry; `data[i]` are the bytes of `entry.outputs[i]`, checked against its hash. */
  async put(entry: CacheEntry, data: Uint8Array[]): Promise<void> {
    if (data.length !== entry.outputs.length) throw new Error('an output without its bytes');
    for (let i = 0; i < data.length; i++) {
      if (sha256(data[i]!) !== entry.outputs[i]!.hash || data[i]!.length !== entry.outputs[i]!.size) throw new Error(`output ${entry.outputs[i]!.path} does not match its hash`);
    }
    for (let i = 0; i < data.length; i++) {
      const hash = entry.outputs[i]!.hash;
      if (await this.store.put(hash, data[i]!)) this.writtenHere(hash);
    }
    const file = this.fileOf(entry.key);
    const temp = path.join(this.dir, 'tmp', randomBytes(8).toString('hex'));
    await fs.mkdir(path.dirname(file), { recursive: true });
    await fs.writeFile(temp, encodeEntry(entry));
    await fs.rename(temp, file);
    this.forget(entry.key);
    this.remember(entry.key, { writer: entry.writer, bytes: entryBytes(entry), ...(keptDecoded(entry) ? { entry } : {}) });
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
