// Must-show: remote compiles across hosts. Three network namespaces on one bridge: h0 runs the
// client agent, which runs nothing itself (MESHCC_SLOTS=0, MESHCC_LOCAL_SLOTS=0: every
// distributable compile goes to a peer); h1 and h2 run peer agents with 2 slots each. They
// share a mesh key and find each other by mDNS. Builds run in h0 with meshcc first on PATH
// (googletest: cmake's compiler launcher), in the very directory of the plain build they are
// compared with, so that -g objects (which record it) can be byte-identical.
//   1. zlib (C, make) and googletest (C++, cmake) through the mesh: identical objects, every
//      compile on a peer, both peers used.
//   2. zlib through the mesh while something goes wrong: a peer killed mid-job, a peer's link
//      cut mid-job, a slow and lossy link, a peer whose job directory's disk is full, a peer
//      that answers garbage. Each build exits 0 (so no compile failed) with identical objects.
// Every fault is set up so that it hits a job for sure (the faulty peer holds a job slot when
// the fault strikes, or the fault is there before the build); what the client's stats say
// about it is asserted where that is certain and printed otherwise.
import { execFile, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync, statfsSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { query } from '../node/cli/query.js';
import { socketAnswers } from '../node/instance-lock.js';
import { setMeshKey } from '../node/mesh/keys.js';
import type { AgentStatus } from '../node/mesh/mesh-service.js';
import type { StatsSnapshot } from '../node/stats.js';
import { hostToolchainId } from './helpers/toolchain-id.js';
import { MASQUERADE, MESHCC_BIN, plainEnv, REPO } from './helpers/agent.js';
import { createNetnsMesh, netnsAvailable, type ExecResult, type NetnsMesh } from './helpers/netns.js';
import { impairFromHost } from './helpers/link-shape.js';
import { collect, copyProject, differences } from './helpers/projects.js';
import { tempDir } from './helpers/tmp.js';
import { GaveUp, sleep, waitFor } from './helpers/wait.js';

const avail = netnsAvailable();
if (!avail.ok) console.log(`mesh build tests skipped: ${avail.reason}`);

const run = promisify(execFile);
const KEY = 'b7'.repeat(32);
const MAKE_JOBS = 4;
const ZLIB_FLAGS = '-O2 -g -MD';
/** libz.a: 15 compile units, every one distributable (identical-builds.test.ts counts them too). */
const ZLIB_UNITS = 15;
/** googletest's four libraries: one unit each. */
const GTEST_UNITS = 4;
const BUILD_TIMEOUT_MS = 150_000;
const LOG_LEVEL = process.env.MESHCC_TEST_LOG_LEVEL ?? 'warn';
const NATIVE_CLIENT = path.join(REPO, 'dist', 'client', 'meshcc-cc');
const FAKE_RUNNER = path.join(REPO, 'test', 'helpers', 'fake-peer-runner.mjs');

interface Member {
  name: string;
  host: number;
  home: string;
  env: Record<string, string>;
  child?: ChildProcess;
  /** The tail of its stderr (pino lines at LOG_LEVEL). */
  log: string;
  peerId: string;
}

const socketOf = (m: Member) => path.join(m.home, 'agent.sock');
const statsOf = async (m: Member) => (await query(socketOf(m), { t: 'stats', v: 1 })).stats as StatsSnapshot;
const statusOf = async (m: Member) => (await query(socketOf(m), { t: 'status', v: 1 })).agents as AgentStatus[];

/** A plain command in this (the root) namespace; rejects with its output when it fails. */
async function plain(cmd: string, args: string[], cwd: string): Promise<{ stdout: string; stderr: string }> {
  return run(cmd, args, { cwd, env: plainEnv, maxBuffer: 64 << 20 }).catch((err: Error & { stderr?: string }) => {
    throw new Error(`${cmd} ${args.join(' ')} failed: ${err.message}\n${err.stderr ?? ''}`);
  });
}

/** Where a peer's counters stand, for differences across one build. */
function peerCounts(s: StatsSnapshot, peerId: string) {
  const p = s.perPeer[peerId];
  return { jobs: p?.jobs ?? 0, failures: p?.failures ?? 0, reasons: { ...(p?.failuresByReason ?? {}) }, bytesSent: p?.bytesSent ?? 0 };
}

function delta(before: StatsSnapshot, after: StatsSnapshot) {
  return {
    remote: after.counts.remote - before.counts.remote,
    fallback: after.counts.fallback - before.counts.fallback,
    local: after.counts.local - before.counts.local,
    bytesSent: after.bytesSent - before.bytesSent,
    fallbackByReason: Object.fromEntries(
      Object.entries(after.fallbackByReason)
        .map(([k, v]) => [k, v - (before.fallbackByReason[k] ?? 0)] as const)
        .filter(([, v]) => v > 0),
    ),
  };
}

function reasonsDelta(before: Record<string, number>, after: Record<string, number>): Record<string, number> {
  return Object.fromEntries(Object.entries(after).map(([k, v]) => [k, v - (before[k] ?? 0)] as const).filter(([, v]) => v > 0));
}

describe.skipIf(!avail.ok)('builds through a mesh of three network namespaces', () => {
  let mesh: NetnsMesh;
  let client: Member;
  let h1: Member;
  let h2: Member;
  let gccId: string;
  let cxxId: string;
  let zlib: string;
  let plainZlib: Map<string, Buffer>;
  /** What the plain zlib build wrote to stderr (nothing, here): the mesh builds must write the same. */
  let plainZlibStderr: string;
  /** A small tmpfs (mounted here, before h2 starts, so h2's mount namespace has it) holding h2's job roots. */
  let h2Disk: string | undefined;
  /** Job directories of h0 and h1 (on /dev/shm when it is a tmpfs, like the agent's default). */
  let jobsRoot: string | undefined;
  const started: Member[] = [];
  /** Should this process die before afterAll, the tmpfs does not outlive it. */
  const unmountOnExit = () => {
    if (h2Disk) spawnSync('umount', ['-l', h2Disk]);
  };

  function start(m: Member): Promise<void> {
    const child = mesh.spawn(m.host, process.execPath, [MESHCC_BIN, 'agent'], {
      env: { ...plainEnv, MESHCC_HOME: m.home, MESHCC_LOG_LEVEL: LOG_LEVEL, MESHCC_SPEED: '1', ...m.env },
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    m.child = child;
    child.stderr!.setEncoding('utf8').on('data', (d: string) => {
      m.log = (m.log + d).slice(-200_000);
    });
    return waitFor(
      `${m.name}'s agent to answer on its socket`,
      async () => {
        if (child.exitCode !== null || child.signalCode !== null) throw new GaveUp(`${m.name}'s agent exited: ${m.log}`);
        // The socket answers first; the mesh node (the self row of status) comes up after.
        if (!(await socketAnswers(socketOf(m)))) return undefined;
        return (await statusOf(m)).find((r) => r.self);
      },
      20_000,
    ).then((self) => {
      if (m.peerId && self.peerId !== m.peerId) throw new Error(`${m.name} came back as ${self.peerId}, not ${m.peerId}`);
      m.peerId = self.peerId;
    });
  }

  /** The client lists both peers with the toolchains the builds need, idle, neither backed off. */
  async function healthy(): Promise<void> {
    await waitFor(
      'the client to have packed gcc and g++ and to list h1 and h2 idle, alive and ready with them',
      async () => {
        const rows = await statusOf(client);
        const stats = await statsOf(client);
        const self = rows.find((r) => r.self);
        if (!self?.toolchains.includes(gccId) || !self.toolchains.includes(cxxId)) return undefined;
        for (const p of [h1, h2]) {
          const row = rows.find((r) => r.peerId === p.peerId);
          if (!row || row.slots !== 2 || row.slotsUsed !== 0 || !row.toolchains.includes(gccId) || !row.toolchains.includes(cxxId)) return undefined;
          // A suspect (a probe missed under load) gets no jobs until it answers again.
          if (row.state === 'suspect') return undefined;
          if (stats.peersBackedOff.includes(p.peerId)) return undefined;
        }
        return true;
      },
      30_000,
    );
  }

  function meshEnv(): Record<string, string> {
    return { ...plainEnv, MESHCC_HOME: client.home, PATH: `${MASQUERADE}:${plainEnv.PATH ?? '/usr/bin:/bin'}` };
  }

  function cleanZlib(): void {
    for (const f of collect(zlib, /\.(o|d|a)$/).keys()) rmSync(path.join(zlib, f));
  }

  const zlibMake = ['make', `-j${MAKE_JOBS}`, 'CC=gcc', `CFLAGS=${ZLIB_FLAGS}`, 'libz.a'];

  /** zlib's libz.a built in h0 through the mesh, from a clean tree at the plain build's path. */
  async function zlibThroughMesh(): Promise<ExecResult & { objects: Map<string, Buffer>; ms: number }> {
    cleanZlib();
    const t0 = Date.now();
    const r = await mesh.exec(0, zlibMake[0]!, zlibMake.slice(1), { cwd: zlib, env: meshEnv(), timeoutMs: BUILD_TIMEOUT_MS });
    return { ...r, objects: collect(zlib, /\.(o|d)$/), ms: Date.now() - t0 };
  }

  /** Exit 0 (no compile failed), the plain build's diagnostics, and its objects and dependency files byte for byte. */
  function expectGoodBuild(r: ExecResult & { objects: Map<string, Buffer> }, reference: Map<string, Buffer>, referenceStderr = plainZlibStderr): void {
    expect(r.code, `make failed: ${r.stderr.slice(-3000)}`).toBe(0);
    expect(r.stderr).toBe(referenceStderr);
    expect(differences(reference, r.objects)).toEqual([]);
  }

  /**
   * Waits until the peer holds a job slot (a job of ours is on it) while the build runs; returns
   * how many jobs the client had completed there just before (undefined if the build ended first).
   */
  async function whenBusy(peer: Member, build: Promise<unknown>): Promise<number | undefined> {
    let done = false;
    void build.finally(() => (done = true));
    while (!done) {
      const jobs = peerCounts(await statsOf(client), peer.peerId).jobs;
      if ((await statsOf(peer)).slots.executorInUse > 0) return jobs;
      await sleep(5);
    }
    return undefined;
  }

  /**
   * After a fault that struck while `peer` held one of our jobs: unless the client completed a job
   * there after the fault (one that finished just in time), that job failed on it, and the client
   * counted the failure against the peer.
   */
  function expectInFlightJobFailed(peer: Member, jobsAtFault: number, before: StatsSnapshot, after: StatsSnapshot): void {
    const b = peerCounts(before, peer.peerId);
    const a = peerCounts(after, peer.peerId);
    if (a.jobs === jobsAtFault) expect(a.failures).toBeGreaterThan(b.failures);
    else console.log(`  (${peer.name} completed ${a.jobs - jobsAtFault} job(s) after the fault: the job in flight finished in time)`);
  }

  function report(label: string, before: StatsSnapshot, after: StatsSnapshot, ms: number): void {
    const d = delta(before, after);
    const peers = [h1, h2]
      .map((p) => {
        const b = peerCounts(before, p.peerId);
        const a = peerCounts(after, p.peerId);
        return `${p.name} ${a.jobs - b.jobs} jobs/${a.failures - b.failures} failures ${JSON.stringify(reasonsDelta(b.reasons, a.reasons))}`;
      })
      .join(', ');
    console.log(
      `${label}: ${(ms / 1000).toFixed(1)} s; remote ${d.remote}, fallback ${d.fallback} ${JSON.stringify(d.fallbackByReason)}, local ${d.local}; ` +
        `${peers}; ${d.bytesSent} bytes sent (${d.remote ? Math.round(d.bytesSent / d.remote) : 0} per remote job)`,
    );
  }

  beforeAll(async () => {
    mesh = await createNetnsMesh({ hosts: 3, prefix: 'mcb' });
    const shm = (() => {
      try {
        return statfsSync('/dev/shm').type === 0x01021994 ? '/dev/shm' : os.tmpdir();
      } catch {
        return os.tmpdir();
      }
    })();
    jobsRoot = mkdtempSync(path.join(shm, 'meshcc-mesh-builds-'));
    const disk = tempDir('meshcc-h2-disk-');
    await run('mount', ['-t', 'tmpfs', '-o', 'size=128m,mode=0755', 'tmpfs', disk]);
    h2Disk = disk;
    process.once('exit', unmountOnExit);
    const member = (name: string, host: number, env: Record<string, string>): Member => ({ name, host, home: tempDir(`meshcc-${name}-`), env, log: '', peerId: '' });
    client = member('h0', 0, { MESHCC_SLOTS: '0', MESHCC_LOCAL_SLOTS: '0', MESHCC_BACKOFF_S: '2', MESHCC_JOBS_DIR: path.join(jobsRoot, 'h0') });
    h1 = member('h1', 1, { MESHCC_SLOTS: '2', MESHCC_LOCAL_SLOTS: '0', MESHCC_JOBS_DIR: path.join(jobsRoot, 'h1') });
    h2 = member('h2', 2, { MESHCC_SLOTS: '2', MESHCC_LOCAL_SLOTS: '0', MESHCC_JOBS_DIR: path.join(disk, 'jobs') });
    started.push(client, h1, h2);
    for (const m of started) await setMeshKey(m.home, KEY);
    const agents = Promise.all(started.map((m) => start(m)));
    agents.catch(() => undefined);
    // Meanwhile: the toolchain ids the builds will use (as the agents compute them), and zlib's
    // plain reference build, configured once; every later zlib build happens in this same tree.
    const idOf = async (cc: string) => hostToolchainId((await run('which', [cc])).stdout.trim());
    [gccId, cxxId] = await Promise.all([idOf('gcc'), idOf('g++')]);
    zlib = copyProject('zlib');
    await plain('./configure', ['--static'], zlib);
    plainZlibStderr = (await plain(zlibMake[0]!, zlibMake.slice(1), zlib)).stderr;
    plainZlib = collect(zlib, /\.(o|d)$/);
    expect(plainZlib.size).toBe(2 * ZLIB_UNITS);
    await agents;
    await healthy();
  }, 120_000);

  afterEach((ctx) => {
    if (ctx.task.result?.state !== 'fail') return;
    for (const m of started) console.log(`--- ${m.name} (${m.peerId}) log tail:\n${m.log.slice(-6000)}`);
  });

  afterAll(async () => {
    await mesh?.destroy();
    if (h2Disk) {
      await run('umount', [h2Disk]).catch(() => run('umount', ['-l', h2Disk!]));
      process.off('exit', unmountOnExit);
    }
    if (jobsRoot) rmSync(jobsRoot, { recursive: true, force: true });
  }, 60_000);

  it('zlib (C, make) and googletest (C++, cmake) built in h0 on h1 and h2: every object identical, every compile remote', async () => {
    await healthy();
    const s0 = await statsOf(client);
    const z = await zlibThroughMesh();
    expectGoodBuild(z, plainZlib);
    const s1 = await statsOf(client);
    report('zlib through the mesh', s0, s1, z.ms);
    // Every compile of libz.a went to a peer: none compiled locally, none fell back.
    expect(delta(s0, s1)).toMatchObject({ remote: ZLIB_UNITS, fallback: 0, local: 0 });
    expect(s1.bytesSent).toBeGreaterThan(s0.bytesSent);
    for (const p of [h1, h2]) expect(peerCounts(s1, p.peerId).jobs).toBeGreaterThan(peerCounts(s0, p.peerId).jobs);

    // googletest: configured plain, built plain; configured with meshcc's launcher, built in h0.
    const gtest = copyProject('googletest');
    const configure = (launcher: string) =>
      plain(
        'cmake',
        ['-S', '.', '-B', 'build', '-G', 'Unix Makefiles', '-DCMAKE_C_COMPILER=gcc', '-DCMAKE_CXX_COMPILER=g++',
          `-DCMAKE_C_COMPILER_LAUNCHER=${launcher}`, `-DCMAKE_CXX_COMPILER_LAUNCHER=${launcher}`],
        gtest,
      );
    const objects = () => collect(path.join(gtest, 'build'), /\.(o|o\.d)$/);
    await configure('');
    const plainGtestStderr = (await plain('make', ['-C', 'build', `-j${MAKE_JOBS}`], gtest)).stderr;
    const plainGtest = objects();
    expect(plainGtest.size).toBe(2 * GTEST_UNITS);
    await configure(NATIVE_CLIENT);
    await plain('make', ['-C', 'build', 'clean'], gtest);
    const t0 = Date.now();
    const g = await mesh.exec(0, 'make', ['-C', 'build', `-j${MAKE_JOBS}`], { cwd: gtest, env: meshEnv(), timeoutMs: BUILD_TIMEOUT_MS });
    expectGoodBuild({ ...g, objects: objects() }, plainGtest, plainGtestStderr);
    const s2 = await statsOf(client);
    report('googletest through the mesh', s1, s2, Date.now() - t0);
    expect(delta(s1, s2)).toMatchObject({ remote: GTEST_UNITS, fallback: 0 });
    expect(s2.bytesSent).toBeGreaterThan(s1.bytesSent);
    // The peers say the same: they ran every one of these jobs, none failed.
    const served = await Promise.all([h1, h2].map(async (p) => (await statsOf(p)).served));
    expect(served.reduce((n, s) => n + s.results, 0)).toBe(ZLIB_UNITS + GTEST_UNITS);
    expect(served.reduce((n, s) => n + s.failed, 0)).toBe(0);
    rmSync(gtest, { recursive: true, force: true });
  }, 240_000);

  it('a peer killed with SIGKILL while it runs a job: its jobs are retried on the other peer', async () => {
    await healthy();
    const before = await statsOf(client);
    const build = zlibThroughMesh();
    let jobsAtFault: number | undefined;
    try {
      jobsAtFault = await whenBusy(h1, build);
      expect(jobsAtFault, 'h1 never got a job').toBeDefined();
      h1.child!.kill('SIGKILL');
      const r = await build;
      expectGoodBuild(r, plainZlib);
      const after = await statsOf(client);
      report('zlib, h1 killed mid-job', before, after, r.ms);
      expect(delta(before, after).remote + delta(before, after).fallback).toBe(ZLIB_UNITS);
      expectInFlightJobFailed(h1, jobsAtFault!, before, after);
    } finally {
      await build;
      if (h1.child?.exitCode === null && h1.child.signalCode === null) h1.child.kill('SIGKILL');
      await new Promise((r) => (h1.child!.exitCode !== null || h1.child!.signalCode !== null ? r(undefined) : h1.child!.once('exit', r)));
      // The same home: it comes back with the same peer id (start() checks).
      await start(h1);
    }
  }, 200_000);

  it("a peer's link cut while it runs a job: the client drops it, retries its jobs elsewhere, and takes it back once the link is up", async () => {
    await healthy();
    const before = await statsOf(client);
    const build = zlibThroughMesh();
    const dev = mesh.hosts[2]!.name; // the bridge side of h2's veth
    let down = false;
    try {
      const jobsAtFault = await whenBusy(h2, build);
      expect(jobsAtFault, 'h2 never got a job').toBeDefined();
      await run('ip', ['-n', mesh.bridgeNs, 'link', 'set', dev, 'down']);
      down = true;
      const r = await build;
      expectGoodBuild(r, plainZlib);
      const after = await statsOf(client);
      report(`zlib, h2's link cut mid-job`, before, after, r.ms);
      expect(delta(before, after).remote + delta(before, after).fallback).toBe(ZLIB_UNITS);
      expectInFlightJobFailed(h2, jobsAtFault!, before, after);
      // Silent for a few seconds, it is a suspect (no job goes to it), or already dead and gone.
      await waitFor('the client to drop h2', async () => ((await statusOf(client)).some((row) => row.peerId === h2.peerId && row.state !== 'suspect') ? undefined : true), 10_000);
    } finally {
      await build;
      if (down) await run('ip', ['-n', mesh.bridgeNs, 'link', 'set', dev, 'up']);
    }
    await healthy();
  }, 200_000);

  /** 300 ms of delay and 10 % loss on everything a host sends (netem, or linkem where the kernel lacks it); resolves with the undo. */
  async function impairLink(host: number): Promise<() => Promise<void>> {
    const impaired = await impairFromHost(mesh, mesh.hosts[host]!, 300, 10);
    if (!impaired.netem) console.log(`  (${impaired.how})`);
    return impaired.undo;
  }

  it('a peer behind 300 ms of delay and 10 % loss for the whole build: the build is still right', async () => {
    await healthy();
    const undo = await impairLink(1);
    try {
      const before = await statsOf(client);
      const r = await zlibThroughMesh();
      expectGoodBuild(r, plainZlib);
      const after = await statsOf(client);
      report('zlib, h1 behind 300 ms delay and 10 % loss', before, after, r.ms);
      expect(delta(before, after).remote + delta(before, after).fallback).toBe(ZLIB_UNITS);
      // The impairment was there: the client's own round-trip measurement (libp2p ping) says so.
      const rtt = await waitFor(
        "the client to measure h1's round-trip time through the impaired link",
        async () => {
          const ms = (await statusOf(client)).find((x) => x.peerId === h1.peerId)?.rttMs ?? 0;
          return ms >= 250 ? ms : undefined;
        },
        // Round trips come from membership probes over an open connection, one member per
        // period, and periods lengthen while the client's health recovers from the faults before.
        40_000,
      );
      console.log(`  h1's round-trip time as the client measures it: ${rtt} ms`);
    } finally {
      await undo();
    }
  }, 200_000);

  /** Runs `body` with h2's job directory's file system filled up to `leaveFree` bytes. */
  async function withH2DiskFilled(leaveFree: number, body: () => Promise<void>): Promise<void> {
    const disk = h2Disk!;
    // Job roots of earlier builds are removed in the background: let that finish, then fill the disk.
    // (its link cache of store objects and the roots kept for the next jobs stay: they are part
    // of what the disk holds)
    const roots = () => readdirSync(path.join(disk, 'jobs')).filter((name) => !name.startsWith('.link-cache') && name !== 'roots');
    await waitFor('h2 to remove its old job roots', async () => (roots().length === 0 ? true : undefined), 10_000);
    const free = () => {
      const s = statfsSync(disk);
      return s.bavail * s.bsize;
    };
    const fill = path.join(disk, 'fill');
    try {
      await run('fallocate', ['-l', String(free() - leaveFree), fill]);
      expect(free()).toBe(leaveFree);
      await body();
    } finally {
      rmSync(fill, { force: true });
    }
  }

  it("a peer whose job directory's disk is full: it fails every job it takes, they run on the other peer", async () => {
    await healthy();
    await withH2DiskFilled(0, async () => {
      const before = await statsOf(client);
      const servedBefore = (await statsOf(h2)).served;
      const r = await zlibThroughMesh();
      expectGoodBuild(r, plainZlib);
      const after = await statsOf(client);
      report(`zlib, h2's job directory full`, before, after, r.ms);
      expect(delta(before, after).remote + delta(before, after).fallback).toBe(ZLIB_UNITS);
      // Both peers are idle and equal when the build starts, so h2 is offered a job for sure; no job root fits.
      const [b, a] = [peerCounts(before, h2.peerId), peerCounts(after, h2.peerId)];
      expect(a.jobs).toBe(b.jobs);
      expect(a.failures).toBeGreaterThan(b.failures);
      expect(reasonsDelta(b.reasons, a.reasons)).toEqual({ 'disk-full': a.failures - b.failures });
      const served = (await statsOf(h2)).served;
      expect(served.failed).toBeGreaterThan(servedBefore.failed);
      expect(served.results).toBe(servedBefore.results);
    });
  }, 200_000);

  it("a peer whose job directory's disk is nearly full (1 MB free: job roots fit, not all that the compiler writes): still no failed compile", async () => {
    await healthy();
    await withH2DiskFilled(1 << 20, async () => {
      const before = await statsOf(client);
      const r = await zlibThroughMesh();
      // Before node/executor noticed "No space left on device", the compiler's own failure to
      // write its output came back as the compile's result and the build failed.
      expectGoodBuild(r, plainZlib);
      const after = await statsOf(client);
      report(`zlib, h2's job directory nearly full`, before, after, r.ms);
      expect(delta(before, after).remote + delta(before, after).fallback).toBe(ZLIB_UNITS);
    });
  }, 200_000);

  it('a peer that answers garbage (a fake member in h2 that advertises itself as the fastest): its jobs are retried elsewhere', async () => {
    await healthy();
    // It joins every agent, the elected scheduler among them, which then places jobs on it too.
    const rows = await statusOf(client);
    const addresses = [client, h1, h2].map((m) => rows.find((r) => r.peerId === m.peerId)!.addresses.find((a) => a.includes(`/${mesh.hosts[m.host]!.address}/`)));
    expect(addresses.every(Boolean)).toBe(true);
    const fake = mesh.spawn(2, process.execPath, [FAKE_RUNNER, 'garbage', KEY, gccId, ...(addresses as string[])], {
      env: plainEnv,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    let err = '';
    fake.stdout!.setEncoding('utf8').on('data', (d: string) => (out += d));
    fake.stderr!.setEncoding('utf8').on('data', (d: string) => (err += d));
    const events = () =>
      out
        .split('\n')
        .filter(Boolean)
        .map((l) => JSON.parse(l) as { event: string; peerId?: string; jobsSeen?: number });
    try {
      const ready = await waitFor(
        'the fake peer to start',
        async () => {
          if (fake.exitCode !== null) throw new GaveUp(`the fake peer exited: ${err}`);
          return events().find((e) => e.event === 'ready');
        },
        20_000,
      );
      const fakeId = ready.peerId!;
      for (const m of [client, h1, h2]) {
        await waitFor(`${m.name} to list the fake peer`, async () => ((await statusOf(m)).some((r) => r.peerId === fakeId && r.toolchains.includes(gccId)) ? true : undefined), 10_000);
      }
      const before = await statsOf(client);
      const r = await zlibThroughMesh();
      expectGoodBuild(r, plainZlib);
      const after = await statsOf(client);
      report('zlib, a garbage-answering fake peer in h2', before, after, r.ms);
      const d = delta(before, after);
      expect(d.remote + d.fallback).toBe(ZLIB_UNITS);
      // The fake is the best-ranked candidate, so the first job goes to it; every answer is garbage.
      expect(peerCounts(after, fakeId).jobs).toBe(0);
      expect(peerCounts(after, fakeId).reasons['bad-answer']).toBeGreaterThan(0);
      expect(events().some((e) => e.event === 'jobs' && e.jobsSeen! > 0)).toBe(true);
    } finally {
      if (fake.exitCode === null && fake.signalCode === null) {
        const exited = new Promise((r) => fake.once('exit', r));
        fake.kill('SIGTERM');
        await exited;
      }
    }
  }, 200_000);
});
