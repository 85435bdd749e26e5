// The meshcc command line as a person uses it: stats after real compiles, bindir,
// `meshcc cc` from Node, and one-line errors for bad input.
import { spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MASQUERADE, MESHCC_BIN, startAgentProcess, type AgentProcess } from './helpers/agent.js';
import { tempDir } from './helpers/tmp.js';

let agent: AgentProcess;
beforeAll(async () => {
  agent = await startAgentProcess({ MESHCC_LOCAL_SLOTS: '0' });
});
afterAll(() => agent.stop());

function meshcc(args: string[], cwd = process.cwd(), extraEnv: Record<string, string> = {}) {
  return spawnSync(process.execPath, [MESHCC_BIN, ...args], {
    cwd,
    env: { ...process.env, MESHCC_HOME: agent.home, ...extraEnv },
    encoding: 'utf8',
    // An agent that does not exit fails its test rather than hanging the suite.
    timeout: 30_000,
  });
}

describe('meshcc CLI', () => {
  it('bindir prints the masquerade directory, which holds the compiler links', () => {
    const r = meshcc(['bindir']);
    expect(r.stdout.trim()).toBe(MASQUERADE);
    for (const name of ['gcc', 'g++', 'cc', 'c++', 'clang', 'clang++']) {
      expect(spawnSync('test', ['-x', path.join(MASQUERADE, name)]).status).toBe(0);
    }
  });

  it('meshcc cc compiles through the agent from Node and writes the same object as gcc', () => {
    const dir = tempDir();
    writeFileSync(path.join(dir, 'a.c'), '#include <string.h>\nsize_t n(const char *s) { return strlen(s); }\n');
    const r = meshcc(['cc', 'gcc', '-O2', '-g', '-c', 'a.c', '-o', 'mesh.o'], dir);
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    expect(spawnSync('gcc', ['-O2', '-g', '-c', 'a.c', '-o', 'plain.o'], { cwd: dir }).status).toBe(0);
    // -o differs, and gcc records no output name in the object: the bytes must match.
    expect(readFileSync(path.join(dir, 'mesh.o')).equals(readFileSync(path.join(dir, 'plain.o')))).toBe(true);
  });

  it('stats --json counts jobs by route and reason', () => {
    const dir = tempDir();
    writeFileSync(path.join(dir, 'b.c'), 'int b(void) { return 2; }\n');
    const env = { PATH: `${MASQUERADE}:${process.env.PATH}` };
    expect(meshcc(['cc', 'gcc', '-c', 'b.c'], dir, env).status).toBe(0);
    expect(meshcc(['cc', 'gcc', '-E', 'b.c', '-o', 'b.i'], dir, env).status).toBe(0);
    const stats = JSON.parse(meshcc(['stats', '--json']).stdout);
    expect(stats.routes.job.jobs).toBeGreaterThanOrEqual(1);
    expect(stats.routes.local.byReason['preprocess-only']).toBe(1);
    expect(stats.store.files).toBeGreaterThan(0);
  });

  it('stats prints a readable table', () => {
    const r = meshcc(['stats']);
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(/^executed here \(sandbox\)\s+\d+ jobs/m);
    expect(r.stdout).toMatch(/^remote \(on a peer\)\s+\d+ jobs/m);
    expect(r.stdout).toMatch(/^local \(plain command\)/m);
    expect(r.stdout).toMatch(/^store: \d+ files/m);
  });

  it('status --json lists this agent with the fields scripts rely on; alone, it is the scheduler', () => {
    const rows = JSON.parse(meshcc(['status', '--json']).stdout) as Record<string, unknown>[];
    expect(rows).toHaveLength(1);
    expect(rows[0]).toMatchObject({ self: true, cores: expect.any(Number), slots: expect.any(Number), slotsUsed: 0, rttMs: 0, role: 'scheduler', toolchains: expect.any(Array) });
    // The host's compilers, by toolchain id, as they are identified in the background.
    for (const id of rows[0]!.toolchains as string[]) expect(id).toMatch(/^[0-9a-f]{64}$/);
    for (const field of ['name', 'peerId', 'addresses', 'load', 'speed']) expect(rows[0]).toHaveProperty(field);
    expect((rows[0]!.addresses as string[])[0]).toMatch(/^\/ip4\/127\.0\.0\.1\/tcp\/\d+\/p2p\//);
    expect(meshcc(['status']).stdout).toMatch(/^\s+name\s+peer\s+cores/);
  });

  it('key prints the mesh key, the same one every time, and key set validates', () => {
    const home = tempDir();
    const first = meshcc(['key'], process.cwd(), { MESHCC_HOME: home }).stdout.trim();
    expect(first).toMatch(/^[0-9a-f]{64}$/);
    expect(meshcc(['key'], process.cwd(), { MESHCC_HOME: home }).stdout.trim()).toBe(first);
    const bad = meshcc(['key', 'set', 'xyz'], process.cwd(), { MESHCC_HOME: home });
    expect(bad.status).toBe(1);
    expect(bad.stderr.trim().split('\n')).toHaveLength(1);
    expect(meshcc(['key', 'set', 'ab'.repeat(32)], process.cwd(), { MESHCC_HOME: home }).status).toBe(0);
    expect(meshcc(['key'], process.cwd(), { MESHCC_HOME: home }).stdout.trim()).toBe('ab'.repeat(32));
  });

  it('an unknown flag gets one line on stderr and a non-zero exit', () => {
    const r = meshcc(['stats', '--frobnicate']);
    expect(r.status).not.toBe(0);
    expect(r.stderr.trim().split('\n')).toEqual(["error: unknown option '--frobnicate'"]);
  });

  it('without an agent, stats says so in one line', () => {
    const r = meshcc(['stats'], process.cwd(), { MESHCC_HOME: tempDir() });
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/^meshcc: cannot reach the agent at .*: no agent is running\n$/);
  });

  it('a bad knob stops the agent with one line', () => {
    const r = meshcc(['agent'], process.cwd(), { MESHCC_HOME: tempDir(), MESHCC_SLOTS: 'many' });
    expect(r.status).toBe(1);
    expect(r.stderr).toBe("meshcc: MESHCC_SLOTS must be a whole number ≥ 0, got 'many'\n");
  });

  it('a home the agent cannot write stops it with one line, at once', () => {
    // A file where its toolchain cache goes: it fails half-way through its start (its socket
    // and mesh up), as in a home it may not write; root or not, no directory can be made there.
    const home = tempDir();
    writeFileSync(path.join(home, 'toolchains'), '');
    const started = Date.now();
    const r = meshcc(['agent'], process.cwd(), { MESHCC_HOME: home, MESHCC_MDNS: '0', MESHCC_LISTEN: '/ip4/127.0.0.1/tcp/0', MESHCC_HTTP: 'off' });
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/^meshcc: E[A-Z]+: [^\n]*toolchains[^\n]*\n$/);
    expect(Date.now() - started).toBeLessThan(15_000);
  });
});
