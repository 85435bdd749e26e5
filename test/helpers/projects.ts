// The real projects the tests build (fetched from Debian's archive by test/projects/fetch.sh),
// copied into a temporary directory, and the files a build writes.
import { cpSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { execFile, execFileSync } from 'node:child_process';
import { promisify } from 'node:util';
import path from 'node:path';
import { plainEnv, REPO } from './agent.js';
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

/** Removes what a build wrote (objects and archives), so that the next build compiles everything again. */
export function removeOutputs(dir: string): void {
  for (const f of collect(dir, /\.(o|a)$/).keys()) rmSync(path.join(dir, f), { force: true });
}

/** zlib configured `--static` and built by `make` without meshcc: the tree, its outputs removed
 *  again, and the objects every mesh build of it must equal. */
export async function plainZlib(make: string[]): Promise<{ dir: string; objects: Map<string, Buffer> }> {
  const run = promisify(execFile);
  const dir = copyProject('zlib');
  await run('./configure', ['--static'], { cwd: dir, env: plainEnv });
  await run(make[0]!, make.slice(1), { cwd: dir, env: plainEnv });
  const objects = collect(dir, /\.o$/);
  removeOutputs(dir);
  return { dir, objects };
}
