// Must-show 3: the agent killed with SIGKILL in the middle of `make -j4` — the build
// still succeeds and its objects are identical to a plain build's.
import { spawn, spawnSync } from 'node:child_process';
import { rmSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadConfig } from '../node/config.js';
import { MASQUERADE, startAgentProcess } from './helpers/agent.js';
import { collect, copyProject, differences } from './helpers/projects.js';

const env = { ...process.env, LANG: 'C' } as Record<string, string>;
const flags = 'CFLAGS=-O2 -g -MD';

function clean(src: string) {
  for (const f of collect(src, /\.(o|d|a)$/).keys()) rmSync(path.join(src, f));
}

describe('agent killed during a build', () => {
  it('SIGKILL of the agent in the middle of make -j4: the build succeeds with identical objects', async () => {
    const src = copyProject('zlib');
    expect(spawnSync('./configure', ['--static'], { cwd: src, env: { ...env, CC: 'gcc' } }).status).toBe(0);
    expect(spawnSync('make', ['-j4', 'CC=gcc', flags, 'libz.a'], { cwd: src, env }).status).toBe(0);
    const plain = collect(src, /\.(o|d)$/);
    clean(src);

    // Every job takes the job route, so jobs are in the agent's hands when it dies.
    const agent = await startAgentProcess({ MESHCC_LOCAL_SLOTS: '0' });
    const make = spawn('make', ['-j4', 'CC=gcc', flags, 'libz.a'], {
      cwd: src,
      env: { ...env, MESHCC_HOME: agent.home, PATH: `${MASQUERADE}:${process.env.PATH}` },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stderr = '';
    make.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    const made = new Promise<number | null>((resolve) => make.on('close', resolve));
    // Kill once some objects exist and others are still being compiled.
    while (collect(src, /\.o$/).size < 3) await new Promise((r) => setTimeout(r, 20));
    agent.child.kill('SIGKILL');
    const killedWith = await new Promise((r) => agent.child.once('exit', (_code, signal) => r(signal)));
    expect(killedWith).toBe('SIGKILL');
    expect(await made).toBe(0);
    expect(stderr).toBe('');
    const meshed = collect(src, /\.(o|d)$/);
    expect(meshed.size).toBe(30);
    expect(differences(plain, meshed)).toEqual([]);
    // What a crashed agent leaves on tmpfs is the next agent's to clear; here, the test's.
    rmSync(loadConfig({ MESHCC_HOME: agent.home }).jobsDir, { recursive: true, force: true });
  });
});
