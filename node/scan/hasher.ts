// Hashes input files into the store, with a stat cache (path, size, mtime, ctime, inode)
// so that a header used by 400 jobs is read and hashed once.
import { promises as fs, statSync, type Stats } from 'node:fs';
import { mtimeSettled, numbersOf, sameStamp, type NumericStamp } from '../file-stamp.js';
import type { InputFile } from '../../protocol/messages.js';
import { sha256, type Store } from '../store.js';

interface CacheEntry {
  stamp: NumericStamp;
  hash: string;
  executable: boolean;
  /** What a hit returns: the same object for every job while the file is unchanged (never
   *  mutated; the offer table knows it by identity). */
  input: InputFile;
}

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
  hash(path: string, stated?: Stats): Promise<InputFile> {
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
  cached(path: string, stated?: Stats): InputFile | undefined {
    const entry = this.cache.get(path);
    if (!entry) return undefined;
    const st = stated ?? statSync(path, { throwIfNoEntry: false });
    if (
      st?.isFile() &&
      sameStamp(st, entry.stamp) &&
      this.store.touch(entry.hash)
    ) {
      this.stats.cacheHits++;
      return entry.input;
    }
    return undefined;
  }

  private async hashUncoalesced(path: string, stated?: Stats): Promise<InputFile> {
    const st = stated ?? statSync(path);
    if (!st.isFile()) throw new Error(`${path} is not a regular file`);
    const hit = this.cached(path, st);
    if (hit) return hit;
    const data = await fs.readFile(path);
    const hash = sha256(data);
    this.stats.filesHashed++;
    this.stats.bytesHashed += data.length;
    await this.store.put(hash, data);
    const executable = (st.mode & 0o111) !== 0;
    const input: InputFile = { path, hash, size: data.length, executable };
    // Same rule as ccache's "too new": don't trust the stat key of a file still being written.
    if (mtimeSettled(st) && data.length === st.size) {
      this.cache.set(path, {
        stamp: numbersOf(st),
        hash,
        executable,
        input,
      });
    }
    return input;
  }
}
