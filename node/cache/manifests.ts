// Direct mode, as ccache's manifests: what the last scan of a command found, so that the
// next identical command can name its result key without scanning. A manifest lists every
// input with its hash and stat data, and, for every place where a new file would shadow an
// input (the same relative name earlier or later on the search chains, or beside an
// includer), the directory and the names that must stay absent there. A check stats exactly
// those files (hashing one only when its stat data changed) and directories (looking for the
// absent names only when a directory's own stat data changed). Stat data newer than the
// scan's start minus two seconds is not trusted (a file can change twice within one
// timestamp tick): such a file is hashed at every check, such a directory looked into.
// Manifests are also shared through the mesh (result-cache.ts), without their stat data,
// which means nothing on another machine: a member's manifest is checked by content.
import { randomBytes } from 'node:crypto';
import { promises as fs, readFileSync, rmSync, type Stats } from 'node:fs';
import path from 'node:path';
import type { InputFile } from '../../protocol/messages.js';
import { numericStamp, sameStamp, stampOf, type NumericStamp } from '../file-stamp.js';
import { FileState, monotonicUs } from './file-state.js';

/** What a scan found, as direct mode checks it (isManifest below checks the shape of one read). */
export interface Manifest {
  result: string;
  /** [path, sha256, stat stamp (absent when too new, or from another machine)] */
  files: ([string, string] | [string, string, string])[];
  /** [directory, its stat stamp or '' (too new, or shared), names that must stay absent there] */
  dirs: [string, string, string[]][];
  /** Paths that must not exist (a search directory the compiler skipped, say). */
  missing: string[];
}

export interface ManifestChains {
  /** Every search directory (quote-only and bracket), in order. */
  searchDirs: readonly string[];
  /** Search directories that did not exist. */
  missingDirs: readonly string[];
}

const SETTLE_MS = 2000;

/** Relative names of inputs, one level per path component. */
type NameTree = Map<string, NameTree>;
const KEEP_IN_MEMORY = 100_000;
/** A changed directory is checked by a stat of each absent name, not read whole, while that is
 *  cheaper: a stat of a missing name costs about as much as three entries of a listing (measured:
 *  300 missing names 0.5 ms, a listing of 500 entries 0.3 ms), and stats are shared by checks. */
const STAT_ABSENT_UP_TO = 48;
const ENTRIES_PER_ABSENT_STAT = 3;

/** The relative names as a tree. */
function nameTree(relatives: Iterable<string>): NameTree {
  const root: NameTree = new Map();
  for (const rel of relatives) {
    let node = root;
    for (const part of rel.split('/')) {
      let next = node.get(part);
      if (!next) node.set(part, (next = new Map()));
      node = next;
    }
  }
  return root;
}

const SAVE_AFTER_MS = 2000;

const isString = (v: unknown): v is string => typeof v === 'string';
const isStrings = (v: unknown): v is string[] => Array.isArray(v) && v.every(isString);

/** The shape of a manifest (a member's, or one read from disk), checked by hand: zod took 1.7 ms
 *  for a kernel unit's thousand files, a loop of typeof takes microseconds. What it names is
 *  checked on disk. */
export function isManifest(v: unknown): v is Manifest {
  if (typeof v !== 'object' || v === null) return false;
  const m = v as Record<string, unknown>;
  if (typeof m.result !== 'string' || !/^[0-9a-f]{64}$/.test(m.result) || !isStrings(m.missing)) return false;
  if (!Array.isArray(m.files) || !m.files.every((f) => Array.isArray(f) && (f.length === 2 || f.length === 3) && f.every(isString))) return false;
  return Array.isArray(m.dirs) && m.dirs.every((d) => Array.isArray(d) && d.length === 3 && isString(d[0]) && isString(d[1]) && isStrings(d[2]));
}


/** The manifest as another machine can use it: stat data means nothing there. */
export function forSharing(manifest: Manifest): Manifest {
  return { ...manifest, files: manifest.files.map(([file, hash]) => [file, hash]), dirs: manifest.dirs.map(([dir, , absent]) => [dir, '', absent]) };
}

export class Manifests {
  private readonly memory = new Map<string, Manifest>();
  private readonly unsaved = new Map<string, Manifest>();
  private flushing?: NodeJS.Timeout;
  private readonly files = new FileState();
  /** Each manifest's stamps as numbers (stampsOf). */
  private readonly stamps = new WeakMap<Manifest, { files: (NumericStamp | undefined)[]; dirs: (NumericStamp | undefined)[] }>();
  /** Checks that found a file's stat data changed but its content not: counted, for the figures. */
  readonly counts = { checked: 0, matched: 0, rehashed: 0 };

  constructor(private readonly dir: string) {}

  /** The result key if every file and directory the manifest of `key` lists is as it was;
   *  `notBeforeUs`: when the command started (CLOCK_MONOTONIC µs), which stats may be reused from. */
  check(key: string, notBeforeUs = monotonicUs()): string | undefined {
    const manifest = this.load(key);
    return manifest ? this.matches(manifest, notBeforeUs) : undefined;
  }

  /** The result key if the files and directories of this manifest (a member's, say) are as it lists. */
  matches(manifest: Manifest, notBeforeUs = monotonicUs()): string | undefined {
    const nowUs = monotonicUs();
    const files = this.files;
    const stamps = this.stampsOf(manifest);
    this.counts.checked++;
    for (let i = 0; i < manifest.files.length; i++) {
      const [file, hash] = manifest.files[i]!;
      const st = files.stat(file, notBeforeUs, nowUs);
      if (!st || !st.isFile()) return undefined;
      const known = stamps.files[i];
      if (known && sameStamp(st, known)) continue;
      this.counts.rehashed++;
      if (files.hash(file, st) !== hash) return undefined;
    }
    for (let i = 0; i < manifest.dirs.length; i++) {
      const [dir, , absent] = manifest.dirs[i]!;
      const st = files.stat(dir, notBeforeUs, nowUs);
      if (!st || !st.isDirectory()) return undefined;
      const known = stamps.dirs[i];
      if (known && sameStamp(st, known)) continue;
      if (absent.length <= Math.max(STAT_ABSENT_UP_TO, files.entriesOf(dir) / ENTRIES_PER_ABSENT_STAT)) {
        for (const name of absent) if (files.stat(dir === '/' ? `/${name}` : `${dir}/${name}`, notBeforeUs, nowUs)) return undefined;
        continue;
      }
      const names = files.names(dir, st, notBeforeUs, nowUs);
      if (!names || absent.some((n) => names.has(n))) return undefined;
    }
    for (const p of manifest.missing) if (files.stat(p, notBeforeUs, nowUs)) return undefined;
    this.counts.matched++;
    return manifest.result;
  }

  /** The manifest's stamps as numbers, parsed once. */
  private stampsOf(manifest: Manifest): { files: (NumericStamp | undefined)[]; dirs: (NumericStamp | undefined)[] } {
    let stamps = this.stamps.get(manifest);
    if (!stamps) this.stamps.set(manifest, (stamps = { files: manifest.files.map(([, , s]) => numericStamp(s)), dirs: manifest.dirs.map(([, s]) => numericStamp(s)) }));
    return stamps;
  }

  /** Records what a scan found for this manifest key; `scanStartedMs` is when the scan began
   *  (epoch ms). Nothing is recorded when the tree changed since in a way a check could miss. */
  record(key: string, result: string, inputs: readonly InputFile[], chains: ManifestChains, scanStartedMs: number): Manifest | undefined {
    const trustBefore = scanStartedMs - SETTLE_MS;
    const fresh = (st: Stats) => st.mtimeMs >= trustBefore || st.ctimeMs >= trustBefore;
    const inputPaths = new Set(inputs.map((f) => f.path));
    const files: Manifest['files'] = [];
    const nowUs = monotonicUs();
    const statOf = (p: string) => this.files.stat(p, nowUs, nowUs);
    for (const f of inputs) {
      const st = statOf(f.path);
      if (!st || !st.isFile()) return undefined;
      files.push(st.size === f.size && !fresh(st) ? [f.path, f.hash, stampOf(st)] : [f.path, f.hash]);
    }
    // Every place a new file would shadow an input: its name relative to each search
    // directory that holds it, under every search directory and every includer's directory.
    // The names form a tree (sys/ → types.h, …), walked once per base against its entries.
    const relatives = new Set<string>();
    for (const f of inputs) for (const s of chains.searchDirs) if (f.path.startsWith(s + '/')) relatives.add(f.path.slice(s.length + 1));
    const names = nameTree(relatives);
    const bases = new Set<string>(chains.searchDirs);
    for (const f of inputs) bases.add(path.dirname(f.path));
    const dirs: Manifest['dirs'] = [];
    const missing = new Set<string>(chains.missingDirs);
    const visited = new Set<string>();
    let settled = true;
    /** Records what shadowing to watch under `dir`; false when it is not a directory. */
    const walk = (dir: string, tree: NameTree, prefix: string): boolean => {
      const st = statOf(dir);
      const entries = st?.isDirectory() ? this.files.names(dir, st, nowUs, nowUs) : undefined;
      if (!st || !entries) {
        if (prefix === '') missing.add(dir);
        return false;
      }
      if (visited.has(`${dir}\0${prefix}`)) return true;
      visited.add(`${dir}\0${prefix}`);
      const absent: string[] = [];
      for (const [name, below] of tree) {
        if (!entries.has(name)) {
          absent.push(name);
          continue;
        }
        const there = dir === '/' ? `/${name}` : `${dir}/${name}`;
        // A name that should be a directory but is not: any change of this directory is a miss.
        if (below.size > 0 && !walk(there, below, prefix ? `${prefix}/${name}` : name)) {
          absent.push(name);
          continue;
        }
        if (below.size === 0 && !inputPaths.has(there)) {
          // A file there now that the scan did not take: fine if it was there before the scan.
          const other = statOf(there);
          if (other && fresh(other)) settled = false;
        }
      }
      if (absent.length > 0) dirs.push([dir, fresh(st) ? '' : stampOf(st), absent]);
      return true;
    };
    for (const base of bases) {
      walk(base, names, '');
      if (!settled) return undefined;
    }
    for (const p of missing) if (statOf(p)) return undefined;
    const manifest: Manifest = { result, files, dirs, missing: [...missing] };
    // Parsed now, off the path of the check that will need them.
    this.stampsOf(manifest);
    this.remember(key, manifest);
    this.save(key, manifest);
    return manifest;
  }

  clear(): number {
    const n = this.memory.size;
    this.memory.clear();
    this.unsaved.clear();
    rmSync(this.dir, { recursive: true, force: true });
    return n;
  }

  private load(key: string): Manifest | undefined {
    const held = this.memory.get(key);
    if (held) return held;
    try {
      const manifest: unknown = JSON.parse(readFileSync(this.fileOf(key), 'utf8'));
      if (!isManifest(manifest)) return undefined;
      this.remember(key, manifest);
      return manifest;
    } catch {
      return undefined;
    }
  }

  private remember(key: string, manifest: Manifest): void {
    this.memory.delete(key);
    this.memory.set(key, manifest);
    if (this.memory.size > KEEP_IN_MEMORY) this.memory.delete(this.memory.keys().next().value!);
  }

  /** Written to disk in batches, off the compile's path (a manifest lost in a crash costs one scan). */
  private save(key: string, manifest: Manifest): void {
    this.unsaved.set(key, manifest);
    if (this.flushing) return;
    this.flushing = setTimeout(() => void this.flush(), SAVE_AFTER_MS);
    this.flushing.unref();
  }

  async flush(): Promise<void> {
    clearTimeout(this.flushing);
    this.flushing = undefined;
    const batch = [...this.unsaved];
    this.unsaved.clear();
    for (const [key, manifest] of batch) {
      const file = this.fileOf(key);
      try {
        await fs.mkdir(path.dirname(file), { recursive: true });
        const temp = `${file}.${randomBytes(4).toString('hex')}`;
        await fs.writeFile(temp, JSON.stringify(manifest));
        await fs.rename(temp, file);
      } catch {
        // Kept in memory; the next agent scans again.
      }
    }
  }

  private fileOf(key: string): string {
    return path.join(this.dir, key.slice(0, 2), key);
  }
}
