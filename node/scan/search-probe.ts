// The include search chains of a compile, asked of the compiler once per distinct set of
// options: the same command over an empty file of the same language, with -M -v. Its -v
// output gives the quote-only and the bracket directories in the compiler's order, and its
// make rule the files every unit of this command reads before its own source (gcc's
// stdc-predef.h, -include files). Macro definitions cannot change the chains, so -D and -U
// are left out of the key and of the probe: a project's units then share one probe.
import { statSync } from 'node:fs';
import path from 'node:path';
import type { LeanSpawner } from '../spawner/lean-spawn.js';
import { parseMakeRule, parseSearchLists } from './make-rule.js';

export interface SearchChains {
  /** Searched for "name" after the including file's directory: quote-only dirs, then bracket dirs. */
  quote: string[];
  /** Searched for <name>. */
  bracket: string[];
  /** Every directory of both, once each, in order: where #include_next may land. */
  all: string[];
  /** The same directories as the compiler printed them (relative ones unresolved). */
  printed: string[];
  /** Absolute paths of files read before the source (not /dev/null). */
  implicit: string[];
  /** Directories the compiler skipped because they did not exist: if one appears, probe again. */
  ignored: string[];
}

export interface ProbeRequest {
  compiler: string;
  /** The scan command (analysis.scanArgv), argv[0] included. */
  scanArgv: string[];
  /** The source as written on the command line (removed from the probe). */
  source: string;
  language: string;
  cwd: string;
  env: Record<string, string>;
}

const PROBE_OUTPUT_LIMIT = 4 * 1024 * 1024;

export class SearchProbe {
  private readonly cache = new Map<string, Promise<SearchChains>>();

  constructor(private readonly spawner: LeanSpawner) {}

  async chains(req: ProbeRequest): Promise<SearchChains> {
    const argv = probeArgv(req);
    const key = [req.compiler, req.cwd, ...argv].join('\0');
    const cached = this.cache.get(key);
    if (cached) {
      const chains = await cached.catch(() => undefined);
      if (chains && !chains.ignored.some(exists)) return chains;
      this.cache.delete(key);
    }
    const probing = this.probe(req, argv);
    this.cache.set(key, probing);
    return probing;
  }

  private async probe(req: ProbeRequest, argv: string[]): Promise<SearchChains> {
    const r = await this.spawner.run({ file: req.compiler, args: argv.slice(1), argv0: argv[0], cwd: req.cwd, env: req.env, outputLimit: PROBE_OUTPUT_LIMIT });
    if (r.code !== 0) throw new Error(`the include probe exited with ${r.code ?? r.signal ?? r.error}`);
    const chains = parseChains(Buffer.from(r.stderr).toString(), req.cwd);
    chains.implicit = parseMakeRule(Buffer.from(r.stdout).toString())
      .filter((f) => f !== '/dev/null')
      .map((f) => path.resolve(req.cwd, f));
    return chains;
  }
}

/** The scan command with the source replaced by an empty file of its language, without -D/-U. */
export function probeArgv(req: Pick<ProbeRequest, 'scanArgv' | 'source' | 'language'>): string[] {
  const argv: string[] = [req.scanArgv[0]!];
  const sourceAt = req.scanArgv.lastIndexOf(req.source);
  for (let i = 1; i < req.scanArgv.length; i++) {
    const arg = req.scanArgv[i]!;
    if (i === sourceAt) continue;
    if (arg === '-D' || arg === '-U') {
      i++;
      continue;
    }
    if (arg.startsWith('-D') || arg.startsWith('-U')) continue;
    argv.push(arg);
  }
  argv.push('-x', req.language, '/dev/null');
  return argv;
}

/** The chains of `-v`'s two lists, resolved against the cwd; `printed` keeps them as written
 *  (a relative `-Ifoo/../inc` needs foo to exist in a job root too). */
export function parseChains(stderr: string, cwd: string): SearchChains {
  const lists = parseSearchLists(stderr);
  const resolve = (dirs: string[]) => dirs.map((d) => path.resolve(cwd, d));
  const bracket = resolve(lists.bracket);
  const quote = [...resolve(lists.quoteOnly), ...bracket];
  return {
    quote,
    bracket,
    all: [...new Set(quote)],
    printed: [...new Set([...lists.quoteOnly, ...lists.bracket])],
    implicit: [],
    ignored: resolve(lists.ignored),
  };
}

/** Asked for every job (of each ignored directory): no exception for the usual answer, no. */
function exists(dir: string): boolean {
  try {
    return statSync(dir, { throwIfNoEntry: false })?.isDirectory() === true;
  } catch {
    return false;
  }
}
