// The shared libraries (and the dynamic loader) that a toolchain's programs load, found with
// ldd. ldd may run a binary's loader, which is only acceptable because these are the host's
// own compilers, already trusted to run every build; never point this at untrusted files.
import { execFile } from 'node:child_process';
import { realpath } from 'node:fs/promises';
import { promisify } from 'node:util';

const run = promisify(execFile);

export interface Library {
  path: string;
  role: 'library' | 'loader';
}

/** Every shared object the given ELF files load, transitively (ldd resolves the closure). */
export async function sharedLibraryClosure(files: string[]): Promise<Library[]> {
  const found = new Map<string, Library['role']>();
  for (const file of files) {
    let text: string;
    try {
      text = (await run('ldd', [file], { encoding: 'utf8', timeout: 10_000 })).stdout;
    } catch {
      continue; // not dynamic (a script, a static binary, a specs file): nothing to add
    }
    for (const line of text.split('\n')) {
      const arrow = /=>\s+(\/\S+)\s+\(0x/.exec(line);
      const bare = /^\s*(\/\S+)\s+\(0x/.exec(line);
      const target = arrow?.[1] ?? bare?.[1];
      if (!target) continue;
      const real = await realpath(target).catch(() => undefined);
      if (real && !found.has(real)) found.set(real, bare ? 'loader' : 'library');
    }
  }
  return [...found].map(([path, role]) => ({ path, role }));
}
