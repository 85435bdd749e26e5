// bench/placement-sim: the scheduler's placement (node/scheduler/core.ts) driven by simulated
// peers and a simulated clock, no sockets. A build is a recorded trace of real compiles
// (bench/traces/git.json: each unit's plain compile time on this machine and its input bytes);
// the client knows only an estimate of each job's size from its input bytes (proportional,
// fitted over the trace; on git the estimate and the real time correlate at about 0.5) and submits every job at once
// (make -j with a large -j, as distributed builds are run). A peer runs up to `slots` jobs at
// its speed, the rest of what it admitted waits there; inputs cross a 1 Gbit/s link.
// Printed per scenario: the makespan against the lower bound max(total work / total speed,
// longest job / fastest peer), and for 1000 peers the placement latency percentiles.
//   node dist/bench/placement-sim.js [trace.json]
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { SchedulerCore, type Decision, type PeerInfo, type Placed, type PlacementRequest } from '../node/scheduler/core.js';

interface TraceUnit {
  unit: string;
  compileMs: number;
  inputBytes: number;
  inputFiles: number;
}

const tracePath = process.argv[2] ?? path.resolve(import.meta.dirname, '..', '..', 'bench', 'traces', 'git.json');
const trace = JSON.parse(readFileSync(tracePath, 'utf8')) as { project: string; machine: string; units: TraceUnit[] };
const TOOLCHAIN = { id: 'f'.repeat(64), arch: 'x64', os: 'linux' };
const LINK_BYTES_PER_MS = 125_000; // 1 Gbit/s

/** compileMs ≈ inputBytes / k, k fitted over the trace: what the agent's estimate is
 *  (remote-runner's INPUT_BYTES_PER_MS), only with this trace's own k. */
function fitEstimate(units: TraceUnit[]): (u: TraceUnit) => number {
  const k = units.reduce((s, u) => s + u.inputBytes, 0) / units.reduce((s, u) => s + u.compileMs, 0);
  return (u) => Math.max(1, u.inputBytes / k);
}

/** A deterministic pseudo-random stream (mulberry32). */
function random(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

interface SimPeer {
  info: PeerInfo;
  running: number;
  queue: (() => void)[];
  alive: boolean;
}

/** A min-heap of timed events. */
class Events {
  private readonly heap: { at: number; seq: number; run: () => void }[] = [];
  private seq = 0;
  now = 0;
  at(at: number, run: () => void): void {
    const h = this.heap;
    h.push({ at, seq: this.seq++, run });
    for (let i = h.length - 1; i > 0; ) {
      const p = (i - 1) >> 1;
      if (this.less(h[i]!, h[p]!)) {
        [h[i], h[p]] = [h[p]!, h[i]!];
        i = p;
      } else break;
    }
  }
  private less(a: { at: number; seq: number }, b: { at: number; seq: number }): boolean {
    return a.at < b.at || (a.at === b.at && a.seq < b.seq);
  }
  run(): void {
    const h = this.heap;
    while (h.length > 0) {
      const top = h[0]!;
      const last = h.pop()!;
      if (h.length > 0) {
        h[0] = last;
        for (let i = 0; ; ) {
          const l = 2 * i + 1;
          const r = l + 1;
          let m = i;
          if (l < h.length && this.less(h[l]!, h[m]!)) m = l;
          if (r < h.length && this.less(h[r]!, h[m]!)) m = r;
          if (m === i) break;
          [h[i], h[m]] = [h[m]!, h[i]!];
          i = m;
        }
      }
      this.now = top.at;
      top.run();
    }
  }
}

interface Scenario {
  name: string;
  peers: { speed: number; slots: number; rttMs: number }[];
  /** peers that join (at ms) and leave (at ms, their running jobs lost and retried) */
  churn?: { joinAt?: number; leaveAt?: number; index: number }[];
  /** the scheduler is lost at this time: a new one starts empty after electionMs */
  schedulerLossAt?: number;
  electionMs?: number;
}

function simulate(scenario: Scenario): { makespan: number; lowerBound: number; retries: number } {
  const events = new Events();
  let core = new SchedulerCore({ now: () => events.now });
  const estimate = fitEstimate(trace.units);
  const peers: SimPeer[] = scenario.peers.map((p, i) => ({
    info: { id: `p${i}`, slots: p.slots, slotsUsed: 0, speed: p.speed, load: 0, cores: p.slots, arch: 'x64', os: 'linux', toolchains: [TOOLCHAIN.id], rttMs: p.rttMs },
    running: 0,
    queue: [],
    alive: !scenario.churn?.some((c) => c.index === i && c.joinAt !== undefined),
  }));
  const advertise = (p: SimPeer) => p.alive && core.upsertPeer({ ...p.info, slotsUsed: p.running + p.queue.length });
  for (const p of peers) advertise(p);
  let schedulerUp = true;
  const stalled: (() => void)[] = [];
  let remaining = trace.units.length;
  let finishedAt = 0;
  let retries = 0;
  /** requests a scheduler holds: the clients ask the next scheduler if it is lost */
  const unanswered = new Set<() => void>();
  /** jobs running or queued per peer, to retry when it leaves */
  const onPeer = new Map<string, Set<() => void>>();

  // The service hands out a burst of requests on the next turn of its event loop: here, an
  // event at the same instant after the ones already due.
  let flushDue = false;
  const flushSoon = () => {
    if (flushDue) return;
    flushDue = true;
    events.at(events.now, () => {
      flushDue = false;
      core.flush();
    });
  };
  const submit = (unit: TraceUnit, skip: string[] = []): void => {
    if (!schedulerUp) {
      stalled.push(() => submit(unit, skip));
      return;
    }
    const request: PlacementRequest = { client: 'client', toolchain: TOOLCHAIN, estimateMs: estimate(unit), localFree: 0, localSpeed: 1, skip };
    const schedulerAtRequest = core;
    const again = () => submit(unit, skip);
    unanswered.add(again);
    flushSoon();
    core.request(request, (decision: Decision) => {
      unanswered.delete(again);
      if (decision.where !== 'peer') throw new Error(`no placement: ${decision.reason}`);
      const peer = peers.find((p) => p.info.id === decision.peer)!;
      const placed: Placed = { peer: peer.info.id, client: 'client', expectedMs: decision.expectedMs, workMs: decision.workMs };
      const sentAt = events.now;
      const transferMs = (peer.info.rttMs ?? 1) + unit.inputBytes / LINK_BYTES_PER_MS / 20; // most inputs are already there
      let lost = false;
      const retry = () => {
        lost = true;
        retries++;
        submit(unit, [...skip, peer.info.id]);
      };
      const jobs = onPeer.get(peer.info.id) ?? new Set();
      onPeer.set(peer.info.id, jobs);
      jobs.add(retry);
      const start = () => {
        peer.running++;
        advertise(peer);
        events.at(events.now + unit.compileMs / peer.info.speed, () => {
          if (lost) return;
          jobs.delete(retry);
          peer.running--;
          peer.queue.shift()?.();
          advertise(peer);
          if (schedulerAtRequest === core) core.done(placed, events.now - sentAt);
          if (--remaining === 0) finishedAt = events.now;
        });
      };
      events.at(events.now + transferMs, () => {
        if (lost) return;
        if (peer.running < peer.info.slots) start();
        else peer.queue.push(start);
      });
    });
  };

  for (const c of scenario.churn ?? []) {
    const p = peers[c.index]!;
    if (c.joinAt !== undefined) events.at(c.joinAt, () => ((p.alive = true), advertise(p)));
    if (c.leaveAt !== undefined) {
      events.at(c.leaveAt, () => {
        p.alive = false;
        core.removePeer(p.info.id);
        p.running = 0;
        p.queue = [];
        const lost = [...(onPeer.get(p.info.id) ?? [])];
        onPeer.delete(p.info.id);
        for (const retry of lost) retry();
      });
    }
  }
  if (scenario.schedulerLossAt !== undefined) {
    events.at(scenario.schedulerLossAt, () => {
      // Every waiting request was with the lost scheduler: the clients ask the next one.
      schedulerUp = false;
      core = new SchedulerCore({ now: () => events.now });
      stalled.push(...unanswered);
      unanswered.clear();
      events.at(events.now + (scenario.electionMs ?? 1000), () => {
        schedulerUp = true;
        for (const p of peers) advertise(p);
        for (const again of stalled.splice(0)) again();
      });
    });
  }

  for (const unit of trace.units) events.at(0, () => submit(unit));
  events.run();
  if (remaining !== 0) throw new Error(`${remaining} jobs never finished`);

  const totalWork = trace.units.reduce((s, u) => s + u.compileMs, 0);
  const capacity = scenario.peers.reduce((s, p) => s + p.speed * p.slots, 0);
  const fastest = Math.max(...scenario.peers.map((p) => p.speed));
  const longest = Math.max(...trace.units.map((u) => u.compileMs));
  return { makespan: finishedAt, lowerBound: Math.max(totalWork / capacity, longest / fastest), retries };
}

function heterogeneous(count: number, seed: number): Scenario['peers'] {
  const rnd = random(seed);
  return Array.from({ length: count }, () => ({
    speed: 0.4 + rnd() * 2.6,
    slots: [1, 2, 4, 4, 8, 8, 16][Math.floor(rnd() * 7)]!,
    rttMs: 0.2 + rnd() * 5,
  }));
}

function report(name: string, r: ReturnType<typeof simulate>, target?: number): void {
  const ratio = r.makespan / r.lowerBound;
  const verdict = target === undefined ? '' : ratio <= target ? `  (target ≤ ${target}: met)` : `  (target ≤ ${target}: MISSED)`;
  console.log(`${name.padEnd(58)} makespan ${(r.makespan / 1000).toFixed(2)} s, lower bound ${(r.lowerBound / 1000).toFixed(2)} s: ${ratio.toFixed(3)}×${verdict}${r.retries ? `, ${r.retries} retried` : ''}`);
}

console.log(`trace: ${trace.project}, ${trace.units.length} units, ${(trace.units.reduce((s, u) => s + u.compileMs, 0) / 1000).toFixed(1)} s of compiles (${trace.machine})`);
const homogeneous20 = Array.from({ length: 20 }, () => ({ speed: 1, slots: 4, rttMs: 0.5 }));
const base20 = simulate({ name: 'h20', peers: homogeneous20 });
report('20 homogeneous peers (4 slots, speed 1)', base20, 1.05);
// With fewer slots the total work, not the longest job, bounds the build.
report('20 homogeneous peers (1 slot, speed 1)', simulate({ name: 'h20x1', peers: homogeneous20.map((p) => ({ ...p, slots: 1 })) }), 1.05);
const hetero = heterogeneous(200, 42);
const base200 = simulate({ name: 'het200', peers: hetero });
report('200 heterogeneous peers (1-16 slots, speed 0.4-3)', base200, 1.15);
// Churn and a lost scheduler, timed within the build: a fraction of its undisturbed makespan.
const mid = (r: { makespan: number }, f: number) => Math.round(r.makespan * f);
report(
  '200 heterogeneous, 20 fast ones leave at 40 %, 20 join at 20 %',
  simulate({
    name: 'churn',
    peers: hetero,
    churn: [
      ...[...hetero.keys()].sort((a, b) => hetero[b]!.speed - hetero[a]!.speed).slice(0, 20).map((index) => ({ index, leaveAt: mid(base200, 0.4) })),
      ...Array.from({ length: 20 }, (_, i) => ({ index: 180 + i, joinAt: mid(base200, 0.2) })),
    ],
  }),
);
report('200 heterogeneous, the scheduler lost at 30 % (1 s election)', simulate({ name: 'loss', peers: hetero, schedulerLossAt: mid(base200, 0.3), electionMs: 1000 }));
report('20 homogeneous, 5 peers leave at 50 %', simulate({ name: 'leave20', peers: homogeneous20, churn: [0, 1, 2, 3, 4].map((index) => ({ index, leaveAt: mid(base20, 0.5) })) }));
report('20 homogeneous, the scheduler lost at 50 % (1 s election)', simulate({ name: 'loss20', peers: homogeneous20, schedulerLossAt: mid(base20, 0.5), electionMs: 1000 }));

// Placement latency: 1000 peers, a steady stream of requests and completions.
{
  let now = 0;
  const core = new SchedulerCore({ now: () => now });
  const rnd = random(7);
  const peers = heterogeneous(1000, 9);
  peers.forEach((p, i) => core.upsertPeer({ id: `p${i}`, slots: p.slots, slotsUsed: 0, speed: p.speed, load: 0, cores: p.slots, arch: 'x64', os: 'linux', toolchains: [TOOLCHAIN.id], rttMs: p.rttMs }));
  const open: Placed[] = [];
  // Keep the mesh about half busy: requests find a slot, and the waiting list stays short.
  const latencies: number[] = [];
  // The first 2000 are a warm-up (an agent is long-lived; V8 compiles the hot paths first).
  for (let i = 0; i < 22_000; i++) {
    now += 1;
    if (open.length > 3000 || (open.length > 0 && rnd() < 0.5)) core.done(open.splice(Math.floor(rnd() * open.length), 1)[0]!, 100 + rnd() * 500);
    // One request and its decision, as the service makes it on the next turn of its loop.
    const t = performance.now();
    core.request({ client: `c${i % 8}`, toolchain: TOOLCHAIN, estimateMs: 50 + rnd() * 1000, localFree: 0, localSpeed: 1 }, (d) => {
      if (d.where === 'peer') open.push({ peer: d.peer, client: `c${i % 8}`, expectedMs: d.expectedMs, workMs: d.workMs });
    });
    core.flush();
    if (i >= 2000) latencies.push(performance.now() - t);
  }
  latencies.sort((a, b) => a - b);
  const q = (f: number) => latencies[Math.min(latencies.length - 1, Math.floor(f * latencies.length))]!;
  const p99 = q(0.99);
  console.log(`placement latency, 1000 peers, 20000 requests: p50 ${(q(0.5) * 1000).toFixed(0)} µs, p99 ${(p99 * 1000).toFixed(0)} µs, max ${(latencies.at(-1)! * 1000).toFixed(0)} µs  (target p99 ≤ 1 ms: ${p99 <= 1 ? 'met' : 'MISSED'})`);
}
