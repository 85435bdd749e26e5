// Hashes input files into the store, with a stat cache (path, size, mtime, ctime, inode)
// so that a header used by 400 jobs is read and hashed once.
import { promises as fs, statSync, type BigIntStats } from 'node:fs';
import type { InputFile } from '../../protocol/messages.js';
import { sha256, type Store } from '../store.js';

interface CacheEntry {
  dev: bigint;
  ino: bigint;
  size: bigint;
  mtimeNs: bigint;
  ctimeNs: bigint;
  hash: string;
  executable: boolean;
  /** What a hit returns: the same object for every job while the file is unchanged (never
   *  mutated; the offer table knows it by identity). */
  input: InputFile;
}

/** A file changed less than this long ago may change again within the same timestamp tick. */
const SETTLE_NS = 2_000_000_000n;

export interface HashStats {
  filesHashed: number;
  bytesHashed: number;
  cacheHits: number;
}

export class InputHasher {
  private readonly cache = new Map<string, CacheEntry>();
  private readonly inFlight = new Map<string, Promise<InputFile>>();
  readonly stats: HashStats = { filesHashed: 0, bytesHashed: 0, cacheHits: 0 };

  constructor(readonly store: Store) {}

  /** Hash of the file now at this path, guaranteed present in the store on return.
   *  `stated`: the file's stats taken a moment ago (by the scan), to save a second stat. */
  hash(path: string, stated?: BigIntStats): Promise<InputFile> {
    const pending = this.inFlight.get(path);
    if (pending) return pending;
    const work = this.hashUncoalesced(path, stated).finally(() => this.inFlight.delete(path));
    this.inFlight.set(path, work);
    return work;
  }

  /**
   * The file's input when the stat cache knows it unchanged (and its object is in the store),
   * without a promise: a job checks hundreds and almost all are hits. Synchronous on purpose:
   * a hit is one stat (a few µs); the thread pool's round trip costs ten times as much.
   */
  cached(path: string, stated?: BigIntStats): InputFile | undefined {
    const entry = this.cache.get(path);
    if (!entry) return undefined;
    const st = stated ?? statSync(path, { bigint: true, throwIfNoEntry: false });
    if (
      st?.isFile() &&
      entry.dev === st.dev &&
      entry.ino === st.ino &&
      entry.size === st.size &&
      entry.mtimeNs === st.mtimeNs &&
      entry.ctimeNs === st.ctimeNs &&
      this.store.touch(entry.hash)
    ) {
      this.stats.cacheHits++;
      return entry.input;
    }
    return undefined;
  }

  private async hashUncoalesced(path: string, stated?: BigIntStats): Promise<InputFile> {
    const st = stated ?? statSync(path, { bigint: true });
    if (!st.isFile()) throw new Error(`${path} is not a regular file`);
    const hit = this.cached(path, st);
    if (hit) return hit;
    const data = await fs.readFile(path);
    const hash = sha256(data);
    this.stats.filesHashed++;
    this.stats.bytesHashed += data.length;
    await this.store.put(hash, data);
    const executable = (Number(st.mode) & 0o111) !== 0;
    const input: InputFile = { path, hash, size: data.length, executable };
    const nowNs = BigInt(Date.now()) * 1_000_000n;
    // Same rule as ccache's "too new": don't trust the stat key of a file still being written.
    if (nowNs - st.mtimeNs > SETTLE_NS && data.length === Number(st.size)) {
      this.cache.set(path, {
        dev: st.dev,
        ino: st.ino,
        size: st.size,
        mtimeNs: st.mtimeNs,
        ctimeNs: st.ctimeNs,
        hash,
        executable,
        input,
      });
    }
    return input;
  }
}
