// bench/toolchain-first-job: the first-job delay on a fresh peer. A client agent (no slots of
// its own) and a peer agent with an empty toolchain cache on loopback; the peer runs in a mount
// namespace where no compiler of this host is visible (as in test/toolchain-shipping), so every
// toolchain must be shipped to it. For each compiler: compiles run one after another through
// the client from the moment the peer first sees a job with that toolchain until one runs on
// the peer. Printed: that delay (refusal, brotli on the client, transfer, verified install,
// the advert that says so), the compressed bytes, and a warm remote compile for comparison.
//   node dist/bench/toolchain-first-job.js [compiler …]   (default: gcc clang++; needs root for the mount namespace)
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { promisify } from 'node:util';
import { query } from '../node/cli/query.js';
import { socketAnswers } from '../node/instance-lock.js';
import { setMeshKey } from '../node/mesh/keys.js';
import type { AgentStatus } from '../node/mesh/mesh-service.js';
import type { StatsSnapshot } from '../node/stats.js';
import { hideCompilers } from '../test/helpers/hide-compilers.js';
import { hostToolchainId } from '../test/helpers/toolchain-id.js';

const run = promisify(execFile);
const repo = path.resolve(import.meta.dirname, '..', '..');
const MESHCC_BIN = path.join(repo, 'bin', 'meshcc.js');
const MASQUERADE = path.join(repo, 'dist', 'masquerade');
const KEY = 'd5'.repeat(32);
const compilers = process.argv.slice(2).length ? process.argv.slice(2) : ['gcc', 'clang++'];
const isRoot = process.getuid?.() === 0;

const env: Record<string, string> = { LANG: 'C' };
for (const [k, v] of Object.entries(process.env)) if (v !== undefined && !k.startsWith('MESHCC_') && k !== 'LANG') env[k] = v;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const statsOf = async (home: string) => (await query(path.join(home, 'agent.sock'), { t: 'stats', v: 1 })).stats as StatsSnapshot;
const statusOf = async (home: string) => (await query(path.join(home, 'agent.sock'), { t: 'status', v: 1 })).agents as AgentStatus[];

async function until<T>(what: string, probe: () => Promise<T | undefined | false>, timeoutMs: number): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe().catch(() => undefined);
    if (value !== undefined && value !== false) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(20);
  }
}

const work = mkdtempSync(path.join(os.tmpdir(), 'meshcc-bench-first-job-'));
const children: ChildProcess[] = [];
function startAgent(home: string, extra: Record<string, string>, prefix: string[] = []): ChildProcess {
  const argv = [...prefix, process.execPath, MESHCC_BIN, 'agent'];
  const child = spawn(argv[0]!, argv.slice(1), {
    env: { ...env, MESHCC_HOME: home, MESHCC_LOG_LEVEL: 'warn', MESHCC_MDNS: '0', MESHCC_SPEED: '1', ...extra },
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  children.push(child);
  return child;
}

try {
  const clientHome = path.join(work, 'client');
  const peerHome = path.join(work, 'peer');
  for (const home of [clientHome, peerHome]) await setMeshKey(home, KEY);
  startAgent(clientHome, { MESHCC_SLOTS: '0', MESHCC_LOCAL_SLOTS: '0', MESHCC_LISTEN: '/ip4/127.0.0.1/tcp/0' });
  const clientSelf = await until('the client agent', async () => (await statusOf(clientHome)).find((r) => r.self), 30_000);
  const clientAddress = clientSelf.addresses.find((a) => a.startsWith('/ip4/127.0.0.1/'))!;
  if (!isRoot) console.log('not root: the peer sees this host\'s compilers and installs them from its own disk, nothing is shipped');
  startAgent(peerHome, { MESHCC_SLOTS: '2', MESHCC_LOCAL_SLOTS: '0', MESHCC_LISTEN: '/ip4/127.0.0.1/tcp/0', MESHCC_PEERS: clientAddress }, isRoot ? hideCompilers().prefix : []);
  await until('the peer agent', () => socketAnswers(path.join(peerHome, 'agent.sock')), 30_000);
  const peerId = (await until('the peer agent in the mesh', async () => (await statusOf(peerHome)).find((r) => r.self), 30_000)).peerId;
  const meshEnv = { ...env, MESHCC_HOME: clientHome, PATH: `${MASQUERADE}:${env.PATH}` };

  let unit = 0;
  const compile = async (cc: string): Promise<number> => {
    const name = `u${++unit}.${cc.endsWith('++') ? 'cc' : 'c'}`;
    const source = cc.endsWith('++')
      ? `#include <map>\n#include <string>\nint f${unit}(int k) { std::map<std::string, int> m; m["k"] = k; return m.size(); }\n`
      : `#include <stdio.h>\nint f${unit}(int k) { return printf("%d\\n", k); }\n`;
    writeFileSync(path.join(work, name), source);
    const t = performance.now();
    await run(cc, ['-O2', '-c', name, '-o', `${name}.o`], { cwd: work, env: meshEnv });
    return performance.now() - t;
  };

  for (const cc of compilers) {
    const compiler = (await run('which', [cc])).stdout.trim();
    if (!existsSync(compiler)) continue;
    // The client packs its compilers in the background of its start: wait for this one's id,
    // and for the client to list the peer (without it).
    const id = await hostToolchainId(compiler);
    await until(
      `the client to pack ${cc} and list the peer`,
      async () => {
        const rows = await statusOf(clientHome);
        return rows.find((r) => r.self)!.toolchains.includes(id) && rows.some((r) => r.peerId === peerId);
      },
      120_000,
    );
    const fetchBefore = (await statsOf(peerHome)).toolchains;
    const remoteBefore = (await statsOf(clientHome)).counts.remote;
    const asked = performance.now();
    let compiles = 0;
    for (;;) {
      await compile(cc);
      if ((await statsOf(clientHome)).counts.remote > remoteBefore) break;
      compiles++;
      // MESHCC_BENCH_PAUSE_MS: a pause between compiles, to see the delay on an idle client.
      await sleep(Number(process.env.MESHCC_BENCH_PAUSE_MS ?? 0));
      if (performance.now() - asked > 300_000) throw new Error('no remote compile within 5 minutes');
    }
    const delay = performance.now() - asked;
    const fetched = (await statsOf(peerHome)).toolchains;
    const warm: number[] = [];
    for (let i = 0; i < 7; i++) warm.push(await compile(cc));
    warm.sort((a, b) => a - b);
    console.log(`${cc} (${compiler}):`);
    console.log(`  first-job delay on a fresh peer: ${(delay / 1000).toFixed(2)} s (${compiles} compiles ran locally meanwhile)`);
    console.log(
      `  shipped: ${((fetched.fetchedBytes - fetchBefore.fetchedBytes) / 1e6).toFixed(1)} MB brotli, fetch + verified install ${((fetched.fetchMs - fetchBefore.fetchMs) / 1000).toFixed(2)} s`,
    );
    console.log(`  a warm remote compile of the same kind: median ${Math.round(warm[3]!)} ms`);
  }
  const peerStats = (await statsOf(peerHome)).toolchains;
  console.log(`peer: ${peerStats.fetched} toolchains fetched, ${peerStats.jobsOnShipped} jobs on shipped toolchains, ${peerStats.jobsOnHost} on its own`);
} finally {
  for (const child of children) if (child.exitCode === null) child.kill('SIGTERM');
  await Promise.all(children.map((c) => (c.exitCode === null ? new Promise((r) => c.once('exit', r)) : undefined)));
  rmSync(work, { recursive: true, force: true });
}
