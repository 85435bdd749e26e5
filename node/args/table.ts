// The flag vocabulary of gcc and clang, as data. Each row says how an option takes its value
// and which bucket it falls in; analyse.ts decides from the buckets, never from spellings.
// An option that matches no row and starts with '-' is unknown: the job stays local.
// Forwarded options (-Wa,, -Wp,, -Xclang) are read with tool-table.ts; languages are in
// languages.ts. Families (-f…, -m…, -W…, -g…, -O…) are rows too: the longest matching name wins, so a
// specific row such as -fprofile- or -march=native overrides its family.
import type { LocalReason } from './types.js';

/** How an option takes its value. */
export type Takes =
  | 'none' //      exact spelling only: -c, -MD
  | 'joined' //    glued on, matched as a prefix: -DFOO, -std=c11, -fplugin=x.so, -f… (a family)
  | 'separate' //  the next argument: -Xclang x, -arch x
  | 'either'; //   -I dir or -Idir, -o x or -ox, -MF x or -MFx

/** The bucket an option falls in: what it does to the decision, the outputs and the scan. */
export type Kind =
  | 'compile' //        -c: stop after the object
  | 'output' //         -o: the object
  | 'language' //       -x: the language of the inputs after it
  | 'dep-file-on' //    -MD/-MMD: write a dependency file beside the object
  | 'dep-file' //       -MF: where it goes
  | 'dep-file-named' // -Wp,-MD,FILE: cc1's -MD takes the file as its argument
  | 'dep-rule' //       -MT/-MQ/-MP/-MG: shape the rule; kept in argv, dropped from the scan
  | 'mode' //           -E/-S/-M/-fsyntax-only: no object; `reason` says which
  | 'include' //        -include: may name a precompiled header
  | 'preprocessor' //   -I/-D/-isystem…: kept everywhere
  | 'codegen' //        pure code generation or diagnostics: kept everywhere
  | 'debug' //          -g…: the debug level (clang writes .dwo only when it is on)
  | 'split-dwarf' //    -gsplit-dwarf[=split|single]
  | 'no-split-dwarf'
  | 'stack-usage' //    -fstack-usage: a .su beside the object
  | 'no-stack-usage'
  | 'lto' //            -flto[=…]: the object is IR; no .su, and no .dwo with clang
  | 'no-lto'
  | 'arch' //           -arch X (several of them: one compile per arch)
  | 'verbose' //        -v: a query when there is nothing to compile
  | 'query' //          --version, -dumpmachine, -print-…: no compile at all
  | 'link' //           harmless with -c: gcc and clang ignore linker options then
  | 'forward' //        -Wa,/-Wp,/-Xclang…: options for another tool, read with `to`'s table
  | 'local'; //         always local, for `reason`

/** The tool a forwarded option speaks to, i.e. which table reads it. */
export type Tool = 'assembler' | 'preprocessor' | 'clang-cc1';

export interface OptionRule {
  name: string;
  takes: Takes;
  kind: Kind;
  /** For 'mode' and 'local': why the command cannot be distributed. */
  reason?: LocalReason;
  /** The value names a file (read, or written for 'output'/'dep-file'). */
  path?: true;
  /** For 'forward': the table that reads the forwarded options. */
  to?: Tool;
  /** For 'forward': the options are comma-separated in one argument (-Wa,a,b), not one per -X. */
  commas?: true;
  /** A directory of the #include "…" search chain (where gcc also looks for -include's .gch). */
  searchDir?: true;
}

// Row builders, so that each row reads as one line of a table.
export const flag = (name: string, kind: Kind, reason?: LocalReason): OptionRule => ({ name, takes: 'none', kind, reason });
export const local = (name: string, takes: Takes, reason: LocalReason): OptionRule => ({ name, takes, kind: 'local', reason });
export const value = (name: string, takes: Takes, kind: Kind, path?: true): OptionRule => ({ name, takes, kind, path });
export const family = (name: string, kind: Kind): OptionRule => ({ name, takes: 'joined', kind });
const searchDir = (name: string): OptionRule => ({ name, takes: 'either', kind: 'preprocessor', path: true, searchDir: true });

/** The driver's options, gcc and clang together (an option one of them lacks fails alike on both routes). */
export const DRIVER_OPTIONS: readonly OptionRule[] = [
  // What the command does.
  flag('-c', 'compile'),
  flag('-E', 'mode', 'preprocess-only'),
  flag('-M', 'mode', 'dependencies-only'),
  flag('-MM', 'mode', 'dependencies-only'),
  flag('-S', 'mode', 'assembly-output'),
  flag('-fsyntax-only', 'mode', 'syntax-only'),
  value('-o', 'either', 'output', true),
  value('-x', 'either', 'language'),
  flag('-v', 'verbose'),

  // Dependency files.
  flag('-MD', 'dep-file-on'),
  flag('-MMD', 'dep-file-on'),
  value('-MF', 'either', 'dep-file', true),
  value('-MT', 'either', 'dep-rule'),
  value('-MQ', 'either', 'dep-rule'),
  flag('-MP', 'dep-rule'),
  flag('-MG', 'dep-rule'),

  // Queries: nothing is compiled.
  flag('--version', 'query'),
  flag('--help', 'query'),
  family('--help=', 'query'),
  flag('--target-help', 'query'),
  flag('-###', 'query'),
  flag('-dumpversion', 'query'),
  flag('-dumpfullversion', 'query'),
  flag('-dumpmachine', 'query'),
  flag('-dumpspecs', 'query'),
  family('-print-', 'query'),
  family('--print-', 'query'),

  // Preprocessor: include paths, macros, forced includes.
  searchDir('-I'),
  value('-D', 'either', 'preprocessor'),
  value('-U', 'either', 'preprocessor'),
  value('-A', 'either', 'preprocessor'),
  value('-include', 'either', 'include', true),
  value('-imacros', 'either', 'preprocessor', true),
  searchDir('-isystem'),
  searchDir('-idirafter'),
  searchDir('-iquote'),
  value('-iprefix', 'either', 'preprocessor', true),
  value('-iwithprefix', 'either', 'preprocessor', true),
  value('-iwithprefixbefore', 'either', 'preprocessor', true),
  value('-iwithsysroot', 'either', 'preprocessor', true),
  value('-isysroot', 'either', 'preprocessor', true),
  value('-imultilib', 'either', 'preprocessor'),
  value('-imultiarch', 'either', 'preprocessor'),
  value('-iframework', 'either', 'preprocessor', true),
  value('-isystem-after', 'either', 'preprocessor', true),
  value('-cxx-isystem', 'either', 'preprocessor', true),
  value('-stdlib++-isystem', 'either', 'preprocessor', true),
  value('-F', 'either', 'preprocessor', true),
  value('--sysroot', 'separate', 'preprocessor', true),
  value('--sysroot=', 'joined', 'preprocessor', true),
  value('--gcc-toolchain=', 'joined', 'preprocessor', true),
  value('-gcc-toolchain', 'separate', 'preprocessor', true),
  value('-resource-dir', 'separate', 'preprocessor', true),
  value('-resource-dir=', 'joined', 'preprocessor', true),
  flag('-nostdinc', 'preprocessor'),
  flag('-nostdinc++', 'preprocessor'),
  flag('-nostdlibinc', 'preprocessor'),
  flag('-nobuiltininc', 'preprocessor'),
  flag('-undef', 'preprocessor'),
  flag('-trigraphs', 'preprocessor'),
  flag('-traditional', 'preprocessor'),
  flag('-traditional-cpp', 'preprocessor'),
  flag('-H', 'preprocessor'),

  // Pure code generation and diagnostics, as families.
  family('-f', 'codegen'),
  family('-m', 'codegen'),
  family('-W', 'codegen'),
  family('-O', 'codegen'),
  family('-g', 'debug'),
  family('-std=', 'codegen'),
  family('--std=', 'codegen'),
  family('-stdlib=', 'codegen'),
  family('--target=', 'codegen'),
  value('-target', 'separate', 'codegen'),
  value('-mllvm', 'separate', 'codegen'),
  value('--param', 'separate', 'codegen'),
  family('--param=', 'codegen'),
  family('-Q', 'codegen'), // -Qunused-arguments, -Qn, -Qy
  flag('-w', 'codegen'),
  flag('-ansi', 'codegen'),
  flag('-pedantic', 'codegen'),
  flag('-pedantic-errors', 'codegen'),
  flag('--pedantic', 'codegen'),
  flag('-pipe', 'codegen'),
  flag('-pthread', 'codegen'),
  flag('-pthreads', 'codegen'),
  flag('-pg', 'codegen'), // mcount calls; nothing is read or written at compile time
  flag('-p', 'codegen'),
  flag('-time', 'codegen'),
  flag('-pass-exit-codes', 'codegen'),
  flag('-no-canonical-prefixes', 'codegen'),
  flag('-integrated-as', 'codegen'),
  flag('-no-integrated-as', 'codegen'),
  flag('-emit-llvm', 'codegen'), // the object is bitcode, still written to -o
  flag('-enable-trivial-auto-var-init-zero-knowing-it-will-be-removed-from-clang', 'codegen'), // Kbuild, clang < 16
  flag('-flto', 'lto'),
  family('-flto=', 'lto'),
  flag('-fno-lto', 'no-lto'),
  flag('-gsplit-dwarf', 'split-dwarf'),
  family('-gsplit-dwarf=', 'split-dwarf'),
  flag('-gno-split-dwarf', 'no-split-dwarf'),
  flag('-fstack-usage', 'stack-usage'),
  flag('-fno-stack-usage', 'no-stack-usage'),
  value('-arch', 'separate', 'arch'),

  // Linker options: ignored with -c.
  value('-l', 'either', 'link'),
  value('-L', 'either', 'link', true),
  value('-T', 'either', 'link', true),
  value('-u', 'either', 'link'),
  value('-z', 'separate', 'link'),
  value('-framework', 'separate', 'link'),
  value('-Xlinker', 'separate', 'link'),
  family('-Wl,', 'link'),
  family('-rtlib=', 'link'),
  family('--rtlib=', 'link'),
  family('-unwindlib=', 'link'),
  family('-static-', 'link'), // -static-libgcc, -static-libstdc++, -static-pie
  family('-shared-', 'link'),
  flag('-shared', 'link'),
  flag('-static', 'link'),
  flag('-rdynamic', 'link'),
  flag('-pie', 'link'),
  flag('-no-pie', 'link'),
  flag('-s', 'link'),
  flag('-symbolic', 'link'),
  flag('-nostdlib', 'link'),
  flag('-nostdlib++', 'link'),
  flag('-nostartfiles', 'link'),
  flag('-nodefaultlibs', 'link'),
  flag('-nolibc', 'link'),
  flag('-dynamiclib', 'link'),
  flag('-bundle', 'link'),

  // Options for other tools, read with their own tables.
  { name: '-Wa,', takes: 'joined', kind: 'forward', to: 'assembler', commas: true },
  { name: '-Wp,', takes: 'joined', kind: 'forward', to: 'preprocessor', commas: true },
  { name: '-Xassembler', takes: 'separate', kind: 'forward', to: 'assembler' },
  { name: '-Xpreprocessor', takes: 'separate', kind: 'forward', to: 'preprocessor' },
  { name: '-Xclang', takes: 'separate', kind: 'forward', to: 'clang-cc1' },

  // Local: the host CPU decides the code.
  local('-march=native', 'none', 'native-cpu'),
  local('-mtune=native', 'none', 'native-cpu'),
  local('-mcpu=native', 'none', 'native-cpu'),

  // Local: intermediate files beside the object.
  local('-save-temps', 'none', 'save-temps'),
  local('-save-temps=', 'joined', 'save-temps'),
  local('--save-temps', 'none', 'save-temps'),

  // Local: profiles are read (-fprofile-use, -fauto-profile, sample profiles) or their
  // paths baked in; every -fprofile-* option is one of those or only means something with them.
  local('-fprofile-', 'joined', 'profiling'),
  local('-fauto-profile', 'joined', 'profiling'),
  local('-fbranch-probabilities', 'none', 'profiling'),
  local('-fcs-profile-generate', 'joined', 'profiling'),

  // Local: coverage notes (.gcno) are written beside the object.
  local('--coverage', 'none', 'coverage'),
  local('-coverage', 'none', 'coverage'),
  local('-ftest-coverage', 'none', 'coverage'),
  local('-fcoverage-mapping', 'none', 'coverage'),
  local('-fcondition-coverage', 'none', 'coverage'),

  // Local: files the compiler reads that the -M scan does not list.
  local('-fsanitize-blacklist=', 'joined', 'reads-unlisted-file'),
  local('-fsanitize-ignorelist=', 'joined', 'reads-unlisted-file'),
  local('-fsanitize-system-ignorelist=', 'joined', 'reads-unlisted-file'),
  local('-fsanitize-coverage-allowlist=', 'joined', 'reads-unlisted-file'),
  local('-fsanitize-coverage-ignorelist=', 'joined', 'reads-unlisted-file'),
  local('-fsanitize-coverage-whitelist=', 'joined', 'reads-unlisted-file'),
  local('-fsanitize-coverage-blacklist=', 'joined', 'reads-unlisted-file'),
  local('-fxray-always-instrument=', 'joined', 'reads-unlisted-file'),
  local('-fxray-never-instrument=', 'joined', 'reads-unlisted-file'),
  local('-fxray-attr-list=', 'joined', 'reads-unlisted-file'),
  local('-fbasic-block-sections=list=', 'joined', 'reads-unlisted-file'),
  local('-fembed-offload-object=', 'joined', 'reads-unlisted-file'),
  local('-fmodule-', 'joined', 'reads-unlisted-file'), // -fmodule-file=, -fmodule-map-file=, -fmodule-mapper=
  local('-fprebuilt-module-path=', 'joined', 'reads-unlisted-file'),
  local('-specs=', 'joined', 'reads-unlisted-file'),
  local('--specs=', 'joined', 'reads-unlisted-file'),
  local('-specs', 'separate', 'reads-unlisted-file'),
  local('-B', 'either', 'reads-unlisted-file'), // where cc1 and as are found
  local('--config', 'separate', 'reads-unlisted-file'),
  local('--config=', 'joined', 'reads-unlisted-file'),
  local('-fpreprocessed', 'none', 'unsupported-language'), // the source is treated as .i

  // Local: compiler plugins.
  local('-fplugin=', 'joined', 'plugin'),
  local('-fplugin-arg-', 'joined', 'plugin'),
  local('-fpass-plugin=', 'joined', 'plugin'),

  // Local: extra files the job cannot name in advance.
  local('-fdump-', 'joined', 'writes-extra-output'),
  local('-d', 'joined', 'writes-extra-output'), // -da, -dA…: RTL dumps (the -dump… queries are rows above)
  local('-dumpdir', 'separate', 'writes-extra-output'),
  local('-dumpbase', 'separate', 'writes-extra-output'),
  local('-dumpbase-ext', 'separate', 'writes-extra-output'),
  local('-fcallgraph-info', 'joined', 'writes-extra-output'),
  local('-fopt-info', 'joined', 'writes-extra-output'),
  local('-ftime-trace', 'joined', 'writes-extra-output'),
  local('-fsave-optimization-record', 'joined', 'writes-extra-output'),
  local('-foptimization-record-', 'joined', 'writes-extra-output'),
  local('-save-stats', 'joined', 'writes-extra-output'),
  local('--save-stats', 'joined', 'writes-extra-output'),
  local('-MJ', 'either', 'writes-extra-output'),
  local('-aux-info', 'separate', 'writes-extra-output'),
  local('-frepo', 'none', 'writes-extra-output'),
  local('--analyze', 'none', 'writes-extra-output'),
  local('-emit-ast', 'none', 'writes-extra-output'),
  local('--serialize-diagnostics', 'separate', 'writes-extra-output'),
  local('-fmodules', 'none', 'writes-extra-output'), // an implicit module cache
  local('-fmodules-', 'joined', 'writes-extra-output'), // -fmodules-ts (gcm.cache), -fmodules-cache-path=
  local('-fcxx-modules', 'none', 'writes-extra-output'),
  local('-fdeps-', 'joined', 'writes-extra-output'),

  // Local: precompiled headers.
  local('-include-pch', 'separate', 'precompiled-header'),
  local('--precompile', 'none', 'precompiled-header'),
];

/** For C and C++, clang writes a .dwo only when debug information is on: the last of these decides. */
export const DEBUG_ON = /^-g(|[1-3]|gdb[1-3]?|lldb|sce|dbx|line-tables-only|mlt|line-directives-only|full|used|dwarf|dwarf-[2-5])$/;
export const DEBUG_OFF = /^-g(gdb)?0$/;

/** Probes run by configure scripts and build systems: cheap, often meant to fail, never worth shipping. */
export const PROBES: readonly { pattern: RegExp; what: string }[] = [
  { pattern: /(^|\/)conftest\.[^/]*$/, what: 'autoconf conftest' },
  { pattern: /\/CMakeFiles\/CMakeScratch\//, what: 'CMake try_compile' },
  { pattern: /\/CMakeFiles\/CMakeTmp\//, what: 'CMake try_compile' },
  { pattern: /\/CMakeFiles\/[^/]+\/CompilerId[^/]*\//, what: 'CMake compiler identification' },
  { pattern: /\/meson-private\//, what: 'meson compiler check' },
  { pattern: /^\/dev\/null$/, what: 'Kbuild-style option probe' },
];

/** C and C++ drivers: an optional target prefix, the driver, an optional version suffix. */
export const DRIVER_NAME = /^(?:[\w.]+-)*?(gcc|g\+\+|cc|c\+\+|clang|clang\+\+)(?:-\d+(?:\.\d+)*)?$/;

/** Environment variables that make the compiler write a dependency file nobody asked for in argv. */
export const DEPENDENCY_ENV = ['DEPENDENCIES_OUTPUT', 'SUNPRO_DEPENDENCIES'];
