// Direct mode, as ccache's manifests: what the last scan of a command found, so that the
// next identical command can name its result key without scanning. A manifest lists every
// input with its hash and stat data, and, for every place where a new file would shadow an
// input (the same relative name earlier or later on the search chains, or beside an
// includer), the directory and the names that must stay absent. A check stats exactly those
// files (hashing one only when its stat data changed) and directories (reading one's entries
// only when its own stat data changed). Stat data newer than the scan's start minus two
// seconds is not trusted (a file can change twice within one timestamp tick): such a file is
// hashed at every check; a directory is read at every check.
import { randomBytes } from 'node:crypto';
import { promises as fs, readdirSync, readFileSync, rmSync, statSync, type BigIntStats } from 'node:fs';
import path from 'node:path';
import { z } from 'zod';
import type { InputFile } from '../../protocol/messages.js';
import { parseMessage } from '../../protocol/messages.js';
import { sha256 } from '../store.js';

const Manifest = z.object({
  result: z.string(),
  files: z.array(z.tuple([z.string(), z.string(), z.string().optional()])),
  /** Every input's name relative to each search directory that holds it: the names a new file could shadow. */
  relatives: z.array(z.string()),
  /** [directory, its stat stamp or '' when too new, the relative name it stands for ('' for a
   *  base), the names below that prefix that exist there]: any other name below the prefix
   *  appearing there would shadow an input. */
  dirs: z.array(z.tuple([z.string(), z.string(), z.string(), z.array(z.string())])),
  /** Paths that must not exist (a search directory the compiler skipped, say). */
  missing: z.array(z.string()),
});
type Manifest = z.infer<typeof Manifest>;

export interface ManifestChains {
  /** Every search directory (quote-only and bracket), in order. */
  searchDirs: readonly string[];
  /** Search directories that did not exist. */
  missingDirs: readonly string[];
}

const SETTLE_NS = 2_000_000_000n;

/** Relative names of inputs, one level per path component. */
type NameTree = Map<string, NameTree>;
const KEEP_IN_MEMORY = 100_000;

function stamp(st: BigIntStats): string {
  return `${st.dev}:${st.ino}:${st.size}:${st.mtimeNs}:${st.ctimeNs}:${st.mode}`;
}

function statOf(p: string): BigIntStats | undefined {
  return statSync(p, { bigint: true, throwIfNoEntry: false });
}

/** The relative names as a tree, and the subtree under a prefix ('' for the whole). */
function nameTree(relatives: readonly string[]): NameTree {
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

function subtree(root: NameTree, prefix: string): NameTree | undefined {
  let node: NameTree | undefined = root;
  if (prefix) for (const part of prefix.split('/')) node = node?.get(part);
  return node;
}

const LISTINGS_KEPT = 20_000;
const SAVE_AFTER_MS = 2000;

export class Manifests {
  private readonly memory = new Map<string, Manifest>();
  private readonly unsaved = new Map<string, Manifest>();
  private flushing?: NodeJS.Timeout;
  private readonly trees = new WeakMap<Manifest, NameTree>();
  /** Directory entries read for earlier records, with the directory's stamp then. */
  private readonly listings = new Map<string, { stamp: string; names: Set<string> }>();
  /** Checks that found a file's stat data changed but its content not: counted, for the figures. */
  readonly counts = { checked: 0, matched: 0, rehashed: 0 };

  constructor(private readonly dir: string) {}

  /** The result key if every file and directory the manifest lists is as it was; else undefined. */
  check(key: string): string | undefined {
    const manifest = this.load(key);
    if (!manifest) return undefined;
    this.counts.checked++;
    for (const [file, hash, known] of manifest.files) {
      const st = statOf(file);
      if (!st || !st.isFile()) return undefined;
      if (known && stamp(st) === known) continue;
      this.counts.rehashed++;
      let data: Buffer;
      try {
        data = readFileSync(file);
      } catch {
        return undefined;
      }
      if (sha256(data) !== hash) return undefined;
    }
    for (const [dir, known, prefix, present] of manifest.dirs) {
      const st = statOf(dir);
      if (!st || !st.isDirectory()) return undefined;
      if (known && stamp(st) === known) continue;
      let entries: string[];
      try {
        entries = readdirSync(dir);
      } catch {
        return undefined;
      }
      let tree = this.trees.get(manifest);
      if (!tree) this.trees.set(manifest, (tree = nameTree(manifest.relatives)));
      const watched = subtree(tree, prefix);
      if (!watched) return undefined;
      const there = new Set(present);
      if (entries.some((n) => watched.has(n) && !there.has(n))) return undefined;
    }
    for (const p of manifest.missing) if (statOf(p)) return undefined;
    this.counts.matched++;
    return manifest.result;
  }

  /** Records what a scan found for this manifest key; `scanStartedMs` is when the scan began
   *  (epoch ms). Nothing is recorded when the tree changed since in a way a check could miss. */
  record(key: string, result: string, inputs: readonly InputFile[], chains: ManifestChains, scanStartedMs: number): boolean {
    const trustBefore = BigInt(Math.floor(scanStartedMs * 1e6)) - SETTLE_NS;
    const fresh = (st: BigIntStats) => st.mtimeNs >= trustBefore || st.ctimeNs >= trustBefore;
    const inputPaths = new Set(inputs.map((f) => f.path));
    const files: Manifest['files'] = [];
    for (const f of inputs) {
      const st = statOf(f.path);
      if (!st || !st.isFile()) return false;
      files.push(st.size === BigInt(f.size) && !fresh(st) ? [f.path, f.hash, stamp(st)] : [f.path, f.hash]);
    }
    // Every place a new file would shadow an input: its name relative to each search
    // directory that holds it, under every search directory and every includer's directory.
    // The names form a tree (sys/ → types.h, …), walked once per base against its entries.
    const relatives = new Set<string>();
    for (const f of inputs) for (const s of chains.searchDirs) if (f.path.startsWith(s + '/')) relatives.add(f.path.slice(s.length + 1));
    const names = nameTree([...relatives]);
    const bases = new Set<string>(chains.searchDirs);
    for (const f of inputs) bases.add(path.dirname(f.path));
    const dirs: Manifest['dirs'] = [];
    const missing = new Set<string>(chains.missingDirs);
    const visited = new Set<string>();
    let settled = true;
    /** Records what shadowing to watch under `dir`; false when it is not a directory. */
    const walk = (dir: string, tree: NameTree, prefix: string): boolean => {
      const read = this.listing(dir, fresh);
      if (!read) {
        if (prefix === '') missing.add(dir);
        return false;
      }
      if (visited.has(`${dir}\0${prefix}`)) return true;
      visited.add(`${dir}\0${prefix}`);
      const present: string[] = [];
      for (const [name, below] of tree) {
        if (!read.names.has(name)) continue;
        const there = dir === '/' ? `/${name}` : `${dir}/${name}`;
        // A name that should be a directory but is not: any change of this directory is a miss.
        if (below.size > 0 && !walk(there, below, prefix ? `${prefix}/${name}` : name)) continue;
        present.push(name);
        if (below.size === 0 && !inputPaths.has(there)) {
          // A file there now that the scan did not take: fine if it was there before the scan.
          const st = statOf(there);
          if (st && fresh(st)) settled = false;
        }
      }
      if (present.length < tree.size) dirs.push([dir, read.stamp, prefix, present]);
      return true;
    };
    for (const base of bases) {
      walk(base, names, '');
      if (!settled) return false;
    }
    for (const p of missing) if (statOf(p)) return false;
    const manifest: Manifest = { result, files, relatives: [...relatives], dirs, missing: [...missing] };
    this.remember(key, manifest);
    this.save(key, manifest);
    return true;
  }

  /** A directory's entries and its stamp ('' when too new to trust): read again unless its stamp is the one of the entries kept. */
  private listing(dir: string, fresh: (st: BigIntStats) => boolean): { stamp: string; names: Set<string> } | undefined {
    const st = statOf(dir);
    if (!st || !st.isDirectory()) return undefined;
    const now = fresh(st) ? '' : stamp(st);
    const kept = this.listings.get(dir);
    if (now && kept && kept.stamp === now) return kept;
    let names: Set<string>;
    try {
      names = new Set(readdirSync(dir));
    } catch {
      return undefined;
    }
    // The entries are read after the stat: a change in between makes the stamp older than them, never newer.
    const read = { stamp: now, names };
    if (now) {
      if (this.listings.size >= LISTINGS_KEPT) this.listings.clear();
      this.listings.set(dir, read);
    }
    return read;
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
      const manifest = parseMessage(Manifest, JSON.parse(readFileSync(this.fileOf(key), 'utf8')));
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
