// bench/mesh-scale: what an idle mesh costs as it grows (issue 21).
//
// Real agents as separate processes (REAL, default 40; each told one agent's address, mDNS
// off, loopback), plus simulated members (bench/mesh-sims.ts: the same membership and election
// code, SIMS_PER_PROCESS to a process) up to each size of SIZES (default 1,10,100,300,1000).
// At each size, once every agent and every simulated member lists them all and names one
// scheduler, it prints: an idle member agent's CPU (from /proc, over WINDOW_S) and RSS, the
// scheduler's CPU, the time for a new agent to be listed by all (from its node listening to the
// last member listing it), and the time from a SIGKILL of the scheduler to a new one agreed by
// all (to the last member following it, from their logs' and their own clocks).
// The machine's cores are shared with everything else running: the figures are measured side by
// side, in one run, and are ratios to what the same processes did at the other sizes.
// PROFILE_DIR=dir: every agent runs under `node --cpu-prof`; at the end the measured member's
// profile is read for each size's window and its largest places printed in ms per second.
//   node dist/bench/mesh-scale.js        (env: REAL, SIZES, WINDOW_S, IDLE_AFTER_S, SIMS_PER_PROCESS, PROFILE_DIR)
import { fork, spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, openSync, readFileSync, rmSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { query } from '../node/cli/query.js';
import { defaultJobsDir } from '../node/config.js';
import { socketAnswers } from '../node/instance-lock.js';
import { PROTOCOL_VERSION } from '../protocol/messages.js';
import { processCpuMs } from './measure.js';
import { monotonicUs, profilesIn, summariseProfile, type Window } from './cpu-profile.js';
import { runSims, type SimAnswer, type SimCommand } from './mesh-sims.js';

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const REAL = Number(process.env.REAL ?? 40);
const SIZES = (process.env.SIZES ?? '1,10,100,300,1000').split(',').map(Number);
const WINDOW_S = Number(process.env.WINDOW_S ?? 30);
const SIMS_PER_PROCESS = Number(process.env.SIMS_PER_PROCESS ?? 250);
const SETTLE_MS = 240_000;
/** An agent's first half minute is not idle: toolchains are identified, and V8's memory reducer
 *  runs a few full collections ~25 s after start (~80 ms of CPU once). Windows start after it. */
const IDLE_AFTER_MS = Number(process.env.IDLE_AFTER_S ?? 40) * 1000;
/** An agent's probe period (node/mesh/membership/swim-service.ts). */
const AGENT_PROBE_MS = 2000;
const PROFILE_DIR = process.env.PROFILE_DIR;
/** The measured member and its window at each size, read from its profile at the end. */
const profiled: { size: number; real: Real; window: Window }[] = [];

interface Real {
  child: ChildProcess;
  home: string;
  logPath: string;
  peerId: string;
  address: string;
  alive: boolean;
  startedAt: number;
  profileDir?: string;
}

interface SimProcess {
  child: ChildProcess;
  total: number;
  answers: ((a: SimAnswer) => void)[];
}

const keyHex = randomBytes(32).toString('hex');
const reals: Real[] = [];
const sims: SimProcess[] = [];

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

function logEntries(real: Real): { time: number; msg: string; peer?: string; scheduler?: string }[] {
  let text = '';
  try {
    text = readFileSync(real.logPath, 'utf8');
  } catch {
    return [];
  }
  const out = [];
  for (const line of text.split('\n')) {
    if (!line.startsWith('{')) continue;
    try {
      out.push(JSON.parse(line) as { time: number; msg: string; peer?: string; scheduler?: string });
    } catch {
      // a line being written
    }
  }
  return out;
}

/** What an agent's log says now: whom it lists, whom it follows (and since when). */
function agentState(real: Real): { listed: Set<string>; scheduler?: string; electedAt: number; listedAt: Map<string, number>; upAt: number } {
  const listed = new Set<string>();
  const listedAt = new Map<string, number>();
  let scheduler: string | undefined;
  let electedAt = 0;
  let upAt = 0;
  for (const e of logEntries(real)) {
    if (e.msg === 'peer joined the view' && e.peer) {
      listed.add(e.peer);
      listedAt.set(e.peer, e.time);
    } else if (e.msg === 'peer left the view' && e.peer) listed.delete(e.peer);
    else if (e.msg === 'this agent is the scheduler' || e.msg === 'following a scheduler' || e.msg === 'no scheduler') {
      scheduler = e.msg === 'no scheduler' ? undefined : e.scheduler;
      electedAt = e.time;
    } else if (e.msg === 'joined the mesh') upAt = e.time;
  }
  return { listed, scheduler, electedAt, listedAt, upAt };
}

async function startReal(seed?: string): Promise<Real> {
  const home = mkdtempSync(path.join(os.tmpdir(), 'meshcc-scale-'));
  const logPath = path.join(home, 'agent.log');
  const profileDir = PROFILE_DIR ? path.join(PROFILE_DIR, String(reals.length)) : undefined;
  const profiling = profileDir ? ['--cpu-prof', `--cpu-prof-dir=${profileDir}`] : [];
  const child = spawn(process.execPath, [...profiling, path.join(repo, 'bin', 'meshcc.js'), 'agent'], {
    env: {
      ...process.env,
      MESHCC_HOME: home,
      MESHCC_MESH_KEY: keyHex,
      MESHCC_LOG_LEVEL: process.env.AGENT_LOG_LEVEL ?? 'info',
      MESHCC_LISTEN: '/ip4/127.0.0.1/tcp/0',
      MESHCC_MDNS: '0',
      MESHCC_SPEED: '1',
      MESHCC_HTTP: 'off',
      MESHCC_SLOTS: '1',
      MESHCC_PORT_MAPPING: '0',
      MESHCC_PEERS: seed ?? '',
    },
    stdio: ['ignore', 'ignore', openSync(logPath, 'a')],
  });
  const socketPath = path.join(home, 'agent.sock');
  const startedAt = Date.now();
  const deadline = Date.now() + 60_000;
  for (;;) {
    if (Date.now() > deadline || child.exitCode !== null) throw new Error(`an agent did not start: ${readFileSync(logPath, 'utf8').slice(-2000)}`);
    if (await socketAnswers(socketPath)) {
      const rows = (await query(socketPath, { t: 'status', v: PROTOCOL_VERSION })).agents as { self: boolean; addresses: string[]; peerId: string }[];
      const self = rows.find((r) => r.self);
      const address = self?.addresses.find((a) => a.startsWith('/ip4/127.0.0.1/'));
      if (self && address) {
        const real: Real = { child, home, logPath, peerId: self.peerId, address, alive: true, startedAt, profileDir };
        child.once('exit', () => (real.alive = false));
        return real;
      }
    }
    await sleep(100);
  }
}

function ask(sim: SimProcess, command: SimCommand): Promise<SimAnswer> {
  return new Promise((resolve) => {
    sim.answers.push(resolve);
    sim.child.send(command);
  });
}

async function startSimProcess(): Promise<SimProcess> {
  const child = fork(fileURLToPath(import.meta.url), ['--sims', keyHex], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  const sim: SimProcess = { child, total: 0, answers: [] };
  const ready = new Promise<void>((resolve) => {
    child.on('message', (answer: SimAnswer) => {
      const waiting = sim.answers.shift();
      if (waiting) waiting(answer);
      else resolve();
    });
  });
  await ready;
  return sim;
}

function aliveReals(): Real[] {
  return reals.filter((r) => r.alive);
}

async function simStates(peerId?: string) {
  return Promise.all(sims.map((s) => ask(s, { t: 'state', ...(peerId ? { peerId } : {}) }) as Promise<Extract<SimAnswer, { t: 'state' }>>));
}

/** Every agent and simulated member lists all `size` and names the same scheduler; returns it. */
let waitingFor = '';

async function settled(size: number): Promise<string | undefined> {
  const named = new Set<string>();
  for (const real of aliveReals()) {
    const s = agentState(real);
    if (s.listed.size < size - 1 || !s.scheduler) {
      waitingFor = `an agent lists ${s.listed.size + 1} of ${size}, follows ${s.scheduler?.slice(-6) ?? 'nobody'}`;
      return undefined;
    }
    named.add(s.scheduler);
  }
  for (const state of await simStates()) {
    if (state.total && state.minListed < size - 1) {
      waitingFor = `a simulated member lists ${state.minListed + 1} of ${size}`;
      return undefined;
    }
    for (const [s, n] of Object.entries(state.schedulers)) if (n) named.add(s);
  }
  waitingFor = `schedulers named: ${[...named].map((s) => s.slice(-6) || 'nobody').join(' ')}`;
  return named.size === 1 && !named.has('') ? [...named][0] : undefined;
}

async function until<T>(what: string, check: () => Promise<T | undefined>, timeoutMs: number): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what} (${waitingFor})`);
    if (Math.floor(Date.now() / 10_000) !== Math.floor((Date.now() - 250) / 10_000)) process.stderr.write(`waiting for ${what}: ${waitingFor}\n`);
    await sleep(250);
  }
}

function rssMb(pid: number): number {
  const m = /VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) / 1024 : NaN;
}

async function grow(size: number): Promise<void> {
  const wantReal = Math.min(REAL, size);
  while (aliveReals().length < wantReal) reals.push(await startReal(aliveReals()[0]?.address));
  let simTotal = sims.reduce((n, s) => n + s.total, 0);
  const wantSims = size - aliveReals().length;
  const probeMs = Math.max(1000, Math.round(wantSims / 25) * 1000);
  const seeds = aliveReals().map((r) => r.address);
  // The processes grow side by side: each adds its members one at a time.
  const growing: Promise<void>[] = [];
  const growIn = (sim: SimProcess, count: number) => {
    simTotal += count;
    growing.push(
      ask(sim, { t: 'grow', count, seeds, probeMs }).then((answer) => {
        const grown = answer as Extract<SimAnswer, { t: 'grown' }>;
        sim.total = grown.total;
        process.stderr.write(`${grown.total} simulated members in one process (${Math.round(grown.rssBytes / 2 ** 20)} MB)\n`);
      }),
    );
  };
  for (const sim of sims) if (sim.total < SIMS_PER_PROCESS && simTotal < wantSims) growIn(sim, Math.min(SIMS_PER_PROCESS - sim.total, wantSims - simTotal));
  while (simTotal < wantSims) {
    const sim = await startSimProcess();
    sims.push(sim);
    growIn(sim, Math.min(SIMS_PER_PROCESS, wantSims - simTotal));
  }
  await Promise.all(growing);
  // The agents are probed by the simulated members watching them at an agent's pace.
  for (const sim of sims) sim.child.send({ t: 'probe-real', ids: aliveReals().map((r) => r.peerId), periodMs: AGENT_PROBE_MS } satisfies SimCommand);
}

async function measureAt(size: number): Promise<string> {
  await grow(size);
  const scheduler = await until(`a settled mesh of ${size}`, () => settled(size), SETTLE_MS);
  await sleep(5000);
  const schedulerReal = reals.find((r) => r.peerId === scheduler && r.alive)!;
  // The oldest agent after the scheduler would succeed it: every member keeps a connection to
  // it. The member measured is an ordinary one (the youngest), when there is one.
  const successor = aliveReals().find((r) => r !== schedulerReal) ?? schedulerReal;
  const member = aliveReals().filter((r) => r !== schedulerReal && r !== successor).at(-1) ?? successor;
  await sleep(Math.max(0, ...[member, schedulerReal, successor].map((r) => r.startedAt + IDLE_AFTER_MS - Date.now())));
  const cpu0 = [member, schedulerReal, successor].map((r) => processCpuMs(r.child.pid!));
  const fromUs = monotonicUs();
  await sleep(WINDOW_S * 1000);
  profiled.push({ size, real: member, window: { fromUs, toUs: monotonicUs() } });
  const [memberCpu, schedulerCpu, successorCpu] = [member, schedulerReal, successor].map((r, i) => (processCpuMs(r.child.pid!) - cpu0[i]!) / (WINDOW_S * 10)) as [number, number, number];
  const memberRss = rssMb(member.child.pid!);
  if (size === 1) return `${pad(size)} | ${memberCpu.toFixed(2).padStart(6)} % | ${memberRss.toFixed(0).padStart(4)} MB | (alone: it is the scheduler)`;

  // A new agent: from its node listening to the last member listing it.
  const newcomer = await startReal(aliveReals()[0]!.address);
  const joinMs = await until(
    'the newcomer listed by all',
    async () => {
      const up = agentState(newcomer).upAt;
      let last = 0;
      for (const real of aliveReals()) {
        if (real === newcomer) continue;
        const at = agentState(real).listedAt.get(newcomer.peerId);
        if (!at || !agentState(real).listed.has(newcomer.peerId)) return undefined;
        last = Math.max(last, at);
      }
      const realsLast = last;
      for (const state of await simStates(newcomer.peerId)) {
        if ((state.listing ?? 0) < state.total) return undefined;
        last = Math.max(last, state.listedLast ?? 0);
      }
      if (up) process.stderr.write(`newcomer listed by the agents after ${realsLast - up} ms, by the simulated members after ${last - up} ms\n`);
      return up ? last - up : undefined;
    },
    120_000,
  );
  newcomer.child.kill('SIGTERM');
  await until('the newcomer gone', async () => (newcomer.alive ? undefined : true), 20_000);

  // SIGKILL of the scheduler: to the last member following the new one.
  schedulerReal.child.kill('SIGKILL');
  const killedAt = Date.now();
  const failoverMs = await until(
    'a new scheduler agreed by all',
    async () => {
      const named = new Set<string>();
      let last = 0;
      for (const real of aliveReals()) {
        if (real === schedulerReal) continue;
        const s = agentState(real);
        if (!s.scheduler || s.scheduler === scheduler) return undefined;
        named.add(s.scheduler);
        last = Math.max(last, s.electedAt);
      }
      for (const state of await simStates()) {
        for (const [s, n] of Object.entries(state.schedulers)) if (n) named.add(s);
        last = Math.max(last, state.electedLast);
      }
      return named.size === 1 && !named.has('') && !named.has(scheduler) ? last - killedAt : undefined;
    },
    60_000,
  );
  return `${pad(size)} | ${memberCpu.toFixed(2).padStart(6)} % | ${memberRss.toFixed(0).padStart(4)} MB | ${schedulerCpu.toFixed(2).padStart(6)} % | ${successorCpu.toFixed(2).padStart(6)} % | ${String(joinMs).padStart(7)} ms | ${String(failoverMs).padStart(7)} ms`;
}

/** Stops the profiled members (a profile is written at a clean exit) and prints where each one's
 *  time went during its window. A member killed as scheduler at a later size left no profile. */
async function printProfiles(): Promise<void> {
  const members = new Set(profiled.map((p) => p.real).filter((r) => r.alive));
  for (const real of members) real.child.kill('SIGTERM');
  await until('the profiled members stopped', async () => ([...members].some((r) => r.alive) ? undefined : true), 30_000);
  for (const { size, real, window } of profiled) {
    const file = real.profileDir && profilesIn(real.profileDir).mainThread;
    if (!file) {
      console.log(`size ${size}: no profile (that member was killed)`);
      continue;
    }
    const seconds = (window.toUs - window.fromUs) / 1e6;
    const { byPlace, busyMs } = summariseProfile(file, window);
    console.log(`size ${size}: the member was busy ${(busyMs / seconds).toFixed(1)} ms/s in its profile (${file}, monotonic µs ${window.fromUs}-${window.toUs}); largest places (ms/s):`);
    for (const [place, ms] of [...byPlace.entries()].sort((a, b) => b[1] - a[1]).slice(0, 16)) console.log(`  ${place.padEnd(52)} ${(ms / seconds).toFixed(2).padStart(6)}`);
  }
}

function pad(n: number): string {
  return String(n).padStart(5);
}

async function main(): Promise<void> {
  const rows: string[] = [];
  for (const signal of ['SIGINT', 'SIGTERM'] as const) process.on(signal, () => process.exit(1));
  process.on('exit', () => {
    for (const r of reals) if (r.alive) r.child.kill('SIGKILL');
    for (const s of sims) s.child.kill('SIGKILL');
    if (!process.env.KEEP) {
      for (const r of reals) {
        rmSync(r.home, { recursive: true, force: true });
        // A killed agent leaves its job roots' directory in tmpfs, outside its home.
        const jobs = defaultJobsDir(r.home);
        if (!jobs.startsWith(`${r.home}/`)) rmSync(jobs, { recursive: true, force: true });
      }
    }
  });
  console.log(`bench/mesh-scale: up to ${REAL} agents as processes, the rest simulated members; ${os.cpus().length} cores shared with everything else running, so the figures are ratios measured side by side in one run`);
  console.log(' size | member CPU | member RSS | scheduler CPU | successor CPU | listed by all | failover');
  for (const size of SIZES) {
    const row = await measureAt(size);
    rows.push(row);
    console.log(row);
  }
  if (PROFILE_DIR) await printProfiles();
  process.exit(0);
}

if (process.argv[2] === '--sims') await runSims(process.argv[3]!);
else await main();
