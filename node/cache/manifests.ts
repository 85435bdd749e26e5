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
import { mkdirSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync, type BigIntStats } from 'node:fs';
import path from 'node:path';
import { z } from 'zod';
import { decodeBody, encodeBody } from '../../protocol/framing.js';
import type { InputFile } from '../../protocol/messages.js';
import { parseMessage } from '../../protocol/messages.js';
import { sha256 } from '../store.js';

const Manifest = z.object({
  result: z.string(),
  files: z.array(z.tuple([z.string(), z.string(), z.string().optional()])),
  /** [directory, its stat stamp or '' when too new, names that must not appear in it] */
  dirs: z.array(z.tuple([z.string(), z.string(), z.array(z.string())])),
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
const KEEP_IN_MEMORY = 100_000;

function stamp(st: BigIntStats): string {
  return `${st.dev}:${st.ino}:${st.size}:${st.mtimeNs}:${st.ctimeNs}:${st.mode}`;
}

function statOf(p: string): BigIntStats | undefined {
  return statSync(p, { bigint: true, throwIfNoEntry: false });
}

export class Manifests {
  private readonly memory = new Map<string, Manifest>();
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
    for (const [dir, known, absent] of manifest.dirs) {
      const st = statOf(dir);
      if (!st || !st.isDirectory()) return undefined;
      if (known && stamp(st) === known) continue;
      let names: Set<string>;
      try {
        names = new Set(readdirSync(dir));
      } catch {
        return undefined;
      }
      if (absent.some((n) => names.has(n))) return undefined;
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
    const relatives = new Set<string>();
    for (const f of inputs) {
      for (const s of chains.searchDirs) if (f.path.startsWith(s + '/')) relatives.add(f.path.slice(s.length + 1));
    }
    const bases = new Set<string>(chains.searchDirs);
    for (const f of inputs) bases.add(path.dirname(f.path));
    const listings = new Map<string, Set<string> | undefined>();
    const listing = (dir: string) => {
      if (!listings.has(dir)) {
        let names: Set<string> | undefined;
        try {
          names = new Set(readdirSync(dir));
        } catch {
          names = undefined;
        }
        listings.set(dir, names);
      }
      return listings.get(dir);
    };
    const absentIn = new Map<string, Set<string>>();
    const missing = new Set<string>(chains.missingDirs);
    for (const base of bases) {
      if (!listing(base)) {
        missing.add(base);
        continue;
      }
      for (const rel of relatives) {
        const parts = rel.split('/');
        let dir = base;
        for (let i = 0; i < parts.length; i++) {
          const names = listing(dir);
          if (!names) break;
          const name = parts[i]!;
          const next = path.join(dir, name);
          if (!names.has(name)) {
            let set = absentIn.get(dir);
            if (!set) absentIn.set(dir, (set = new Set()));
            set.add(name);
            break;
          }
          if (i === parts.length - 1) {
            // A file there now that the scan did not take: fine if it was there before the scan.
            if (!inputPaths.has(next)) {
              const st = statOf(next);
              if (st && fresh(st)) return false;
            }
            break;
          }
          dir = next;
        }
      }
    }
    const dirs: Manifest['dirs'] = [];
    for (const [dir, absent] of absentIn) {
      const st = statOf(dir);
      if (!st) return false;
      // The directory's entries were read just now, after the scan: a name that appeared in
      // between would be in them; so the read entries must agree with the names checked.
      dirs.push([dir, fresh(st) ? '' : stamp(st), [...absent].sort()]);
    }
    for (const p of missing) if (statOf(p)) return false;
    const manifest: Manifest = { result, files, dirs, missing: [...missing] };
    this.remember(key, manifest);
    this.save(key, manifest);
    return true;
  }

  clear(): number {
    const n = this.memory.size;
    this.memory.clear();
    rmSync(this.dir, { recursive: true, force: true });
    return n;
  }

  private load(key: string): Manifest | undefined {
    const held = this.memory.get(key);
    if (held) return held;
    try {
      const manifest = parseMessage(Manifest, decodeBody(readFileSync(this.fileOf(key))));
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

  private save(key: string, manifest: Manifest): void {
    const file = this.fileOf(key);
    try {
      mkdirSync(path.dirname(file), { recursive: true });
      const temp = `${file}.${randomBytes(4).toString('hex')}`;
      writeFileSync(temp, encodeBody(manifest));
      renameSync(temp, file);
    } catch {
      // Kept in memory; the next agent scans again.
    }
  }

  private fileOf(key: string): string {
    return path.join(this.dir, key.slice(0, 2), key);
  }
}
