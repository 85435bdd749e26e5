// Job roots kept from one job to the next (warm-roots.ts): a kept root brought to the next
// job's inputs must compile exactly as a fresh one (a plain compile's bytes), show nothing of
// the jobs before it, and be given up when a compile left anything behind. Real gcc in
// bubblewrap, real store, the executor as a peer runs it.
import { execFileSync } from 'node:child_process';
import { mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import type { Job } from '../protocol/messages.js';
import { Executor } from '../node/executor/executor.js';
import { InputHasher } from '../node/scan/hasher.js';
import { InputScanner } from '../node/scan/scanner.js';
import { Store } from '../node/store.js';
import { tempDir } from './helpers/tmp.js';

const log = pino({ level: 'silent' });
const env = { PATH: '/usr/local/bin:/usr/bin:/bin', LANG: 'C' };
const executors: Executor[] = [];

afterEach(async () => {
  for (const e of executors.splice(0)) await e.stop();
});

async function oneSlotExecutor() {
  const home = tempDir();
  const store = new Store(path.join(home, 'store'), 256 * 1024 * 1024, log);
  await store.start();
  const workDir = path.join(home, 'jobs');
  const executor = new Executor({ store, workDir, slots: 1, timeoutMs: 60_000, log });
  await executor.start();
  executors.push(executor);
  return { executor, hasher: new InputHasher(store), roots: path.join(workDir, 'roots') };
}

let jobs = 0;

/** The job for `argv` with the inputs -M finds now (listings included: placeholders). */
async function jobFor(hasher: InputHasher, dir: string, argv: string[], output: string): Promise<Job> {
  const scanArgv = argv.filter((a, i, all) => a !== '-c' && a !== '-o' && all[i - 1] !== '-o');
  const scan = await new InputScanner(undefined, false).scan({ compiler: '/usr/bin/gcc', scanArgv: [...scanArgv, '-M', '-MT', 'meshcc-scan', '-v'], cwd: dir, env });
  const inputs = await Promise.all(scan.files.map((f) => hasher.hash(f)));
  return { id: `w${++jobs}`, compiler: '/usr/bin/gcc', argv, cwd: dir, env, inputs, listings: scan.listings, dirs: scan.dirs, outputs: [path.join(dir, output)] };
}

function plain(dir: string, argv: string[], output: string): Buffer {
  execFileSync('/usr/bin/gcc', argv.slice(1), { cwd: dir, env });
  const bytes = readFileSync(path.join(dir, output));
  rmSync(path.join(dir, output));
  return bytes;
}

describe('kept job roots', () => {
  it('a root kept and brought to the next inputs compiles as a plain compile does, and shows nothing of the jobs before', async () => {
    const sandboxed = await oneSlotExecutor();
    if (sandboxed.executor.sandboxUnavailableReason) return console.log(`skipped: ${sandboxed.executor.sandboxUnavailableReason}`);
    const { executor, hasher, roots } = sandboxed;
    const dir = tempDir();
    mkdirSync(path.join(dir, 'inc'));
    mkdirSync(path.join(dir, 'gone'));
    writeFileSync(path.join(dir, 'inc', 'a.h'), '#define A 1\n');
    writeFileSync(path.join(dir, 'inc', 'c.h'), '#define C 3\n');
    writeFileSync(path.join(dir, 'gone', 'g.h'), '#define G 4\n');
    const source = (lines: string[]) => writeFileSync(path.join(dir, 'main.c'), [...lines, 'int main(void) { return VALUE; }', ''].join('\n'));
    const argv = ['gcc', '-g', '-O1', '-Iinc', '-Igone', '-c', 'main.c', '-o', 'main.o'];

    // 1: a.h, c.h and gone/g.h
    source(['#include "a.h"', '#include "c.h"', '#include "g.h"', '#define VALUE (A + C + G)']);
    const first = await executor.run(await jobFor(hasher, dir, argv, 'main.o'));
    expect(first.exit).toBe(0);
    expect(Buffer.compare(Buffer.from(first.outputs[0]!.data), plain(dir, argv, 'main.o'))).toBe(0);
    expect(readdirSync(roots)).toHaveLength(1);
    const kept = readdirSync(roots)[0]!;

    // 2: a.h changed, c.h gone from the client, b.h new, gone/ removed: the kept root must
    // show the new a.h, no c.h (__has_include says so) and no gone/ at all.
    writeFileSync(path.join(dir, 'inc', 'a.h'), '#define A 10\n');
    rmSync(path.join(dir, 'inc', 'c.h'));
    rmSync(path.join(dir, 'gone'), { recursive: true });
    writeFileSync(path.join(dir, 'inc', 'b.h'), '#define B 20\n');
    source([
      '#include "a.h"',
      '#include "b.h"',
      '#if __has_include("c.h") || __has_include("g.h")',
      '#error a file of an earlier job is visible',
      '#endif',
      '#define VALUE (A + B)',
    ]);
    const argv2 = ['gcc', '-g', '-O1', '-Iinc', '-c', 'main.c', '-o', 'main.o'];
    const second = await executor.run(await jobFor(hasher, dir, argv2, 'main.o'));
    expect(second.stderr.toString()).toBe('');
    expect(second.exit).toBe(0);
    expect(Buffer.compare(Buffer.from(second.outputs[0]!.data), plain(dir, argv2, 'main.o'))).toBe(0);
    // and again: the root stays the same one from job to job
    const third = await executor.run(await jobFor(hasher, dir, argv2, 'main.o'));
    expect(Buffer.compare(Buffer.from(third.outputs[0]!.data), Buffer.from(second.outputs[0]!.data))).toBe(0);
    await new Promise((resolve) => setTimeout(resolve, 200)); // the release runs after the answer
    expect(readdirSync(roots)).toEqual([kept]);
  });

  it('a compile that leaves a file outside its outputs costs its root; the next job gets a fresh one without it', async () => {
    const sandboxed = await oneSlotExecutor();
    if (sandboxed.executor.sandboxUnavailableReason) return console.log(`skipped: ${sandboxed.executor.sandboxUnavailableReason}`);
    const { executor, hasher, roots } = sandboxed;
    const dir = tempDir();
    mkdirSync(path.join(dir, 'out'));
    writeFileSync(path.join(dir, 'main.c'), 'int main(void) { return 0; }\n');
    // -save-temps=cwd writes main.i and main.s beside the source, not in out/
    const messy = ['gcc', '-save-temps=cwd', '-c', 'main.c', '-o', 'out/main.o'];
    const first = await executor.run(await jobFor(hasher, dir, messy, 'out/main.o'));
    expect(first.exit).toBe(0);
    const firstRoot = readdirSync(roots);
    await new Promise((resolve) => setTimeout(resolve, 200)); // the release runs after the answer

    writeFileSync(path.join(dir, 'main.c'), '#if __has_include("main.i")\n#error the last job left main.i\n#endif\nint main(void) { return 0; }\n');
    const clean = ['gcc', '-c', 'main.c', '-o', 'out/main.o'];
    const second = await executor.run(await jobFor(hasher, dir, clean, 'out/main.o'));
    expect(second.stderr.toString()).toBe('');
    expect(Buffer.compare(Buffer.from(second.outputs[0]!.data), plain(dir, clean, 'out/main.o'))).toBe(0);
    expect(readdirSync(roots)).not.toEqual(firstRoot);
  });
});
