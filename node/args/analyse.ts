// Compile-argument analysis: may this invocation run as a job elsewhere, and if so, which
// files does it write and which command lists its inputs? The vocabulary is table.ts; the
// decision is a list of checks, each a small function over the parsed command, in order.
import path from 'node:path';
import { parseCommand, type ParsedArg } from './parse.js';
import { expandResponseFiles } from './response-files.js';
import { EXTENSIONS, X_LANGUAGES, type LanguageClass, type SourceLanguage } from './languages.js';
import { DEBUG_OFF, DEBUG_ON, DEPENDENCY_ENV, DRIVER_NAME, PROBES, type Kind } from './table.js';
import type { Analysis, AnalysisContext, CompilerFamily, DistributableJob, LocalDecision, LocalReason } from './types.js';

interface Driver {
  family: CompilerFamily;
  /** g++, c++, clang++: C sources are compiled as C++, headers as C++ headers. */
  cxx: boolean;
}

interface Input {
  text: string;
  /** From -x or the extension; undefined for a linker input (.o, .a, unknown extensions). */
  language?: string;
}

/** One invocation, read: what every check and every output rule looks at. */
interface Command {
  driver: Driver;
  ctx: AnalysisContext;
  args: ParsedArg[];
  /** Every option in order, forwarded ones included (-Wa,x → x). */
  options: ParsedArg[];
  inputs: Input[];
  sources: Input[];
  /** The options given through -Xpreprocessor (also in `options`). */
  xpreprocessor: ParsedArg[];
}

export function analyse(argv: string[], ctx: AnalysisContext): Analysis {
  const compiler = argv[0] ?? '';
  const driver = identifyDriver(compiler);
  if (!driver) return local('not-a-compiler', compiler);
  const expanded = expandResponseFiles(argv.slice(1), ctx.readFile);
  if (expanded.unreadable.length > 0) return local('unreadable-response-file', expanded.unreadable[0]);
  const command = readCommand(expanded.args, driver, ctx);
  for (const check of CHECKS) {
    const decision = check(command);
    if (decision) return decision;
  }
  return describeJob(command, [compiler, ...expanded.args]);
}

function identifyDriver(compiler: string): Driver | undefined {
  const match = DRIVER_NAME.exec(path.basename(compiler));
  if (!match) return undefined;
  const name = match[1]!;
  return { family: name.includes('clang') ? 'clang' : 'gcc', cxx: name.endsWith('++') };
}

function readCommand(args: string[], driver: Driver, ctx: AnalysisContext): Command {
  const parsed = parseCommand(args);
  const options: ParsedArg[] = [];
  const inputs: Input[] = [];
  let xLanguage: string | undefined;
  for (const arg of parsed.args) {
    if (arg.rule || (arg.text.startsWith('-') && arg.text !== '-')) {
      options.push(arg, ...(arg.inner ?? []));
      if (arg.rule?.kind === 'language') xLanguage = arg.value === 'none' ? undefined : arg.value;
      continue;
    }
    inputs.push({ text: arg.text, language: xLanguage ?? languageByExtension(arg.text, driver) });
  }
  options.push(...parsed.forwarded.assembler, ...parsed.forwarded.preprocessor, ...parsed.forwarded['clang-cc1']);
  const sources = inputs.filter((i) => i.language !== undefined);
  return { driver, ctx, args: parsed.args, options, inputs, sources, xpreprocessor: parsed.forwarded.preprocessor };
}

function languageByExtension(file: string, driver: Driver): string | undefined {
  const base = path.basename(file);
  const dot = base.lastIndexOf('.');
  if (dot < 0) return undefined;
  const entry = EXTENSIONS[base.slice(dot + 1)];
  return entry && (driver.cxx ? entry.cxx : entry.c);
}

function classify(language: string): LanguageClass {
  return X_LANGUAGES[language] ?? { kind: 'unsupported', why: `language ${language}` };
}

// ── The checks, in order: the first that answers decides. ────────────────────────────────

type Check = (c: Command) => LocalDecision | undefined;

const MODE_ORDER: LocalReason[] = ['preprocess-only', 'dependencies-only', 'assembly-output', 'syntax-only'];

const CHECKS: Check[] = [
  function queries(c) {
    const query = c.options.find((o) => o.rule?.kind === 'query');
    if (query) return local('version-query', query.text);
    if (c.inputs.length === 0 && has(c, 'verbose')) return local('version-query', '-v');
    return undefined;
  },
  function probes(c) {
    const places = [...c.inputs.flatMap((i) => [i.text, path.resolve(c.ctx.cwd, i.text)]), `${c.ctx.cwd}/`];
    for (const probe of PROBES) {
      const hit = places.find((p) => probe.pattern.test(p));
      if (hit) return local('conftest', `${probe.what}: ${hit}`);
    }
    return undefined;
  },
  function stopsBeforeObject(c) {
    const modes = c.options.filter((o) => o.rule?.kind === 'mode');
    for (const reason of MODE_ORDER) {
      const hit = modes.find((o) => o.rule!.reason === reason);
      if (hit) return local(reason, hit.text);
    }
    return undefined;
  },
  function headerSource(c) {
    // With or without -c, compiling a header writes a precompiled header.
    const header = c.sources.find((s) => classify(s.language!).kind === 'header');
    return header ? local('precompiled-header', `${header.text} is a ${header.language}`) : undefined;
  },
  function link(c) {
    return has(c, 'compile') ? undefined : local('link', 'no -c');
  },
  function inputs(c) {
    const stdin = c.inputs.find((i) => i.text === '-') ?? c.options.find((o) => o.rule?.path && o.value === '-' && !writes(o));
    if (stdin) return local('stdin-input', stdin.text);
    if (c.sources.length === 0) return local('no-source', c.inputs.map((i) => i.text).join(' ') || undefined);
    if (c.sources.length > 1) return local('multiple-sources', c.sources.map((s) => s.text).join(' '));
    return undefined;
  },
  function language(c) {
    const source = c.sources[0]!;
    const cls = classify(source.language!);
    if (cls.kind === 'unsupported') return local('unsupported-language', `${source.text}: ${cls.why}`);
    return undefined;
  },
  function options(c) {
    for (const o of c.options) {
      if (o.rule?.kind === 'local') return local(o.rule.reason!, o.text);
      if (!o.rule || o.missingValue) return local('unknown-option', o.text);
    }
    // The scan could drop -Wp,-MD,FILE but not an -Xpreprocessor pair; not worth modelling.
    const dep = c.xpreprocessor.find((o) => o.rule && NOT_IN_SCAN.has(o.rule.kind));
    return dep ? local('unknown-option', `-Xpreprocessor ${dep.text}`) : undefined;
  },
  function arches(c) {
    const arches = new Set(values(c, 'arch'));
    return arches.size > 1 ? local('multi-arch', [...arches].join(' ')) : undefined;
  },
  function dependencyEnv(c) {
    const name = DEPENDENCY_ENV.find((n) => c.ctx.env[n] !== undefined);
    return name ? local('dependency-env', name) : undefined;
  },
  function precompiledInclude(c) {
    // clang's driver looks for foo.h.pch, then foo.h.gch, beside `-include foo.h` (relative to
    // the cwd); gcc looks for foo.h.gch wherever it looks for foo.h: the cwd, then the
    // #include "…" chain (-iquote, -I, -isystem, -idirafter).
    const suffixes = c.driver.family === 'clang' ? ['.pch', '.gch'] : ['.gch'];
    const dirs = c.driver.family === 'clang' ? [] : c.options.filter((o) => o.rule?.searchDir && o.value).map((o) => o.value!);
    for (const header of values(c, 'include')) {
      const places = [header, ...(path.isAbsolute(header) ? [] : dirs.map((d) => path.join(d, header)))];
      const pch = places.flatMap((p) => suffixes.map((s) => p + s)).find((p) => c.ctx.exists(p));
      if (pch) return local('precompiled-header', pch);
    }
    return undefined;
  },
  function specialOutputs(c) {
    const outputs = [objectOf(c), depFileOf(c)].filter((o): o is string => o !== undefined);
    const special = outputs.find((o) => o === '-' || o.startsWith('/dev/'));
    return special ? local('special-output', special) : undefined;
  },
];

// ── What a distributable job writes, and the command that lists its inputs. ─────────────

function describeJob(c: Command, argv: string[]): DistributableJob {
  const source = c.sources[0]!;
  const object = objectOf(c);
  const depFile = depFileOf(c);
  const outputs = [object, depFile, splitDwarfOf(c), stackUsageOf(c)].filter((o): o is string => o !== undefined);
  return {
    distributable: true,
    family: c.driver.family,
    language: sourceLanguage(c),
    argv,
    source: source.text,
    object,
    outputs: [...new Set(outputs)],
    ...(depFile !== undefined ? { depFile } : {}),
    scanArgv: [argv[0]!, ...scanArgs(c.args), '-M', '-MT', 'meshcc-scan', '-v'],
  };
}

/** `-o X`, else the source's basename with .o, in the cwd (gcc and clang alike). */
function objectOf(c: Command): string {
  return last(c, 'output')?.value ?? withExtension(path.basename(c.sources[0]!.text), '.o');
}

/** -Wp,-MD,FILE wins over -MD (both compilers); -MD/-MMD write -MF's file, else the object's name with .d. */
function depFileOf(c: Command): string | undefined {
  const named = last(c, 'dep-file-named')?.value;
  if (named !== undefined) return named;
  if (!has(c, 'dep-file-on')) return undefined;
  return last(c, 'dep-file')?.value ?? withExtension(objectOf(c), '.d');
}

/** gcc writes X.dwo whenever -gsplit-dwarf is in effect, even with -g0 or -flto, and so does
 *  clang for assembler; for C and C++ clang needs debug information on and no LTO. Clang's
 *  -gsplit-dwarf=single writes none. */
function splitDwarfOf(c: Command): string | undefined {
  const split = last(c, 'split-dwarf', 'no-split-dwarf');
  if (split?.rule!.kind !== 'split-dwarf' || (split.value !== undefined && split.value !== '' && split.value !== 'split')) {
    return undefined;
  }
  if (c.driver.family === 'clang' && sourceLanguage(c) !== 'assembler-with-cpp') {
    const levels = c.options.filter((o) => o.rule?.kind === 'debug' && (DEBUG_ON.test(o.text) || DEBUG_OFF.test(o.text)));
    const level = levels[levels.length - 1];
    if (!level || DEBUG_OFF.test(level.text) || ltoOn(c)) return undefined;
  }
  return withExtension(objectOf(c), '.dwo');
}

/** Both compilers write X.su for -fstack-usage, except for LTO objects and assembler. */
function stackUsageOf(c: Command): string | undefined {
  const on = last(c, 'stack-usage', 'no-stack-usage')?.rule!.kind === 'stack-usage';
  return on && !ltoOn(c) && sourceLanguage(c) !== 'assembler-with-cpp' ? withExtension(objectOf(c), '.su') : undefined;
}

/** The one source's language; only called once the checks have passed. */
function sourceLanguage(c: Command): SourceLanguage {
  const cls = classify(c.sources[0]!.language!);
  if (cls.kind !== 'source') throw new Error(`not a source: ${c.sources[0]!.text}`);
  return cls.language;
}

function ltoOn(c: Command): boolean {
  return last(c, 'lto', 'no-lto')?.rule!.kind === 'lto';
}

/** Kinds that write outputs or shape the dependency file: the scan drops them. */
const NOT_IN_SCAN = new Set<Kind>(['compile', 'output', 'dep-file-on', 'dep-file', 'dep-file-named', 'dep-rule']);

function scanArgs(args: ParsedArg[]): string[] {
  const kept: string[] = [];
  for (const arg of args) {
    if (arg.rule && NOT_IN_SCAN.has(arg.rule.kind)) continue;
    if (arg.inner && arg.inner.some((o) => o.rule && NOT_IN_SCAN.has(o.rule.kind))) {
      // -Wp,-MD,FILE,-DX keeps -Wp,-DX
      const rest = arg.inner.filter((o) => !(o.rule && NOT_IN_SCAN.has(o.rule.kind))).flatMap((o) => o.raw);
      if (rest.length > 0) kept.push(arg.rule!.name + rest.join(','));
      continue;
    }
    kept.push(...arg.raw);
  }
  return kept;
}

// ── Small helpers. ───────────────────────────────────────────────────────────────────────

function local(reason: LocalReason, detail?: string): LocalDecision {
  return detail === undefined ? { distributable: false, reason } : { distributable: false, reason, detail };
}

function has(c: Command, ...kinds: Kind[]): boolean {
  return c.options.some((o) => o.rule !== undefined && kinds.includes(o.rule.kind));
}

function last(c: Command, ...kinds: Kind[]): ParsedArg | undefined {
  for (let i = c.options.length - 1; i >= 0; i--) {
    const o = c.options[i]!;
    if (o.rule !== undefined && kinds.includes(o.rule.kind)) return o;
  }
  return undefined;
}

function values(c: Command, kind: Kind): string[] {
  return c.options.filter((o) => o.rule?.kind === kind && o.value !== undefined).map((o) => o.value!);
}

function writes(o: ParsedArg): boolean {
  const kind = o.rule?.kind;
  return kind === 'output' || kind === 'dep-file' || kind === 'dep-file-named';
}

/** Replaces what follows the last dot of the basename (gcc and clang: out/.x → out/.d, out/x → out/x.d). */
function withExtension(file: string, ext: string): string {
  const slash = file.lastIndexOf('/');
  const dot = file.lastIndexOf('.');
  return (dot > slash ? file.slice(0, dot) : file) + ext;
}
