// Simulated members for bench/mesh-scale: real libp2p nodes running the very membership and
// election code of an agent (node/mesh/membership, node/scheduler/leadership.ts), many per
// process, without an executor. They follow the scheduler and report a load to it like any
// agent; they may not become scheduler (their cards say so). So that a handful of processes can
// hold hundreds of them on two shared cores, they probe less often than agents (size / 25 s);
// to keep the load on the measured agents what a real mesh of that size would put on them, a
// simulated member that has a real agent among its probe targets (membership/probe-ring.ts)
// probes it at an agent's pace (its targets in turn, one per agent period). Driven by the
// parent over IPC.
import { generateKeyPair } from '@libp2p/crypto/keys';
import { pino } from 'pino';
import { PROTOCOL_VERSION } from '../protocol/messages.js';
import { createMeshNode, type MeshNode } from '../node/mesh/node.js';
import { SwimService } from '../node/mesh/membership/swim-service.js';
import { joinThrough } from '../node/mesh/membership/bare-member.js';
import { Leadership } from '../node/scheduler/leadership.js';

export type SimCommand =
  | { t: 'grow'; count: number; seeds: string[]; probeMs: number }
  | { t: 'probe-real'; ids: string[]; periodMs: number }
  | { t: 'state'; peerId?: string }
  | { t: 'stop' };

export type SimAnswer =
  | { t: 'grown'; total: number; rssBytes: number }
  | { t: 'state'; total: number; minListed: number; schedulers: Record<string, number>; listing?: number; listedLast?: number; electedLast: number };

interface Sim {
  node: MeshNode;
  swim: SwimService;
  leadership: Leadership;
  /** when this sim first listed each peer id */
  listedAt: Map<string, number>;
  electedAt: number;
}

const log = pino({ level: 'silent' });

async function startSim(meshKey: Uint8Array, seed: string, probeMs: number, index: number): Promise<Sim> {
  const node = await createMeshNode({ privateKey: await generateKeyPair('Ed25519'), meshKey, listen: ['/ip4/127.0.0.1/tcp/0'], log, relay: false });
  const startedAt = Date.now();
  const peerId = node.peerId.toString();
  // A simulated member's addresses never change: asked of libp2p for every card, they were a
  // twentieth of a simulator's CPU.
  const addresses = node.addresses();
  // eslint-disable-next-line prefer-const
  let leadership: Leadership;
  const swim = new SwimService({
    node,
    card: () => ({ peerId, name: `sim-${index}`, addresses, startedAt, protocolVersion: PROTOCOL_VERSION, candidate: false, cores: 8, slots: 0, speed: 1, os: 'linux', arch: process.arch, libc: 'glibc', toolchains: [] }),
    leader: () => leadership.leader(),
    onLeader: (claim) => leadership.heard(claim),
    admit: () => true,
    keep: (peer) => peer === leadership.election.state().scheduler || peer === leadership.successor,
    log,
    probeIntervalMs: probeMs,
  });
  const sim: Sim = { node, swim, leadership: undefined as unknown as Leadership, listedAt: new Map(), electedAt: 0 };
  leadership = new Leadership({
    node,
    swim,
    self: { peerId, protocolVersion: PROTOCOL_VERSION, startedAt },
    candidate: false,
    log,
    load: () => ({ slots: 0, slotsUsed: 0, load: 0.5, freeMemoryBytes: 1 << 30 }),
    onChanged: () => (sim.electedAt = Date.now()),
    onLoad: () => undefined,
  });
  sim.leadership = leadership;
  swim.table.on('joined', (m) => sim.listedAt.set(m.card.peerId, Date.now()));
  await swim.start();
  await leadership.start();
  for (let attempt = 1; ; attempt++) {
    try {
      await joinThrough(swim, seed);
      return sim;
    } catch (err) {
      if (attempt >= 20) throw err;
      await new Promise((r) => setTimeout(r, 250));
    }
  }
}

/** Child mode: answers the parent's commands until told to stop. */
export async function runSims(meshKeyHex: string): Promise<void> {
  const meshKey = Buffer.from(meshKeyHex, 'hex');
  const sims: Sim[] = [];
  let realIds: string[] = [];
  let realTimer: NodeJS.Timeout | undefined;
  process.on('uncaughtException', (err) => process.stderr.write(`sim: ${err.message}\n`));
  process.on('disconnect', () => process.exit(0));
  process.on('message', (command: SimCommand) => {
    void (async () => {
      if (command.t === 'grow') {
        for (let i = 0; i < command.count; i++) {
          sims.push(await startSim(meshKey, command.seeds[(sims.length + i) % command.seeds.length]!, command.probeMs, sims.length));
          // Joins are full syncs with an agent: a few per second, spread over the seeds.
          await new Promise((r) => setTimeout(r, 40));
        }
        process.send!({ t: 'grown', total: sims.length, rssBytes: process.memoryUsage().rss } satisfies SimAnswer);
      } else if (command.t === 'probe-real') {
        realIds = command.ids;
        clearInterval(realTimer);
        if (realIds.length) {
          realTimer = setInterval(() => {
            for (const sim of sims) {
              const { targets } = sim.swim.probeRing();
              for (const target of targets) if (realIds.includes(target) && Math.random() < 1 / targets.length) void sim.swim.ping(target);
            }
          }, command.periodMs);
        }
      } else if (command.t === 'state') {
        const schedulers: Record<string, number> = {};
        let minListed = Infinity;
        let listing = 0;
        let listedLast = 0;
        let electedLast = 0;
        for (const sim of sims) {
          const s = sim.leadership.election.state().scheduler ?? '';
          schedulers[s] = (schedulers[s] ?? 0) + 1;
          minListed = Math.min(minListed, sim.swim.table.size);
          electedLast = Math.max(electedLast, sim.electedAt);
          if (command.peerId && sim.swim.table.get(command.peerId)) {
            listing++;
            listedLast = Math.max(listedLast, sim.listedAt.get(command.peerId) ?? 0);
          }
        }
        process.send!({ t: 'state', total: sims.length, minListed: sims.length ? minListed : 0, schedulers, electedLast, ...(command.peerId ? { listing, listedLast } : {}) } satisfies SimAnswer);
      } else {
        clearInterval(realTimer);
        process.exit(0);
      }
    })().catch((err: Error) => process.stderr.write(`sim command failed: ${err.message}\n`));
  });
  process.send!({ t: 'grown', total: 0, rssBytes: process.memoryUsage().rss } satisfies SimAnswer);
}
