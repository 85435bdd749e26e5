// What direct mode knows of files between checks, so that concurrent compiles that include
// the same headers share one look at each. A `stat` taken after a command started is as good
// for that command as one taken now: the compiler it stands for would read the file later
// still. So a check reuses any stat taken at or after its command's start (the native client
// sends that time, CLOCK_MONOTONIC, the clock of process.hrtime), and takes its own otherwise.
// A file's content hash is kept under its stat data, and only once that data is two seconds
// older than the hash (a file can change twice within one timestamp tick).
import { readdirSync, readFileSync, statSync, type Stats } from 'node:fs';
import { numbersOf, sameStamp, settled, type NumericStamp } from '../file-stamp.js';
import { sha256 } from '../store.js';

const KEPT = 200_000;

/** Now on CLOCK_MONOTONIC, in microseconds (the native client's clock). */
export function monotonicUs(): number {
  return Number(process.hrtime.bigint() / 1000n);
}

export class FileState {
  private readonly stats = new Map<string, { atUs: number; st: Stats | undefined }>();
  private readonly hashes = new Map<string, { stamp: NumericStamp; hash: string }>();
  private readonly listings = new Map<string, { stamp: NumericStamp; names: Set<string> }>();
  /** The last listing read of each directory, and when (like stats: good for any command started before). */
  private readonly recentListings = new Map<string, { atUs: number; names: Set<string> }>();

  /** The file's stat data as of some moment at or after `notBeforeUs` (undefined: nothing there).
   *  `nowUs` is when the caller's check began: every stat it takes is later than that. */
  stat(file: string, notBeforeUs: number, nowUs: number): Stats | undefined {
    const known = this.stats.get(file);
    if (known && known.atUs >= notBeforeUs) return known.st;
    const st = statSync(file, { throwIfNoEntry: false });
    if (known) {
      // Updated in place: a new record per stat was most of a check's garbage.
      known.atUs = nowUs;
      known.st = st;
      return st;
    }
    if (this.stats.size >= KEPT) this.stats.clear();
    this.stats.set(file, { atUs: nowUs, st });
    return st;
  }

  /** The sha256 of a file whose stat data is `st`, read again only when that data changed. */
  hash(file: string, st: Stats): string | undefined {
    const known = this.hashes.get(file);
    if (known && sameStamp(st, known.stamp)) return known.hash;
    let hash: string;
    try {
      hash = sha256(readFileSync(file));
    } catch {
      return undefined;
    }
    if (settled(st)) {
      if (this.hashes.size >= KEPT) this.hashes.clear();
      this.hashes.set(file, { stamp: numbersOf(st), hash });
    }
    return hash;
  }

  /** How many entries the directory had when last read (0: never read). */
  entriesOf(dir: string): number {
    return this.recentListings.get(dir)?.names.size ?? 0;
  }

  /** A directory's entries, read again only when its stat data changed (or is too new to trust)
   *  and no read since `notBeforeUs` is at hand. */
  names(dir: string, st: Stats, notBeforeUs: number, nowUs: number): Set<string> | undefined {
    const recent = this.recentListings.get(dir);
    if (recent && recent.atUs >= notBeforeUs) return recent.names;
    const known = this.listings.get(dir);
    if (known && sameStamp(st, known.stamp)) return known.names;
    let names: Set<string>;
    try {
      names = new Set(readdirSync(dir));
    } catch {
      return undefined;
    }
    if (this.recentListings.size >= KEPT / 10) this.recentListings.clear();
    this.recentListings.set(dir, { atUs: nowUs, names });
    // Read after the stat: a change in between leaves the stamp older than the names, never newer.
    if (settled(st)) {
      if (this.listings.size >= KEPT / 10) this.listings.clear();
      this.listings.set(dir, { stamp: numbersOf(st), names });
    }
    return names;
  }
}
