// The files a compile may read, found without running the compiler: from the source and the
// implicit files, follow every include directive (all #if branches) through the search
// chains, first match wins as in the compiler; #include_next takes every match further on.
// Computed includes are followed through every definition of their macros in the files found
// (macro-expand.ts). The result is a superset of what the compiler opens. Where it cannot be
// (a computed include that cannot be bounded, a precompiled header beside a header), the walk
// gives up and the caller asks the compiler. A file the walk missed is never silently wrong in a job: a job root's
// placeholder for a listed-but-unsent file stops the compile with an error, which sends the
// job back to a local compile.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { functionParams, readDirectives, type DirectiveKind, type FileDirectives } from './directives.js';
import { mtimeSettled, numbersOf, sameStamp, type NumericStamp } from '../file-stamp.js';
import type { DirCache } from './dir-cache.js';
import { expandIncludeOperand, type DefinitionsOf, type FunctionMacro, type MacroDefinitions } from './macro-expand.js';
import type { SearchChains } from './search-probe.js';

export interface WalkResult {
  /** Absolute, normalised paths of every file found. */
  files: string[];
  /** Files that exist where a __has_include looks (found or not): a job root must show them. */
  probed: string[];
  /** Unnormalised paths as the compiler would open them (`dir/../x.h`), for their `..` steps. */
  rawPaths: string[];
}

export type WalkOutcome = { ok: true; result: WalkResult } | { ok: false; reason: string };

/** A file's own includes resolved: absolute and raw path pairs, flattened. */
interface FileEdges {
  directives: FileDirectives;
  /** the directories the resolution looked up in, and their versions then */
  dirs: string[];
  versions: number[];
  found: string[];
  probed: string[];
  failure?: string;
}

interface CachedDirectives {
  stamp: NumericStamp;
  parsed: FileDirectives;
}

/** Files bigger than this are not read for directives (a generated table is no header). */
const MAX_PARSED_BYTES = 16 * 1024 * 1024;

export class IncludeWalker {
  private readonly parsed = new Map<string, CachedDirectives>();
  /** Macro name → the kept files' directives that define it: a computed include looks up a
   *  few names among thousands of definitions, on every walk. */
  private readonly definers = new Map<string, Set<FileDirectives>>();
  private readonly indexed = new WeakSet<FileDirectives>();
  /** Each file's resolved includes, per set of search chains (one object per probe). */
  private readonly edges = new WeakMap<SearchChains, Map<string, FileEdges>>();

  constructor(private readonly dirs: DirCache) {}

  /**
   * `commandDefines`: the -D definitions of the command (NAME → body), which a computed
   * include may name. Every #define in the files found is a candidate too, whatever #if it
   * is under: again a superset.
   */
  walk(source: string, chains: SearchChains, commandDefines: Map<string, string>): WalkOutcome {
    let edgesByFile = this.edges.get(chains);
    if (!edgesByFile) this.edges.set(chains, (edgesByFile = new Map()));
    const found = new Map<string, string>();
    const queue: string[] = [];
    const read = new Map<string, FileDirectives>();
    const computed: { kind: DirectiveKind; expression: string; here: string }[] = [];
    const add = (absolute: string, raw: string) => {
      if (found.has(absolute)) return;
      found.set(absolute, raw);
      queue.push(absolute);
    };
    const probed = new Set<string>();
    /** what computed includes resolved already in this walk */
    const resolved = new Set<string>();
    for (const f of chains.implicit) add(f, f);
    add(source, source);
    while (queue.length > 0) {
      while (queue.length > 0) {
        const file = queue.pop()!;
        const directives = this.directivesOf(file);
        if (!directives) {
          if (file === source) return { ok: false, reason: `cannot read ${source}` };
          continue;
        }
        read.set(file, directives);
        if (directives.opaque) return { ok: false, reason: `an #include of a macro expression in ${file}` };
        let edges = edgesByFile.get(file);
        if (!edges || !this.stillHold(edges, directives)) {
          edges = this.edgesOf(file, directives, chains);
          edgesByFile.set(file, edges);
        }
        if (edges.failure) return { ok: false, reason: edges.failure };
        const targets = edges.found;
        for (let i = 0; i < targets.length; i += 2) add(targets[i]!, targets[i + 1]!);
        for (const p of edges.probed) probed.add(p);
        if (directives.computed.length > 0) {
          const here = path.dirname(file);
          for (const c of directives.computed) computed.push({ ...c, here });
        }
      }
      // Computed includes once the files found so far are read: their definitions may be anywhere.
      // Later files may add definitions, so every one is expanded again on each round.
      if (computed.length === 0) continue;
      const definitionsOf = this.definitionsIn(commandDefines, read);
      for (const c of computed) {
        const expanded = expandIncludeOperand(c.expression, definitionsOf);
        if ('failed' in expanded) return { ok: false, reason: expanded.failed };
        for (const o of expanded.names) {
          const key = `${c.kind === 'include_next' ? '>' : o.quoted ? `${c.here}"` : '<'}${o.name}`;
          if (resolved.has(key)) continue;
          resolved.add(key);
          const failed = this.follow(c.kind, o.quoted, o.name, c.here, chains, add);
          if (failed) return { ok: false, reason: failed };
        }
      }
    }
    return { ok: true, result: { files: [...found.keys()], rawPaths: [...found.values()], probed: [...probed] } };
  }

  /** What a file's own directives resolve to: the same for every compile of these chains
   *  while the file's directives and the directory entries asked about stay as they are. */
  private stillHold(edges: FileEdges, directives: FileDirectives): boolean {
    if (edges.directives !== directives) return false;
    for (let i = 0; i < edges.dirs.length; i++) if (this.dirs.version(edges.dirs[i]!) !== edges.versions[i]) return false;
    return true;
  }

  private edgesOf(file: string, directives: FileDirectives, chains: SearchChains): FileEdges {
    const edges: FileEdges = { directives, dirs: [], versions: [], found: [], probed: [] };
    const consulted = this.dirs.track(() => this.resolveAll(file, directives, chains, edges));
    edges.dirs = [...consulted];
    edges.versions = edges.dirs.map((d) => this.dirs.version(d));
    return edges;
  }

  private resolveAll(file: string, directives: FileDirectives, chains: SearchChains, edges: FileEdges): void {
    const here = path.dirname(file);
    const add = (absolute: string, raw: string) => edges.found.push(absolute, raw);
    const seen = new Set<string>();
    for (const d of directives.directives) {
      const key = `${d.kind === 'include_next' ? '>' : d.quoted ? '"' : '<'}${d.name}`;
      if (seen.has(key)) continue;
      seen.add(key);
      const failed = this.follow(d.kind, d.quoted, d.name, here, chains, add);
      if (failed) {
        edges.failure = failed;
        return;
      }
    }
    const probed = new Set<string>();
    for (const p of directives.probes) {
      const candidates = path.isAbsolute(p.name) ? [''] : searchedDirs(p.kind, p.quoted, here, chains);
      for (const dir of candidates) {
        const absolute = path.resolve(`${dir}/${p.name}`);
        if (this.isFile(absolute)) probed.add(absolute);
      }
    }
    edges.probed = [...probed];
  }

  /** Resolves one include as the compiler would (first match; every match for #include_next);
   *  a reason to give up instead, when a precompiled header sits beside the match. */
  private follow(kind: DirectiveKind, quoted: boolean, name: string, here: string, chains: SearchChains, add: (absolute: string, raw: string) => void): string | undefined {
    if (path.isAbsolute(name)) {
      const absolute = path.normalize(name);
      if (this.isFile(absolute)) add(absolute, name);
      return undefined;
    }
    for (const dir of searchedDirs(kind, quoted, here, chains)) {
      if (this.dirs.kindIn(dir, name) !== 'file') continue;
      const raw = dir === '/' ? `/${name}` : `${dir}/${name}`;
      const absolute = needsNormalising(name) ? path.resolve(raw) : raw;
      const slash = absolute.lastIndexOf('/');
      if (this.dirs.kind(absolute.slice(0, slash) || '/', `${absolute.slice(slash + 1)}.gch`)) {
        return `a precompiled header beside ${absolute}`;
      }
      add(absolute, raw);
      if (kind !== 'include_next') break;
    }
    return undefined;
  }

  private isFile(absolute: string): boolean {
    return this.dirs.kindOfPath(absolute) === 'file';
  }

  /** Directives of a file, re-read when its stat data changed. */
  private directivesOf(file: string): FileDirectives | undefined {
    const st = this.dirs.statFile(file);
    if (!st?.isFile()) return undefined;
    const cached = this.parsed.get(file);
    if (cached && sameStamp(st, cached.stamp)) return cached.parsed;
    if (st.size > MAX_PARSED_BYTES) return { directives: [], computed: [], opaque: true, defines: new Map(), functions: new Map(), probes: [] };
    let parsed: FileDirectives;
    try {
      parsed = readDirectives(readFileSync(file, 'latin1'));
    } catch {
      return undefined;
    }
    if (mtimeSettled(st)) {
      if (cached) this.index(cached.parsed, false);
      this.parsed.set(file, { stamp: numbersOf(st), parsed });
      this.index(parsed, true);
    }
    return parsed;
  }

  private index(directives: FileDirectives, add: boolean): void {
    if (add) this.indexed.add(directives);
    else this.indexed.delete(directives);
    for (const name of [...directives.defines.keys(), ...directives.functions.keys()]) {
      let files = this.definers.get(name);
      if (add) {
        if (!files) this.definers.set(name, (files = new Set()));
        files.add(directives);
      } else if (files) {
        files.delete(directives);
        if (files.size === 0) this.definers.delete(name);
      }
    }
  }

  /** The definitions of the command and of the files read in this walk, by name (looked up once each). */
  private definitionsIn(commandDefines: Map<string, string>, read: Map<string, FileDirectives>): DefinitionsOf {
    const readNow = new Set(read.values());
    // Files read but not kept (too young to trust their stat) are not in the index.
    const unindexed = [...read.values()].filter((d) => !this.indexed.has(d) && (d.defines.size > 0 || d.functions.size > 0));
    const onCommand = commandDefinitions(commandDefines);
    const memo = new Map<string, MacroDefinitions | undefined>();
    return (name) => {
      if (memo.has(name)) return memo.get(name);
      const objects = new Set<string>(onCommand.get(name)?.objects ?? []);
      const functions: FunctionMacro[] = [...(onCommand.get(name)?.functions ?? [])];
      const take = (d: FileDirectives) => {
        for (const body of d.defines.get(name) ?? []) objects.add(body);
        functions.push(...(d.functions.get(name) ?? []));
      };
      for (const d of this.definers.get(name) ?? []) if (readNow.has(d)) take(d);
      for (const d of unindexed) take(d);
      const found = objects.size > 0 || functions.length > 0 ? { objects: [...objects], functions } : undefined;
      memo.set(name, found);
      return found;
    };
  }
}

/** The -D definitions of a command, by name (`-D'F(x)=…'` defines a function-like macro). */
function commandDefinitions(commandDefines: Map<string, string>): Map<string, { objects: string[]; functions: FunctionMacro[] }> {
  const all = new Map<string, { objects: string[]; functions: FunctionMacro[] }>();
  for (const [name, body] of commandDefines) {
    const call = /^([A-Za-z_]\w*)\(([^)]*)\)$/.exec(name);
    const key = call ? call[1]! : name;
    let e = all.get(key);
    if (!e) all.set(key, (e = { objects: [], functions: [] }));
    if (call) e.functions.push({ params: functionParams(call[2]!), body });
    else e.objects.push(body);
  }
  return all;
}

/** Where the compiler looks for a relative name, in order: from the including file's directory
 *  for "name", the bracket directories for <name>, every directory for #include_next. */
function searchedDirs(kind: DirectiveKind, quoted: boolean, here: string, chains: SearchChains): string[] {
  return kind === 'include_next' ? chains.all : quoted ? [here, ...chains.quote] : chains.bracket;
}

/** Whether `dir/name` may not be normal already (dir is absolute and normal). */
function needsNormalising(name: string): boolean {
  return name.startsWith('.') || name.includes('/.') || name.includes('//') || name.endsWith('/');
}
