// The result cache's part of the benchmark (--cache): a peer agent in h1 (2 slots) and a client
// agent in h0 (no slots), both with MESHCC_CACHE=read-write. Build 1: a mesh build with an empty
// cache. The objects deleted (`make clean`; the kernel's fetched tree lacks Makefiles `make
// clean` walks, so its objects are deleted with find). Build 2: `meshcc run -- make` in h0 from a
// fresh client (an empty agent home and MESHCC_CACHE_DIR, as on a CI runner), which finds the
// first build's results in the mesh. The objects deleted again. Build 3: the first client agent again, which has direct-mode manifests: its CPU
// per compile, with no scan. Then, unless --no-ccache, ccache does the same in h0 on its own:
// a build that fills its cache, the objects deleted, and its direct-mode rebuild, whose CPU
// (all of it in the make tree: ccache runs in each compiler invocation) stands beside build 3's.
// Every build's objects and .d files are compared with the plain build's. Figures are ratios
// measured side by side on one machine; nothing passes or fails.
import { execFileSync, type ChildProcess } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { socketAnswers } from '../../node/instance-lock.js';
import { setMeshKey } from '../../node/mesh/keys.js';
import type { NetnsMesh } from '../../test/helpers/netns.js';
import { nodeArgsFrom } from '../measure.js';
import { at, numAt, statsOf, statusOf, type Json } from './agent-stats.js';
import { bytes, freshTree, MESHCC_BIN, pct, say, secs, shq, stopChild, tempDirs, until } from './common.js';
import { compareTrees } from './compare.js';
import { logPath, type BenchContext } from './context.js';
import { clkTck, processTreeCpuS } from './cpu.js';
import { runMake, type BuildResult } from './make.js';
import type { PlainOutcome } from './report.js';

const d = (before: Json | undefined, after: Json | undefined, key: string) => (numAt(after, key) ?? 0) - (numAt(before, key) ?? 0);

function startAgent(ctx: BenchContext, mesh: NetnsMesh, host: number, home: string, extra: NodeJS.ProcessEnv): ChildProcess {
  const fd = openSync(logPath(ctx, `cache-agent-h${host}.log`), 'a');
  // MESHCC_BENCH_NODE_ARGS: node options for the agents (e.g. --cpu-prof; build windows are printed in the profiles' clock)
  const nodeArgs = nodeArgsFrom('MESHCC_BENCH_NODE_ARGS');
  const child = mesh.spawn(host, process.execPath, [...nodeArgs, MESHCC_BIN, 'agent'], { env: { ...ctx.env, MESHCC_HOME: home, MESHCC_LOG_LEVEL: 'warn', MESHCC_CACHE: 'read-write', ...extra }, stdio: ['ignore', fd, fd] });
  closeSync(fd);
  return child;
}

function compared(ctx: BenchContext, label: string): string {
  const objects = compareTrees(ctx.plainTree, ctx.tree, ctx.project.objectExts, label);
  const deps = compareTrees(ctx.plainTree, ctx.tree, ['.d'], label);
  const show = (c: typeof objects) => `${c.identical} identical${c.differing.length ? `, ${c.differing.length} DIFFER (${c.differing.slice(0, 3).join(', ')})` : ''}`;
  return `objects ${show(objects)}; .d ${show(deps)}`;
}

const monotonicUs = () => (process.hrtime.bigint() / 1000n).toString();

/** Debian's ccache masquerade directory: gcc there is ccache standing for gcc. */
export const CCACHE_LINKS_GCC = '/usr/lib/ccache/gcc';

/** ccacheLinks: a directory of ccache's compiler links (put first on PATH), to run ccache beside build 3. */
export async function runCacheBench(ctx: BenchContext, mesh: NetnsMesh, plain: PlainOutcome, ccacheLinks?: string): Promise<void> {
  const homes = [0, 1].map(() => mkdtempSync(path.join(os.tmpdir(), 'meshcc-bench-home-')));
  tempDirs.push(...homes);
  const [clientHome, peerHome] = homes as [string, string];
  const key = Buffer.from(crypto.getRandomValues(new Uint8Array(32))).toString('hex');
  for (const home of homes) await setMeshKey(home, key);
  const peer = startAgent(ctx, mesh, 1, peerHome, { MESHCC_SLOTS: '2', MESHCC_LOCAL_SLOTS: '0' });
  const client = startAgent(ctx, mesh, 0, clientHome, { MESHCC_SLOTS: '0', MESHCC_LOCAL_SLOTS: '0' });
  const tck = clkTck();
  try {
    for (const home of homes) await until(async () => socketAnswers(path.join(home, 'agent.sock')), 30_000, 'the agents to answer');
    await until(async () => (await statusOf(clientHome)).length === 2, 30_000, 'the client to list 2 agents');
    await until(async () => (await statusOf(clientHome)).every((a) => a.toolchains.length > 0), 60_000, 'both agents to identify their toolchains');
    const peerRow = (await statusOf(peerHome)).find((a) => a.self)!;
    const peerAddress = peerRow.addresses.find((a) => a.includes(`/${mesh.hosts[1]!.address}/`)) ?? peerRow.addresses[0]!;
    const bindirEnv = (bindir: string) => ({ ...ctx.env, MESHCC_HOME: clientHome, PATH: `${bindir}:${ctx.env.PATH ?? '/usr/bin:/bin'}` });
    const inH0 = (env: NodeJS.ProcessEnv) => (cmd: string, args: string[]) => mesh.spawn(0, cmd, args, { cwd: ctx.tree, env, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
    const noProgress = async () => '';
    /** The objects deleted, the sources untouched (the project's own clean). */
    const clean = async () => {
      const [cmd, ...args] = ctx.project.clean;
      const child = inH0(ctx.env)(cmd!, args);
      const code = await new Promise<number | null>((resolve) => child.once('close', resolve));
      if (code !== 0) throw new Error(`${ctx.project.clean.join(' ')} failed (exit ${code}) in ${ctx.tree}`);
    };
    const bindir = execFileSync(process.execPath, [MESHCC_BIN, 'bindir'], { encoding: 'utf8', env: ctx.env }).trim();

    // --- a miss's cost, one compile at a time (the peer idle): what a cold unit pays for the lookup
    const missDir = mkdtempSync(path.join(os.tmpdir(), 'meshcc-bench-misses-'));
    tempDirs.push(missDir);
    const MISSES = 40;
    for (let i = 0; i < MISSES; i++) writeFileSync(path.join(missDir, `u${i}.c`), `int unit${i}(int x) { return x * ${i + 3}; }\n`);
    const m0 = await statsOf(clientHome);
    const perMiss: number[] = [];
    for (let i = 0; i < MISSES; i++) {
      const before = await statsOf(clientHome);
      const child = mesh.spawn(0, 'cc', ['-O2', '-c', `u${i}.c`, '-o', `u${i}.o`], { cwd: missDir, env: bindirEnv(bindir), stdio: 'ignore' });
      const code = await new Promise<number | null>((resolve) => child.once('close', resolve));
      if (code !== 0) throw new Error(`a miss compile failed (exit ${code})`);
      perMiss.push(d(before, await statsOf(clientHome), 'cache.lookupMs'));
    }
    const m1 = await statsOf(clientHome);
    const sorted = [...perMiss].sort((a, b) => a - b);
    const q = (f: number) => sorted[Math.min(sorted.length - 1, Math.floor(f * sorted.length))]!.toFixed(2);
    say(`cache, misses one at a time: ${d(m0, m1, 'cache.misses')} misses of ${MISSES} compiles; lookup wall a miss: median ${q(0.5)} ms, p90 ${q(0.9)} ms, first ${perMiss[0]!.toFixed(2)} ms (this agent's entries and manifests, then the owners, over the namespaces' link)`);

    // --- build 1: the mesh, cache empty
    say(`cache, build 1: make -j${ctx.jobs} in h0 through the client agent, the cache empty`);
    freshTree(ctx.template, ctx.tree);
    const s0 = await statsOf(clientHome);
    const cpu0 = processTreeCpuS(client.pid!, tck);
    const first = await runMake('cache-1', ctx.tree, ctx.jobs, ctx.project.makeArgs, logPath(ctx, 'cache-1.log'), inH0(bindirEnv(bindir)), noProgress);
    const cpu1 = processTreeCpuS(client.pid!, tck);
    const s1 = await statsOf(clientHome);
    say(`  build 1: ${secs(first.wallMs)} wall (${(first.wallMs / plain.run.wallMs).toFixed(2)}× plain), client side ${(first.cpuS + cpu1 - cpu0).toFixed(1)} s CPU; ` +
      `misses ${d(s0, s1, 'cache.misses')} (lookup ${(d(s0, s1, 'cache.lookupMs') / Math.max(1, d(s0, s1, 'cache.misses'))).toFixed(2)} ms of wall each: this agent's entries, then 2 owners in one round trip), published ${d(s0, s1, 'cache.published')} (${bytes(d(s0, s1, 'cache.publishedBytes'))}), remote ${d(s0, s1, 'counts.remote')}, fallback ${d(s0, s1, 'counts.fallback')}`);
    say(`  ${compared(ctx, 'cache-1')}`);

    // --- build 2: a fresh `meshcc run` client
    await clean();
    // meshcc run's agent always starts in an empty home of its own; its compilers' ids and the
    // native client start from an empty MESHCC_CACHE_DIR too. HOME stays: git's Makefile builds
    // paths under it into some objects, which must stay comparable with the plain build's.
    const freshCache = mkdtempSync(path.join(os.tmpdir(), 'meshcc-bench-ci-cache-'));
    tempDirs.push(freshCache);
    const runEnv: NodeJS.ProcessEnv = { ...ctx.env, MESHCC_CACHE_DIR: freshCache, MESHCC_MESH_KEY: key, MESHCC_CACHE: 'read-write', MESHCC_LOCAL_SLOTS: '0', MESHCC_LOG_LEVEL: 'warn' };
    say(`cache, build 2: ${ctx.project.clean.join(' ')}; \`meshcc run --peer … -- make -j${ctx.jobs}\` in h0 (a CI runner's client: an empty agent home and MESHCC_CACHE_DIR)`);
    const viaRun = (env: NodeJS.ProcessEnv) => (cmd: string, args: string[]) => {
      // runMake's script starts with `make`: the same make, under meshcc run.
      // MESHCC_BENCH_RUN_NODE_ARGS: node options for meshcc run's process (its agent runs in it), e.g. --cpu-prof
      const nodeArgs = nodeArgsFrom('MESHCC_BENCH_RUN_NODE_ARGS').map(shq).join(' ');
      const script = args[1]!.replace(/^make /, `${shq(process.execPath)} ${nodeArgs} ${shq(MESHCC_BIN)} run --peer ${shq(peerAddress)} -- make `);
      return inH0(env)(cmd, [args[0]!, script]);
    };
    const second: BuildResult = await runMake('cache-2', ctx.tree, ctx.jobs, ctx.project.makeArgs, logPath(ctx, 'cache-2.log'), viaRun(runEnv), noProgress);
    const summary = readFileSync(logPath(ctx, 'cache-2.log'), 'utf8').split('\n').filter((l) => l.startsWith('meshcc: ')).pop() ?? '(no summary line)';
    say(`  build 2: ${secs(second.wallMs)} wall = ${pct(second.wallMs, plain.run.wallMs)} of plain; client CPU (meshcc run's agent + make tree) ${second.cpuS.toFixed(1)} s = ${pct(second.cpuS, plain.run.cpuS)} of plain's ${plain.run.cpuS.toFixed(1)} s`);
    say(`  ${summary}`);
    const hits = Number(/(\d+) cache hits/.exec(summary)?.[1] ?? NaN);
    const compiles = Number(/meshcc: (\d+) compiles/.exec(summary)?.[1] ?? NaN);
    say(`  hits ${hits} of ${compiles} compiles (${pct(hits, compiles)})`);
    say(`  ${compared(ctx, 'cache-2')}`);

    // --- build 3: the first client again, nothing changed: direct mode
    await clean();
    say(`cache, build 3: ${ctx.project.clean.join(' ')}; make -j${ctx.jobs} through the first client agent again (direct mode: manifests from build 1)`);
    const s2 = await statsOf(clientHome);
    const cpu2 = processTreeCpuS(client.pid!, tck);
    const window3 = monotonicUs();
    const third = await runMake('cache-3', ctx.tree, ctx.jobs, ctx.project.makeArgs, logPath(ctx, 'cache-3.log'), inH0(bindirEnv(bindir)), noProgress);
    const cpu3 = processTreeCpuS(client.pid!, tck);
    const s3 = await statsOf(clientHome);
    const direct = d(s2, s3, 'cache.directHits');
    const agentMs = (cpu3 - cpu2) * 1000;
    const looked = d(s2, s3, 'cache.hits') + d(s2, s3, 'cache.misses');
    say(`  build 3: ${secs(third.wallMs)} wall (${pct(third.wallMs, plain.run.wallMs)} of plain); direct hits ${direct} of ${looked} lookups; client agent CPU ${agentMs.toFixed(0)} ms = ${(agentMs / Math.max(1, looked)).toFixed(2)} ms a compile; make tree ${third.cpuS.toFixed(1)} s CPU (${pct(third.cpuS, plain.run.cpuS)} of plain: make, links, generators, conftests and the clients, the floor of any cache's client CPU); ` +
      `scan time ${d(s2, s3, 'jobRoute.scanMs').toFixed(0)} ms; files hashed on a stat change ${d(s2, s3, 'cache.manifests.rehashed')}`);
    if (process.env.MESHCC_BENCH_NODE_ARGS) say(`  build 3 ran from ${window3} to ${monotonicUs()} µs (CLOCK_MONOTONIC, the clock of --cpu-prof's samples)`);
    say(`  ${compared(ctx, 'cache-3')}`);
    const peerStats = await statsOf(peerHome);
    say(`  peer: ${JSON.stringify(at(peerStats, 'cache'))}`);

    // --- ccache on its own, the same rebuild
    if (ccacheLinks) {
      const ccacheDir = mkdtempSync(path.join(os.tmpdir(), 'meshcc-bench-ccache-'));
      tempDirs.push(ccacheDir);
      const ccacheEnv = { ...ctx.env, CCACHE_DIR: ccacheDir, PATH: `${ccacheLinks}:${ctx.env.PATH ?? '/usr/bin:/bin'}` };
      await clean();
      say(`ccache, fill: make -j${ctx.jobs} in h0 with ${ccacheLinks} first on PATH and an empty CCACHE_DIR`);
      const fill = await runMake('ccache-fill', ctx.tree, ctx.jobs, ctx.project.makeArgs, logPath(ctx, 'ccache-fill.log'), inH0(ccacheEnv), noProgress);
      say(`  fill: ${secs(fill.wallMs)} wall (${(fill.wallMs / plain.run.wallMs).toFixed(2)}× plain)`);
      await clean();
      const rebuilt = await runMake('ccache-rebuild', ctx.tree, ctx.jobs, ctx.project.makeArgs, logPath(ctx, 'ccache-rebuild.log'), inH0(ccacheEnv), noProgress);
      const stats = execFileSync('ccache', ['--print-stats'], { env: ccacheEnv, encoding: 'utf8' });
      const directHits = Number(/^direct_cache_hit\t(\d+)/m.exec(stats)?.[1] ?? NaN);
      const units = Math.max(1, looked);
      say(`  ccache's rebuild (${ctx.project.clean.join(' ')}, then make): ${secs(rebuilt.wallMs)} wall (${pct(rebuilt.wallMs, plain.run.wallMs)} of plain; meshcc's build 3 ${pct(third.wallMs, plain.run.wallMs)}); direct hits ${directHits}; ` +
        `make tree ${rebuilt.cpuS.toFixed(1)} s CPU = ${((rebuilt.cpuS * 1000) / units).toFixed(2)} ms a compile, against meshcc's agent + make tree ${(((third.cpuS * 1000) + agentMs) / units).toFixed(2)} ms (${((third.cpuS * 1000 + agentMs) / (rebuilt.cpuS * 1000)).toFixed(2)}× ccache's)`);
      say(`  ${compared(ctx, 'ccache-rebuild')}`);
    }
  } finally {
    await Promise.all([client, peer].map((child) => stopChild(child)));
  }
}
