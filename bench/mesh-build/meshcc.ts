// meshcc's part of the benchmark: a client agent in h0 that runs nothing itself
// (MESHCC_SLOTS=0, MESHCC_LOCAL_SLOTS=0) and a peer agent in h1 with 2 slots; make in h0 with
// meshcc's compiler links first on PATH; every object must be byte-identical to the plain
// build's; then one header is touched and make runs again in the same tree. The agents are
// stopped before the rival tools start, so that nothing of meshcc's runs during their builds.
import type { ChildProcess } from 'node:child_process';
import { appendFileSync, closeSync, lstatSync, mkdtempSync, openSync, statSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { socketAnswers } from '../../node/instance-lock.js';
import { setMeshKey } from '../../node/mesh/keys.js';
import type { NetnsMesh } from '../../test/helpers/netns.js';
import { nodeArgsFrom } from '../measure.js';
import { at, buildStats, na, numAt, statsOf, statusOf, type Json, type MeshBuildStats } from './agent-stats.js';
import { filesUnder, freshTree, MESHCC_BIN, say, secs, stopChild, tempDirs, until } from './common.js';
import { compareTrees, type TreeComparison } from './compare.js';
import { logPath, type BenchContext } from './context.js';
import { clkTck, interfaceBytes, keptSandboxCompilesCpuS, machineCpuS, mainThreadCpuS, processOwnCpuS, processTreeCpuS } from './cpu.js';
import { runMake, type BuildResult } from './make.js';

export interface MeshOutcome {
  run: BuildResult;
  /** The client agent's CPU and its children's during the build. */
  agentCpuS: number;
  /** Differences over the build: machine busy/steal, the peer agent alone and with its tree, the client agent alone. */
  /** peerCompiles: what the peer's kept sandboxes reaped (its compiles; in a bubblewrap per job /proc attributes them to nobody). */
  machine: { busy: number; steal: number; peerOwn: number; peerTree: number; peerCompiles: number; peerMain: number; clientOwn: number; clientMain: number };
  stats: MeshBuildStats;
  objects: TreeComparison;
  deps: TreeComparison;
  wire: { sent: number; received: number };
  peerNames: Map<string, string>;
  incremental: { headerSize: number; rebuilt: number; run: BuildResult; clientCpuS: number; stats: MeshBuildStats };
  /** The peer's `served` stats (all builds), as it reports them. */
  peerServed: unknown;
  /** How long the peer's slots compiled during the build, summed over its slots. */
  peerSlotMs: number;
}

async function startAgents(ctx: BenchContext, mesh: NetnsMesh) {
  const homes = [0, 1].map(() => mkdtempSync(path.join(os.tmpdir(), 'meshcc-bench-home-')));
  tempDirs.push(...homes);
  const [clientHome, peerHome] = homes as [string, string];
  const key = Buffer.from(crypto.getRandomValues(new Uint8Array(32))).toString('hex');
  for (const home of homes) await setMeshKey(home, key);
  const startAgent = (host: number, home: string, extra: NodeJS.ProcessEnv): ChildProcess => {
    const fd = openSync(logPath(ctx, `agent-h${host}.log`), 'a');
    // MESHCC_BENCH_NODE_ARGS: extra node options for the agents (e.g. --cpu-prof), which NODE_OPTIONS refuses
    const nodeArgs = nodeArgsFrom('MESHCC_BENCH_NODE_ARGS');
    const child = mesh.spawn(host, process.execPath, [...nodeArgs, MESHCC_BIN, 'agent'], {
      // MESHCC_BENCH_LOG_LEVEL: the agents' log level (debug says when each slot compiled what)
      env: { ...ctx.env, MESHCC_HOME: home, MESHCC_LOG_LEVEL: process.env.MESHCC_BENCH_LOG_LEVEL ?? 'warn', ...extra },
      stdio: ['ignore', fd, fd],
    });
    closeSync(fd);
    return child;
  };
  const peer = startAgent(1, peerHome, { MESHCC_SLOTS: '2', MESHCC_LOCAL_SLOTS: '0' });
  const client = startAgent(0, clientHome, { MESHCC_SLOTS: '0', MESHCC_LOCAL_SLOTS: '0' });
  for (const [child, home] of [[peer, peerHome], [client, clientHome]] as const) {
    await until(
      async () => {
        if (child.exitCode !== null) throw new Error(`an agent exited (${child.exitCode}); see ${ctx.logs}`);
        return socketAnswers(path.join(home, 'agent.sock'));
      },
      30_000,
      'the agents to answer on their sockets',
    ).catch((err: Error) => {
      throw new Error(`${err.message}; agent logs in ${ctx.logs} (use --keep to keep them)`);
    });
  }
  const t0 = Date.now();
  await until(async () => (await statusOf(clientHome)).length === 2, 30_000, '`meshcc status` on the client to list 2 agents');
  // Both agents identify their host's compilers once, in the background of their first start
  // (about 2 s of hashing, then cached in MESHCC_HOME): let that finish before timing a build.
  let lastSeen = '';
  let stableSince = Date.now();
  await until(
    async () => {
      const seen = JSON.stringify((await statusOf(clientHome)).map((a) => a.toolchains.length));
      if (seen !== lastSeen) [lastSeen, stableSince] = [seen, Date.now()];
      return !seen.includes('0') && Date.now() - stableSince > 2000;
    },
    60_000,
    'both agents to identify their toolchains',
  );
  const agents = await statusOf(clientHome);
  const peerNames = new Map<string, string>();
  for (const a of agents) {
    const host = mesh.hosts.find((h) => a.addresses.some((addr) => addr.includes(`/${h.address}/`)));
    peerNames.set(a.peerId, `${host?.name ?? (a.self ? 'h0' : '?')} (${a.peerId.slice(-8)})`);
  }
  say(`  the client lists 2 agents after ${Date.now() - t0} ms: ${agents.map((a) => `${peerNames.get(a.peerId)} slots ${a.slots}`).join(', ')}`);
  return { client, peer, clientHome, peerHome, peerNames };
}

export async function runMeshcc(ctx: BenchContext, mesh: NetnsMesh, bindir: string, header: string): Promise<MeshOutcome> {
  say(`mesh: starting a client agent in h0 (no slots) and a peer agent in h1 (2 slots)`);
  const { client, peer, clientHome, peerHome, peerNames } = await startAgents(ctx, mesh);
  const { tree, project } = ctx;
  const h0 = mesh.hosts[0]!;
  const tck = clkTck();
  const meshEnv = { ...ctx.env, PATH: `${bindir}:${ctx.env.PATH ?? '/usr/bin:/bin'}`, MESHCC_HOME: clientHome };
  const inH0 = (cmd: string, args: string[]) => mesh.spawn(0, cmd, args, { cwd: tree, env: meshEnv, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
  const meshProgress = async () => {
    const s = await statsOf(clientHome);
    const c = ['local', 'remote', 'fallback'].map((k) => `${k} ${na(numAt(s, `counts.${k}`))}`).join(', ');
    return `, ${filesUnder(tree, project.objectExts).length} objects; client agent: ${c}`;
  };
  const clientPid = client.pid!;

  say(`mesh build: make -j${ctx.jobs} in h0 with ${bindir} first on PATH`);
  freshTree(ctx.template, tree);
  const stats0 = await statsOf(clientHome);
  const slotMs0 = numAt(await statsOf(peerHome), 'served.slotMs') ?? 0;
  const agentCpu0 = processTreeCpuS(clientPid, tck);
  const machineNow = () => ({ ...machineCpuS(tck), peerOwn: processOwnCpuS(peer.pid!, tck), peerTree: processTreeCpuS(peer.pid!, tck), peerCompiles: keptSandboxCompilesCpuS(peer.pid!, tck), peerMain: mainThreadCpuS(peer.pid!, tck), clientOwn: processOwnCpuS(clientPid, tck), clientMain: mainThreadCpuS(clientPid, tck) });
  const machine0 = machineNow();
  const wire0 = interfaceBytes(h0.ns, h0.iface);
  const run = await runMake('mesh', tree, ctx.jobs, project.makeArgs, logPath(ctx, 'mesh.log'), inH0, meshProgress);
  const wire1 = interfaceBytes(h0.ns, h0.iface);
  const agentCpu1 = processTreeCpuS(clientPid, tck);
  const machine1 = machineNow();
  const stats1 = await statsOf(clientHome);
  const peerSlotMs = (numAt(await statsOf(peerHome), 'served.slotMs') ?? 0) - slotMs0;
  const agentCpuS = agentCpu1 - agentCpu0;
  say(`  mesh: ${secs(run.wallMs)} wall; client side ${(run.cpuS + agentCpuS).toFixed(1)} s CPU (make tree ${run.cpuS.toFixed(1)} s + client agent ${agentCpuS.toFixed(1)} s)`);

  say('comparing objects with the plain build');
  const objects = compareTrees(ctx.plainTree, tree, project.objectExts, 'mesh');
  const deps = compareTrees(ctx.plainTree, tree, ['.d'], 'mesh');

  // --- incremental: one header touched
  const headerPath = path.join(tree, header);
  const headerSize = statSync(headerPath).size;
  const mtimes = new Map(filesUnder(tree, project.objectExts).map((rel) => [rel, statSync(path.join(tree, rel)).mtimeMs]));
  appendFileSync(headerPath, '/* meshcc bench */\n');
  say(`second mesh build: ${header} (${headerSize} bytes) gets a comment line; make -j${ctx.jobs} again`);
  const stats2 = await statsOf(clientHome);
  const agentCpu2 = processTreeCpuS(clientPid, tck);
  const incRun = await runMake('incremental', tree, ctx.jobs, project.makeArgs, logPath(ctx, 'incremental.log'), inH0, meshProgress);
  const agentCpu3 = processTreeCpuS(clientPid, tck);
  const stats3 = await statsOf(clientHome);
  const rebuilt = filesUnder(tree, project.objectExts).filter((rel) => mtimes.get(rel) !== lstatSync(path.join(tree, rel)).mtimeMs).length;
  const peerStats: Json | undefined = await statsOf(peerHome);

  // A clean stop (SIGTERM) lets the agents finish their logs and any --cpu-prof profile.
  await Promise.all([client, peer].map((child) => stopChild(child)));
  const d = (k: keyof typeof machine0) => machine1[k] - machine0[k];
  return {
    run,
    agentCpuS,
    machine: { busy: d('busy'), steal: d('steal'), peerOwn: d('peerOwn'), peerTree: d('peerTree'), peerCompiles: d('peerCompiles'), peerMain: d('peerMain'), clientOwn: d('clientOwn'), clientMain: d('clientMain') },
    stats: buildStats(stats0, stats1),
    objects,
    deps,
    wire: { sent: wire1.sent - wire0.sent, received: wire1.received - wire0.received },
    peerNames,
    incremental: { headerSize, rebuilt, run: incRun, clientCpuS: incRun.cpuS + agentCpu3 - agentCpu2, stats: buildStats(stats2, stats3) },
    peerServed: at(peerStats, 'served'),
    peerSlotMs,
  };
}
