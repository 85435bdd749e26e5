// The files of a toolchain: the driver, the programs it runs, and the shared libraries and
// loader they need, each once and hashed. Depends only on the real driver, so every name it
// is invoked by (gcc, gcc-12, cc, x86_64-linux-gnu-gcc) shares one collection.
import { realpathSync } from 'node:fs';
import { sharedObjects, type SharedObject } from './elf-deps.js';
import { fileState, isElf, type FileHasher } from './files.js';
import { driverPrograms, type Probe, type ProbedProgram } from './probe.js';
import type { ToolchainFile, ToolchainLog } from './types.js';

export interface CollectedFiles {
  files: ToolchainFile[];
  /** fileState(file.path).signature of each file when it was hashed */
  signatures: string[];
}

const ROLE_ORDER = ['driver', 'cc1', 'cc1plus', 'collect2', 'lto-wrapper', 'as', 'lto-plugin', 'specs', 'loader', 'lib'];

function roleRank(role: string): number {
  const i = ROLE_ORDER.indexOf(role);
  return i < 0 ? ROLE_ORDER.length : i;
}

function byRoleThenPath(a: { role: string; path: string }, b: { role: string; path: string }): number {
  return roleRank(a.role) - roleRank(b.role) || (a.path < b.path ? -1 : a.path > b.path ? 1 : 0);
}

/**
 * Each file once, by real path (/lib64/ld-linux-x86-64.so.2 and the libc.so.6 that musl
 * maps to its loader are one file each): programs win over the loader over libraries, then
 * the smaller path, so the list does not depend on the order ldd printed.
 */
function chooseFiles(programs: ProbedProgram[], objects: SharedObject[], vanished: (file: string) => void): { role: string; path: string }[] {
  const byRealPath = new Map<string, { role: string; path: string }>();
  for (const c of [...programs, ...[...objects].sort(byRoleThenPath)]) {
    let real: string;
    try {
      real = realpathSync(c.path);
    } catch {
      vanished(c.path);
      continue;
    }
    // A program's name on PATH (gcc runs "as" by name) is a second way to the same file, kept as one.
    const key = c.role.endsWith('-on-path') ? `${real}\0${c.path}` : real;
    if (!byRealPath.has(key)) byRealPath.set(key, { role: c.role, path: c.path });
  }
  return [...byRealPath.values()].sort(byRoleThenPath);
}

export async function collectFiles(driver: string, probe: Probe, hasher: FileHasher, log?: ToolchainLog): Promise<CollectedFiles> {
  const programs: ProbedProgram[] = [{ role: 'driver', path: driver }, ...(await driverPrograms(driver, probe))];
  const elves: string[] = [];
  for (const p of programs) if (await isElf(p.path)) elves.push(p.path);
  const { objects, missing } = await sharedObjects(elves);
  if (missing.length > 0) log?.debug({ driver, missing }, 'shared libraries of the toolchain not found');
  const chosen = chooseFiles(programs, objects, (file) => log?.debug({ driver, file }, 'toolchain file vanished'));
  const hashed = await Promise.all(chosen.map((c) => hasher.hash(c.path)));
  return {
    files: chosen.map((c, i) => {
      const h = hashed[i]!;
      return { role: c.role, path: c.path, size: h.size, hash: h.hash, executable: h.executable };
    }),
    signatures: hashed.map((h) => h.signature),
  };
}

/** Whether every file still has the signature it had when it was hashed (stats only). */
export function unchanged(collected: CollectedFiles): boolean {
  return collected.files.every((f, i) => fileState(f.path)?.signature === collected.signatures[i]);
}
