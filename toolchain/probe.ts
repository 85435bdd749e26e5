// Asks a compiler driver what it is (family, version, target) and, for gcc, which programs
// and files it uses. Spawns: one `-v` per invoked name; for each gcc binary six `-print-*`
// queries more, in parallel (gcc answers only one -print-* per run). identify.ts caches both.
import { realpathSync, statSync } from 'node:fs';
import path from 'node:path';
import { isExecutableFile } from './files.js';
import { runProgram } from './run.js';
import type { ToolchainFamily } from './types.js';

export interface ProbedProgram {
  role: string;
  /** real path */
  path: string;
}

export interface Probe {
  family: ToolchainFamily;
  mode: 'c' | 'c++';
  version: string;
  target: string;
  /** gcc names it in -v (COLLECT_LTO_WRAPPER), which saves asking */
  ltoWrapper?: string;
  /** clang: the GCC installation whose libstdc++ and crt files it uses ("Selected GCC installation") */
  gccInstallation?: string;
}

/**
 * `-v` prints family, version and target in one run for both families, where -dumpversion
 * (just "12" on Debian's gcc) and -dumpmachine would take two: "gcc version 12.2.0 (…)" or
 * "Debian clang version 14.0.6", "Target: x86_64-linux-gnu". gcc also names its lto-wrapper.
 */
function parseVersionOutput(text: string, mode: Probe['mode']): Probe | undefined {
  const target = /^Target: (\S+)$/m.exec(text)?.[1];
  if (!target) return undefined;
  const clang = /^(?:.*\s)?clang version (\S+)/m.exec(text);
  const gccInstallation = /^Selected GCC installation: (\/.+)$/m.exec(text)?.[1];
  if (clang) return { family: 'clang', mode, version: clang[1]!, target, ...(gccInstallation ? { gccInstallation: path.normalize(gccInstallation) } : {}) };
  const gcc = /^gcc version (\S+)/m.exec(text);
  if (gcc) return { family: 'gcc', mode, version: gcc[1]!, target, ltoWrapper: /^COLLECT_LTO_WRAPPER=(\/.+)$/m.exec(text)?.[1] };
  return undefined;
}

/**
 * The language mode a driver name implies, as clang reads it: without a version suffix, a name
 * ending in ++ is C++ (clang++, g++, c++, x86_64-linux-gnu-clang++-14). clang's other modes
 * (clang-cpp, clang-cl) are not compilers meshcc distributes.
 */
export function modeOfName(compilerPath: string): Probe['mode'] | undefined {
  const name = path.basename(compilerPath).replace(/(?:-\d+(?:\.\d+)*)?(?:-posix|-win32)?$/, '');
  if (name.endsWith('++')) return 'c++';
  if (/(?:^|-)(?:cpp|cl)$/.test(name)) return undefined;
  return 'c';
}

function isFile(file: string): boolean {
  try {
    return statSync(file).isFile();
  } catch {
    return false;
  }
}

/**
 * What gcc will execute for a program name it printed: a path as is, a bare name (gcc
 * prints "as" when its own directories have none) from PATH as execvp would; then the real path.
 */
export function resolveProgram(printed: string, pathEnv = process.env.PATH ?? ''): string | undefined {
  let found: string | undefined;
  if (printed.includes('/')) {
    if (path.isAbsolute(printed) && isExecutableFile(printed)) found = printed;
  } else {
    for (const dir of pathEnv.split(':')) {
      if (!dir) continue;
      const candidate = path.resolve(dir, printed);
      if (isExecutableFile(candidate)) {
        found = candidate;
        break;
      }
    }
  }
  return found === undefined ? undefined : realpathSync(found);
}

/** Where execvp finds a bare program name on PATH (not resolved through symlinks). */
function programOnPath(name: string, pathEnv = process.env.PATH ?? ''): string | undefined {
  for (const dir of pathEnv.split(':')) {
    if (!dir) continue;
    const candidate = path.resolve(dir, name);
    if (isExecutableFile(candidate)) return candidate;
  }
  return undefined;
}

async function printed(compilerPath: string, option: string): Promise<string> {
  const result = await runProgram(compilerPath, [option]);
  if (result.code !== 0) throw new Error(`${option} failed (exit ${result.code})`);
  return result.stdout.trim();
}

const GCC_PROGRAMS = ['cc1', 'cc1plus', 'collect2', 'as'] as const;

async function gccPrograms(driver: string, ltoWrapper: string | undefined): Promise<ProbedProgram[]> {
  const [programs, plugin, specs, wrapper] = await Promise.all([
    Promise.all(GCC_PROGRAMS.map(async (role) => ({ role, printed: await printed(driver, `-print-prog-name=${role}`) }))),
    printed(driver, '-print-file-name=liblto_plugin.so'),
    printed(driver, '-print-file-name=specs'),
    ltoWrapper ?? printed(driver, '-print-prog-name=lto-wrapper'),
  ]);
  const found: ProbedProgram[] = [];
  for (const { role, printed: name } of [...programs, { role: 'lto-wrapper', printed: wrapper }]) {
    const real = resolveProgram(name);
    if (!real) continue;
    found.push({ role, path: real });
    // A bare name ("as") is run through PATH: the name it is found by must exist in a sandbox too.
    const viaPath = name.includes('/') ? undefined : programOnPath(name);
    if (viaPath && viaPath !== real) found.push({ role: `${role}-on-path`, path: viaPath });
  }
  // -print-file-name echoes the bare name when it finds nothing.
  for (const [role, file] of [['lto-plugin', plugin], ['specs', specs]] as const) {
    if (path.isAbsolute(file) && isFile(file)) found.push({ role, path: realpathSync(file) });
  }
  return found;
}

/**
 * Family, version and target of the driver as invoked (clang's target and mode follow the
 * name it is called by). Rejects with a one-line reason when this is not a gcc or clang driver.
 */
export async function probeDriver(compilerPath: string): Promise<Probe> {
  const mode = modeOfName(compilerPath);
  if (!mode) throw new Error('a preprocessor or cl-mode name, not a C/C++ compiler driver');
  const result = await runProgram(compilerPath, ['-v']);
  const parsed = result.code === 0 ? parseVersionOutput(`${result.stderr}\n${result.stdout}`, mode) : undefined;
  if (!parsed) throw new Error(`not a gcc or clang driver (\`-v\` ${result.code === 0 ? 'did not name gcc or clang and a target' : `exited with ${result.code}`})`);
  return parsed;
}

/**
 * The programs the driver runs besides itself. gcc resolves its own path through symlinks
 * before searching (libiberty's make_relative_prefix), so the answer belongs to the real
 * driver, whatever name it was invoked by. clang compiles and assembles in its own binary
 * (cc1 and the integrated assembler are in the driver), so it has none for the jobs meshcc
 * distributes; an external `as` is used only with -fno-integrated-as.
 */
export async function driverPrograms(driver: string, probe: Probe): Promise<ProbedProgram[]> {
  if (probe.family !== 'gcc') {
    // clang recognises a GCC installation by its crtbegin.o; without it, no libstdc++ headers.
    const marker = probe.gccInstallation && path.join(probe.gccInstallation, 'crtbegin.o');
    return marker && isFile(marker) ? [{ role: 'gcc-installation', path: marker }] : [];
  }
  const programs = await gccPrograms(driver, probe.ltoWrapper);
  // gcc looks for its programs relative to its own directory, then its configured prefix:
  // a driver copied away from its installation finds none and could compile nothing.
  if (!programs.some((p) => p.role === 'cc1' || p.role === 'cc1plus')) {
    throw new Error('this gcc finds no cc1 or cc1plus (a driver away from its installation?)');
  }
  return programs;
}
