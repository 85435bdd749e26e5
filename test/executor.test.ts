// The job route's parts on real gcc and clang: scan, hash into the store, build a job
// root, run the original command in bubblewrap, and get exactly a plain compile's outputs.
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statfsSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import type { Job } from '../protocol/messages.js';
import { Executor } from '../node/executor/executor.js';
import { rootPlan } from '../node/executor/job-root.js';
import { takeJobRoot } from '../node/executor/warm-roots.js';
import { InputHasher } from '../node/scan/hasher.js';
import { InputScanner } from '../node/scan/scanner.js';
import { Store, storeObjectPath } from '../node/store.js';
import { tempDir } from './helpers/tmp.js';

const log = pino({ level: 'silent' });
const env = { PATH: '/usr/local/bin:/usr/bin:/bin', LANG: 'C' };

async function setup() {
  const home = tempDir();
  const store = new Store(path.join(home, 'store'), 256 * 1024 * 1024, log);
  await store.start();
  const executor = new Executor({ store, workDir: path.join(home, 'jobs'), slots: 2, timeoutMs: 60_000, log });
  await executor.start();
  return { store, executor, hasher: new InputHasher(store), scanner: new InputScanner() };
}

async function runJob(compiler: string, argv: string[], cwd: string, outputs: string[]) {
  const { executor, hasher, scanner } = await setup();
  const scanArgv = argv.filter((a) => a !== '-c').filter((a, i, all) => a !== '-o' && all[i - 1] !== '-o');
  const scan = await scanner.scan({ compiler, scanArgv: [...scanArgv, '-M', '-MT', 'meshcc-scan', '-v'], cwd, env });
  const inputs = await Promise.all(scan.files.map((f) => hasher.hash(f)));
  const job: Job = { id: 't1', compiler, argv, cwd, env, inputs, listings: scan.listings, dirs: scan.dirs, outputs };
  return { scan, result: await executor.run(job) };
}

describe('executor', () => {
  for (const compiler of ['/usr/bin/gcc', '/usr/bin/clang']) {
    it(`${path.basename(compiler)} -g object from the sandbox is byte-identical to a plain compile`, async () => {
      const dir = tempDir();
      mkdirSync(path.join(dir, 'inc'));
      writeFileSync(path.join(dir, 'inc', 'local.h'), '#define ANSWER 42\n');
      writeFileSync(
        path.join(dir, 'a.c'),
        '#include <stdio.h>\n#include "local.h"\nint main(void) { printf("%d\\n", ANSWER); return 0; }\n',
      );
      const argv = [path.basename(compiler), '-g', '-O2', '-Iinc', '-c', 'a.c', '-o', 'a.o'];
      const { result, scan } = await runJob(compiler, argv, dir, [path.join(dir, 'a.o')]);
      expect(scan.files).toContain('/usr/include/stdio.h');
      expect(result.exit).toBe(0);
      execFileSync(compiler, argv.slice(1), { cwd: dir, env });
      const plain = readFileSync(path.join(dir, 'a.o'));
      const fromJob = result.outputs.find((o) => o.path === path.join(dir, 'a.o'));
      expect(fromJob && Buffer.compare(Buffer.from(fromJob.data), plain)).toBe(0);
    });
  }

  it('a header on the host but absent from the input tree is invisible, while __has_include still sees it', async () => {
    const dir = tempDir();
    mkdirSync(path.join(dir, 'inc'));
    writeFileSync(path.join(dir, 'inc', 'unused.h'), '#error never included\n');
    writeFileSync(
      path.join(dir, 'a.c'),
      [
        '#if __has_include(<unused.h>)',
        'int has_unused = 1;',
        '#endif',
        '#if __has_include(<zlib-nowhere.h>)',
        '#error should not exist',
        '#endif',
        'int main(void) { return 0; }',
        '',
      ].join('\n'),
    );
    const argv = ['gcc', '-Iinc', '-c', 'a.c', '-o', 'a.o'];
    const { result } = await runJob('/usr/bin/gcc', argv, dir, [path.join(dir, 'a.o')]);
    expect(result.stderr.toString()).toBe('');
    expect(result.exit).toBe(0);
    // The job can see neither the unlisted header's content nor any other host header.
    writeFileSync(path.join(dir, 'b.c'), '#include <stdio.h>\nint x;\n');
    const { executor } = await setup();
    const probe: Job = {
      id: 't2',
      compiler: '/usr/bin/gcc',
      argv: ['gcc', '-c', 'b.c', '-o', 'b.o'],
      cwd: dir,
      env,
      inputs: [],
      listings: [],
      dirs: [dir],
      outputs: [path.join(dir, 'b.o')],
    };
    await expect(executor.run(probe)).rejects.toMatchObject({ code: 'missing-input' });
  });

  it('a job root is built from a plan of two strings: each input at its path with its own content; a NUL in a path is refused, not misread', async () => {
    const { store } = await setup();
    const sources = tempDir();
    const files = ['x.h', 'y.h'].map((name) => path.join(sources, name));
    files.forEach((f, i) => writeFileSync(f, `int v${i};\n`));
    const inputs = await Promise.all(files.map((f) => new InputHasher(store).hash(f)));
    const job: Job = { id: 'p1', compiler: '/usr/bin/gcc', argv: ['gcc'], cwd: sources, env, inputs, listings: [], dirs: [], outputs: [path.join(sources, 'x.o')] };
    const { root } = takeJobRoot(rootPlan(job), store.dir, tempDir());
    for (const f of files) expect(readFileSync(path.join(root, f), 'utf8')).toBe(readFileSync(f, 'utf8'));
    const hostile: Job = { ...job, inputs: [{ ...inputs[0]!, path: `${files[0]}\0${inputs[1]!.hash}` }, inputs[1]!] };
    expect(() => takeJobRoot(rootPlan(hostile), store.dir, tempDir())).toThrow(/do not pair up/);
  });

  it('with the store on another file system than the job roots, objects go through the link cache, copied once', async () => {
    if (statfsSync(os.tmpdir()).type === statfsSync('/dev/shm').type) return console.log('link cache test skipped: the temporary directory is on tmpfs too');
    const home = tempDir();
    const store = new Store(path.join(home, 'store'), 256 * 1024 * 1024, log);
    await store.start();
    const workDir = mkdtempSync('/dev/shm/meshcc-test-jobs-');
    const executor = new Executor({ store, workDir, slots: 2, timeoutMs: 60_000, log });
    await executor.start();
    try {
      const hasher = new InputHasher(store);
      const scanner = new InputScanner();
      const dir = tempDir();
      writeFileSync(path.join(dir, 'a.c'), '#include <stdio.h>\nint main(void) { puts("a"); return 0; }\n');
      const jobFor = async (id: string) => {
        const scan = await scanner.scan({ compiler: '/usr/bin/gcc', scanArgv: ['gcc', '-O2', 'a.c', '-M', '-MT', 'meshcc-scan', '-v'], cwd: dir, env });
        const inputs = await Promise.all(scan.files.map((f) => hasher.hash(f)));
        return { id, compiler: '/usr/bin/gcc', argv: ['gcc', '-O2', '-c', 'a.c', '-o', 'a.o'], cwd: dir, env, inputs, listings: scan.listings, dirs: scan.dirs, outputs: [path.join(dir, 'a.o')] } satisfies Job;
      };
      const first = await jobFor('l1');
      const cache = path.join(workDir, '.link-cache');
      const results = [await executor.run(first)];
      const cached = readdirSync(cache).sort();
      expect(cached).toEqual([...new Set(first.inputs.map((f) => f.hash))].sort());
      const copies = cached.map((name) => statSync(path.join(cache, name)).ino);
      results.push(await executor.run(await jobFor('l2')));
      // The second job linked the same copies: nothing was copied again.
      expect(readdirSync(cache).sort()).toEqual(cached);
      expect(readdirSync(cache).sort().map((name) => statSync(path.join(cache, name)).ino)).toEqual(copies);
      // A cleared cache (its bound reached) is filled again by what the next jobs place (a
      // kept root holds links of its own to the objects it already has).
      rmSync(cache, { recursive: true });
      writeFileSync(path.join(dir, 'a.c'), '#include <stdio.h>\nint main(void) { puts("a"); return 0; }\n/* changed */\n');
      const third = await jobFor('l3');
      results.push(await executor.run(third));
      const changed = third.inputs.find((f) => f.path === path.join(dir, 'a.c'))!.hash;
      expect(readdirSync(cache)).toContain(changed);
      execFileSync('gcc', ['-O2', '-c', 'a.c', '-o', 'a.o'], { cwd: dir, env });
      const plain = readFileSync(path.join(dir, 'a.o'));
      for (const r of results) {
        expect(r.exit).toBe(0);
        expect(Buffer.compare(Buffer.from(r.outputs[0]!.data), plain)).toBe(0);
      }
      // The store's objects were never written through a link.
      for (const f of first.inputs.filter((i) => !i.path.endsWith('a.c'))) expect(readFileSync(storeObjectPath(store.dir, f.hash)).equals(readFileSync(f.path))).toBe(true);
      expect(readFileSync(storeObjectPath(store.dir, changed)).equals(readFileSync(path.join(dir, 'a.c')))).toBe(true);
    } finally {
      await executor.stop();
      rmSync(workDir, { recursive: true, force: true });
    }
  });
});
