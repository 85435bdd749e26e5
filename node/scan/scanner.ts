// Scans one compile's inputs. The fast way reads include directives itself (include-walk.ts)
// over the compiler's own search chains (asked once per set of options); where that cannot
// be trusted, the original command with -M (no code generation) lists every file it reads.
// Either way the search directories' listings are added so that __has_include and
// missing-directory warnings behave in a job root exactly as on this machine.
import type { BigIntStats } from 'node:fs';
import path from 'node:path';
import type { DirListing } from '../../protocol/messages.js';
import { LeanSpawner } from '../spawner/lean-spawn.js';
import { DirCache } from './dir-cache.js';
import { IncludeWalker } from './include-walk.js';
import { LocaleInputs } from './locale-inputs.js';
import { parseMakeRule, parseSearchDirs } from './make-rule.js';
import { SearchProbe } from './search-probe.js';

export interface ScanOutput {
  /** Absolute, lexically normalised paths of every file the compile reads. */
  files: string[];
  /** Directories the compiler walks through (including `dir/..` steps) or searches. */
  dirs: string[];
  listings: DirListing[];
  /** 'walk' when the directives were read here, 'compiler' when -M listed the files. */
  method: 'walk' | 'compiler';
  /** Stats the scan took of its files, for the hasher (so that a job stats each file once). */
  stats: Map<string, BigIntStats | undefined>;
}

export interface ScanRequest {
  compiler: string;
  scanArgv: string[];
  cwd: string;
  env: Record<string, string>;
  /** With these two the fast walk may be used. */
  source?: string;
  language?: string;
}

export class ScanFailed extends Error {
  constructor(
    message: string,
    readonly stderr: string,
  ) {
    super(message);
  }
}

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

/** Options under which only the compiler knows what it reads. */
const WALK_UNSAFE = /^-fmodules|^-fimplicit-module-maps|^-fmodule-map-file|^-fprebuilt-module-path|^-include-pch|^--embed-dir|^-fdirectives-only/;

/** -DNAME=BODY and -D NAME=BODY of a command (-DNAME alone is 1, as the compiler defines it). */
export function commandDefines(argv: string[]): Map<string, string> {
  const defines = new Map<string, string>();
  for (let i = 1; i < argv.length; i++) {
    let definition: string | undefined;
    if (argv[i] === '-D') definition = argv[++i];
    else if (argv[i]!.startsWith('-D')) definition = argv[i]!.slice(2);
    if (definition === undefined) continue;
    const eq = definition.indexOf('=');
    if (eq < 0) defines.set(definition, '1');
    else defines.set(definition.slice(0, eq), definition.slice(eq + 1));
  }
  return defines;
}

export class InputScanner {
  private readonly dirCache = new DirCache();
  private readonly walker = new IncludeWalker(this.dirCache);
  private readonly probe: SearchProbe;
  private readonly locales = new LocaleInputs();
  /** How scans were made, and why the walk was not used: for the debug log and benchmarks. */
  readonly counts = { walk: 0, compiler: 0, reasons: new Map<string, number>() };

  constructor(
    private readonly spawner = new LeanSpawner(),
    private readonly walkEnabled = true,
  ) {
    this.probe = new SearchProbe(spawner);
  }

  async scan(req: ScanRequest): Promise<ScanOutput> {
    const why = await this.tryWalk(req);
    if (typeof why !== 'string') return why;
    this.counts.compiler++;
    this.counts.reasons.set(why, (this.counts.reasons.get(why) ?? 0) + 1);
    return this.scanWithCompiler(req);
  }

  /** Inputs no scan lists: the locale data of the job's environment. */
  private extraInputs(env: Record<string, string>): string[] {
    return this.locales.filesFor(env);
  }

  /** The walk's scan, or why it was not used. */
  private async tryWalk(req: ScanRequest): Promise<ScanOutput | string> {
    if (!this.walkEnabled) return 'disabled';
    if (req.source === undefined || req.language === undefined) return 'no source';
    if (req.scanArgv.some((a) => WALK_UNSAFE.test(a))) return 'module or embed options';
    let chains;
    try {
      chains = await this.probe.chains({ ...req, source: req.source, language: req.language });
    } catch (err) {
      return (err as Error).message;
    }
    this.dirCache.nextEpoch();
    const outcome = this.walker.walk(path.resolve(req.cwd, req.source), chains, commandDefines(req.scanArgv));
    if (!outcome.ok) return outcome.reason;
    this.counts.walk++;
    // Files __has_include asks about travel as inputs too (clang's -M lists them as read).
    return this.assemble(req.cwd, [...outcome.result.rawPaths, ...outcome.result.probed, ...this.extraInputs(req.env)], chains.printed, 'walk');
  }

  private async scanWithCompiler(req: ScanRequest): Promise<ScanOutput> {
    const r = await this.spawner.run({ file: req.compiler, args: req.scanArgv.slice(1), argv0: req.scanArgv[0], cwd: req.cwd, env: req.env, outputLimit: SCAN_OUTPUT_LIMIT });
    if (r.error && r.code === null) throw new ScanFailed(`cannot run the scan: ${r.error}`, '');
    const stdout = Buffer.from(r.stdout).toString();
    const stderr = Buffer.from(r.stderr).toString();
    const code = r.code ?? (r.signal ? 128 : 1);
    if (code !== 0) throw new ScanFailed(`the input scan exited with ${code}`, stderr);
    this.dirCache.nextEpoch();
    return this.assemble(req.cwd, [...parseMakeRule(stdout), ...this.extraInputs(req.env)], parseSearchDirs(stderr), 'compiler');
  }

  /**
   * A walk knows every file a compile may open or ask about, so its job root needs nothing
   * else; after -M, every search directory is listed whole (for __has_include).
   */
  private assemble(cwd: string, rawFiles: string[], rawSearchDirs: string[], method: ScanOutput['method']): ScanOutput {
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
    const listings = method === 'walk' ? [] : this.searchDirListings(searchDirs, files, dirs);
    return { files: [...files], dirs: [...dirs], listings, method, stats: this.dirCache.filesStated() };
  }

  private searchDirListings(searchDirs: string[], files: Set<string>, dirs: Set<string>): DirListing[] {
    const listed = new Set<string>(searchDirs);
    // Directories of inputs below a search directory are listed too: __has_include(<sys/x.h>).
    for (const file of files) {
      const dir = path.dirname(file);
      if (searchDirs.some((s) => dir.startsWith(s + '/'))) listed.add(dir);
    }
    const listings: DirListing[] = [];
    for (const dir of listed) {
      const listing = this.dirCache.listing(dir);
      if (listing) listings.push(listing);
      else dirs.delete(dir);
    }
    return listings;
  }
}
