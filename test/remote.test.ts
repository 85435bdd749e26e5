// Remote jobs on loopback: a client agent with no slots of its own sends every distributable
// compile to a peer agent; objects, dependency files, diagnostics and exit codes match a
// plain local compile. Misbehaving peers (garbage, silence, lies) never fail a compile.
import { spawn, spawnSync } from 'node:child_process';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { query } from '../node/cli/query.js';
import { setMeshKey } from '../node/mesh/keys.js';
import type { StatsSnapshot } from '../node/stats.js';
import type { AgentStatus } from '../node/mesh/mesh-service.js';
import { hostToolchainId } from './helpers/toolchain-id.js';
import { MASQUERADE, REPO, startAgentProcess, type AgentProcess } from './helpers/agent.js';
import { startFakePeer, type FakePeer } from './helpers/fake-peer.js';
import { tempDir } from './helpers/tmp.js';

const KEY = 'c3'.repeat(32);

async function statsOf(agent: AgentProcess): Promise<StatsSnapshot> {
  return (await query(agent.socketPath, { t: 'stats', v: 1 })).stats as StatsSnapshot;
}

async function statusOf(agent: AgentProcess): Promise<AgentStatus[]> {
  return (await query(agent.socketPath, { t: 'status', v: 1 })).agents as AgentStatus[];
}

/** An agent of the test's mesh, once its mesh node is up. */
async function startMember(env: Record<string, string>): Promise<AgentProcess> {
  const home = tempDir('meshcc-home-');
  await setMeshKey(home, KEY);
  const agent = await startAgentProcess(env, home);
  const deadline = Date.now() + 15_000;
  while (!(await statusOf(agent)).some((r) => r.self)) {
    if (Date.now() > deadline) throw new Error('the agent never joined the mesh');
    await new Promise((r) => setTimeout(r, 25));
  }
  return agent;
}

function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const server = net.createServer().listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

async function waitForSelf(agent: AgentProcess): Promise<string> {
  const deadline = Date.now() + 15_000;
  for (;;) {
    const rows = await statusOf(agent);
    if (rows.some((r) => r.self)) return selfAddress(rows);
    if (Date.now() > deadline) throw new Error('the agent never joined the mesh');
    await new Promise((r) => setTimeout(r, 25));
  }
}

function selfAddress(rows: AgentStatus[]): string {
  const self = rows.find((r) => r.self)!;
  return `${self.addresses.find((a) => a.startsWith('/ip4/127.0.0.1/'))}`;
}

const which = (cc: string) => spawnSync('which', [cc], { encoding: 'utf8' }).stdout.trim();
let testedToolchains: Promise<string[]> | undefined;
/** The toolchain ids of the compilers these tests use (as the agents compute them). */
function toolchainsUsed(): Promise<string[]> {
  return (testedToolchains ??= Promise.all(['gcc', 'g++', 'clang', 'clang++'].map((cc) => hostToolchainId(which(cc)))));
}

/** Waits until the client has packed the compilers the tests use and lists the peer with them. */
async function untilPeerReady(client: AgentProcess, peerId: string): Promise<void> {
  const deadline = Date.now() + 60_000;
  const ids = await toolchainsUsed();
  for (;;) {
    const rows = await statusOf(client);
    const ready = [peerId, rows.find((r) => r.self)!.peerId].every((id) => {
      const row = rows.find((r) => r.peerId === id);
      return row && ids.every((t) => row.toolchains.includes(t));
    });
    if (ready) return;
    if (Date.now() > deadline) throw new Error(`peer ${peerId} never became ready`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

function meshEnv(client: AgentProcess): NodeJS.ProcessEnv {
  return { ...process.env, MESHCC_HOME: client.home, PATH: `${MASQUERADE}:${process.env.PATH}` };
}

interface Ran {
  status: number | null;
  stderr: string;
}

/** Runs a command without blocking this process: the fake peers live in it and must keep answering. */
function runAsync(cmd: string, args: string[], options: { cwd: string; env?: NodeJS.ProcessEnv }): Promise<Ran> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { ...options, stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr!.on('data', (c: Buffer) => (stderr += c.toString()));
    child.on('error', reject);
    child.on('close', (status) => resolve({ status, stderr }));
  });
}

async function compileBoth(cc: string, source: string, name: string, extra: string[], env: NodeJS.ProcessEnv) {
  const dir = tempDir();
  writeFileSync(path.join(dir, name), source);
  const args = ['-O2', '-g', '-MD', ...extra, '-c', name, '-o', 'out.o'];
  const plain = await runAsync(cc, args, { cwd: dir });
  const plainObject = plain.status === 0 ? readFileSync(path.join(dir, 'out.o')) : undefined;
  const plainDeps = plain.status === 0 ? readFileSync(path.join(dir, 'out.d'), 'utf8') : undefined;
  const meshed = await runAsync(cc, args, { cwd: dir, env });
  const meshObject = meshed.status === 0 ? readFileSync(path.join(dir, 'out.o')) : undefined;
  const meshDeps = meshed.status === 0 ? readFileSync(path.join(dir, 'out.d'), 'utf8') : undefined;
  return { plain, meshed, plainObject, meshObject, plainDeps, meshDeps };
}

const C_SOURCE = '#include <stdio.h>\n#include <string.h>\nint main(int c, char **v) { printf("%zu\\n", strlen(v[0]) + c); return 0; }\n';
const CXX_SOURCE = '#include <vector>\n#include <string>\nint f(int n) { std::vector<std::string> v(n, "x"); return v.size(); }\n';

describe('remote jobs on loopback', () => {
  let peer: AgentProcess;
  let client: AgentProcess;
  let peerId: string;

  beforeAll(async () => {
    peer = await startMember({ MESHCC_SLOTS: '2', MESHCC_LOCAL_SLOTS: '0' });
    const peerRows = await statusOf(peer);
    peerId = peerRows.find((r) => r.self)!.peerId;
    client = await startMember({ MESHCC_SLOTS: '0', MESHCC_LOCAL_SLOTS: '0', MESHCC_PEERS: selfAddress(peerRows) });
    await untilPeerReady(client, peerId);
  }, 60_000);
  afterAll(async () => {
    await client?.stop();
    await peer?.stop();
  });

  for (const [cc, source, name] of [
    ['gcc', C_SOURCE, 'a.c'],
    ['g++', CXX_SOURCE, 'a.cc'],
    ['clang', C_SOURCE, 'a.c'],
    ['clang++', CXX_SOURCE, 'a.cc'],
  ] as const) {
    it(`${cc}: the peer compiles it; object and dependency file are identical to a local compile`, async () => {
      const before = await statsOf(client);
      const r = await compileBoth(cc, source, name, [], meshEnv(client));
      expect(r.meshed.stderr).toBe(r.plain.stderr);
      expect(r.meshed.status).toBe(0);
      expect(r.meshObject!.equals(r.plainObject!)).toBe(true);
      expect(r.meshDeps).toBe(r.plainDeps);
      const after = await statsOf(client);
      expect(after.counts.remote).toBe(before.counts.remote + 1);
      expect(after.perPeer[peerId]!.jobs).toBe((before.perPeer[peerId]?.jobs ?? 0) + 1);
      expect(after.bytesSent).toBeGreaterThan(before.bytesSent);
    });
  }

  it('a compile error comes back as it is, with the same diagnostics and exit code, and is not retried', async () => {
    const before = await statsOf(client);
    const r = await compileBoth('gcc', 'int main(void) { return undeclared; }\n', 'bad.c', [], meshEnv(client));
    expect(r.plain.status).not.toBe(0);
    expect(r.meshed.status).toBe(r.plain.status);
    expect(r.meshed.stderr).toBe(r.plain.stderr);
    const after = await statsOf(client);
    expect(after.counts.remote).toBe(before.counts.remote + 1);
    expect(after.counts.fallback).toBe(before.counts.fallback);
    expect(after.perPeer[peerId]!.failures).toBe(before.perPeer[peerId]?.failures ?? 0);
  });

  it('each input crosses the wire once: the same compile again sends a small fraction of the bytes', async () => {
    const dir = tempDir();
    writeFileSync(path.join(dir, 'b.cc'), CXX_SOURCE.replace('int f', 'int g'));
    const run = async () => {
      const before = (await statsOf(client)).bytesSent;
      expect((await runAsync('g++', ['-O2', '-c', 'b.cc', '-o', 'b.o'], { cwd: dir, env: meshEnv(client) })).status).toBe(0);
      return (await statsOf(client)).bytesSent - before;
    };
    const first = await run();
    writeFileSync(path.join(dir, 'b.cc'), CXX_SOURCE.replace('int f', 'int h'));
    const asked = (await statsOf(client)).inputFiles.sent;
    const second = await run();
    console.log(`g++ <vector>/<string> unit: ${first} bytes sent (headers already there from an earlier test or not), then ${second} bytes for a changed source`);
    expect(second).toBeLessThan(20_000);
    // The changed source travelled with the offer: the peer had nothing to ask for.
    expect((await statsOf(client)).inputFiles.sent - asked).toBe(0);
    const objectHere = path.join(dir, 'b.o');
    const plain = spawnSync('g++', ['-O2', '-c', 'b.cc', '-o', 'plain.o'], { cwd: dir });
    expect(plain.status).toBe(0);
    expect(readFileSync(objectHere).equals(readFileSync(path.join(dir, 'plain.o')))).toBe(true);
  });

  it('a peer that restarted without its store (so without the offers it held) gets the next job in full, still remotely', async () => {
    const port = await freePort();
    const home = tempDir('meshcc-home-');
    await setMeshKey(home, KEY);
    const env = { MESHCC_SLOTS: '2', MESHCC_LOCAL_SLOTS: '0', MESHCC_LISTEN: `/ip4/127.0.0.1/tcp/${port}` };
    let forgetful = await startAgentProcess(env, home);
    const address = await waitForSelf(forgetful);
    const solo = await startMember({ MESHCC_SLOTS: '0', MESHCC_LOCAL_SLOTS: '0', MESHCC_PEERS: address });
    try {
      const id = address.split('/p2p/')[1]!;
      await untilPeerReady(solo, id);
      expect((await compileBoth('gcc', C_SOURCE, 'd1.c', [], meshEnv(solo))).meshed.status).toBe(0);
      await forgetful.stop();
      rmSync(path.join(home, 'store'), { recursive: true, force: true });
      forgetful = await startAgentProcess(env, home);
      await untilPeerReady(solo, id);
      const r = await compileBoth('gcc', C_SOURCE.replace('main', 'main2'), 'd2.c', [], meshEnv(solo));
      expect(r.meshObject!.equals(r.plainObject!)).toBe(true);
      const stats = await statsOf(solo);
      expect(stats.counts.remote).toBe(2);
      expect(stats.perPeer[id]!.failuresByReason['refused-unknown-dictionary']).toBe(1);
    } finally {
      await solo.stop();
      await forgetful.stop();
    }
  });

  it('the peer counts the jobs it ran for others', async () => {
    const served = (await statsOf(peer)).served;
    expect(served.results).toBeGreaterThanOrEqual(5);
  });
});

describe('misbehaving peers never fail a compile', () => {
  let gccId: string;
  const started: { stop(): Promise<void> }[] = [];
  beforeAll(async () => {
    gccId = (await toolchainsUsed())[0]!;
  });
  afterAll(async () => {
    for (const s of started.reverse()) await s.stop();
  });

  async function clientWith(fake: FakePeer, env: Record<string, string>) {
    const client = await startMember({ MESHCC_SLOTS: '0', MESHCC_PEERS: `${fake.address}`, ...env });
    started.push(client);
    const deadline = Date.now() + 60_000;
    const ready = (rows: AgentStatus[]) => rows.some((r) => r.peerId === fake.peerId) && rows.find((r) => r.self)!.toolchains.includes(gccId);
    while (!ready(await statusOf(client))) {
      if (Date.now() > deadline) throw new Error('the fake peer never joined, or the client never packed gcc');
      await new Promise((r) => setTimeout(r, 50));
    }
    return client;
  }

  it('a peer that answers garbage: the compile falls back, the object is right, the peer is backed off after two', async () => {
    const fake = await startFakePeer({ meshKeyHex: KEY, toolchains: [gccId], behaviour: 'garbage' });
    started.push(fake);
    const client = await clientWith(fake, { MESHCC_LOCAL_SLOTS: '0' });
    for (const name of ['g1.c', 'g2.c', 'g3.c']) {
      const r = await compileBoth('gcc', C_SOURCE, name, [], meshEnv(client));
      expect(r.meshed.status).toBe(0);
      expect(r.meshObject!.equals(r.plainObject!)).toBe(true);
    }
    const stats = await statsOf(client);
    expect(stats.perPeer[fake.peerId]!.failuresByReason['bad-answer']).toBe(2);
    expect(stats.peersBackedOff).toContain(fake.peerId);
    expect(stats.counts.fallback + stats.counts.local).toBe(3);
    expect(fake.jobsSeen).toBe(2);
  });

  it('a peer that lies about outputs is caught by verification, excluded, and the local outputs are used', async () => {
    const fake = await startFakePeer({ meshKeyHex: KEY, toolchains: [gccId], behaviour: 'lying' });
    started.push(fake);
    const client = await clientWith(fake, { MESHCC_LOCAL_SLOTS: '0', MESHCC_VERIFY_RATE: '1' });
    const r = await compileBoth('gcc', C_SOURCE, 'v.c', [], meshEnv(client));
    expect(r.meshed.status).toBe(0);
    expect(r.meshObject!.equals(r.plainObject!)).toBe(true);
    expect(r.meshDeps).toBe(r.plainDeps);
    const stats = await statsOf(client);
    expect(stats.verify.mismatches).toBe(1);
    expect(Object.keys(stats.peersExcluded)).toEqual([fake.peerId]);
    const again = await compileBoth('gcc', C_SOURCE, 'v2.c', [], meshEnv(client));
    expect(again.meshObject!.equals(again.plainObject!)).toBe(true);
    expect(fake.jobsSeen).toBe(1);
  });

  it('a straggler (a peer that never answers) is hedged with a local compile that wins', async () => {
    const fake = await startFakePeer({ meshKeyHex: KEY, toolchains: [gccId], behaviour: 'silent' });
    started.push(fake);
    const client = await clientWith(fake, { MESHCC_LOCAL_SLOTS: '1', MESHCC_HEDGE_MIN_S: '1' });
    const dir = tempDir();
    // The slow unit takes the only local slot; the quick one goes to the silent peer and is
    // hedged locally once the slot is free and the job has run past the straggler threshold.
    const slow = Array.from({ length: 3000 }, (_, i) => `int f${i}(int x) { return x * ${i} + (x >> ${i % 7}); }`).join('\n');
    writeFileSync(path.join(dir, 'slow.c'), slow);
    writeFileSync(path.join(dir, 'quick.c'), C_SOURCE);
    expect(spawnSync('gcc', ['-O2', '-c', 'quick.c', '-o', 'quick.plain.o'], { cwd: dir }).status).toBe(0);
    const slowRun = spawn('gcc', ['-O2', '-c', 'slow.c', '-o', 'slow.o'], { cwd: dir, env: meshEnv(client), stdio: 'ignore' });
    const slowDone = new Promise((r) => slowRun.on('exit', r));
    await new Promise((r) => setTimeout(r, 300));
    const quick = await runAsync('gcc', ['-O2', '-c', 'quick.c', '-o', 'quick.o'], { cwd: dir, env: meshEnv(client) });
    await slowDone;
    expect(quick.status).toBe(0);
    expect(readFileSync(path.join(dir, 'quick.o')).equals(readFileSync(path.join(dir, 'quick.plain.o')))).toBe(true);
    const stats = await statsOf(client);
    expect(stats.hedges).toEqual({ started: 1, wonLocally: 1 });
    expect(fake.jobsSeen).toBe(1);
  }, 30_000);
});

describe('an agent whose bubblewrap cannot run', () => {
  it('advertises no slots and says why, in status and in its peers’ views', async () => {
    const fakeBin = tempDir();
    writeFileSync(path.join(fakeBin, 'bwrap'), '#!/bin/sh\necho "bwrap: Creating new namespace failed: Operation not permitted" >&2\nexit 1\n', { mode: 0o755 });
    const crippled = await startMember({ PATH: `${fakeBin}:${process.env.PATH}`, MESHCC_SLOTS: '4' });
    try {
      const self = (await statusOf(crippled)).find((r) => r.self)!;
      expect(self.slots).toBe(0);
      expect(self.executorUnavailable).toBe('bubblewrap cannot create a sandbox here: bwrap: Creating new namespace failed: Operation not permitted');
      const observer = await startMember({ MESHCC_PEERS: selfAddress(await statusOf(crippled)) });
      try {
        await expect
          .poll(async () => (await statusOf(observer)).find((r) => r.peerId === self.peerId)?.executorUnavailable, { timeout: 10_000 })
          .toMatch(/^bubblewrap cannot create a sandbox here/);
        const human = spawnSync(process.execPath, [path.join(REPO, 'bin', 'meshcc.js'), 'status'], { env: { ...process.env, MESHCC_HOME: observer.home }, encoding: 'utf8' });
        expect(human.stdout).toMatch(/runs no jobs: bubblewrap cannot create a sandbox here/);
      } finally {
        await observer.stop();
      }
    } finally {
      await crippled.stop();
    }
  });
});
