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

  constructor(private readonly store: Store) {}

  /** Hash of the file now at this path, guaranteed present in the store on return.
   *  `stated`: the file's stats taken a moment ago (by the scan), to save a second stat. */
  hash(path: string, stated?: BigIntStats): Promise<InputFile> {
    const pending = this.inFlight.get(path);
    if (pending) return pending;
    const work = this.hashUncoalesced(path, stated).finally(() => this.inFlight.delete(path));
    this.inFlight.set(path, work);
    return work;
  }

  private async hashUncoalesced(path: string, stated?: BigIntStats): Promise<InputFile> {
    // Synchronous on purpose: a cache hit is one stat (a few µs), and a job checks hundreds;
    // the thread pool's round trip costs ten times as much.
    const st = stated ?? statSync(path, { bigint: true });
    if (!st.isFile()) throw new Error(`${path} is not a regular file`);
    const cached = this.cache.get(path);
    if (
      cached &&
      cached.dev === st.dev &&
      cached.ino === st.ino &&
      cached.size === st.size &&
      cached.mtimeNs === st.mtimeNs &&
      cached.ctimeNs === st.ctimeNs &&
      this.store.touch(cached.hash)
    ) {
      this.stats.cacheHits++;
      return { path, hash: cached.hash, size: Number(st.size), executable: cached.executable };
    }
    const data = await fs.readFile(path);
    const hash = sha256(data);
    this.stats.filesHashed++;
    this.stats.bytesHashed += data.length;
    await this.store.put(hash, data);
    const executable = (Number(st.mode) & 0o111) !== 0;
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
      });
    }
    return { path, hash, size: data.length, executable };
  }
}
