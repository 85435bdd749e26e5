// Kept sandboxes on the real Executor, real bubblewrap and real gcc: consecutive jobs of a root
// run in one sandbox (one PID namespace and first process), nothing a job started survives into the next, its
// objects are the ones a bubblewrap of its own gives, an input in a host-bound directory that
// differs from the host's file still gets a mount of its own (and a sandbox of its own), and a
// job right after such a one runs as well as before.
import { spawnSync } from 'node:child_process';
import { chmodSync, copyFileSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { Readable } from 'node:stream';
import { pino } from 'pino';
import { afterAll, describe, expect, it } from 'vitest';
import type { Job } from '../protocol/messages.js';
import { Executor } from '../node/executor/executor.js';
import { detectHostBinds, sandboxMounts } from '../node/executor/sandbox.js';
import { HostCopies } from '../node/executor/host-copies.js';
import { InputHasher } from '../node/scan/hasher.js';
import { LeanSpawner, nativeSpawnerPath } from '../node/spawner/lean-spawn.js';
import { readToolchainMounts } from '../node/executor/toolchain-mounts.js';
import { Store } from '../node/store.js';
import { descriptionBytes, DESCRIPTION_PATH } from '../toolchain/description.js';
import { installToolchain } from '../toolchain/unpack.js';
import { fakeDescription, tarOfTree } from './helpers/toolchain-tars.js';
import { processesMentioning } from './helpers/processes.js';
import { tempDir } from './helpers/tmp.js';

const log = pino({ level: 'silent' });
const env = { PATH: '/usr/local/bin:/usr/bin:/bin', LANG: 'C' };
const MiB = 1024 * 1024;

const bwrapMissing = spawnSync('bwrap', ['--version']).error !== undefined;
if (bwrapMissing) console.log('kept sandbox tests skipped: bubblewrap (bwrap) is not installed');

const executors: Executor[] = [];
afterAll(async () => {
  await Promise.all(executors.splice(0).map((e) => e.stop()));
});

async function setup(native: boolean) {
  const home = tempDir();
  const store = new Store(path.join(home, 'store'), 256 * MiB, log);
  await store.start();
  // One slot: consecutive jobs take the same kept root.
  const spawner = new LeanSpawner(0, native ? nativeSpawnerPath() : false);
  const executor = new Executor({ store, workDir: path.join(home, 'jobs'), slots: 1, timeoutMs: 60_000, log, spawner });
  await executor.start();
  executors.push(executor);
  return { store, executor, hasher: new InputHasher(store) };
}

let jobs = 0;

// A sandbox's identity: its PID namespace and when its first process started. The kernel hands a
// freed namespace's number to the next one made, so the number alone can name two sandboxes.
const SANDBOX_ID = 'echo "$(readlink /proc/self/ns/pid) $(cut -d" " -f22 /proc/1/stat)"';

function shellJob(dir: string, script: string, args: string[] = []): Job {
  return { id: `sh-${++jobs}`, compiler: '/usr/bin/bash', argv: ['bash', '-c', script, 'bash', ...args], cwd: dir, env, inputs: [], listings: [], dirs: [dir], outputs: [path.join(dir, 'out')] };
}

const GCC_HEADER = '/usr/lib/gcc/x86_64-linux-gnu/12/include/stddef.h';
const hasGccHeader = spawnSync('test', ['-f', GCC_HEADER]).status === 0;

describe.skipIf(bwrapMissing)('kept sandboxes', () => {
  it('consecutive jobs of a root share one sandbox; nothing a job started outlives it', async () => {
    const { executor } = await setup(true);
    const dir = tempDir();
    const marker = `meshcc-kept-${process.pid}-${Date.now()}`;
    const namespaces: string[] = [];
    for (let i = 0; i < 3; i++) {
      // Each job leaves a process behind; the next must not see it.
      const script = `${SANDBOX_ID}; ls /proc | grep -c "^[0-9]"; (exec -a "$1" sleep 300 &) ; echo done`;
      const result = await executor.run(shellJob(dir, script, [marker]));
      expect(result.exit).toBe(0);
      const [ns, count] = Buffer.from(result.stdout).toString().split('\n');
      namespaces.push(ns!);
      // The spawner, bash, ls, grep and the subshell: nothing of an earlier job.
      expect(Number(count)).toBeLessThanOrEqual(5);
      expect(processesMentioning(marker)).toEqual([]);
    }
    expect(new Set(namespaces).size).toBe(1);
  });

  it('a job that leaves something in the sandbox\'s own /dev or System V IPC ends it: the next job gets a fresh one', async () => {
    const { executor } = await setup(true);
    const dir = tempDir();
    const ipcmk = spawnSync('sh', ['-c', 'command -v ipcmk']).status === 0;
    const leave = ['echo left > /dev/shm/left-behind', 'mkdir /dev/left-dir', ...(ipcmk ? ['ipcmk -M 4096 > /dev/null'] : [])];
    const look = `${SANDBOX_ID}; ls /dev/shm /dev | grep -c left; ipcs -m 2>/dev/null | grep -c "^0x" || true`;
    for (const leaving of leave) {
      const first = Buffer.from((await executor.run(shellJob(dir, `${look}; ${leaving}`))).stdout).toString().split('\n');
      const second = Buffer.from((await executor.run(shellJob(dir, look))).stdout).toString().split('\n');
      expect(first[0]).toMatch(/^pid:\[\d+\] \d+$/);
      expect(second[0]).not.toBe(first[0]);
      expect(second.slice(1, 3)).toEqual(['0', '0']);
      // And a clean job keeps it.
      const third = Buffer.from((await executor.run(shellJob(dir, look))).stdout).toString().split('\n');
      expect(third[0]).toBe(second[0]);
    }
  });

  it('jobs over a toolchain tree keep their sandbox too; the tree installed again gets a new one', async () => {
    const build = tempDir();
    // Prints the sandbox's identity: its PID namespace and the start time of its first process.
    const program = [
      '#include <stdio.h>',
      '#include <stdlib.h>',
      '#include <string.h>',
      '#include <unistd.h>',
      'int main(void) {',
      '  char ns[64] = {0}, stat[1024] = {0};',
      '  if (readlink("/proc/self/ns/pid", ns, sizeof ns - 1) < 0) return 1;',
      '  FILE *f = fopen("/proc/1/stat", "r");',
      '  if (!f || !fread(stat, 1, sizeof stat - 1, f)) return 1;',
      '  char *p = strrchr(stat, 41);', // the closing parenthesis of the command's name
      '  for (int i = 0; i < 20 && p; i++) p = strchr(p + 1, 32);', // on to the 22nd field
      '  if (!p) return 1;',
      '  printf("%s %llu\\n", ns, strtoull(p + 1, 0, 10));',
      '  return 0;',
      '}',
    ];
    writeFileSync(path.join(build, 'ns.c'), program.join('\n') + '\n');
    if (spawnSync('gcc', ['-static', '-O1', 'ns.c', '-o', 'ns'], { cwd: build }).status !== 0) {
      console.log('skipped: cannot link a static program here');
      return;
    }
    const tree = tempDir();
    mkdirSync(path.join(tree, 'usr/bin'), { recursive: true });
    mkdirSync(path.join(tree, '.meshcc'));
    copyFileSync(path.join(build, 'ns'), path.join(tree, 'usr/bin/ns'));
    chmodSync(path.join(tree, 'usr/bin/ns'), 0o755);
    writeFileSync(path.join(tree, DESCRIPTION_PATH), descriptionBytes(fakeDescription({ compiler: '/usr/bin/ns', driver: '/usr/bin/ns' })));
    const tar = await tarOfTree(tree);
    const cacheDir = path.join(tempDir(), 'toolchains');
    const install = async () => readToolchainMounts((await installToolchain({ cacheDir, id: tar.id, source: Readable.from([tar.bytes]) })).root);
    let mounts = await install();
    const { executor } = await setup(true);
    const dir = tempDir();
    const job = (): Job => ({ ...shellJob(dir, ''), compiler: '/usr/bin/ns', argv: ['ns'] });
    const sandboxOf = async () => Buffer.from((await executor.run(job(), undefined, mounts)).stdout).toString().trim();
    const first = await sandboxOf();
    expect(first).toMatch(/^pid:\[\d+\] \d+$/);
    expect(await sandboxOf()).toBe(first);
    // Evicted and installed again at the same path: another directory, another sandbox.
    rmSync(mounts.root, { recursive: true, force: true });
    rmSync(path.join(cacheDir, 'index.json'), { force: true });
    mounts = await install();
    const again = await sandboxOf();
    expect(again).toMatch(/^pid:/);
    expect(again).not.toBe(first);
  });

  it('gives the objects, diagnostics and exit codes a bubblewrap of its own gives', async () => {
    const kept = await setup(true);
    const alone = await setup(false);
    // Only gcc's own headers (the host-bound directories hold them): the job lists just its source.
    const source = '#include <stddef.h>\nint printf(const char *, ...);\nint f(size_t n) { int unused; return printf("%zu", n); }\n';
    const broken = 'int g(void) { return missing; }\n';
    for (const [name, text, flags] of [
      ['a.c', source, ['-g', '-O2', '-Wall']],
      ['b.c', broken, ['-g']],
      ['c.c', source, ['-g', '-DX=1']],
    ] as const) {
      const results = [];
      for (const { executor, hasher } of [kept, alone]) {
        const dir = tempDir();
        writeFileSync(path.join(dir, name), text);
        const job: Job = {
          id: `cc-${++jobs}`,
          compiler: '/usr/bin/gcc',
          argv: ['gcc', ...flags, '-c', name, '-o', 'out.o'],
          cwd: '/tmp/kept-sandbox-compile',
          env,
          inputs: [await hasher.hash(path.join(dir, name))].map((f) => ({ ...f, path: path.join('/tmp/kept-sandbox-compile', name) })),
          listings: [],
          dirs: ['/tmp/kept-sandbox-compile'],
          outputs: ['/tmp/kept-sandbox-compile/out.o'],
        };
        results.push(await executor.run(job).catch((err: Error) => err));
      }
      const [a, b] = results as { exit: number; stderr: Uint8Array; outputs: { data: Uint8Array }[] }[];
      expect(a).not.toBeInstanceOf(Error);
      expect(a!.exit).toBe(b!.exit);
      expect(Buffer.from(a!.stderr).toString()).toBe(Buffer.from(b!.stderr).toString());
      expect(a!.outputs.map((o) => Buffer.from(o.data).toString('hex'))).toEqual(b!.outputs.map((o) => Buffer.from(o.data).toString('hex')));
    }
  });

  it.skipIf(!hasGccHeader)('an input that differs from the host\'s file in a bound directory is mounted for its job alone; the next job runs as before', async () => {
    const { executor, store } = await setup(true);
    const binds = detectHostBinds();
    const host = readFileSync(GCC_HEADER);
    const hashOf = async (data: Buffer) => {
      const { createHash } = await import('node:crypto');
      const hash = createHash('sha256').update(data).digest('hex');
      await store.put(hash, data);
      return hash;
    };
    const same = { path: GCC_HEADER, hash: await hashOf(host), size: host.length, executable: false };
    const changed = Buffer.concat([host, Buffer.from('\n#define MESHCC_CLIENT_COPY 1\n')]);
    const differs = { path: GCC_HEADER, hash: await hashOf(changed), size: changed.length, executable: false };
    const dir = tempDir();
    const job = (input: typeof same) => ({ ...shellJob(dir, `grep -c MESHCC_CLIENT_COPY ${GCC_HEADER}; true`), inputs: [input] });
    expect(sandboxMounts(job(same), '/root', binds, undefined, new HostCopies()).jobOwn).toBe(false);
    expect(sandboxMounts(job(differs), '/root', binds, undefined, new HostCopies()).jobOwn).toBe(true);
    for (const [input, seen] of [
      [same, '0'],
      [differs, '1'],
      [same, '0'],
    ] as const) {
      const result = await executor.run(job(input));
      expect(Buffer.from(result.stdout).toString().trim()).toBe(seen);
    }
  });
});
