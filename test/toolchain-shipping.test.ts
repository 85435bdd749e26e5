// Must-show: toolchains shipped to a peer that has no compiler at all. Two network namespaces
// on a bridge: h0 runs the client agent (no slots of its own: every distributable compile goes
// to the peer); h1 runs a peer agent in a mount namespace of its own where /usr/lib/gcc,
// /usr/libexec, /usr/lib/llvm-* are empty and every driver, assembler and linker in /usr/bin
// is an empty file. The client compiles C and C++ with gcc, g++, clang and clang++:
//   - the first compile with each toolchain is refused by the peer, which starts fetching the
//     toolchain from the client; the compile runs locally meanwhile;
//   - once the peer advertises the toolchains, every compile runs on it, over the shipped
//     trees, with objects and dependency files byte-identical to local ones;
//   - each toolchain crossed the network once: the peer's stats count 4 fetches and every
//     later job on a shipped toolchain, the client's count 4 tarballs served.
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { query } from '../node/cli/query.js';
import { socketAnswers } from '../node/instance-lock.js';
import { setMeshKey } from '../node/mesh/keys.js';
import type { AgentStatus } from '../node/mesh/mesh-service.js';
import type { StatsSnapshot } from '../node/stats.js';
import { MASQUERADE, MESHCC_BIN, plainEnv } from './helpers/agent.js';
import { hideCompilers } from './helpers/hide-compilers.js';
import { createNetnsMesh, netnsAvailable, type NetnsMesh } from './helpers/netns.js';
import { tempDir } from './helpers/tmp.js';
import { hostToolchainId } from './helpers/toolchain-id.js';
import { sleep, waitFor } from './helpers/wait.js';

const avail = netnsAvailable();
if (!avail.ok) console.log(`toolchain shipping tests skipped: ${avail.reason}`);

const run = promisify(execFile);
const KEY = 'c4'.repeat(32);
const COMPILERS = ['gcc', 'g++', 'clang', 'clang++'] as const;

const C_UNIT = (n: number) => `#include <stdio.h>\n#include <stdlib.h>\n#include <string.h>\nint unit${n}(const char *s) { printf("%zu\\n", strlen(s)); return atoi(s) + ${n}; }\n`;
const CXX_UNIT = (n: number) =>
  `#include <map>\n#include <string>\n#include <vector>\nint unit${n}(int k) { std::map<std::string, std::vector<int>> m; m["x"].push_back(k); return m.size() + ${n}; }\n`;

interface Agent {
  home: string;
  child?: ChildProcess;
  log: string;
}

const socketOf = (a: Agent) => path.join(a.home, 'agent.sock');
const statsOf = async (a: Agent) => (await query(socketOf(a), { t: 'stats', v: 1 })).stats as StatsSnapshot;
const statusOf = async (a: Agent) => (await query(socketOf(a), { t: 'status', v: 1 })).agents as AgentStatus[];

/** A compile without meshcc, then the same through the client agent; both results. */
async function compileBoth(cc: string, dir: string, name: string, client: Agent) {
  const args = ['-O2', '-g', '-MD', '-c', name, '-o', `${name}.o`];
  const outputs = () => ({ object: readFileSync(path.join(dir, `${name}.o`)), deps: readFileSync(path.join(dir, `${name}.d`), 'utf8') });
  await run(cc, args, { cwd: dir, env: plainEnv });
  const plain = outputs();
  await run(cc, args, { cwd: dir, env: { ...plainEnv, MESHCC_HOME: client.home, PATH: `${MASQUERADE}:${plainEnv.PATH}` } });
  return { plain, meshed: outputs() };
}

describe.skipIf(!avail.ok)('toolchains shipped to a peer without compilers', () => {
  let mesh: NetnsMesh;
  let client: Agent;
  let peer: Agent;
  let peerId: string;
  let ids: string[];
  const hidden = hideCompilers();
  const work = tempDir('meshcc-ship-');

  function start(agent: Agent, host: number, env: Record<string, string>, prefix: string[] = []): Promise<void> {
    const argv = [...prefix, process.execPath, MESHCC_BIN, 'agent'];
    agent.child = mesh.spawn(host, argv[0]!, argv.slice(1), {
      env: { ...plainEnv, MESHCC_HOME: agent.home, MESHCC_LOG_LEVEL: 'info', MESHCC_SPEED: '1', ...env },
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    agent.child.stderr!.setEncoding('utf8').on('data', (d: string) => (agent.log = (agent.log + d).slice(-100_000)));
    return waitFor('an agent to answer on its socket', async () => ((await socketAnswers(socketOf(agent))) && (await statusOf(agent)).some((r) => r.self) ? true : undefined), 30_000).then(() => undefined);
  }

  beforeAll(async () => {
    mesh = await createNetnsMesh({ hosts: 2, prefix: 'mccship' });
    client = { home: tempDir('meshcc-home-'), log: '' };
    peer = { home: tempDir('meshcc-home-'), log: '' };
    for (const a of [client, peer]) await setMeshKey(a.home, KEY);
    const which = async (cc: string) => (await run('which', [cc])).stdout.trim();
    const idsComputed = Promise.all(COMPILERS.map(async (cc) => hostToolchainId(await which(cc))));
    await Promise.all([
      start(client, 0, { MESHCC_SLOTS: '0', MESHCC_LOCAL_SLOTS: '0' }),
      start(peer, 1, { MESHCC_SLOTS: '2', MESHCC_LOCAL_SLOTS: '0' }, hidden.prefix),
    ]);
    ids = await idsComputed;
    peerId = (await statusOf(peer)).find((r) => r.self)!.peerId;
    await waitFor(
      'the client to have packed its compilers and to list the peer',
      async () => {
        const rows = await statusOf(client);
        const self = rows.find((r) => r.self)!;
        return ids.every((id) => self.toolchains.includes(id)) && rows.some((r) => r.peerId === peerId && r.slots === 2) ? true : undefined;
      },
      90_000,
    );
  }, 150_000);

  afterAll(async () => {
    for (const a of [client, peer]) if (a?.child?.pid) a.child.kill('SIGTERM');
    await sleep(500);
    await mesh?.destroy();
  });

  it('the peer agent sees no compiler: no driver runs, gcc and llvm directories are empty, it advertises no toolchain', async () => {
    expect(hidden.files.length).toBeGreaterThan(5);
    const pid = String(peer.child!.pid);
    const inPeer = (script: string) => run('nsenter', ['-t', pid, '-m', 'sh', '-c', script]).then(() => 0, (err: { code: number }) => err.code);
    for (const cc of [...COMPILERS, 'cc', 'c++', 'cpp', 'as', 'ld']) expect(await inPeer(`${cc} --version >/dev/null 2>&1`), cc).not.toBe(0);
    for (const dir of hidden.dirs) expect(await inPeer(`[ -z "$(ls -A ${dir})" ]`), dir).toBe(0);
    expect((await statusOf(peer)).find((r) => r.self)!.toolchains).toEqual([]);
  });

  it('the first compile per toolchain runs locally while the peer fetches it; then every compile runs on the peer, identical; each toolchain shipped once', async () => {
    // Round 1: one compile per compiler. The peer refuses each (it is fetching the toolchain).
    const before = await statsOf(client);
    for (const [i, cc] of COMPILERS.entries()) {
      const name = `first${i}.${cc.endsWith('++') ? 'cc' : 'c'}`;
      writeFileSync(path.join(work, name), cc.endsWith('++') ? CXX_UNIT(i) : C_UNIT(i));
      const r = await compileBoth(cc, work, name, client);
      expect(r.meshed.object.equals(r.plain.object), name).toBe(true);
      expect(r.meshed.deps).toBe(r.plain.deps);
    }
    const afterFirst = await statsOf(client);
    expect(afterFirst.counts.fallback - before.counts.fallback).toBe(COMPILERS.length);
    expect(afterFirst.fallbackByReason['refused-fetching-toolchain']).toBe(COMPILERS.length);

    await waitFor(
      'the peer to advertise the four shipped toolchains',
      async () => ((await statusOf(client)).find((r) => r.peerId === peerId)?.toolchains.length === ids.length ? true : undefined),
      120_000,
    ).catch((err: Error) => {
      throw new Error(`${err.message}\npeer log:\n${peer.log.slice(-5000)}`);
    });
    expect(new Set((await statusOf(client)).find((r) => r.peerId === peerId)!.toolchains)).toEqual(new Set(ids));

    // Round 2: three C and three C++ units per compiler, all on the peer.
    let n = 0;
    for (const cc of COMPILERS) {
      for (let k = 0; k < 3; k++) {
        const name = `unit${++n}.${cc.endsWith('++') ? 'cc' : 'c'}`;
        writeFileSync(path.join(work, name), cc.endsWith('++') ? CXX_UNIT(n) : C_UNIT(n));
        const r = await compileBoth(cc, work, name, client);
        expect(r.meshed.object.equals(r.plain.object), `${cc} ${name}`).toBe(true);
        expect(r.meshed.deps).toBe(r.plain.deps);
      }
    }
    const clientStats = await statsOf(client);
    expect(clientStats.counts.remote - afterFirst.counts.remote).toBe(n);
    expect(clientStats.perPeer[peerId]!.jobs).toBe(n);
    expect(clientStats.toolchains.served).toBe(ids.length);
    const peerStats = await statsOf(peer);
    expect(peerStats.toolchains.fetched).toBe(ids.length);
    expect(peerStats.toolchains.fetchFailures).toBe(0);
    expect(peerStats.toolchains.jobsOnShipped).toBe(n);
    expect(peerStats.toolchains.jobsOnHost).toBe(0);
    expect(peerStats.toolchains.cached).toBe(ids.length);
    console.log(
      `shipped ${ids.length} toolchains: ${(peerStats.toolchains.fetchedBytes / 1048576).toFixed(1)} MiB compressed, ` +
        `${(peerStats.toolchains.fetchMs / 1000).toFixed(1)} s fetching in total; ${n} jobs then ran on them`,
    );
  }, 300_000);
});
