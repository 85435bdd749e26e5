// SWIM over libp2p streams (/meshcc/swim/2, one per peer: swim-channel.ts): each probe period this agent pings one member
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
import { digestEntries, reconcile, tableDigest } from './digest-sync.js';
import { SwimChannel } from './swim-channel.js';
import { probeRing, withMember, type ProbeRing } from './probe-ring.js';
import { SwimTable, type Member } from './table.js';

// Two seconds: a crash is seen at once anyway (refused connections, closed report streams);
// the period only bounds how soon a silent member is suspected, and every message costs CPU.
const PROBE_INTERVAL_MS = 2000;
const INDIRECT = 3;
const PIGGYBACK = 12;
/** A connection without streams this long is closed (unless kept). */
const IDLE_MS = 30_000;
/** Full syncs with a random member, scaled by log10(n) (memberlist's push-pull). */
const SYNC_EVERY_MS = 20_000;
const SYNC_TIMEOUT_MS = 10_000;
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
  /** The membership stream to each peer, and those being opened. */
  private readonly channels = new Map<string, SwimChannel>();
  private readonly opening = new Map<string, Promise<SwimChannel>>();
  private readonly finalChecks = new Set<string>();
  /** Messages exchanged, for the benchmark and the logs. */
  readonly counts = { probes: 0, indirect: 0, suspected: 0, served: 0, busyButAlive: 0, syncs: 0, syncRows: 0 };

  constructor(private readonly options: SwimServiceOptions) {
    this.intervalMs = options.probeIntervalMs ?? PROBE_INTERVAL_MS;
    this.idleMs = options.idleMs ?? IDLE_MS;
    this.table = new SwimTable(options.card, this.intervalMs);
    this.lastCard = JSON.stringify(options.card());
    this.table.on('refuted', () => this.health.refuted());
    this.table.on('joined', (m) => {
      const ring = this.ring && withMember(this.ring, this.table.selfId, m.card.peerId);
      if (ring === this.ring) return;
      this.ring = ring;
      if (ring) this.ringChanged(ring);
    });
    this.table.on('left', (m) => {
      // Only a member of our ring changes it (a death elsewhere leaves our neighbours as they are).
      if (this.ringPeers.has(m.card.peerId) || !this.ring?.around) this.ring = undefined;
      this.channels.get(m.card.peerId)?.end(new MeshccError('stream-closed', 'the member left'));
    });
  }

  /** Whom this agent probes and who probes it now (their connections are kept open). */
  probeRing(): ProbeRing {
    if (!this.ring) {
      this.ring = probeRing(this.table.selfId, this.table.live().map((m) => m.card.peerId));
      this.ringChanged(this.ring);
    }
    return this.ring;
  }

  private ringChanged(ring: ProbeRing): void {
    this.ringPeers = new Set([...ring.targets, ...ring.observers]);
    this.order = [];
  }

  async start(): Promise<void> {
    await this.options.node.libp2p.handle(SWIM_PROTOCOL, (stream, connection) => this.accept(stream, connection), {
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
    for (const channel of [...this.channels.values()]) channel.end(new MeshccError('stopped', 'membership stopped'));
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
    const answer = await this.exchange(peerId, addresses, { t: 'sync', leader: this.options.leader(), members: this.table.snapshot() }, SYNC_TIMEOUT_MS);
    if (answer.t === 'sync') this.absorb(answer.members, peerId);
  }

  /** One direct probe: its round trip, or undefined without an answer in time. A member whose
   *  every address refuses the connection is gone: it is declared dead at once. */
  async ping(peerId: string, timeoutMs = this.health.probeTimeoutMs(), addresses?: string[]): Promise<number | undefined> {
    const member = this.table.get(peerId);
    const started = performance.now();
    const connected = this.options.node.started && this.options.node.isConnected(peerId);
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

  /** Sends a membership message (our claim rides on it) to every member connected now, without
   *  dialling anyone: a new scheduler's claim reaches its followers in one round trip. */
  announce(): void {
    if (!this.running) return;
    const open = this.options.node.connectedPeerIds();
    this.tell(this.table.live().filter((m) => open.has(m.card.peerId)));
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
      const started = performance.now();
      void this.ping(peerId, Math.max(LAST_CHANCE_MS, this.health.probeTimeoutMs() * 4))
        .then((rtt) => {
          if (rtt === undefined && !this.sentWorkSince(peerId, started) && this.table.buryIfStillSuspect(peerId, incarnation)) this.options.log.info({ peer: peerId, name: member.card.name }, 'member declared dead (suspicion timed out)');
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
    if (!target || this.sentWorkSince(peerId, started)) return;
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
    if (this.sentWorkSince(peerId, started)) return;
    // Helpers that could not reach it either say so; silence from them means we may be the slow one.
    if (answers.filter((a) => a === 'nack').length < helpers.length) this.health.missedNacks();
    this.counts.suspected++;
    this.options.log.info({ peer: peerId, helpers: helpers.length, health: this.health.score }, 'member suspected (no ack, directly or through others)');
    this.table.suspect(peerId);
    // Tell the suspect itself at once (it refutes in its answer if it is only slow).
    void this.ping(peerId, Math.max(DIAL_PROBE_MS, timeout) * 2);
  }

  /** Whether the member sent us work (a job's frames, its results) since `since` (or within a
   *  probe period before it): its cores are busy or its event loop late, but it is alive, and
   *  a probe that timed out is no reason to suspect it. */
  private sentWorkSince(peerId: string, since: number): boolean {
    if (!this.options.node.heardWithin(peerId, performance.now() - since + this.intervalMs)) return false;
    this.counts.busyButAlive++;
    this.options.log.debug({ peer: peerId }, 'a probe went unanswered, but the member is sending us work: not suspected');
    return true;
  }

  /** A death proven (not suspected) goes to a few members at once rather than with the next
   *  probes: every view drops a crashed agent within a round trip, not a probe period or two. */
  private spreadNow(): void {
    this.tell(this.pick(INDIRECT, new Set()));
  }

  /** A ping to each of these members, answers not awaited: what it carries is the point. */
  private tell(members: Member[]): void {
    for (const m of members) {
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
    // One look at the open connections, not a peer id parsed and looked up per member: that
    // was a tenth of a simulated member's CPU at 1000 members.
    const open = this.options.node.connectedPeerIds();
    const connected = alive.filter((m) => open.has(m.card.peerId));
    return [...connected.slice(-count), ...alive.filter((m) => !connected.includes(m)).slice(-count)].slice(0, count);
  }

  private async antiEntropy(): Promise<void> {
    const every = SYNC_EVERY_MS * Math.max(1, Math.log10(this.table.size + 1));
    if (Date.now() - this.lastSync < every) return;
    this.lastSync = Date.now();
    const [peer] = this.pick(1, new Set());
    if (peer) await this.reconcile(peer.card.peerId, peer.card.addresses).catch((err: Error) => this.options.log.debug({ peer: peer.card.peerId, err: err.message }, 'sync failed'));
  }

  /** Anti-entropy with one member: hashes first, rows only where the tables differ. */
  async reconcile(peerId: string, addresses: string[]): Promise<void> {
    const mine = tableDigest(this.table);
    const first = await this.exchange(peerId, addresses, { t: 'sync', leader: this.options.leader(), members: [], digest: mine }, SYNC_TIMEOUT_MS);
    if (first.t !== 'sync') return;
    this.counts.syncs++;
    // An agent that knows no digests answers with its whole table.
    if (first.digest === undefined) return this.absorb(first.members, peerId);
    if (first.digest === mine || !first.entries) return;
    const { send, want, apply } = reconcile(this.table, first.entries);
    this.absorb(apply, peerId);
    if (send.length === 0 && want.length === 0) return;
    this.counts.syncRows += send.length + want.length;
    const second = await this.exchange(peerId, addresses, { t: 'sync', leader: this.options.leader(), members: send, want }, SYNC_TIMEOUT_MS);
    if (second.t === 'sync') this.absorb(second.members, peerId);
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
      // The membership stream stays open: it counts as busy while it carried a message lately.
      const busy = connection.streams.some((s) => s.protocol !== SWIM_PROTOCOL) || now - (this.channels.get(peer)?.lastUsed ?? 0) < this.idleMs;
      if (busy || this.ringPeers.has(peer) || this.options.keep(peer) || !this.lastBusy.has(connection.id)) {
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

  private open(peerId: string, addresses: string[], signal: AbortSignal): Promise<Stream> {
    return this.options.node.openStream(peerId, SWIM_PROTOCOL, { signal, runOnLimitedConnection: true, addresses });
  }

  /** The membership stream to a peer: the open one, or a new one (dialling it if needed). */
  private async channel(peerId: string, addresses: string[], signal: AbortSignal): Promise<SwimChannel> {
    const open = this.channels.get(peerId);
    if (open?.open) return open;
    let opening = this.opening.get(peerId);
    if (!opening) {
      opening = this.open(peerId, addresses, signal)
        .then((stream) => this.adopt(peerId, stream))
        .finally(() => this.opening.delete(peerId));
      this.opening.set(peerId, opening);
    }
    return opening;
  }

  /** A membership stream opened by either side becomes the channel to that peer (unless one is
   *  open already: both sides may open one at once; then both are served). */
  private adopt(peerId: string, stream: Stream): SwimChannel {
    const channel = new SwimChannel(peerId, new FramedStream(stream, SWIM_LIMITS.frameBytes), {
      serve: (request) => this.serve(request, peerId),
      ended: (ended, err) => {
        if (this.channels.get(peerId) === ended) this.channels.delete(peerId);
        if (err instanceof ProtocolError || err instanceof ZodError) this.options.log.warn({ peer: peerId, err: oneLine(err) }, 'malformed membership message; closing that stream');
        else this.options.log.trace({ peer: peerId, err: oneLine(err) }, 'membership stream ended');
      },
    });
    if (!this.channels.get(peerId)?.open) this.channels.set(peerId, channel);
    return channel;
  }

  private accept(stream: Stream, connection: Connection): void {
    if (!this.running) {
      stream.abort(new MeshccError('stopped', 'membership stopped'));
      return;
    }
    this.adopt(connection.remotePeer.toString(), stream);
  }

  private async exchange(peerId: string, addresses: string[], request: SwimRequest, timeoutMs: number): Promise<SwimAnswer> {
    const started = Date.now();
    timeoutMs = Math.max(1, Math.round(timeoutMs));
    const signal = AbortSignal.timeout(timeoutMs);
    let channel = await this.channel(peerId, addresses, signal);
    let raw: unknown;
    try {
      raw = await channel.request(request, Math.max(1, timeoutMs - (Date.now() - started)));
    } catch (err) {
      // The stream was gone before the answer (the peer's process died, its connection is
      // closing): once more on a new stream, whose dial a dead peer refuses (proof, not suspicion).
      if (err instanceof MeshccError && err.code === 'timeout') throw err;
      channel = await this.channel(peerId, addresses, signal);
      raw = await channel.request(request, Math.max(1, timeoutMs - (Date.now() - started)));
    }
    let answer: SwimAnswer;
    try {
      answer = parseMessage(SwimAnswer, raw);
    } catch (err) {
      channel.end(err as Error);
      throw err;
    }
    this.options.onLeader(answer.leader, peerId);
    if (answer.t === 'sync') return answer;
    this.absorb(answer.updates, peerId);
    return answer;
  }

  /** A request from a peer: the answer to send back. */
  private async serve(raw: unknown, from: string): Promise<object | undefined> {
    const request = parseMessage(SwimRequest, raw);
    if (!this.running) return undefined;
    this.counts.served++;
    this.options.onLeader(request.leader, from);
    if (request.t === 'sync') {
      this.absorb(request.members, from);
      if (request.want) return { t: 'sync', leader: this.options.leader(), members: request.want.flatMap((id) => this.table.row(id) ?? []) };
      if (request.digest === undefined) return { t: 'sync', leader: this.options.leader(), members: this.table.snapshot() };
      const digest = tableDigest(this.table);
      if (digest === request.digest) return { t: 'sync', leader: this.options.leader(), members: [], digest };
      return { t: 'sync', leader: this.options.leader(), members: [], digest, entries: digestEntries(this.table) };
    }
    this.absorb(request.updates, from);
    let answer: 'ack' | 'nack' = 'ack';
    if (request.t === 'ping-req') {
      const rtt = await this.ping(request.target, this.health.probeTimeoutMs(), request.addresses);
      if (rtt === undefined) answer = 'nack';
    }
    return { t: answer, leader: this.options.leader(), updates: this.table.piggyback(PIGGYBACK) };
  }
}
