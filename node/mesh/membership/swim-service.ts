// SWIM over libp2p streams (/meshcc/swim/1): each probe period this agent pings one member
// (round robin over its successors on a few rings: probe-ring.ts), asks INDIRECT others to
// ping it before suspecting it, and piggybacks the table's news and the scheduler's claim on
// every message. The work per period is constant whatever the mesh's size, and so are the
// connections: those to the ring's targets and observers stay open, others are opened when
// needed and closed once idle. Table rules: table.ts; timeouts and self-doubt: health.ts.
import { performance } from 'node:perf_hooks';
import type { Connection, Stream } from '@libp2p/interface';
import { ZodError } from 'zod';
import { MeshccError, ProtocolError } from '../../../protocol/errors.js';
import { parseMessage } from '../../../protocol/messages.js';
import { SWIM_LIMITS, SWIM_PROTOCOL, SwimAnswer, SwimRequest, type Leader, type MemberCard, type MemberUpdate } from '../../../protocol/swim-messages.js';
import type { Logger } from '../../log.js';
import { FramedStream } from '../framed-stream.js';
import type { MeshNode } from '../node.js';
import { LocalHealth } from './health.js';
import { probeRing, type ProbeRing } from './probe-ring.js';
import { SwimTable } from './table.js';

// Two seconds: a crash is seen at once anyway (refused connections, closed report streams);
// the period only bounds how soon a silent member is suspected, and every message costs CPU.
const PROBE_INTERVAL_MS = 2000;
const INDIRECT = 3;
const PIGGYBACK = 12;
/** A connection without streams this long is closed (unless kept). */
const IDLE_MS = 30_000;
/** Full syncs with a random member, scaled by log10(n) (memberlist's push-pull). */
const SYNC_EVERY_MS = 20_000;
const SERVE_TIMEOUT_MS = 10_000;
/** A probe that has to open a connection first (TCP, the knock, the private network, Noise,
 *  yamux) waits at least this long: on a busy machine the handshakes alone take hundreds of ms. */
const DIAL_PROBE_MS = 2000;
/** The last probe of a suspect before it is declared dead waits at least this long. */
const LAST_CHANCE_MS = 5000;

export interface SwimServiceOptions {
  node: MeshNode;
  /** This agent's card now (cheap; compared to the last one sent each period). */
  card: () => MemberCard;
  /** The scheduler this agent follows (sent with every message). */
  leader: () => Leader;
  /** A claim heard from a member. */
  onLeader: (leader: Leader, from: string) => void;
  /** Whether a peer may be listed (revoked members may not). */
  admit: (peerId: string) => boolean;
  /** Connections kept even when idle (the scheduler, a relay). */
  keep: (peerId: string) => boolean;
  log: Logger;
  probeIntervalMs?: number;
  idleMs?: number;
}

/** Whether a dial failed because nothing listens there (the kernel refused it): a member that is
 *  only slow never causes that, so it is proof that the member is gone, not a suspicion. */
export function refused(err: unknown): boolean {
  const seen = new Set<unknown>();
  const visit = (e: unknown): boolean => {
    if (!e || typeof e !== 'object' || seen.has(e)) return false;
    seen.add(e);
    const x = e as { code?: string; message?: string; errors?: unknown[]; cause?: unknown };
    if (x.code === 'ECONNREFUSED' || /ECONNREFUSED/.test(x.message ?? '')) return true;
    // Several addresses: every one of them must have refused.
    if (x.errors?.length) return x.errors.every(visit);
    return visit(x.cause);
  };
  return visit(err);
}

function oneLine(err: unknown): string {
  if (err instanceof ZodError) return `invalid ${err.issues[0]?.path.join('.') || 'message'}: ${err.issues[0]?.message ?? ''}`;
  return (err as Error).message;
}

export class SwimService {
  readonly table: SwimTable;
  readonly health = new LocalHealth();
  private readonly intervalMs: number;
  private readonly idleMs: number;
  private timer?: NodeJS.Timeout;
  private running = false;
  private order: string[] = [];
  /** This agent's place on the probe rings; undefined when the member list changed since. */
  private ring?: ProbeRing;
  private ringPeers = new Set<string>();
  private lastCard: string;
  private lastSync = Date.now();
  private readonly lastBusy = new Map<string, number>();
  private readonly streams = new Set<Stream>();
  private readonly finalChecks = new Set<string>();
  /** Messages exchanged, for the benchmark and the logs. */
  readonly counts = { probes: 0, indirect: 0, suspected: 0, served: 0 };

  constructor(private readonly options: SwimServiceOptions) {
    this.intervalMs = options.probeIntervalMs ?? PROBE_INTERVAL_MS;
    this.idleMs = options.idleMs ?? IDLE_MS;
    this.table = new SwimTable(options.card, this.intervalMs);
    this.lastCard = JSON.stringify(options.card());
    this.table.on('refuted', () => this.health.refuted());
    this.table.on('joined', () => (this.ring = undefined));
    this.table.on('left', () => (this.ring = undefined));
  }

  /** Whom this agent probes and who probes it now (their connections are kept open). */
  probeRing(): ProbeRing {
    if (!this.ring) {
      this.ring = probeRing(this.table.selfId, this.table.live().map((m) => m.card.peerId));
      this.ringPeers = new Set([...this.ring.targets, ...this.ring.observers]);
      this.order = [];
    }
    return this.ring;
  }

  async start(): Promise<void> {
    await this.options.node.libp2p.handle(SWIM_PROTOCOL, (stream, connection) => void this.serve(stream, connection), {
      maxInboundStreams: 64,
      maxOutboundStreams: 64,
      runOnLimitedConnection: true,
    });
    this.running = true;
    this.schedule();
  }

  /** Says goodbye to a few members (they spread it), then stops. */
  async stop(): Promise<void> {
    if (!this.running) return;
    this.running = false;
    clearTimeout(this.timer);
    const goodbye = this.table.goodbye();
    const told = this.pick(INDIRECT, new Set());
    await Promise.all(told.map((m) => this.exchange(m.card.peerId, m.card.addresses, { t: 'ping', leader: this.options.leader(), updates: [goodbye] }, 500).catch(() => undefined)));
    for (const stream of this.streams) stream.abort(new MeshccError('stopped', 'membership stopped'));
    this.table.clear();
    if (this.options.node.started) await this.options.node.libp2p.unhandle(SWIM_PROTOCOL).catch(() => undefined);
  }

  /** Our card may have changed: if so, a new incarnation carries it. */
  cardChanged(): void {
    const card = JSON.stringify(this.options.card());
    if (card === this.lastCard) return;
    this.lastCard = card;
    this.table.selfChanged();
  }

  /** Joins through a member (or any agent of the mesh at these addresses): both send their whole table. */
  async join(peerId: string, addresses: string[]): Promise<void> {
    const answer = await this.exchange(peerId, addresses, { t: 'sync', leader: this.options.leader(), members: this.table.snapshot() }, 10_000);
    if (answer.t === 'sync') this.absorb(answer.members, peerId);
  }

  /** One direct probe: its round trip, or undefined without an answer in time. A member whose
   *  every address refuses the connection is gone: it is declared dead at once. */
  async ping(peerId: string, timeoutMs = this.health.probeTimeoutMs(), addresses?: string[]): Promise<number | undefined> {
    const member = this.table.get(peerId);
    const started = performance.now();
    const connected = this.options.node.isConnected(peerId);
    try {
      await this.exchange(peerId, member?.card.addresses ?? addresses ?? [], { t: 'ping', leader: this.options.leader(), updates: this.table.piggyback(PIGGYBACK, peerId) }, connected ? timeoutMs : Math.max(timeoutMs, DIAL_PROBE_MS * this.health.multiplier));
      const ms = performance.now() - started;
      // A probe that had to dial measured the handshakes too: not a round trip to go by
      // (placement takes a peer of 20 ms for a far one).
      if (connected) this.table.answered(peerId, ms);
      return ms;
    } catch (err) {
      this.options.log.trace({ peer: peerId, timeoutMs: Math.round(timeoutMs), err: (err as Error).message }, 'probe unanswered');
      if (member && refused(err) && this.table.get(peerId)) {
        this.options.log.info({ peer: peerId, name: member.card.name }, 'member gone (its address refuses connections)');
        this.table.declareDead(peerId);
        this.spreadNow();
      }
      return undefined;
    }
  }

  /** Probes a member out of turn (its connection to us ended: a crash shows at once). */
  check(peerId: string): void {
    if (this.running && this.table.get(peerId)) void this.ping(peerId);
  }

  // ---- the probe period ---------------------------------------------------------------

  private schedule(): void {
    if (!this.running) return;
    const delay = this.intervalMs * this.health.multiplier;
    const due = Date.now() + delay;
    this.timer = setTimeout(() => {
      this.health.timerLate(Date.now() - due);
      void this.period().finally(() => this.schedule());
    }, delay);
    this.timer.unref();
  }

  private async period(): Promise<void> {
    try {
      this.cardChanged();
      const target = this.nextTarget();
      if (target) await this.probe(target);
      // The suspicion's length is Lifeguard's (it shortens as others confirm it), not scaled by
      // our health: an agent that is itself slow is covered by the last probe, whose timeout
      // is. Scaling both held a partitioned side's verdict back for minutes.
      this.lastChance(this.table.expired(Date.now()));
      this.pruneIdle();
      await this.antiEntropy();
    } catch (err) {
      this.options.log.debug({ err: (err as Error).message }, 'probe period failed');
    }
  }

  /** A suspect whose suspicion ran out gets one last probe, carrying its suspicion, with a long
   *  timeout: one that is only slow (its cores busy, its event loop late) answers and refutes;
   *  only silence makes it dead. */
  private lastChance(due: string[]): void {
    for (const peerId of due) {
      const member = this.table.get(peerId);
      if (!member || this.finalChecks.has(peerId)) continue;
      this.finalChecks.add(peerId);
      const incarnation = member.incarnation;
      void this.ping(peerId, Math.max(LAST_CHANCE_MS, this.health.probeTimeoutMs() * 4))
        .then((rtt) => {
          if (rtt === undefined && this.table.buryIfStillSuspect(peerId, incarnation)) this.options.log.info({ peer: peerId, name: member.card.name }, 'member declared dead (suspicion timed out)');
        })
        .finally(() => this.finalChecks.delete(peerId));
    }
  }

  private nextTarget(): string | undefined {
    const ring = this.probeRing();
    while (this.order.length > 0) {
      const next = this.order.pop()!;
      if (this.table.get(next)) return next;
    }
    this.order = [...ring.targets];
    return this.order.pop();
  }

  private async probe(peerId: string): Promise<void> {
    this.counts.probes++;
    const started = performance.now();
    const timeout = this.health.probeTimeoutMs();
    const rtt = await this.ping(peerId, timeout);
    if (rtt !== undefined) {
      this.health.probeAnswered(rtt);
      return;
    }
    const target = this.table.get(peerId);
    if (!target) return;
    const helpers = this.pick(INDIRECT, new Set([peerId]), true);
    this.counts.indirect++;
    const answers = await Promise.all(
      helpers.map((h) =>
        this.exchange(h.card.peerId, h.card.addresses, { t: 'ping-req', target: peerId, addresses: target.card.addresses, leader: this.options.leader(), updates: this.table.piggyback(PIGGYBACK) }, timeout * 2)
          .then((a) => a.t)
          .catch(() => 'none' as const),
      ),
    );
    if (answers.includes('ack')) {
      this.health.probeAnswered(performance.now() - started);
      return;
    }
    // Helpers that could not reach it either say so; silence from them means we may be the slow one.
    if (answers.filter((a) => a === 'nack').length < helpers.length) this.health.missedNacks();
    this.counts.suspected++;
    this.options.log.info({ peer: peerId, helpers: helpers.length, health: this.health.score }, 'member suspected (no ack, directly or through others)');
    this.table.suspect(peerId);
    // Tell the suspect itself at once (it refutes in its answer if it is only slow).
    void this.ping(peerId, Math.max(DIAL_PROBE_MS, timeout) * 2);
  }

  /** A death proven (not suspected) goes to a few members at once rather than with the next
   *  probes: every view drops a crashed agent within a round trip, not a probe period or two. */
  private spreadNow(): void {
    for (const m of this.pick(INDIRECT, new Set())) {
      void this.exchange(m.card.peerId, m.card.addresses, { t: 'ping', leader: this.options.leader(), updates: this.table.piggyback(PIGGYBACK, m.card.peerId) }, this.health.probeTimeoutMs()).catch(() => undefined);
    }
  }

  /** Up to `count` random alive members, not those excluded; with `connectedFirst`, members
   *  connected now before the others (a ping-req to them costs no handshake). */
  private pick(count: number, exclude: Set<string>, connectedFirst = false) {
    const alive = this.table.live().filter((m) => m.state === 'alive' && !exclude.has(m.card.peerId));
    for (let i = alive.length - 1; i > 0 && alive.length - i <= count; i--) {
      const j = Math.floor(Math.random() * (i + 1));
      [alive[i], alive[j]] = [alive[j]!, alive[i]!];
    }
    if (!connectedFirst) return alive.slice(-count);
    const connected = alive.filter((m) => this.options.node.isConnected(m.card.peerId));
    return [...connected.slice(-count), ...alive.filter((m) => !connected.includes(m)).slice(-count)].slice(0, count);
  }

  private async antiEntropy(): Promise<void> {
    const every = SYNC_EVERY_MS * Math.max(1, Math.log10(this.table.size + 1));
    if (Date.now() - this.lastSync < every) return;
    this.lastSync = Date.now();
    const [peer] = this.pick(1, new Set());
    if (peer) await this.join(peer.card.peerId, peer.card.addresses).catch((err: Error) => this.options.log.debug({ peer: peer.card.peerId, err: err.message }, 'sync failed'));
  }

  /** Closes connections that carried no stream for idleMs (libp2p keeps them otherwise), except
   *  those to the probe rings' targets and observers, used every few periods. */
  private pruneIdle(): void {
    const now = Date.now();
    const seen = new Set<string>();
    this.probeRing();
    for (const connection of this.options.node.libp2p.getConnections()) {
      seen.add(connection.id);
      const peer = connection.remotePeer.toString();
      if (connection.streams.length > 0 || this.ringPeers.has(peer) || this.options.keep(peer) || !this.lastBusy.has(connection.id)) {
        this.lastBusy.set(connection.id, now);
        continue;
      }
      if (now - this.lastBusy.get(connection.id)! > this.idleMs) {
        this.lastBusy.delete(connection.id);
        void connection.close().catch((err: Error) => connection.abort(err));
      }
    }
    for (const id of this.lastBusy.keys()) if (!seen.has(id)) this.lastBusy.delete(id);
  }

  // ---- messages -------------------------------------------------------------------------

  /** News heard elsewhere (the scheduler passes on joins and deaths to its followers). */
  hear(updates: MemberUpdate[], from: string): void {
    this.absorb(updates, from);
  }

  private absorb(updates: MemberUpdate[], from: string): void {
    for (const update of updates) {
      if (update.card && update.card.peerId !== update.peerId) continue;
      if (update.peerId !== this.table.selfId && !this.options.admit(update.peerId)) continue;
      this.table.apply(update, from);
    }
  }

  private async exchange(peerId: string, addresses: string[], request: SwimRequest, timeoutMs: number): Promise<SwimAnswer> {
    const started = Date.now();
    timeoutMs = Math.max(1, Math.round(timeoutMs));
    const signal = AbortSignal.timeout(timeoutMs);
    const stream = await this.options.node.openStream(peerId, SWIM_PROTOCOL, { signal, runOnLimitedConnection: true, ...(addresses.length ? { addresses } : {}) });
    const framed = new FramedStream(stream, SWIM_LIMITS.frameBytes);
    try {
      await framed.send(request);
      const answer = parseMessage(SwimAnswer, await framed.receive(Math.max(1, timeoutMs - (Date.now() - started)), signal));
      this.options.onLeader(answer.leader, peerId);
      if (answer.t === 'sync') return answer;
      this.absorb(answer.updates, peerId);
      return answer;
    } catch (err) {
      framed.abort(err as Error);
      throw err;
    } finally {
      await framed.close();
    }
  }

  private async serve(stream: Stream, connection: Connection): Promise<void> {
    const from = connection.remotePeer.toString();
    const framed = new FramedStream(stream, SWIM_LIMITS.frameBytes);
    this.streams.add(stream);
    try {
      const request = parseMessage(SwimRequest, await framed.receive(SERVE_TIMEOUT_MS));
      if (!this.running) return;
      this.counts.served++;
      this.options.onLeader(request.leader, from);
      if (request.t === 'sync') {
        this.absorb(request.members, from);
        await framed.send({ t: 'sync', leader: this.options.leader(), members: this.table.snapshot() });
        return;
      }
      this.absorb(request.updates, from);
      let answer: 'ack' | 'nack' = 'ack';
      if (request.t === 'ping-req') {
        const rtt = await this.ping(request.target, this.health.probeTimeoutMs(), request.addresses);
        if (rtt === undefined) answer = 'nack';
      }
      await framed.send({ t: answer, leader: this.options.leader(), updates: this.table.piggyback(PIGGYBACK) });
    } catch (err) {
      if (err instanceof ProtocolError || err instanceof ZodError) this.options.log.warn({ peer: from, err: oneLine(err) }, 'malformed membership message; closing that stream');
      else this.options.log.debug({ peer: from, err: oneLine(err) }, 'membership stream ended');
      framed.abort(err as Error);
    } finally {
      this.streams.delete(stream);
      await framed.close();
    }
  }
}
