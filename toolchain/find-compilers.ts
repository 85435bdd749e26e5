// The C/C++ compiler drivers on a PATH, by name.
import { readdirSync } from 'node:fs';
import path from 'node:path';
import { isExecutableFile } from './files.js';

// gcc, g++, cc, c++, clang, clang++; optionally versioned (gcc-12, clang++-14, clang-14.0) and
// target-prefixed (x86_64-linux-gnu-gcc-12, arm-none-eabi-gcc, x86_64-w64-mingw32-g++-posix).
// Not the tools that share a prefix: gcc-ar, gcc-nm, c++filt, clang-format, clang-cpp, …
// nor POSIX's c89-gcc / c99-gcc (shell scripts that add -std= and run gcc).
const COMPILER_NAME = /^(?:[A-Za-z0-9_.]+-)*(?:gcc|g\+\+|cc|c\+\+|clang|clang\+\+)(?:-\d+(?:\.\d+)*)?(?:-posix|-win32)?$/;
const NOT_A_DRIVER = /^c(?:89|99)-gcc$/;

export function isCompilerName(name: string): boolean {
  return COMPILER_NAME.test(name) && !NOT_A_DRIVER.test(name);
}

/**
 * Absolute paths of the compiler drivers on this PATH, as invoked (symlinks not resolved),
 * one per name: the first directory on PATH that has it wins, as for a shell. Empty and
 * relative PATH entries are skipped (they mean the current directory, which changes).
 */
export function findHostCompilers(pathEnv: string = process.env.PATH ?? ''): string[] {
  const seen = new Set<string>();
  const found: string[] = [];
  for (const dir of pathEnv.split(':')) {
    if (!path.isAbsolute(dir)) continue;
    let names: string[];
    try {
      names = readdirSync(dir).sort();
    } catch {
      continue;
    }
    for (const name of names) {
      if (seen.has(name) || !isCompilerName(name)) continue;
      const full = path.join(dir, name);
      if (!isExecutableFile(full)) continue;
      seen.add(name);
      found.push(full);
    }
  }
  return found;
}
