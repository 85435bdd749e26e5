// Scans one compile's inputs. The fast way reads include directives itself (include-walk.ts)
// over the compiler's own search chains (asked once per set of options); where that cannot
// be trusted, the original command with -M (no code generation) lists every file it reads.
// Either way the search directories' listings are added so that __has_include and
// missing-directory warnings behave in a job root exactly as on this machine.
import type { Stats } from 'node:fs';
import path from 'node:path';
import type { DirListing, InputFile } from '../../protocol/messages.js';
import { LeanSpawner } from '../spawner/lean-spawn.js';
import { DirCache } from './dir-cache.js';
import type { InputHasher } from './hasher.js';
import { LocaleInputs } from './locale-inputs.js';
import { parseMakeRule, parseSearchDirs } from './make-rule.js';
import { SearchProbe, type SearchChains } from './search-probe.js';
import { filesAndDirs, WalkScanner, type FreshFile, type WalkScanRequest } from './walk-scan.js';
import type { WalkThread } from './walk-thread.js';

export interface ScanOutput {
  /** Absolute, lexically normalised paths of every file the compile reads. */
  files: string[];
  /** Directories the compiler walks through (including `dir/..` steps) or searches. */
  dirs: string[];
  listings: DirListing[];
  /** 'walk' when the directives were read here, 'compiler' when -M listed the files. */
  method: 'walk' | 'compiler';
  /** Stats the scan took of its files, for the hasher (so that a job stats each file once). */
  stats: Map<string, Stats | undefined>;
}

/** A scan whose inputs are hashed and in the store: what the job route sends. */
export interface HashedScan {
  inputs: InputFile[];
  /** The inputs this scan hashed for the first time, small ones with their contents (no peer can hold them yet). */
  fresh: FreshFile[];
  dirs: string[];
  listings: DirListing[];
  method: ScanOutput['method'];
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
  /** Listings and stats of the -M scan. */
  private readonly dirCache = new DirCache();
  /** The walk run here, for scans without hashing (tests, benchmarks). */
  private readonly walkHere = new WalkScanner();
  private readonly probe: SearchProbe;
  private readonly locales = new LocaleInputs();
  /** How scans were made, and why the walk was not used: for the debug log and benchmarks. */
  readonly counts = { walk: 0, compiler: 0, reasons: new Map<string, number>() };

  constructor(
    private readonly spawner = new LeanSpawner(),
    private readonly walkEnabled = true,
    /** Where the job route's walks run (a worker thread); without it they run here. */
    private readonly walkThread?: WalkThread,
  ) {
    this.probe = new SearchProbe(spawner);
  }

  /** The files a compile reads (not hashed). */
  async scan(req: ScanRequest): Promise<ScanOutput> {
    const walk = await this.walkRequest(req);
    if (typeof walk !== 'string') {
      const walked = this.walkHere.files(walk);
      if (walked.ok) {
        this.counts.walk++;
        return { files: [...walked.files], dirs: [...walked.dirs], listings: [], method: 'walk', stats: this.walkHere.filesStated() };
      }
      return this.scanWithCompiler(req, walked.reason);
    }
    return this.scanWithCompiler(req, walk);
  }

  /** The compile's inputs, hashed into the store: by the walk thread where it can, else by -M and the hasher. */
  async scanHashed(req: ScanRequest, hasher: InputHasher): Promise<HashedScan> {
    const walk = await this.walkRequest(req);
    let why = typeof walk === 'string' ? walk : undefined;
    if (typeof walk !== 'string' && this.walkThread) {
      const walked = await this.walkThread.scan(walk);
      if (walked.ok) {
        this.counts.walk++;
        return { inputs: walked.inputs, fresh: walked.fresh, dirs: walked.dirs, listings: [], method: 'walk' };
      }
      why = walked.reason;
    }
    const scan = typeof walk !== 'string' && !this.walkThread ? await this.scan(req) : await this.scanWithCompiler(req, why!);
    const inputs = await Promise.all(scan.files.map((f) => hasher.cached(f, scan.stats.get(f)) ?? hasher.hash(f, scan.stats.get(f))));
    return { inputs, fresh: [], dirs: scan.dirs, listings: scan.listings, method: scan.method };
  }

  /** What the walk needs, or why the walk cannot be used. */
  private async walkRequest(req: ScanRequest): Promise<WalkScanRequest | string> {
    if (!this.walkEnabled) return 'disabled';
    if (req.source === undefined || req.language === undefined) return 'no source';
    if (req.scanArgv.some((a) => WALK_UNSAFE.test(a))) return 'module or embed options';
    let chains: SearchChains;
    try {
      chains = await this.probe.chains({ ...req, source: req.source, language: req.language });
    } catch (err) {
      return (err as Error).message;
    }
    const { LC_ALL, LC_CTYPE, LC_MESSAGES, LANG } = req.env;
    const localeEnv = Object.fromEntries(Object.entries({ LC_ALL, LC_CTYPE, LC_MESSAGES, LANG }).filter((e): e is [string, string] => e[1] !== undefined));
    return { source: path.resolve(req.cwd, req.source), cwd: req.cwd, chains, defines: [...commandDefines(req.scanArgv)], localeEnv };
  }

  private async scanWithCompiler(req: ScanRequest, whyNotWalk: string): Promise<ScanOutput> {
    this.counts.compiler++;
    this.counts.reasons.set(whyNotWalk, (this.counts.reasons.get(whyNotWalk) ?? 0) + 1);
    const r = await this.spawner.run({ file: req.compiler, args: req.scanArgv.slice(1), argv0: req.scanArgv[0], cwd: req.cwd, env: req.env, outputLimit: SCAN_OUTPUT_LIMIT });
    if (r.error && r.code === null) throw new ScanFailed(`cannot run the scan: ${r.error}`, '');
    const stdout = Buffer.from(r.stdout).toString();
    const stderr = Buffer.from(r.stderr).toString();
    const code = r.code ?? (r.signal ? 128 : 1);
    if (code !== 0) throw new ScanFailed(`the input scan exited with ${code}`, stderr);
    this.dirCache.nextEpoch();
    const { files, dirs, searchDirs } = filesAndDirs(req.cwd, [...parseMakeRule(stdout), ...this.locales.filesFor(req.env)], parseSearchDirs(stderr));
    // After -M every search directory is listed whole (for __has_include); a walk knows every
    // file a compile may open or ask about, so its job root needs nothing else.
    const listings = this.searchDirListings(searchDirs, files, dirs);
    return { files: [...files], dirs: [...dirs], listings, method: 'compiler', stats: this.dirCache.filesStated() };
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
