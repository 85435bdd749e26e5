// The real projects the benchmark can build, and the few facts about each that the builds and
// comparisons need: one table, so that every tool builds exactly the same configured tree.
import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { baseEnv } from './common.js';

export interface Project {
  /** One-time configure step, run in place at the build path; not timed. */
  configure(dir: string): void;
  /** Extra arguments of every make. */
  makeArgs: string[];
  /** Header touched for the incremental build (relative to the tree): one included by a modest number of units. */
  header: string;
  /** What counts as an object file. */
  objectExts: string[];
  /** Deletes the build's objects and leaves the sources untouched (the cache's direct-mode build). */
  clean: string[];
}

export const PROJECTS: Record<string, Project> = {
  // git's own Makefile; the optional libraries off so that only zlib is needed.
  git: {
    configure: (dir) =>
      writeFileSync(
        path.join(dir, 'config.mak'),
        ['NO_CURL=1', 'NO_OPENSSL=1', 'NO_EXPAT=1', 'NO_GETTEXT=1', 'NO_TCLTK=1', 'NO_PERL=1', 'NO_PYTHON=1', ''].join('\n'),
      ),
    makeArgs: [],
    header: 'progress.h', // 28 of 496 units include it
    objectExts: ['.o'],
    clean: ['make', 'clean'],
  },
  // The kernel's tinyconfig (Linux 6.1 from Debian): 456-odd units that each read hundreds of
  // headers, the case DESIGN.md measured (11.7 MB of distinct inputs, 3.3 MB gzip).
  linux: {
    configure: (dir) => execFileSync('make', ['tinyconfig'], { cwd: dir, stdio: 'ignore', env: baseEnv() }),
    makeArgs: [],
    header: 'kernel/sched/sched.h',
    objectExts: ['.o'],
    // The fetched tree lacks the Makefiles of directories tinyconfig never builds, which
    // `make clean` walks; kbuild rebuilds any object that is missing. The host programs under
    // scripts/ stay, as `make clean` leaves them (kbuild would not build their objects again).
    clean: ['find', '.', '-name', '*.o', '-not', '-path', './scripts/*', '-delete'],
  },
  // A quick smoke run: 30 units (static .o and shared .lo objects).
  zlib: {
    configure: (dir) => execFileSync('./configure', [], { cwd: dir, stdio: 'ignore', env: baseEnv() }),
    makeArgs: [],
    header: 'inftrees.h',
    objectExts: ['.o', '.lo'],
    clean: ['make', 'clean'],
  },
};
