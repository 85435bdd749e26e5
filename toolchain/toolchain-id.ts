// The toolchain id: sha256 over a canonical description of the toolchain's files.
//
// Each file contributes one line: its name, size, executable bit and content sha256. The name
// is its role ('driver', 'cc1', 'as', …) and, for shared libraries and the loader, the
// basename the dynamic loader looks for ('lib:libc.so.6', 'loader:ld-linux-x86-64.so.2').
// Lines are sorted, so the order in which files were found does not matter.
//
// Directories are left out on purpose. Two machines with the same compiler files must agree,
// and where files sit is not part of what they compute: /lib vs /usr/lib (merged /usr),
// /lib64 vs /usr/lib64, the same relocatable install under another prefix, a compiler
// reached through different symlinks (cc → gcc → gcc-12 → the real binary). Where a file
// makes a difference, the list shows it: gcc looks for cc1 relative to its own directory, so
// a lone copy of the gcc driver finds no cc1 and is rejected, while a copy of the clang
// driver, which finds everything through the loader, is the same toolchain. What else
// decides lookups is inside the files (PT_INTERP, RUNPATH), so their hashes cover it.
// Basenames of libraries are kept because the loader resolves DT_NEEDED by that name.
//
// The invoked name matters only where it changes what the driver does. gcc ignores it (gcc,
// cc and x86_64-linux-gnu-gcc-12 are one binary doing one thing; g++ is another binary), so a
// gcc id is the files alone. clang takes its language mode and default target from the name
// (clang++ compiles .c as C++; x86_64-linux-gnu-clang targets that triple), and a peer runs
// a job with its own compiler for the id: so clang ids add one line with mode and target.
//
// Every byte of every file is hashed, so any change of content (a new cc1, a libc update, a
// rebuilt as) changes the id; so does a file appearing, disappearing or turning executable.
// The id is a function of the Toolchain description alone: whoever receives it can check it.
import { createHash } from 'node:crypto';
import path from 'node:path';
import type { Toolchain, ToolchainFile } from './types.js';

const SCHEME = 'meshcc-toolchain-v1';

export function canonicalName(file: Pick<ToolchainFile, 'role' | 'path'>): string {
  return file.role === 'lib' || file.role === 'loader' ? `${file.role}:${path.basename(file.path)}` : file.role;
}

export function canonicalDescription(toolchain: Pick<Toolchain, 'family' | 'mode' | 'target' | 'files'>): string {
  const lines = toolchain.files.map((f) => `${canonicalName(f)}\t${f.size}\t${f.executable ? 'x' : '-'}\t${f.hash}`);
  if (toolchain.family === 'clang') lines.push(`clang-driver\t${toolchain.mode}\t${toolchain.target}`);
  lines.sort();
  return `${SCHEME}\n${lines.join('\n')}\n`;
}

export function toolchainId(toolchain: Pick<Toolchain, 'family' | 'mode' | 'target' | 'files'>): string {
  return createHash('sha256').update(canonicalDescription(toolchain)).digest('hex');
}
