// The options gcc and clang forward to another tool: gas (-Wa, / -Xassembler), cc1's
// preprocessor (-Wp, / -Xpreprocessor) and clang's -cc1 (-Xclang). Same vocabulary as table.ts.
import { family, flag, local, value, type OptionRule, type Tool } from './table.js';

/** gas options, reached through -Wa, or -Xassembler. Unknown ones are unknown options. */
export const ASSEMBLER_OPTIONS: readonly OptionRule[] = [
  flag('--noexecstack', 'codegen'),
  flag('--execstack', 'codegen'),
  family('-g', 'codegen'), // -g, -gdwarf-5
  family('--gdwarf', 'codegen'),
  flag('--gen-debug', 'codegen'),
  family('-m', 'codegen'), // -mx86-used-note=no, -mrelax-relocations=no, -march=armv8.5-a
  flag('--32', 'codegen'),
  flag('--64', 'codegen'),
  flag('--x32', 'codegen'),
  value('--defsym', 'separate', 'codegen'),
  family('--defsym=', 'codegen'),
  flag('--fatal-warnings', 'codegen'),
  flag('--warn', 'codegen'),
  flag('--no-warn', 'codegen'),
  flag('-W', 'codegen'),
  flag('-K', 'codegen'),
  flag('-Q', 'codegen'),
  flag('-n', 'codegen'),
  flag('-v', 'codegen'),
  flag('--version', 'codegen'),
  family('--compress-debug-sections', 'codegen'),
  flag('--nocompress-debug-sections', 'codegen'),
  flag('--no-pad-sections', 'codegen'),
  family('--size-check=', 'codegen'),
  family('--elf-stt-common=', 'codegen'),
  family('--generate-missing-build-notes=', 'codegen'),
  flag('--reduce-memory-overheads', 'codegen'),
  flag('--strip-local-absolute', 'codegen'),
  flag('-L', 'codegen'),
  flag('--keep-locals', 'codegen'),
  local('-I', 'either', 'reads-unlisted-file'), // .include and .incbin search path
  local('-a', 'joined', 'writes-extra-output'), // listings: -adhln=file.lst
  local('--MD', 'separate', 'writes-extra-output'),
  local('@', 'joined', 'reads-unlisted-file'),
];

/** cc1 options behind -Wp, and -Xpreprocessor; other spellings are read as driver options. */
export const PREPROCESSOR_OPTIONS: readonly OptionRule[] = [
  value('-MD', 'separate', 'dep-file-named', true), // the Kbuild way: -Wp,-MD,dir/.x.o.d
  value('-MMD', 'separate', 'dep-file-named', true),
  value('-MT', 'either', 'dep-rule'),
  value('-MQ', 'either', 'dep-rule'),
  flag('-MP', 'dep-rule'),
  // cc1's own -MF and -M/-MM only make sense with dependency options of its own, not modelled.
  local('-MF', 'either', 'unknown-option'),
];

/** clang -cc1 options behind -Xclang; other spellings are read as driver options. */
export const CLANG_CC1_OPTIONS: readonly OptionRule[] = [
  local('-load', 'separate', 'plugin'),
  local('-plugin', 'separate', 'plugin'),
  local('-add-plugin', 'separate', 'plugin'),
  local('-plugin-arg-', 'joined', 'plugin'),
  local('-emit-pch', 'none', 'precompiled-header'),
  local('-include-pch', 'separate', 'precompiled-header'),
  local('-dependency-file', 'separate', 'writes-extra-output'),
  local('-fprofile-instrument=', 'joined', 'profiling'),
  value('-target-feature', 'separate', 'codegen'),
  value('-target-cpu', 'separate', 'codegen'),
  value('-fdebug-compilation-dir', 'separate', 'codegen'),
  flag('-disable-O0-optnone', 'codegen'),
  flag('-disable-llvm-passes', 'codegen'),
  flag('-disable-llvm-optzns', 'codegen'),
  flag('-mno-constructor-aliases', 'codegen'),
];

/** Each tool's table; with `thenDriver`, a spelling it lacks is read as a driver option (-D, -f…). */
export const TOOL_OPTIONS: Record<Tool, { rules: readonly OptionRule[]; thenDriver: boolean }> = {
  assembler: { rules: ASSEMBLER_OPTIONS, thenDriver: false },
  preprocessor: { rules: PREPROCESSOR_OPTIONS, thenDriver: true },
  'clang-cc1': { rules: CLANG_CC1_OPTIONS, thenDriver: true },
};
