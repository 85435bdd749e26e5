// The spawner helper: programs started from a small process instead of the agent (the native
// spawner where it was built, else a Node one; both held to the same behaviour here), and the
// sandboxed jobs' helper niced below the agents (MESHCC_JOB_NICE), as icecream and distcc nice
// their compiles: an agent handing a slot its next job gets a core at once.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadConfig } from '../node/config.js';
import { LeanSpawner, nativeSpawnerPath } from '../node/spawner/lean-spawn.js';

const niceOf = async (spawner: LeanSpawner) => {
  const r = await spawner.run({ file: 'sh', args: ['-c', 'nice'], outputLimit: 1024 });
  return Number(Buffer.from(r.stdout).toString().trim());
};

const native = nativeSpawnerPath();
if (!native) throw new Error('the native spawner is not built: run npm run build');

const helpers = [
  ['native', native],
  ['Node', false],
] as const;

describe.each(helpers)('the %s spawner', (_name, which) => {
  const withSpawner = async (use: (s: LeanSpawner) => Promise<void>, nice = 0) => {
    const spawner = new LeanSpawner(nice, which);
    try {
      await use(spawner);
    } finally {
      spawner.stop();
    }
  };

  it('runs a program with its arguments, environment and directory, and returns stdout, stderr, fd 3 and the exit code', () =>
    withSpawner(async (s) => {
      const dir = mkdtempSync(path.join(os.tmpdir(), 'spawn-'));
      try {
        const r = await s.run({
          file: 'sh',
          args: ['-c', 'echo "$1 $GREETING $(pwd)"; echo err >&2; echo status >&3; exit 3', 'sh', 'arg one'],
          env: { PATH: process.env.PATH, GREETING: 'hello' },
          cwd: dir,
          captureFd3: true,
          outputLimit: 1024,
        });
        expect(Buffer.from(r.stdout).toString()).toBe(`arg one hello ${dir}\n`);
        expect(Buffer.from(r.stderr).toString()).toBe('err\n');
        expect(Buffer.from(r.fd3).toString()).toBe('status\n');
        expect([r.code, r.signal, r.error]).toEqual([3, null, undefined]);
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    }));

  it('many programs at once each get their own output, large outputs whole', () =>
    withSpawner(async (s) => {
      const runs = await Promise.all(
        Array.from({ length: 20 }, (_, i) => s.run({ file: 'sh', args: ['-c', `head -c ${i * 20000} /dev/zero | tr '\\0' x; echo ${i} >&2`], outputLimit: 1 << 20 })),
      );
      runs.forEach((r, i) => {
        expect(r.stdout.length).toBe(i * 20000);
        expect(Buffer.from(r.stderr).toString()).toBe(`${i}\n`);
        expect(r.code).toBe(0);
      });
    }));

  it('a program that cannot start is an error, not an exit code', () =>
    withSpawner(async (s) => {
      const r = await s.run({ file: 'no-such-program-here', args: [], outputLimit: 1024 });
      expect(r.code).toBeNull();
      expect(r.error).toMatch(/no-such-program-here.*ENOENT/);
      const inMissingDir = await s.run({ file: 'true', args: [], cwd: '/no/such/dir', outputLimit: 1024 });
      expect(inMissingDir.code).toBeNull();
      expect(inMissingDir.error).toMatch(/ENOENT/);
    }));

  it('kills a program past its output limit or its timeout, or when asked, and says which', () =>
    withSpawner(async (s) => {
      const loud = await s.run({ file: 'sh', args: ['-c', 'exec yes'], outputLimit: 100_000 });
      expect([loud.overLimit, loud.signal]).toEqual([true, 'SIGKILL']);
      expect(loud.stdout.length).toBeLessThanOrEqual(100_000);
      const slow = await s.run({ file: 'sleep', args: ['30'], outputLimit: 1024, timeoutMs: 200 });
      expect([slow.timedOut, slow.signal]).toEqual([true, 'SIGKILL']);
      const abort = new AbortController();
      const asked = s.run({ file: 'sleep', args: ['30'], outputLimit: 1024, signal: abort.signal });
      setTimeout(() => abort.abort(), 100);
      expect((await asked).signal).toBe('SIGKILL');
    }));

  it('sets the limits asked for before the program starts', () =>
    withSpawner(async (s) => {
      const r = await s.run({
        file: 'sh',
        args: ['-c', 'ulimit -t; ulimit -v; ulimit -f; ulimit -c'],
        limits: { cpuSoftSeconds: 7, cpuHardSeconds: 8, addressSpaceBytes: 1 << 30, fileSizeBytes: 1 << 20, coreBytes: 0 },
        outputLimit: 1024,
      });
      // dash prints the soft limits: seconds, KiB, 512-byte blocks, blocks.
      expect(Buffer.from(r.stdout).toString().split('\n')).toEqual(['7', String((1 << 30) / 1024), String((1 << 20) / 512), '0', '']);
    }));

  it('when the agent goes, what it still runs is killed', () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'spawn-'));
    const pidFile = path.join(dir, 'pid');
    try {
      // An agent (a Node process) starts a long program through the spawner, then dies at once.
      const script = `import { LeanSpawner } from ${JSON.stringify(path.resolve('dist/node/spawner/lean-spawn.js'))};
        const s = new LeanSpawner(0, ${JSON.stringify(which)});
        setInterval(() => {}, 1000);
        s.run({ file: 'sh', args: ['-c', 'echo $$ > ${pidFile}; exec sleep 60'], outputLimit: 1024 });
        setTimeout(() => process.kill(process.pid, 'SIGKILL'), 500);`;
      try {
        execFileSync(process.execPath, ['--input-type=module', '-e', script], { stdio: 'ignore' });
      } catch {
        // killed, as meant
      }
      const pid = Number(readFileSync(pidFile, 'utf8'));
      const alive = () => {
        try {
          process.kill(pid, 0);
          return true;
        } catch {
          return false;
        }
      };
      const until = Date.now() + 5000;
      while (alive() && Date.now() < until) execFileSync('sleep', ['0.05']);
      expect(alive()).toBe(false);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('the spawner helper', () => {
  it('runs a program and returns its output and exit code', async () => {
    const spawner = new LeanSpawner();
    try {
      const r = await spawner.run({ file: 'sh', args: ['-c', 'echo out; echo err >&2; exit 3'], outputLimit: 1024 });
      expect(Buffer.from(r.stdout).toString()).toBe('out\n');
      expect(Buffer.from(r.stderr).toString()).toBe('err\n');
      expect(r.code).toBe(3);
    } finally {
      spawner.stop();
    }
  });

  it('a niced helper starts its programs at that niceness; a plain one at the agent\'s', async () => {
    const own = os.getPriority();
    const plain = new LeanSpawner();
    const niced = new LeanSpawner(5);
    try {
      expect(await niceOf(plain)).toBe(own);
      // Niceness 5 itself; only root may lower a niceness, should the tests run above it.
      expect(await niceOf(niced)).toBe(own <= 5 || process.getuid?.() === 0 ? 5 : own);
    } finally {
      plain.stop();
      niced.stop();
    }
  });

  it('MESHCC_JOB_NICE: 5 unless set, 0 to 19, anything else a one-line error', () => {
    expect(loadConfig({ MESHCC_HOME: '/tmp/x' }).jobNice).toBe(5);
    expect(loadConfig({ MESHCC_HOME: '/tmp/x', MESHCC_JOB_NICE: '0' }).jobNice).toBe(0);
    expect(() => loadConfig({ MESHCC_HOME: '/tmp/x', MESHCC_JOB_NICE: '20' })).toThrow(/MESHCC_JOB_NICE must be a niceness from 0 to 19, got '20'/);
    expect(() => loadConfig({ MESHCC_HOME: '/tmp/x', MESHCC_JOB_NICE: 'low' })).toThrow(/MESHCC_JOB_NICE must be a whole number/);
  });
});
