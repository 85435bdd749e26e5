// The mesh-wide result cache with real agents and real gcc: every change that can reach a
// compile's output (a header's content, a header shadowing another, -D, the working
// directory with -g, SOURCE_DATE_EPOCH, the diagnostics' locale) is a miss that gives the
// plain compile's bytes; a hit replays the compile's warnings exactly; direct mode answers
// without a scan and never past a new shadowing header; entries travel to a member with an
// empty home; altered bytes are never used; a revoked member's entries go from every agent;
// an agent of another mesh can neither read nor write.
import { spawn, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { query } from '../node/cli/query.js';
import { FrameDecoder } from '../protocol/framing.js';
import { setMeshKey } from '../node/mesh/keys.js';
import type { StatsSnapshot } from '../node/stats.js';
import type { AgentStatus } from '../node/mesh/mesh-service.js';
import type { CacheStats } from '../node/cache/result-cache.js';
import { frame, MASQUERADE, MESHCC_BIN, startAgentProcess, type AgentProcess } from './helpers/agent.js';
import { tempDir } from './helpers/tmp.js';
import { hostToolchainId } from './helpers/toolchain-id.js';
import { decodeEntry, encodeEntry } from '../node/cache/entry.js';
import { waitFor } from './helpers/wait.js';

const KEY = 'ca'.repeat(32);
const OTHER_KEY = 'cb'.repeat(32);

async function cacheOf(agent: AgentProcess): Promise<CacheStats> {
  return ((await query(agent.socketPath, { t: 'stats', v: 1 })).stats as StatsSnapshot).cache!;
}

async function selfOf(agent: AgentProcess): Promise<AgentStatus> {
  return waitFor('the agent in the mesh', async () => ((await query(agent.socketPath, { t: 'status', v: 1 })).agents as AgentStatus[]).find((r) => r.self), 15_000);
}

const address = (row: AgentStatus) => row.addresses.find((a) => a.startsWith('/ip4/127.0.0.1/'))!;

let gccId: Promise<string> | undefined;

async function startMember(env: Record<string, string>, key = KEY): Promise<AgentProcess> {
  const home = tempDir('meshcc-home-');
  await setMeshKey(home, key);
  const agent = await startAgentProcess({ MESHCC_CACHE: 'read-write', MESHCC_SLOTS: '0', MESHCC_LOCAL_SLOTS: '2', ...env }, home);
  await gccIdentified(agent);
  return agent;
}

/** Compiles are cached once their compiler is identified (clang may be identified first). */
async function gccIdentified(agent: AgentProcess): Promise<void> {
  const gcc = await (gccId ??= hostToolchainId(spawnSync('which', ['gcc'], { encoding: 'utf8' }).stdout.trim()));
  await waitFor('gcc identified', async () => ((await selfOf(agent)).toolchains.includes(gcc) ? true : undefined), 60_000);
}

interface Compiled {
  status: number | null;
  stdout: string;
  stderr: string;
  outputs: Record<string, Buffer>;
}

function run(args: string[], cwd: string, env: NodeJS.ProcessEnv, outputs: string[]): Promise<Compiled> {
  return new Promise((resolve, reject) => {
    const child = spawn('gcc', args, { cwd, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout!.on('data', (c: Buffer) => (stdout += c.toString()));
    child.stderr!.on('data', (c: Buffer) => (stderr += c.toString()));
    child.on('error', reject);
    child.on('close', (status) => {
      const read: Record<string, Buffer> = {};
      for (const o of outputs) {
        try {
          read[o] = readFileSync(path.resolve(cwd, o));
        } catch {
          // not written
        }
      }
      resolve({ status, stdout, stderr, outputs: read });
    });
  });
}

const baseEnv = (): NodeJS.ProcessEnv => {
  const env: NodeJS.ProcessEnv = { ...process.env, LANG: 'C' };
  for (const k of Object.keys(env)) if (k.startsWith('MESHCC_') || k.startsWith('LC_')) delete env[k];
  return env;
};

/** Sends one request and resolves with the agent's first answer. */
function firstFrame(socketPath: string, bytes: Buffer): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(socketPath);
    const decoder = new FrameDecoder(64 * 1024 * 1024);
    socket.on('data', (chunk) => {
      const [first] = decoder.push(chunk);
      if (first === undefined) return;
      socket.destroy();
      resolve(first);
    });
    socket.on('error', reject);
    socket.on('close', () => reject(new Error('the agent hung up without an answer')));
    socket.write(bytes);
  });
}

/** The plain compile, then the same through the agent: both results, and what the cache did. */
async function plainAndMeshed(agent: AgentProcess, args: string[], cwd: string, extraEnv: Record<string, string> = {}, outputs = ['out.o', 'out.d']) {
  const env = { ...baseEnv(), ...extraEnv };
  const plain = await run(args, cwd, env, outputs);
  const before = await cacheOf(agent);
  const meshed = await run(args, cwd, { ...env, MESHCC_HOME: agent.home, PATH: `${MASQUERADE}:${env.PATH}` }, outputs);
  const after = await cacheOf(agent);
  return { plain, meshed, hits: after.hits - before.hits, misses: after.misses - before.misses, direct: after.directHits - before.directHits, published: after.published - before.published };
}

function expectSame(plain: Compiled, meshed: Compiled, label = ''): void {
  expect(meshed.status, `${label} ${meshed.stderr}`).toBe(plain.status);
  expect(meshed.stderr).toBe(plain.stderr);
  expect(meshed.stdout).toBe(plain.stdout);
  expect(Object.keys(meshed.outputs).sort()).toEqual(Object.keys(plain.outputs).sort());
  for (const [name, data] of Object.entries(plain.outputs)) expect(meshed.outputs[name]!.equals(data), `${label} ${name} differs`).toBe(true);
}

describe('the result cache on one agent', () => {
  let agent: AgentProcess;
  let project: string;
  const args = ['-O2', '-g', '-MD', '-Wall', '-Iinc1', '-Iinc2', '-c', 'src/unit.c', '-o', 'out.o'];

  beforeAll(async () => {
    agent = await startMember({});
    project = tempDir('meshcc-cache-project-');
    mkdirSync(path.join(project, 'src'));
    mkdirSync(path.join(project, 'inc1'));
    mkdirSync(path.join(project, 'inc2'));
    writeFileSync(path.join(project, 'inc2', 'config.h'), '#define LEVEL 2\n');
    writeFileSync(
      path.join(project, 'src', 'unit.c'),
      '#include <stdio.h>\n#include "config.h"\nint level(void) { int unused; return LEVEL + FLAVOUR; }\nconst char *when(void) { return __DATE__ " " __TIME__; }\n',
    );
  }, 60_000);
  afterAll(async () => {
    await agent?.stop();
  });

  it('a miss gives the plain bytes; the same compile again is a hit that replays the warnings exactly, then a direct hit', async () => {
    const first = await plainAndMeshed(agent, [...args, '-DFLAVOUR=1'], project, { SOURCE_DATE_EPOCH: '1700000000' });
    expect(first.plain.stderr).toContain('warning: unused variable');
    expectSame(first.plain, first.meshed);
    expect([first.misses, first.published]).toEqual([1, 1]);
    const second = await plainAndMeshed(agent, [...args, '-DFLAVOUR=1'], project, { SOURCE_DATE_EPOCH: '1700000000' });
    expectSame(second.plain, second.meshed);
    expect(second.hits).toBe(1);
    const third = await plainAndMeshed(agent, [...args, '-DFLAVOUR=1'], project, { SOURCE_DATE_EPOCH: '1700000000' });
    expectSame(third.plain, third.meshed);
    expect([third.hits, third.direct]).toEqual([1, 1]);
  }, 60_000);

  it("a direct hit for a client of the agent's own uid names the store's objects for the client to copy; for another, the agent writes the outputs", async () => {
    const gcc = spawnSync('which', ['gcc'], { encoding: 'utf8' }).stdout.trim();
    const argv = ['gcc', '-O2', '-g', '-MD', '-Iinc2', '-DFLAVOUR=5', '-c', 'src/unit.c', '-o', 'raw.o'];
    const request = (uid?: number) => frame({ t: 'compile', v: 1, cwd: project, argv, compiler: gcc, env: { PATH: process.env.PATH!, LANG: 'C', SOURCE_DATE_EPOCH: '1700000000' }, umask: 0o022, ...(uid === undefined ? {} : { uid }) });
    // The agent keeps a client's connection after its answer (the client hangs up): the first frame is the answer.
    const ask = async (uid?: number) => (await firstFrame(agent.socketPath, request(uid))) as { t: string; exit: number; copy?: [string, string, number, boolean][] };
    const outputs = ['raw.o', 'raw.d'].map((o) => path.join(project, o));
    // A miss compiled in the agent's sandbox, a hit, then direct hits.
    for (let i = 0; i < 2; i++) expect(await ask(process.getuid!())).toMatchObject({ t: 'result', exit: 0 });
    const compiled = outputs.map((o) => readFileSync(o));
    const before = await cacheOf(agent);
    for (const o of outputs) rmSync(o);
    const mine = await ask(process.getuid!());
    expect(mine.exit).toBe(0);
    expect(mine.copy!.map(([, to]) => to)).toEqual(outputs);
    for (const [from, to, size] of mine.copy!) {
      expect(from.startsWith(path.join(agent.home, 'store') + '/')).toBe(true);
      expect(statSync(from).size).toBe(size);
      expect(existsSync(to)).toBe(false);
    }
    expect(mine.copy!.map(([from]) => readFileSync(from))).toEqual(compiled);
    const other = await ask(process.getuid!() + 1);
    expect(other.copy).toBeUndefined();
    expect(outputs.map((o) => readFileSync(o))).toEqual(compiled);
    expect((await cacheOf(agent)).directHits - before.directHits).toBe(2);
  }, 60_000);

  it('a changed header, a shadowing header, -D, SOURCE_DATE_EPOCH and the locale are misses with the plain bytes', async () => {
    const env = { SOURCE_DATE_EPOCH: '1700000000' };
    // Warm: the entry and its manifest exist.
    await plainAndMeshed(agent, [...args, '-DFLAVOUR=1'], project, env);
    const cases: [string, () => void, string[], Record<string, string>][] = [
      ['header content', () => writeFileSync(path.join(project, 'inc2', 'config.h'), '#define LEVEL 3\n'), [...args, '-DFLAVOUR=1'], env],
      ['shadowing header', () => writeFileSync(path.join(project, 'inc1', 'config.h'), '#define LEVEL 4\n'), [...args, '-DFLAVOUR=1'], env],
      ['-D', () => undefined, [...args, '-DFLAVOUR=7'], env],
      ['SOURCE_DATE_EPOCH', () => undefined, [...args, '-DFLAVOUR=7'], { SOURCE_DATE_EPOCH: '1600000000' }],
      ['locale', () => undefined, [...args, '-DFLAVOUR=7'], { SOURCE_DATE_EPOCH: '1600000000', LC_ALL: 'C.UTF-8' }],
    ];
    for (const [what, change, argv, extra] of cases) {
      // Past the "too new" window, so that direct mode would trust stat data it recorded.
      change();
      const r = await plainAndMeshed(agent, argv, project, extra);
      expectSame(r.plain, r.meshed);
      expect([what, r.hits, r.misses]).toEqual([what, 0, 1]);
    }
    const locale = await plainAndMeshed(agent, [...args, '-DFLAVOUR=7'], project, { SOURCE_DATE_EPOCH: '1600000000', LC_ALL: 'C.UTF-8' });
    expect(locale.plain.stderr).toContain('‘unused’');
    expectSame(locale.plain, locale.meshed);
    expect(locale.hits).toBe(1);
  }, 120_000);

  it('a changed working directory with -g is a miss with the plain bytes', async () => {
    const abs = ['-O2', '-g', '-c', path.join(project, 'src', 'unit.c'), '-I', path.join(project, 'inc2'), '-DFLAVOUR=1', '-o', path.join(project, 'abs.o')];
    const elsewhere = tempDir('meshcc-cache-cwd-');
    const epoch = { SOURCE_DATE_EPOCH: '1700000000' };
    const a = await plainAndMeshed(agent, abs, project, epoch, [path.join(project, 'abs.o')]);
    const b = await plainAndMeshed(agent, abs, elsewhere, epoch, [path.join(project, 'abs.o')]);
    expectSame(a.plain, a.meshed, 'in the project:');
    expectSame(b.plain, b.meshed, 'elsewhere:');
    expect(a.plain.outputs[path.join(project, 'abs.o')]!.equals(b.plain.outputs[path.join(project, 'abs.o')]!)).toBe(false);
    expect(b.misses).toBe(1);
  }, 60_000);

  it('meshcc cache stats counts what happened; meshcc cache clear drops every entry, and the next compile misses', async () => {
    const cli = (...args: string[]) => spawnSync(process.execPath, [MESHCC_BIN, ...args], { env: { ...baseEnv(), MESHCC_HOME: agent.home }, encoding: 'utf8' });
    const shown = cli('cache', 'stats');
    expect(shown.status, shown.stderr).toBe(0);
    const held = (await cacheOf(agent)).entries;
    expect(held).toBeGreaterThan(0);
    expect(shown.stdout).toMatch(new RegExp(`result cache \\(read-write\\): ${(await cacheOf(agent)).hits} hits`));
    expect(shown.stdout).toContain(`held ${held} entries`);
    const cleared = cli('cache', 'clear');
    expect(cleared.stdout).toContain(`dropped ${held} entries`);
    const after = await plainAndMeshed(agent, [...args, '-DFLAVOUR=1'], project, { SOURCE_DATE_EPOCH: '1700000000' });
    expectSame(after.plain, after.meshed);
    expect([after.hits, after.misses]).toEqual([0, 1]);
  }, 60_000);

  it('a unit that uses __DATE__ and __TIME__ without SOURCE_DATE_EPOCH is never cached', async () => {
    for (let i = 0; i < 2; i++) {
      const before = await cacheOf(agent);
      const r = await plainAndMeshed(agent, [...args, '-DFLAVOUR=1'], project);
      const after = await cacheOf(agent);
      expect(r.meshed.status).toBe(0);
      expect([r.hits, r.published, after.uncacheable - before.uncacheable]).toEqual([0, 0, 1]);
    }
  }, 60_000);

  it('a compile error is not cached', async () => {
    writeFileSync(path.join(project, 'src', 'broken.c'), 'int f(void) { return missing; }\n');
    const argv = ['-c', 'src/broken.c', '-o', 'broken.o'];
    for (let i = 0; i < 2; i++) {
      const r = await plainAndMeshed(agent, argv, project, {}, ['broken.o']);
      expectSame(r.plain, r.meshed);
      expect(r.plain.status).not.toBe(0);
      expect([r.hits, r.published]).toEqual([0, 0]);
    }
  }, 60_000);
});

/** Flips the last byte of every ELF object in an agent's store: what a tampered member would hand out. */
function alterObjects(agent: AgentProcess): number {
  const store = path.join(agent.home, 'store');
  let altered = 0;
  for (const prefix of readdirSync(store).filter((p) => /^[0-9a-f]{2}$/.test(p))) {
    for (const name of readdirSync(path.join(store, prefix))) {
      const file = path.join(store, prefix, name);
      const data = readFileSync(file);
      if (data.subarray(0, 4).toString('latin1') !== '\x7fELF') continue;
      chmodSync(file, 0o644);
      data[data.length - 1] = data[data.length - 1]! ^ 0xff;
      writeFileSync(file, data);
      altered++;
    }
  }
  return altered;
}

const viewSize = async (agent: AgentProcess) => ((await query(agent.socketPath, { t: 'status', v: 1 })).agents as AgentStatus[]).length;

describe('an entry that names outputs elsewhere', () => {
  it("is not used: the compile's own bytes land where the command writes them, and nothing elsewhere", async () => {
    const project = tempDir('meshcc-cache-elsewhere-');
    writeFileSync(path.join(project, 'unit.c'), 'int f(void) { return 7; }\n');
    const args = ['-O2', '-c', 'unit.c', '-o', 'out.o'];
    const first = await startMember({});
    let agent = first;
    try {
      expect((await plainAndMeshed(first, args, project, {}, ['out.o'])).published).toBe(1);
      await first.stop();
      // The entry rewritten on disk as a lying member would hand it out: its object to be written outside the project.
      const entriesDir = path.join(first.home, 'cache', 'entries');
      const [file] = readdirSync(entriesDir).filter((d) => /^[0-9a-f]{2}$/.test(d)).flatMap((d) => readdirSync(path.join(entriesDir, d)).map((k) => path.join(entriesDir, d, k)));
      const entry = decodeEntry(readFileSync(file!));
      const elsewhere = path.join(tempDir('meshcc-cache-target-'), 'planted.o');
      writeFileSync(file!, encodeEntry({ ...entry, outputs: [{ ...entry.outputs[0]!, path: elsewhere }] }));
      agent = await startAgentProcess(first.env, first.home);
      await gccIdentified(agent);
      const r = await plainAndMeshed(agent, args, project, {}, ['out.o']);
      expectSame(r.plain, r.meshed);
      expect(existsSync(elsewhere)).toBe(false);
      expect(agent.logs()).toContain("outside the command's output directories");
    } finally {
      await agent.stop();
    }
  }, 120_000);
});

describe('the result cache across the mesh', () => {
  const agents: AgentProcess[] = [];
  let project: string;
  const args = ['-O2', '-g', '-MD', '-Wall', '-c', 'unit.c', '-o', 'out.o'];

  async function member(key = KEY, extra: Record<string, string> = {}): Promise<AgentProcess> {
    const peers: Record<string, string> = agents.length ? { MESHCC_PEERS: address(await selfOf(agents[0]!)) } : {};
    const agent = await startMember({ ...peers, ...extra }, key);
    agents.push(agent);
    return agent;
  }

  beforeAll(() => {
    project = tempDir('meshcc-cache-mesh-');
    writeFileSync(path.join(project, 'unit.c'), '#include <string.h>\nint f(const char *s) { int unused; return strlen(s); }\n');
    writeFileSync(path.join(project, 'other.c'), '#include <stdlib.h>\nint g(const char *s) { int unused; return atoi(s); }\n');
  });
  afterAll(async () => {
    for (const agent of agents.reverse()) await agent.stop();
  });

  it('a fresh member hits what another wrote; a non-member neither reads nor writes; a revoked writer\'s entries go from every agent; altered bytes are never used', async () => {
    const holder = await member();
    const writer = await member();
    await waitFor('the writer sees the holder', async () => ((await viewSize(writer)) === 2 ? true : undefined), 15_000);
    const first = await plainAndMeshed(writer, args, project);
    expectSame(first.plain, first.meshed);
    expect(first.published).toBe(1);
    // The result, and its manifest for members that have none (an entry of its own).
    await waitFor('the holder keeps the entry', async () => ((await cacheOf(holder)).entries === 2 ? true : undefined), 10_000);

    // A member with an empty home gets it from the mesh, and keeps a copy.
    const fresh = await member();
    await waitFor('the fresh member sees both', async () => ((await viewSize(fresh)) === 3 ? true : undefined), 15_000);
    const hit = await plainAndMeshed(fresh, args, project);
    expectSame(hit.plain, hit.meshed);
    expect(hit.hits).toBe(1);
    expect((await cacheOf(fresh)).meshHits).toBe(1);
    await waitFor('the fresh member keeps a copy', async () => ((await cacheOf(fresh)).entries === 1 ? true : undefined), 10_000);

    // A read-only member (a CI runner for untrusted pull requests) reads, and writes nothing.
    const reader = await member(KEY, { MESHCC_CACHE: 'read-only' });
    await waitFor('the reader sees the others', async () => ((await viewSize(reader)) >= 3 ? true : undefined), 15_000);
    const read = await plainAndMeshed(reader, args, project);
    expectSame(read.plain, read.meshed);
    expect(read.hits).toBe(1);
    writeFileSync(path.join(project, 'untrusted.c'), 'int untrusted(void) { return 42; }\n');
    const storedBefore = (await cacheOf(holder)).stored;
    const untrusted = await plainAndMeshed(reader, ['-O2', '-c', 'untrusted.c', '-o', 'untrusted.o'], project, {}, ['untrusted.o']);
    expectSame(untrusted.plain, untrusted.meshed);
    expect([untrusted.hits, untrusted.misses, untrusted.published]).toEqual([0, 1, 0]);
    expect((await cacheOf(holder)).stored).toBe(storedBefore);
    await reader.stop();
    agents.splice(agents.indexOf(reader), 1);

    // An agent of another mesh cannot reach the members: it neither reads nor writes there.
    const heldBefore = await cacheOf(holder);
    const stranger = await member(OTHER_KEY);
    const strange = await plainAndMeshed(stranger, args, project);
    expectSame(strange.plain, strange.meshed);
    expect([strange.hits, strange.misses, strange.published]).toEqual([0, 1, 1]);
    const heldAfter = await cacheOf(holder);
    expect([heldAfter.served, heldAfter.stored, heldAfter.entries]).toEqual([heldBefore.served, heldBefore.stored, heldBefore.entries]);

    // The writer revoked: its entries go from the holder and from the member that copied one.
    const writerId = (await selfOf(writer)).peerId;
    const revoked = await query(holder.socketPath, { t: 'members', v: 1, op: 'revoke', peer: writerId });
    expect(revoked.t).toBe('members');
    await waitFor('the revoked writer\'s entries dropped everywhere', async () => ((await cacheOf(holder)).entries === 0 && (await cacheOf(fresh)).entries === 0 ? true : undefined), 20_000);
    const after = await plainAndMeshed(fresh, args, project);
    expectSame(after.plain, after.meshed);
    expect(after.hits).toBe(0);

    // A new entry (now written by `fresh`), altered on every member that holds it: never used.
    const other = ['-O2', '-c', 'other.c', '-o', 'other.o'];
    const written = await plainAndMeshed(fresh, other, project, {}, ['other.o']);
    expect(written.published).toBe(1);
    const objectHash = createHash('sha256').update(written.plain.outputs['other.o']!).digest('hex');
    const held = (agent: AgentProcess) => existsSync(path.join(agent.home, 'store', objectHash.slice(0, 2), objectHash));
    await waitFor('the holder keeps the new entry', () => (held(holder) && held(fresh) ? true : undefined), 10_000);
    expect(alterObjects(holder) + alterObjects(fresh)).toBeGreaterThanOrEqual(2);
    const third = await member();
    await waitFor('the third member sees the others', async () => ((await viewSize(third)) >= 3 ? true : undefined), 15_000);
    const poisoned = await plainAndMeshed(third, other, project, {}, ['other.o']);
    expectSame(poisoned.plain, poisoned.meshed);
    expect([poisoned.hits, poisoned.misses]).toEqual([0, 1]);
  }, 240_000);
});

describe('verification of hits', () => {
  const agents: AgentProcess[] = [];
  afterAll(async () => {
    for (const agent of agents.reverse()) await agent.stop();
  });

  it("a member with an empty home hits through another's manifest without a scan, and never past a changed header", async () => {
    const key = Buffer.from(crypto.getRandomValues(new Uint8Array(32))).toString('hex');
    const meshOf: AgentProcess[] = [];
    const join = async () => {
      const peers: Record<string, string> = meshOf.length ? { MESHCC_PEERS: address(await selfOf(meshOf[0]!)) } : {};
      const agent = await startMember(peers, key);
      meshOf.push(agent);
      agents.push(agent);
      return agent;
    };
    const dir = tempDir('meshcc-cache-manifest-');
    writeFileSync(path.join(dir, 'h.h'), '#define ANSWER 42\n');
    writeFileSync(path.join(dir, 'unit.c'), '#include <stdio.h>\n#include "h.h"\nint answer(void) { int unused; return ANSWER; }\n');
    const unitArgs = ['-O2', '-g', '-MD', '-Wall', '-c', 'unit.c', '-o', 'out.o'];
    const writer = await join();
    const holder = await join();
    await waitFor('the writer sees the holder', async () => ((await viewSize(writer)) === 2 ? true : undefined), 15_000);
    expect((await plainAndMeshed(writer, unitArgs, dir)).published).toBe(1);
    await waitFor('the holder keeps the result and its manifest', async () => ((await cacheOf(holder)).entries === 2 ? true : undefined), 10_000);

    const fresh = await join();
    await waitFor('the fresh member sees both', async () => ((await viewSize(fresh)) === 3 ? true : undefined), 15_000);
    const hit = await plainAndMeshed(fresh, unitArgs, dir);
    expectSame(hit.plain, hit.meshed);
    const freshStats = (await query(fresh.socketPath, { t: 'stats', v: 1 })).stats as StatsSnapshot;
    expect([hit.hits, hit.direct, freshStats.cache!.sharedManifests, freshStats.jobRoute.scanMs]).toEqual([1, 1, 1, 0]);

    // The header changes: the member's manifest no longer matches, so another empty home scans and misses.
    writeFileSync(path.join(dir, 'h.h'), '#define ANSWER 43\n');
    const other = await join();
    await waitFor('the other member sees all', async () => ((await viewSize(other)) === 4 ? true : undefined), 15_000);
    const changed = await plainAndMeshed(other, unitArgs, dir);
    expectSame(changed.plain, changed.meshed);
    expect([changed.hits, changed.misses]).toEqual([0, 1]);
    expect(changed.plain.outputs['out.o']!.equals(hit.plain.outputs['out.o']!)).toBe(false);
  }, 120_000);

  it('with MESHCC_VERIFY_RATE=1 a hit whose bytes a member forged (hashes made to match) is compiled here too, the local bytes are used, and every entry of its writer is dropped', async () => {
    const holder = await startMember({});
    agents.push(holder);
    const writer = await startMember({ MESHCC_PEERS: address(await selfOf(holder)) });
    agents.push(writer);
    await waitFor('the writer sees the holder', async () => ((await viewSize(writer)) === 2 ? true : undefined), 15_000);
    const project = tempDir('meshcc-cache-verify-');
    writeFileSync(path.join(project, 'unit.c'), 'int twice(int x) { return 2 * x; }\n');
    const args = ['-O2', '-c', 'unit.c', '-o', 'out.o'];
    const first = await plainAndMeshed(writer, args, project, {}, ['out.o']);
    expect(first.published).toBe(1);
    const entriesDir = path.join(holder.home, 'cache', 'entries');
    // The result's entry (the holder also keeps the unit's manifest, an entry of its own).
    const entryFile = await waitFor('the holder keeps the entry', () => {
      const prefixes = existsSync(entriesDir) ? readdirSync(entriesDir).filter((p) => /^[0-9a-f]{2}$/.test(p)) : [];
      const files = prefixes.flatMap((prefix) => readdirSync(path.join(entriesDir, prefix)).map((name) => path.join(entriesDir, prefix, name)));
      return files.find((file) => decodeEntry(readFileSync(file)).outputs[0]!.path.endsWith('/out.o'));
    }, 10_000);
    await writer.stop();
    agents.splice(agents.indexOf(writer), 1);

    // The holder forges the object, stores it under its own hash and rewrites the entry to match.
    const entry = decodeEntry(readFileSync(entryFile));
    const forged = Buffer.from(first.plain.outputs['out.o']!);
    forged[forged.length - 1] = forged[forged.length - 1]! ^ 0xff;
    const forgedHash = createHash('sha256').update(forged).digest('hex');
    mkdirSync(path.join(holder.home, 'store', forgedHash.slice(0, 2)), { recursive: true });
    writeFileSync(path.join(holder.home, 'store', forgedHash.slice(0, 2), forgedHash), forged);
    writeFileSync(entryFile, encodeEntry({ ...entry, outputs: [{ ...entry.outputs[0]!, hash: forgedHash }] }));
    // The holder's index learns the object at its next start.
    await holder.stop();
    const restarted = await startAgentProcess({ ...holder.env }, holder.home);
    agents.splice(agents.indexOf(holder), 1, restarted);
    await selfOf(restarted);

    const checker = await startMember({ MESHCC_PEERS: address(await selfOf(restarted)), MESHCC_VERIFY_RATE: '1' });
    agents.push(checker);
    await waitFor('the checker sees the holder', async () => ((await viewSize(checker)) === 2 ? true : undefined), 15_000);
    const checked = await plainAndMeshed(checker, args, project, {}, ['out.o']);
    expectSame(checked.plain, checked.meshed);
    const stats = await cacheOf(checker);
    expect([checked.hits, stats.verifyMismatches]).toEqual([0, 1]);
    // The copy it took of the forged entry goes with every other entry of that writer; what is
    // left is at most its own (the compile that caught the lie may be published, its bytes right).
    await waitFor('no entry of the writer left on the checker', async () => {
      const held = await cacheOf(checker);
      return held.entries <= held.published ? true : undefined;
    }, 5_000);
    const excluded = ((await query(checker.socketPath, { t: 'stats', v: 1 })).stats as StatsSnapshot).peersExcluded;
    expect(Object.keys(excluded)).toEqual([entry.writer]);
  }, 120_000);
});
