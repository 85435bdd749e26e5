// `meshcc toolchain create|list|prune` as a person runs them: with no agent (the CLI works on
// the cache itself) and with one running (the agent does it: it owns the cache).
import { createHash } from 'node:crypto';
import { spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ToolchainRow } from '../node/toolchain-admin.js';
import { LOOPBACK_AGENT_ENV, MESHCC_BIN, startAgentProcess, type AgentProcess } from './helpers/agent.js';
import { tempDir } from './helpers/tmp.js';
import { hostToolchainId } from './helpers/toolchain-id.js';

const GCC = spawnSync('which', ['gcc'], { encoding: 'utf8' }).stdout.trim();

function meshcc(home: string, args: string[]) {
  const r = spawnSync(process.execPath, [MESHCC_BIN, ...args], { env: { ...process.env, MESHCC_HOME: home }, encoding: 'utf8' });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

const listed = (home: string) => JSON.parse(meshcc(home, ['toolchain', 'list', '--json']).stdout) as ToolchainRow[];

describe('meshcc toolchain', () => {
  let gccId: string;
  beforeAll(async () => {
    gccId = await hostToolchainId(GCC);
  });

  it('without an agent: create packs gcc into the cache under its tarball id, list shows it, prune removes it', () => {
    const home = tempDir('meshcc-home-');
    expect(meshcc(home, ['toolchain', 'list']).stdout).toBe('no toolchains\n');
    const created = meshcc(home, ['toolchain', 'create', 'gcc']);
    expect(created.stderr).toBe('');
    expect(created.stdout.trim()).toBe(gccId);
    const rows = listed(home);
    expect(rows).toMatchObject([{ id: gccId, where: 'cache', family: 'gcc', compiler: GCC, arch: process.arch, os: process.platform, inUse: false }]);
    const table = meshcc(home, ['toolchain', 'list']).stdout.split('\n');
    expect(table[0]).toMatch(/^id\s+where\s+compiler\s+version\s+target\s+arch\s+size\s+last used$/);
    expect(table[1]).toContain(gccId.slice(0, 12));
    expect(meshcc(home, ['toolchain', 'prune']).stdout).toBe('removed 1 toolchain; 0 cached (0.0 MiB)\n');
    expect(listed(home)).toEqual([]);
  });

  it('create -o writes the tarball, whose sha256 is the toolchain id (icecc-create-env, content-addressed)', () => {
    const home = tempDir('meshcc-home-');
    const out = path.join(tempDir(), 'gcc.tar');
    const r = meshcc(home, ['toolchain', 'create', GCC, '-o', out]);
    expect(r.stdout).toMatch(new RegExp(`^${gccId}  [0-9.]+ MiB  ${out}\n$`));
    expect(createHash('sha256').update(readFileSync(out)).digest('hex')).toBe(gccId);
    expect(listed(home)).toEqual([]);
  });

  it('bad input gets one line and exit 1', () => {
    const home = tempDir('meshcc-home-');
    const notExecutable = path.join(tempDir(), 'notes.txt');
    writeFileSync(notExecutable, 'hello\n', { mode: 0o644 });
    for (const [args, message] of [
      [['toolchain', 'create', 'no-such-cc'], 'meshcc: no-such-cc: no such compiler on PATH\n'],
      [['toolchain', 'create', notExecutable], `meshcc: ${notExecutable}: not an executable file\n`],
      [['toolchain', 'create', '/bin/true'], 'meshcc: /bin/true is not a gcc or clang compiler meshcc can identify\n'],
      [['toolchain', 'prune', '--max-mb', 'lots'], 'meshcc: --max-mb: lots is not a number of MiB\n'],
    ] as const) {
      const r = meshcc(home, [...args]);
      expect(r.stderr, args.join(' ')).toBe(message);
      expect(r.status).toBe(1);
    }
  });

  describe('with an agent running', () => {
    let agent: AgentProcess;
    beforeAll(async () => {
      agent = await startAgentProcess(LOOPBACK_AGENT_ENV);
    });
    afterAll(() => agent?.stop());

    it('the agent creates, lists and prunes, and advertises what it created', async () => {
      expect(meshcc(agent.home, ['toolchain', 'create', 'gcc']).stdout.trim()).toBe(gccId);
      expect(listed(agent.home).find((r) => r.id === gccId)).toMatchObject({ where: 'cache', inUse: false });
      const status = JSON.parse(meshcc(agent.home, ['status', '--json']).stdout) as { self: boolean; toolchains: string[] }[];
      expect(status.find((r) => r.self)!.toolchains).toContain(gccId);
      expect(meshcc(agent.home, ['toolchain', 'prune', '--max-mb', '0']).stdout).toMatch(/^removed 1 toolchain; 0 cached/);
      expect(listed(agent.home).filter((r) => r.where === 'cache')).toEqual([]);
    });
  });
});
