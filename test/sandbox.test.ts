// The sandbox's promises, on the real Executor, real bubblewrap and real gcc/clang: a job sees
// nothing of the host but its job root and the compiler directories, opens no network
// connection, and stops at its CPU, memory and file-size limits and at its timeout, leaving
// no process behind; a job stopped by a limit falls back ('resource-limit') instead of
// passing for a compile error.
import { execFile, spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import net, { type AddressInfo } from 'node:net';
import path from 'node:path';
import { promisify } from 'node:util';
import { pino } from 'pino';
import { afterAll, describe, expect, it } from 'vitest';
import type { Job } from '../protocol/messages.js';
import { loadConfig } from '../node/config.js';
import { Executor, type ExecutorOptions } from '../node/executor/executor.js';
import { resourceLimitHit } from '../node/executor/resource-limits.js';
import { InputHasher } from '../node/scan/hasher.js';
import { Store } from '../node/store.js';
import { processesMentioning } from './helpers/processes.js';
import { tempDir } from './helpers/tmp.js';

const log = pino({ level: 'silent' });
const env = { PATH: '/usr/local/bin:/usr/bin:/bin', LANG: 'C' };
const MiB = 1024 * 1024;
const run = promisify(execFile);

const bwrapMissing = spawnSync('bwrap', ['--version']).error !== undefined;
if (bwrapMissing) console.log('sandbox tests skipped: bubblewrap (bwrap) is not installed');

const executors: Executor[] = [];
afterAll(async () => {
  await Promise.all(executors.splice(0).map((e) => e.stop()));
});

type Limits = Pick<ExecutorOptions, 'cpuSeconds' | 'memoryBytes' | 'outputFileBytes'>;

async function setup(limits: Limits = {}) {
  const home = tempDir();
  const store = new Store(path.join(home, 'store'), 256 * MiB, log);
  await store.start();
  const executor = new Executor({ store, workDir: path.join(home, 'jobs'), slots: 2, timeoutMs: 60_000, log, ...limits });
  await executor.start();
  executors.push(executor);
  expect(executor.unavailableReason).toBeUndefined();
  return { home, store, executor, hasher: new InputHasher(store) };
}

let jobs = 0;

/** A job whose "compiler" is bash from the bound host directories: any command, same sandbox. */
function shellJob(dir: string, script: string, args: string[] = [], timeoutMs?: number): Job {
  return {
    id: `sh-${++jobs}`,
    compiler: '/usr/bin/bash',
    argv: ['bash', '-c', script, 'bash', ...args],
    cwd: dir,
    env,
    inputs: [],
    listings: [],
    dirs: [dir],
    outputs: [path.join(dir, 'out')],
    ...(timeoutMs ? { timeoutMs } : {}),
  };
}

/** A compile of one source file written to a fresh directory, its only input. */
async function compileJob(hasher: InputHasher, compiler: string, source: { name: string; text: string }, flags: string[] = []) {
  const dir = tempDir();
  const file = path.join(dir, source.name);
  writeFileSync(file, source.text);
  const object = path.join(dir, 'out.o');
  const argv = [path.basename(compiler), ...flags, '-c', source.name, '-o', 'out.o'];
  const job: Job = { id: `cc-${++jobs}`, compiler, argv, cwd: dir, env, inputs: [await hasher.hash(file)], listings: [], dirs: [dir], outputs: [object] };
  return { dir, job };
}

async function waitFor<T>(probe: () => T, done: (value: T) => boolean, ms: number): Promise<T> {
  const deadline = Date.now() + ms;
  let value = probe();
  while (!done(value) && Date.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, 20));
    value = probe();
  }
  return value;
}

describe.skipIf(bwrapMissing)('sandbox: what a job can reach', () => {
  it('host files outside the job root and the compiler directories do not exist for a job', async () => {
    const { home, store, executor, hasher } = await setup();
    const dir = tempDir();
    writeFileSync(path.join(dir, 'secret.txt'), 'beside the job, not an input\n');
    const stored = await hasher.hash(path.join(dir, 'secret.txt'));
    const paths = ['/etc/passwd', '/etc/shadow', '/etc/hostname', '/root', '/home', home, store.dir, store.pathOf(stored.hash), path.join(dir, 'secret.txt')];
    const script = 'for f in "$@"; do if [ -e "$f" ]; then echo "visible $f"; fi; done; exit 0';
    const result = await executor.run(shellJob(dir, script, paths));
    expect(result.stderr.toString()).toBe('');
    expect(result.exit).toBe(0);
    expect(result.stdout.toString()).toBe('');
    // The same command on the host sees them: the check above can fail.
    const host = (await run('bash', ['-c', script, 'bash', ...paths])).stdout;
    for (const p of ['/etc/passwd', store.pathOf(stored.hash), path.join(dir, 'secret.txt')]) expect(host).toContain(`visible ${p}\n`);
  });

  for (const compiler of ['/usr/bin/gcc', '/usr/bin/clang']) {
    it(`${path.basename(compiler)}: __has_include of a host file outside the job is false in the sandbox`, async () => {
      const { executor, hasher } = await setup();
      const text = '#if __has_include("/etc/passwd")\n#error the host file is visible\n#endif\nint x;\n';
      const { dir, job } = await compileJob(hasher, compiler, { name: 'a.c', text });
      const result = await executor.run(job);
      expect(result.stderr.toString()).toBe('');
      expect(result.exit).toBe(0);
      await expect(run(compiler, ['-c', 'a.c', '-o', 'host.o'], { cwd: dir, env })).rejects.toThrow(/the host file is visible/);
    });
  }

  it("gcc: an assembler .incbin of a host file finds nothing, and the job falls back as missing-input", async () => {
    const { executor, hasher } = await setup();
    const { dir, job } = await compileJob(hasher, '/usr/bin/gcc', { name: 'a.c', text: '__asm__(".incbin \\"/etc/passwd\\"");\n' });
    await expect(executor.run(job)).rejects.toMatchObject({ code: 'missing-input', message: expect.stringMatching(/file not found: \/etc\/passwd/) });
    await run('/usr/bin/gcc', ['-c', 'a.c', '-o', 'host.o'], { cwd: dir, env });
  });

  it('a job opens no network connection, to any loopback address of the host, and has only a loopback interface of its own', async () => {
    const { executor } = await setup();
    let connections = 0;
    const server = net.createServer((socket) => {
      connections++;
      socket.destroy();
    });
    // Tests talk to loopback only: two of its addresses, both reaching this server on the host.
    await new Promise<void>((resolve) => server.listen(0, '0.0.0.0', resolve));
    try {
      const port = (server.address() as AddressInfo).port;
      const addresses = ['127.0.0.1', '127.0.0.2'];
      const script = `for a in "$@"; do if (: <>/dev/tcp/$a/${port}) 2>/dev/null; then echo "connected $a"; else echo "no connection $a"; fi; done; cat /proc/net/dev; exit 0`;
      const result = await executor.run(shellJob(tempDir(), script, addresses));
      const out = result.stdout.toString();
      expect(result.exit).toBe(0);
      for (const a of addresses) expect(out).toContain(`no connection ${a}\n`);
      expect(out).not.toContain('connected');
      const interfaces = out.split('\n').slice(2).filter((l) => l.includes(':')).map((l) => l.split(':')[0]!.trim());
      expect(interfaces).toEqual(['lo']);
      expect(connections).toBe(0);
      // The same command on the host connects: the check above can fail.
      const host = (await run('bash', ['-c', script, 'bash', ...addresses])).stdout;
      for (const a of addresses) expect(host).toContain(`connected ${a}\n`);
      expect(await waitFor(() => connections, (n) => n >= addresses.length, 2000)).toBe(addresses.length);
    } finally {
      server.close();
    }
  });
});

// Minutes of CPU in a constant expression, within the g++ limits the flags raise.
const SPIN = 'constexpr long spin() { long s = 0; for (long i = 0; i < 2000000000L; i++) s += i & 7; return s; }\nconstexpr long value = spin();\n';
const SPIN_FLAGS = ['-std=c++20', '-fconstexpr-loop-limit=2147483647', '-fconstexpr-ops-limit=1000000000000'];
// 2^28 initialisers from a few macros: the front end holds every token, so memory grows fast.
const TOKEN_FLOOD = ['#define A0 1,', ...Array.from({ length: 28 }, (_, i) => `#define A${i + 1} A${i} A${i}`), 'int x[] = { A28 0 };', ''].join('\n');
const BIG_OBJECT = 'char big[10 << 20] = {1};\n';

describe.skipIf(bwrapMissing)('sandbox: resource limits and the timeout', () => {
  it('g++ past its CPU time limit ends as resource-limit within seconds, not as its own error', async () => {
    const { executor, hasher } = await setup({ cpuSeconds: 1 });
    const { job } = await compileJob(hasher, '/usr/bin/g++', { name: 'spin.cc', text: SPIN }, SPIN_FLAGS);
    const start = Date.now();
    await expect(executor.run(job)).rejects.toMatchObject({ code: 'resource-limit', message: expect.stringMatching(/CPU time limit \(1 s\)/) });
    expect(Date.now() - start).toBeLessThan(15_000);
  });

  it('a job that ignores SIGXCPU is killed a second later and still ends as resource-limit', async () => {
    const { executor } = await setup({ cpuSeconds: 1 });
    const start = Date.now();
    await expect(executor.run(shellJob(tempDir(), "trap '' XCPU; while :; do :; done"))).rejects.toMatchObject({ code: 'resource-limit' });
    expect(Date.now() - start).toBeLessThan(15_000);
  });

  for (const compiler of ['/usr/bin/gcc', '/usr/bin/clang']) {
    it(`${path.basename(compiler)} writing a 10 MiB object past a 1 MiB file limit ends as resource-limit`, async () => {
      const { executor, hasher } = await setup({ outputFileBytes: 1 * MiB });
      const { job } = await compileJob(hasher, compiler, { name: 'big.c', text: BIG_OBJECT });
      await expect(executor.run(job)).rejects.toMatchObject({ code: 'resource-limit', message: expect.stringMatching(/larger than its limit \(1 MiB\)/) });
    });
  }

  it('the same 10 MiB object within the default limits compiles', async () => {
    const { executor, hasher } = await setup();
    const { job } = await compileJob(hasher, '/usr/bin/gcc', { name: 'big.c', text: BIG_OBJECT });
    const result = await executor.run(job);
    expect(result.exit).toBe(0);
    expect(result.outputs.find((o) => o.path === job.outputs[0])?.data.length).toBeGreaterThan(10 * MiB);
  });

  for (const compiler of ['/usr/bin/g++', '/usr/bin/clang++']) {
    it(`${path.basename(compiler)} past its memory limit ends as resource-limit`, async () => {
      const { executor, hasher } = await setup({ memoryBytes: 384 * MiB });
      const { job } = await compileJob(hasher, compiler, { name: 'flood.cc', text: TOKEN_FLOOD });
      await expect(executor.run(job)).rejects.toMatchObject({ code: 'resource-limit', message: expect.stringMatching(/memory limit \(384 MiB\)/) });
    });
  }

  it('a compile error that talks about memory is still the compiler\'s own', async () => {
    const { executor, hasher } = await setup();
    const { job } = await compileJob(hasher, '/usr/bin/gcc', { name: 'a.c', text: '#error out of memory\nconst char *m = "virtual memory exhausted";\n' });
    const result = await executor.run(job);
    expect(result.exit).toBe(1);
    expect(result.stderr.toString()).toContain('#error out of memory');
  });

  it('a job stuck in a loop is killed at its timeout with every process of its sandbox', async () => {
    const { executor } = await setup({ cpuSeconds: 60 });
    const marker = `meshcc-stuck-${process.pid}-${Date.now()}`;
    const script = '(while :; do :; done) & while :; do sleep 1; done';
    const job = shellJob(tempDir(), script, [marker], 1000);
    const start = Date.now();
    const outcome = executor.run(job).catch((err: unknown) => err);
    try {
      const running = await waitFor(() => processesMentioning(marker), (pids) => pids.length >= 2, 5000);
      // The shell and its looping subshell (in a kept sandbox: bubblewrap's command line is the spawner's).
      expect(running.length).toBeGreaterThanOrEqual(2);
      // A sandbox that outlives the kill holds the job's pipes open: the run would never end.
      const ended = await Promise.race([outcome, new Promise((resolve) => setTimeout(() => resolve('still running'), 10_000))]);
      expect(ended).toMatchObject({ code: 'timeout' });
      expect(Date.now() - start).toBeLessThan(10_000);
      expect(await waitFor(() => processesMentioning(marker), (pids) => pids.length === 0, 2000)).toEqual([]);
    } finally {
      // Only when the test fails: its busy loops must not outlive it.
      for (const pid of processesMentioning(marker)) process.kill(pid, 'SIGKILL');
    }
  });
});

describe('resource limits: knobs and the reading of a failed run', () => {
  const limits = { cpuSeconds: 600, memoryBytes: 8192 * MiB, outputFileBytes: 1024 * MiB };

  it('a limit named by the driver, or the signal that ended the command, is a resource limit', () => {
    const ice = 'g++: internal compiler error: CPU time limit exceeded signal terminated program cc1plus\nPlease submit a full bug report.\n';
    expect(resourceLimitHit(4, ice, limits)).toMatch(/CPU time/);
    expect(resourceLimitHit(1, 'virtual memory exhausted: Cannot allocate memory\n', limits)).toMatch(/memory limit/);
    expect(resourceLimitHit(1, '\ncc1: out of memory allocating 65536 bytes after a total of 1 bytes\n', limits)).toMatch(/memory limit/);
    expect(resourceLimitHit(1, 'gcc: fatal error: Killed signal terminated program cc1\n', limits)).toMatch(/killed/);
    expect(resourceLimitHit(128 + 25, '', limits)).toMatch(/larger than its limit/);
    expect(resourceLimitHit(128 + 9, '', limits)).toMatch(/killed/);
  });

  it('a diagnostic quoting such words is the compile\'s own', () => {
    const gcc = "a.c:3:2: error: #error out of memory\n    3 | #error out of memory\n      |  ^~~~~\n";
    expect(resourceLimitHit(1, gcc, limits)).toBeUndefined();
    const clang = 'a.c:3:2: error: out of memory\n#error out of memory\n ^\n1 error generated.\n';
    expect(resourceLimitHit(1, clang, limits)).toBeUndefined();
    expect(resourceLimitHit(0, 'virtual memory exhausted\n', limits)).toBeUndefined();
  });

  it('MESHCC_JOB_CPU_S, MESHCC_JOB_MEMORY_MB and MESHCC_JOB_OUTPUT_MB: defaults, values, one-line errors', () => {
    const home = tempDir();
    const defaults = loadConfig({ MESHCC_HOME: home });
    expect(defaults).toMatchObject({ jobCpuSeconds: undefined, jobMemoryBytes: 8 * 1024 * MiB, jobOutputFileBytes: 1024 * MiB });
    const set = loadConfig({ MESHCC_HOME: home, MESHCC_JOB_CPU_S: '30', MESHCC_JOB_MEMORY_MB: '2048', MESHCC_JOB_OUTPUT_MB: '64' });
    expect(set).toMatchObject({ jobCpuSeconds: 30, jobMemoryBytes: 2048 * MiB, jobOutputFileBytes: 64 * MiB });
    expect(() => loadConfig({ MESHCC_HOME: home, MESHCC_JOB_MEMORY_MB: '0' })).toThrow("MESHCC_JOB_MEMORY_MB must be a whole number ≥ 1, got '0'");
    expect(() => loadConfig({ MESHCC_HOME: home, MESHCC_JOB_CPU_S: '1.5' })).toThrow("MESHCC_JOB_CPU_S must be a whole number ≥ 1, got '1.5'");
    expect(() => loadConfig({ MESHCC_HOME: home, MESHCC_JOB_OUTPUT_MB: 'lots' })).toThrow("MESHCC_JOB_OUTPUT_MB must be a whole number ≥ 1, got 'lots'");
  });
});
