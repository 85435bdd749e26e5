// The SWIM member table (Das et al., with Lifeguard's suspicion, as in hashicorp/memberlist):
// every member's state (alive, suspect, dead) and incarnation, the rules that order updates,
// and the queue of updates piggybacked on probes. No sockets and no timers: the service
// (swim-service.ts) drives it with the clock.
//
// - An update wins when its incarnation is higher; at equal incarnation suspect beats alive
//   and dead beats both. Only a member raises its own incarnation, to refute a suspicion or
//   to publish a new card. Incarnations start at the start time in seconds, so a restarted
//   member (same peer id) outranks what the mesh remembers of its previous life.
// - A suspect is declared dead when its suspicion times out. The timeout starts at
//   max = SUSPICION_MAX_MULT × min and falls towards min = SUSPICION_MULT × log10(n) ×
//   probe interval as other members independently suspect it too (Lifeguard).
// - Each update is piggybacked RETRANSMIT_MULT × log10(n + 1) times, newest first.
import { EventEmitter } from 'node:events';
import type { MemberCard, MemberUpdate } from '../../../protocol/swim-messages.js';

const SUSPICION_MULT = 4;
const SUSPICION_MAX_MULT = 6;
/** Independent suspicions that bring the timeout down to its minimum. */
const SUSPICION_CONFIRMATIONS = SUSPICION_MULT - 2;
const RETRANSMIT_MULT = 4;
/** How long a dead member's incarnation is remembered (so old news of it is ignored). */
const TOMBSTONE_MS = 120_000;

export type MemberState = 'alive' | 'suspect' | 'dead';

export interface Member {
  card: MemberCard;
  state: MemberState;
  incarnation: number;
  /** Local clock when its state last changed. */
  since: number;
  /** Latest measured probe round trip. */
  rttMs?: number;
  suspicion?: { startedAt: number; by: Set<string> };
}

export interface TableEvents {
  joined: [Member];
  /** Its card or its state (alive ⇄ suspect) changed. */
  changed: [Member];
  left: [Member];
  /** Someone suspects or buried this member: it must refute. */
  refuted: [number];
  /** A probe of this member was answered: its smoothed round trip (ms). */
  rtt: [string, number];
}

const RANK: Record<MemberState, number> = { alive: 0, suspect: 1, dead: 2 };

/** Whether news `a` of a member wins over `b`: a higher incarnation, or at the same one a
 *  worse state (suspect over alive, dead over both). */
export function supersedes(a: { incarnation: number; state: MemberState }, b: { incarnation: number; state: MemberState }): boolean {
  return a.incarnation > b.incarnation || (a.incarnation === b.incarnation && RANK[a.state] > RANK[b.state]);
}

export function initialIncarnation(startedAt: number): number {
  return Math.floor(startedAt / 1000);
}

export class SwimTable extends EventEmitter<TableEvents> {
  private readonly members = new Map<string, Member>();
  private readonly tombstones = new Map<string, { incarnation: number; at: number }>();
  private readonly queue = new Map<string, { update: MemberUpdate; transmits: number }>();
  private incarnation_: number;
  private selfId_?: string;

  constructor(
    private readonly self: () => MemberCard,
    private readonly probeIntervalMs: number,
  ) {
    super();
    this.incarnation_ = initialIncarnation(self().startedAt);
    // Our first messages introduce us to whoever we meet.
    this.enqueueSelf();
  }

  /** Our peer id never changes; the card is built afresh on each call (addresses, capacity),
   *  and this is asked for every update of every message. */
  get selfId(): string {
    return (this.selfId_ ??= this.self().peerId);
  }

  get incarnation(): number {
    return this.incarnation_;
  }

  /** Members this agent lists: alive and suspect (a suspect may be only slow). */
  live(): Member[] {
    return [...this.members.values()];
  }

  get(peerId: string): Member | undefined {
    return this.members.get(peerId);
  }

  get size(): number {
    return this.members.size;
  }

  /** Our card changed: a new incarnation tells everyone. */
  selfChanged(): void {
    this.incarnation_++;
    this.enqueueSelf();
  }

  /** The whole table as updates (a sync), ourselves first, the dead last: a member that was
   *  declared dead on the other side of a partition learns it there, and refutes. */
  snapshot(): MemberUpdate[] {
    const rows: MemberUpdate[] = [{ peerId: this.selfId, state: 'alive', incarnation: this.incarnation_, card: this.self() }];
    for (const m of this.members.values()) rows.push({ peerId: m.card.peerId, state: m.state, incarnation: m.incarnation, card: m.card });
    for (const [peerId, grave] of this.tombstones) rows.push({ peerId, state: 'dead', incarnation: grave.incarnation });
    return rows;
  }

  /** What this table knows of a peer: the member (ourselves included) or its grave. */
  knowledge(peerId: string): { incarnation: number; state: MemberState } | undefined {
    if (peerId === this.selfId) return { incarnation: this.incarnation_, state: 'alive' };
    const m = this.members.get(peerId);
    if (m) return { incarnation: m.incarnation, state: m.state };
    const grave = this.tombstones.get(peerId);
    return grave && { incarnation: grave.incarnation, state: 'dead' };
  }

  /** Every peer this table knows, as `knowledge` gives it: ourselves, the members, the graves. */
  *known(): Generator<[string, number, MemberState]> {
    yield [this.selfId, this.incarnation_, 'alive'];
    for (const m of this.members.values()) yield [m.card.peerId, m.incarnation, m.state];
    for (const [peerId, grave] of this.tombstones) yield [peerId, grave.incarnation, 'dead'];
  }

  /** One peer's row as a sync sends it (a card with a listed member, none with a grave). */
  row(peerId: string): MemberUpdate | undefined {
    if (peerId === this.selfId) return { peerId, state: 'alive', incarnation: this.incarnation_, card: this.self() };
    const m = this.members.get(peerId);
    if (m) return { peerId, state: m.state, incarnation: m.incarnation, card: m.card };
    const grave = this.tombstones.get(peerId);
    return grave && { peerId, state: 'dead', incarnation: grave.incarnation };
  }

  /** Applies one update heard from `from`; returns true when it was news (worth passing on). */
  apply(update: MemberUpdate, from: string, now = Date.now()): boolean {
    if (update.peerId === this.selfId) {
      if (update.state === 'alive' || update.incarnation < this.incarnation_) return false;
      // Suspected or buried while alive: refute with a higher incarnation.
      this.incarnation_ = update.incarnation + 1;
      this.enqueueSelf();
      this.emit('refuted', this.incarnation_);
      return false;
    }
    const known = this.members.get(update.peerId);
    if (!known) {
      const grave = this.tombstones.get(update.peerId);
      if (update.state === 'dead' || !update.card || (grave && grave.incarnation >= update.incarnation)) {
        if (update.state === 'dead') this.bury(update.peerId, update.incarnation, now);
        return false;
      }
      this.tombstones.delete(update.peerId);
      const member: Member = { card: update.card, state: update.state, incarnation: update.incarnation, since: now };
      if (member.state === 'suspect') member.suspicion = { startedAt: now, by: new Set([from]) };
      this.members.set(update.peerId, member);
      this.enqueue(update);
      this.emit('joined', member);
      return true;
    }
    if (update.incarnation < known.incarnation) return false;
    if (update.incarnation === known.incarnation && RANK[update.state] <= RANK[known.state]) {
      // One more member independently suspects it: the timeout shortens.
      if (update.state === 'suspect' && known.suspicion && !known.suspicion.by.has(from)) known.suspicion.by.add(from);
      return false;
    }
    if (update.state === 'dead') {
      this.members.delete(update.peerId);
      this.bury(update.peerId, update.incarnation, now);
      this.enqueue(update);
      this.emit('left', known);
      return true;
    }
    const cardChanged = update.card !== undefined && JSON.stringify(update.card) !== JSON.stringify(known.card);
    const stateChanged = update.state !== known.state;
    if (update.card) known.card = update.card;
    known.incarnation = update.incarnation;
    if (stateChanged) {
      known.state = update.state;
      known.since = now;
      known.suspicion = update.state === 'suspect' ? { startedAt: now, by: new Set([from]) } : undefined;
    }
    this.enqueue({ ...update, card: update.card ?? (update.state === 'alive' ? known.card : undefined) });
    if (cardChanged || stateChanged) this.emit('changed', known);
    return true;
  }

  /** Our probes (direct and indirect) got no answer from it. */
  suspect(peerId: string, now = Date.now()): void {
    const m = this.members.get(peerId);
    if (!m || m.state !== 'alive') return;
    this.apply({ peerId, state: 'suspect', incarnation: m.incarnation }, this.selfId, now);
  }

  /** A member that answered is alive as far as we can tell (its rtt noted). */
  answered(peerId: string, rttMs: number): void {
    const m = this.members.get(peerId);
    if (!m) return;
    m.rttMs = m.rttMs === undefined ? rttMs : m.rttMs * 0.7 + rttMs * 0.3;
    this.emit('rtt', peerId, m.rttMs);
  }

  /** Removes a member that said goodbye or whose suspicion ran out. */
  declareDead(peerId: string, now = Date.now()): void {
    const m = this.members.get(peerId);
    if (m) this.apply({ peerId, state: 'dead', incarnation: m.incarnation }, this.selfId, now);
  }

  /** The suspicion timeout for a member suspected by `confirmations` members besides the first. */
  suspicionTimeoutMs(confirmations: number): number {
    const n = Math.max(this.members.size + 1, 1);
    const min = SUSPICION_MULT * Math.max(1, Math.log10(n)) * this.probeIntervalMs;
    const max = SUSPICION_MAX_MULT * min;
    const fraction = Math.log(Math.min(confirmations, SUSPICION_CONFIRMATIONS) + 1) / Math.log(SUSPICION_CONFIRMATIONS + 1);
    return Math.max(min, max - (max - min) * fraction);
  }

  /** Suspects whose time ran out (the caller gives each a last probe, then declares it dead);
   *  old tombstones go. */
  expired(now = Date.now()): string[] {
    const due: string[] = [];
    for (const m of this.members.values()) {
      if (m.state !== 'suspect' || !m.suspicion) continue;
      if (now - m.suspicion.startedAt > this.suspicionTimeoutMs(m.suspicion.by.size - 1)) due.push(m.card.peerId);
    }
    for (const [peerId, grave] of this.tombstones) if (now - grave.at > TOMBSTONE_MS) this.tombstones.delete(peerId);
    return due;
  }

  /** Declares a suspect dead if it still is one at that incarnation (it did not refute meanwhile). */
  buryIfStillSuspect(peerId: string, incarnation: number, now = Date.now()): boolean {
    const m = this.members.get(peerId);
    if (!m || m.state !== 'suspect' || m.incarnation !== incarnation) return false;
    this.declareDead(peerId, now);
    return true;
  }

  /** Updates to piggyback on the next message, least sent first; each counts as one transmission.
   *  A message to a suspect carries its suspicion first (Lifeguard's buddy system: it hears it
   *  from the prober itself, and refutes in its answer, not after gossip found it). */
  piggyback(max: number, to?: string): MemberUpdate[] {
    const target = to ? this.members.get(to) : undefined;
    const buddy: MemberUpdate[] = target?.state === 'suspect' ? [{ peerId: to!, state: 'suspect', incarnation: target.incarnation }] : [];
    if (this.queue.size === 0) return buddy;
    const limit = RETRANSMIT_MULT * Math.max(1, Math.ceil(Math.log10(this.members.size + 2)));
    const picked = [...this.queue.values()].filter((e) => e.update.peerId !== to || buddy.length === 0).sort((a, b) => a.transmits - b.transmits).slice(0, max - buddy.length);
    for (const entry of picked) {
      entry.transmits++;
      if (entry.transmits >= limit) this.queue.delete(entry.update.peerId);
    }
    return [...buddy, ...picked.map((e) => e.update)];
  }

  /** Says goodbye: our own death, sent with the last messages. */
  goodbye(): MemberUpdate {
    return { peerId: this.selfId, state: 'dead', incarnation: this.incarnation_ };
  }

  clear(): void {
    const all = [...this.members.values()];
    this.members.clear();
    this.queue.clear();
    for (const m of all) this.emit('left', m);
  }

  private enqueueSelf(): void {
    this.enqueue({ peerId: this.selfId, state: 'alive', incarnation: this.incarnation_, card: this.self() });
  }

  private enqueue(update: MemberUpdate): void {
    this.queue.set(update.peerId, { update, transmits: 0 });
  }

  private bury(peerId: string, incarnation: number, now: number): void {
    const grave = this.tombstones.get(peerId);
    if (!grave || grave.incarnation < incarnation) this.tombstones.set(peerId, { incarnation, at: now });
  }
}
