// Scans one compile's inputs: the original command with -M (no code generation) lists
// every file it reads; the search directories' listings are added so that __has_include
// and missing-directory warnings behave in a job root exactly as on this machine.
import { promises as fs } from 'node:fs';
import path from 'node:path';
import type { DirListing } from '../../protocol/messages.js';
import { LeanSpawner } from '../spawner/lean-spawn.js';
import { parseMakeRule, parseSearchDirs } from './make-rule.js';

export interface ScanOutput {
  /** Absolute, lexically normalised paths of every file the compile reads. */
  files: string[];
  /** Directories the compiler walks through (including `dir/..` steps) or searches. */
  dirs: string[];
  listings: DirListing[];
}

export class ScanFailed extends Error {
  constructor(
    message: string,
    readonly stderr: string,
  ) {
    super(message);
  }
}

const MAX_LISTING_ENTRIES = 20_000;
const SCAN_OUTPUT_LIMIT = 64 * 1024 * 1024;

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

interface CachedListing {
  mtimeNs: bigint;
  listing: DirListing;
}

export class InputScanner {
  private readonly listings = new Map<string, CachedListing>();

  constructor(private readonly spawner = new LeanSpawner()) {}

  async scan(req: { compiler: string; scanArgv: string[]; cwd: string; env: Record<string, string> }): Promise<ScanOutput> {
    const { stdout, stderr, code } = await run(this.spawner, req.compiler, req.scanArgv, req.cwd, req.env);
    if (code !== 0) throw new ScanFailed(`the input scan exited with ${code}`, stderr);
    const rawFiles = parseMakeRule(stdout);
    const rawSearchDirs = parseSearchDirs(stderr);
    const files = new Set<string>();
    const dirs = new Set<string>([req.cwd]);
    for (const raw of rawFiles) {
      files.add(path.resolve(req.cwd, raw));
      for (const d of stepDirectories(req.cwd, raw, false)) dirs.add(d);
    }
    const searchDirs: string[] = [];
    for (const raw of rawSearchDirs) {
      const abs = path.resolve(req.cwd, raw);
      searchDirs.push(abs);
      for (const d of stepDirectories(req.cwd, raw, true)) dirs.add(d);
    }
    const listed = new Set<string>(searchDirs);
    // Directories of inputs below a search directory are listed too: __has_include(<sys/x.h>).
    for (const file of files) {
      const dir = path.dirname(file);
      if (searchDirs.some((s) => dir.startsWith(s + '/'))) listed.add(dir);
    }
    const listings: DirListing[] = [];
    for (const dir of listed) {
      const listing = await this.list(dir);
      if (listing) listings.push(listing);
      else dirs.delete(dir);
    }
    return { files: [...files], dirs: [...dirs], listings };
  }

  private async list(dir: string): Promise<DirListing | undefined> {
    const st = await fs.stat(dir, { bigint: true }).catch(() => undefined);
    if (!st?.isDirectory()) return undefined;
    const cached = this.listings.get(dir);
    if (cached && cached.mtimeNs === st.mtimeNs) return cached.listing;
    const dirents = await fs.readdir(dir, { withFileTypes: true });
    if (dirents.length > MAX_LISTING_ENTRIES) return undefined;
    const entries: DirListing['entries'] = [];
    for (const d of dirents) {
      let isDir = d.isDirectory();
      if (d.isSymbolicLink()) isDir = (await fs.stat(path.join(dir, d.name)).catch(() => undefined))?.isDirectory() ?? false;
      entries.push({ name: d.name, dir: isDir });
    }
    const listing = { path: dir, entries };
    this.listings.set(dir, { mtimeNs: st.mtimeNs, listing });
    return listing;
  }
}

async function run(
  spawner: LeanSpawner,
  compiler: string,
  argv: string[],
  cwd: string,
  env: Record<string, string>,
): Promise<{ stdout: string; stderr: string; code: number }> {
  const r = await spawner.run({ file: compiler, args: argv.slice(1), argv0: argv[0], cwd, env, outputLimit: SCAN_OUTPUT_LIMIT });
  if (r.error && r.code === null) throw new ScanFailed(`cannot run the scan: ${r.error}`, '');
  return { stdout: Buffer.from(r.stdout).toString(), stderr: Buffer.from(r.stderr).toString(), code: r.code ?? (r.signal ? 128 : 1) };
}
