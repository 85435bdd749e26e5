// The real projects the tests build (fetched from Debian's archive by test/projects/fetch.sh),
// copied into a temporary directory, and the files a build writes.
import { cpSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import path from 'node:path';
import { REPO } from './agent.js';
import { tempDir } from './tmp.js';

let projectsDir: string | undefined;

export function projects(): string {
  projectsDir ??= execFileSync('bash', [path.join(REPO, 'test', 'projects', 'fetch.sh')], { encoding: 'utf8' }).trim();
  return projectsDir;
}

export type ProjectName = 'zlib' | 'googletest' | 'libogg' | 'pixman';

export function copyProject(name: ProjectName, dir = path.join(tempDir('meshcc-proj-'), name)): string {
  // Timestamps as unpacked: make must not think autotools' outputs need regenerating.
  cpSync(path.join(projects(), name), dir, { recursive: true, preserveTimestamps: true });
  return dir;
}

/** Every file under dir whose name matches, as relative path → contents. */
export function collect(dir: string, pattern: RegExp): Map<string, Buffer> {
  const found = new Map<string, Buffer>();
  const walk = (d: string) => {
    for (const name of readdirSync(d)) {
      const full = path.join(d, name);
      // An agent may rename a temporary output away between readdir and stat.
      const st = statSync(full, { throwIfNoEntry: false });
      if (!st) continue;
      if (st.isDirectory()) walk(full);
      else if (pattern.test(name)) found.set(path.relative(dir, full), readFileSync(full));
    }
  };
  walk(dir);
  return found;
}

/** Names of the files that differ between two collections (missing on either side included). */
export function differences(a: Map<string, Buffer>, b: Map<string, Buffer>): string[] {
  const names = new Set([...a.keys(), ...b.keys()]);
  return [...names].filter((n) => !a.has(n) || !b.has(n) || !a.get(n)!.equals(b.get(n)!)).sort();
}
