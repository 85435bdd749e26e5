// The spawner helper: programs started from a small Node process instead of the agent, and
// the sandboxed jobs' helper niced below the agents (MESHCC_JOB_NICE), as icecream and distcc
// nice their compiles: an agent handing a slot its next job gets a core at once.
import os from 'node:os';
import { describe, expect, it } from 'vitest';
import { loadConfig } from '../node/config.js';
import { LeanSpawner } from '../node/spawner/lean-spawn.js';

const niceOf = async (spawner: LeanSpawner) => {
  const r = await spawner.run({ file: 'sh', args: ['-c', 'nice'], outputLimit: 1024 });
  return Number(Buffer.from(r.stdout).toString().trim());
};

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
