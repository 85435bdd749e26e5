// One compile's inputs by the include walk, hashed: everything the job route does per job
// before it talks to a peer, done synchronously so that it can run in a worker thread
// (walk-thread.ts) instead of on the agent's event loop, which then only decides, sends and
// receives. Each input comes back as a number in this scanner's catalog: the catalog defines a
// number once per (path, content, mode), the caller keeps one object per number, and every
// later job naming the same unchanged file costs one stat here and nothing there.
import { createHash } from 'node:crypto';
import { readFileSync, type Stats } from 'node:fs';
import path from 'node:path';
import { packChunkSync, type PackedChunk } from '../../protocol/compression.js';
import { MESH_JOB_LIMITS } from '../../protocol/messages.js';
import { mtimeSettled, numbersOf, sameStamp, type NumericStamp } from '../file-stamp.js';
import { writeStoreObjectSync } from '../store.js';
import { DirCache } from './dir-cache.js';
import { IncludeWalker } from './include-walk.js';
import { LocaleInputs } from './locale-inputs.js';
import type { SearchChains } from './search-probe.js';

export interface WalkScanRequest {
  /** Absolute path of the unit. */
  source: string;
  cwd: string;
  chains: SearchChains;
  /** -D definitions of the command, NAME → body. */
  defines: [string, string][];
  /** The locale variables of the job's environment (its locale data travels as inputs). */
  localeEnv: Record<string, string>;
}

/** A file hashed for the first time for a job, with its contents. */
export interface FreshFile {
  hash: string;
  data: Uint8Array;
  /** The contents as a near peer's offer carries them (packChunk's default quality), packed by
   *  the walk worker: a far peer's offer packs `data` harder. */
  packed?: PackedChunk;
}

/** [number, path, sha256 hex, size, executable]: a catalog entry the caller has not seen. */
export type CatalogEntry = [number, string, string, number, boolean];

export type WalkScanReply =
  | { ok: false; reason: string }
  | {
      ok: true;
      /** The job's inputs as catalog numbers. */
      inputs: number[];
      /** Entries new since the last reply. */
      defined: CatalogEntry[];
      /** Objects written into the store by this scan ([sha256, size]): files hashed for the
       *  first time or changed. The caller's store takes them into its index. */
      stored: [string, number][];
      /** Of those, the small ones' contents (sent with the job's offer: no peer holds them yet). */
      fresh: FreshFile[];
      /** Directories the compile walks through. */
      dirs: string[];
    };

interface Stated {
  stamp: NumericStamp;
  entry: number;
}

/** Every directory a path steps through, `..` steps included, as absolute normalised paths. */
export function stepDirectories(cwd: string, raw: string, isDir: boolean): string[] {
  const start = raw.startsWith('/') ? '/' : cwd;
  const parts = raw.split('/').filter((p) => p && p !== '.');
  if (!isDir) parts.pop();
  const dirs: string[] = [];
  let walked = start;
  for (const part of parts) {
    walked = path.join(walked, part);
    dirs.push(path.resolve(walked));
  }
  return dirs;
}

/** Absolute files of a scan and the directories the compiler steps through to reach them. */
export function filesAndDirs(cwd: string, rawFiles: string[], rawSearchDirs: string[]): { files: Set<string>; dirs: Set<string>; searchDirs: string[] } {
  const files = new Set<string>();
  const dirs = new Set<string>([cwd]);
  for (const raw of rawFiles) {
    const absolute = path.resolve(cwd, raw);
    files.add(absolute);
    if (raw === absolute) {
      // Already normal: its directories are its prefixes, most of them seen already.
      for (let dir = path.dirname(absolute); dir !== '/' && !dirs.has(dir); dir = path.dirname(dir)) dirs.add(dir);
    } else {
      for (const d of stepDirectories(cwd, raw, false)) dirs.add(d);
    }
  }
  const searchDirs: string[] = [];
  for (const raw of rawSearchDirs) {
    searchDirs.push(path.resolve(cwd, raw));
    for (const d of stepDirectories(cwd, raw, true)) dirs.add(d);
  }
  return { files, dirs, searchDirs };
}

export class WalkScanner {
  /** `storeDir`: the store's directory, into which scan() writes the files it reads (files()
   *  alone needs none). */
  constructor(private readonly storeDir?: string) {}

  private readonly dirCache = new DirCache();
  private readonly walker = new IncludeWalker(this.dirCache);
  private readonly locales = new LocaleInputs();
  private readonly stated = new Map<string, Stated>();
  /** (path, hash, size, executable) → catalog number */
  private readonly numbers = new Map<string, number>();

  /** The files and directories of one compile, or why the walk cannot tell them. */
  files(req: WalkScanRequest): { ok: true; files: Set<string>; dirs: Set<string> } | { ok: false; reason: string } {
    this.dirCache.nextEpoch();
    const outcome = this.walker.walk(req.source, req.chains, new Map(req.defines));
    if (!outcome.ok) return outcome;
    // Files __has_include asks about travel as inputs too (clang's -M lists them as read).
    const raw = [...outcome.result.rawPaths, ...outcome.result.probed, ...this.locales.filesFor(req.localeEnv)];
    return { ok: true, ...filesAndDirs(req.cwd, raw, req.chains.printed) };
  }

  /** The stats the last walk took, by path (one stat per file per job). */
  filesStated(): Map<string, Stats | undefined> {
    return this.dirCache.filesStated();
  }

  /** The compile's inputs as catalog numbers, every one hashed. */
  scan(req: WalkScanRequest): WalkScanReply {
    const walked = this.files(req);
    if (!walked.ok) return walked;
    const { files, dirs } = walked;
    const inputs: number[] = [];
    const defined: CatalogEntry[] = [];
    const stored: [string, number][] = [];
    const fresh: FreshFile[] = [];
    for (const file of files) {
      const st = this.dirCache.statFile(file);
      if (!st?.isFile()) return { ok: false, reason: `${file} is not a regular file` };
      inputs.push(this.numberOf(file, st, defined, stored, fresh));
    }
    packForOffer(fresh);
    return { ok: true, inputs, defined, stored, fresh, dirs: [...dirs] };
  }

  /** The file's catalog number: from the stat cache when unchanged, else read and hashed. */
  private numberOf(file: string, st: Stats, defined: CatalogEntry[], stored: [string, number][], fresh: FreshFile[]): number {
    const known = this.stated.get(file);
    if (known && sameStamp(st, known.stamp)) return known.entry;
    const data = readFileSync(file);
    const hash = createHash('sha256').update(data).digest('hex');
    const executable = (st.mode & 0o111) !== 0;
    const key = `${file}\0${hash}\0${data.length}\0${executable ? 1 : 0}`;
    let entry = this.numbers.get(key);
    if (entry === undefined) {
      entry = this.numbers.size;
      this.numbers.set(key, entry);
      defined.push([entry, file, hash, data.length, executable]);
    }
    // Stored each time it is read here (the store may have evicted an earlier copy).
    this.store(hash, data);
    stored.push([hash, data.length]);
    // Larger files are asked for by the peer, as any input.
    if (data.length <= MESH_JOB_LIMITS.inlineFileBytes) fresh.push({ hash, data });
    if (mtimeSettled(st) && data.length === st.size) {
      this.stated.set(file, { stamp: numbersOf(st), entry });
    } else {
      this.stated.delete(file);
    }
    return entry;
  }

  private store(hash: string, data: Uint8Array): void {
    if (!this.storeDir) throw new Error('a walk scan without a store');
    writeStoreObjectSync(this.storeDir, hash, data);
  }
}

/** Packs, here, the fresh files an offer can carry (job-client.ts inlineBlobs takes them in this
 *  order, as many and as many bytes as MESH_JOB_LIMITS allows): a first job's hundreds of
 *  fresh headers beyond them are asked for by the peer and never packed for the offer. */
function packForOffer(fresh: FreshFile[]): void {
  let bytes = 0;
  for (let i = 0; i < fresh.length && i < MESH_JOB_LIMITS.inlineBlobs && bytes <= MESH_JOB_LIMITS.inlineBlobBytes; i++) {
    const file = fresh[i]!;
    file.packed = packChunkSync(file.data);
    bytes += file.packed.data.length;
  }
}
