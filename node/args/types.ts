// What compile-argument analysis decides about one compiler invocation.

export type CompilerFamily = 'gcc' | 'clang';

/** Why an invocation must run locally as a plain command. Stable words: they appear in stats. */
export type LocalReason =
  | 'not-a-compiler'
  | 'link'
  | 'preprocess-only'
  | 'dependencies-only'
  | 'assembly-output'
  | 'syntax-only'
  | 'no-source'
  | 'multiple-sources'
  | 'stdin-input'
  | 'native-cpu'
  | 'save-temps'
  | 'profiling'
  | 'coverage'
  | 'unsupported-language'
  | 'precompiled-header'
  | 'conftest'
  | 'unreadable-response-file'
  | 'reads-unlisted-file'
  | 'writes-extra-output'
  | 'dependency-env'
  | 'plugin'
  | 'multi-arch'
  | 'unknown-option'
  | 'version-query'
  /** The object or dependency file goes to stdout (`-o -`, `-MF -`) or a device (`-o /dev/null`). */
  | 'special-output';

export interface LocalDecision {
  distributable: false;
  reason: LocalReason;
  /** The option or fact behind the reason, for the debug log. */
  detail?: string;
}

export interface DistributableJob {
  distributable: true;
  family: CompilerFamily;
  language: 'c' | 'c++' | 'objective-c' | 'objective-c++' | 'assembler-with-cpp';
  /** argv with response files expanded; argv[0] unchanged. This is what an executor runs. */
  argv: string[];
  /** The source file as written on the command line. */
  source: string;
  /** The object file the command writes (as written, or derived like the compiler does). */
  object: string;
  /** Every file the command writes: object first, then dependency file, .dwo, .su, …
   *  Paths as the compiler would name them, relative to cwd unless absolute. */
  outputs: string[];
  /** The dependency file, when the command writes one (-MD, -MMD, -Wp,-MD,FILE). */
  depFile?: string;
  /** The command that lists every input: same options, no code generation, no dependency
   *  output, plus `-M -MT meshcc-scan -v`; argv[0] unchanged. */
  scanArgv: string[];
}

export type Analysis = LocalDecision | DistributableJob;

export interface AnalysisContext {
  cwd: string;
  /** Environment of the invocation (DEPENDENCIES_OUTPUT, SUNPRO_DEPENDENCIES matter). */
  env: Record<string, string>;
  /** Reads a response file (@file), relative paths against cwd; throws when it cannot. */
  readFile(path: string): string;
  /** Whether a file exists (precompiled header siblings, .gch). */
  exists(path: string): boolean;
}
