// What this agent knows about its peers: the members the membership lists (alive or suspect),
// each with its card and the last load known here. Loads are fresh on the scheduler (every
// member reports to it); elsewhere they are what the card says (slots) or what the scheduler
// answered last. Parts of the agent listen to its events (added, updated, removed).
import { EventEmitter } from 'node:events';
import type { Activity, LoadReport, MemberCard } from '../../protocol/swim-messages.js';

/** A peer as placement, the scheduler and the status see it. */
export interface PeerAdvert {
  nodeName: string;
  peerId: string;
  addresses: string[];
  cores: number;
  slots: number;
  slotsUsed: number;
  load: number;
  freeMemoryBytes: number;
  speed: number;
  os: string;
  arch: string;
  libc: string;
  toolchains: string[];
  protocolVersion: number;
  startedAt: number;
  executorUnavailable?: string;
  reachable?: boolean;
  relay?: boolean;
  mapped?: string;
  activity?: Activity;
  /** 'suspect' while the membership has not heard from it lately (it stays listed). */
  state?: 'alive' | 'suspect';
}

export interface PeerViewEntry {
  peerId: string;
  advert: PeerAdvert;
  /** Local clock (ms since the epoch) of the latest news of it. */
  lastSeen: number;
  /** Latest measured round-trip time, if any. */
  rttMs?: number;
}

export interface PeerViewEvents {
  added: [PeerViewEntry];
  updated: [PeerViewEntry];
  /** the peer, why, and what was known of it last */
  removed: [string, 'dead' | 'stopped', PeerViewEntry];
}

/** A card and a load, as one peer summary. */
export function peerAdvert(card: MemberCard, load: LoadReport | undefined, state: 'alive' | 'suspect' = 'alive'): PeerAdvert {
  return {
    nodeName: card.name,
    peerId: card.peerId,
    addresses: card.addresses,
    cores: card.cores,
    slots: load?.slots ?? card.slots,
    slotsUsed: load?.slotsUsed ?? 0,
    load: load?.load ?? 0,
    freeMemoryBytes: load?.freeMemoryBytes ?? 0,
    speed: card.speed,
    os: card.os,
    arch: card.arch,
    libc: card.libc,
    toolchains: card.toolchains,
    protocolVersion: card.protocolVersion,
    startedAt: card.startedAt,
    ...(card.executorUnavailable ? { executorUnavailable: card.executorUnavailable } : {}),
    ...(card.reachable === undefined ? {} : { reachable: card.reachable }),
    ...(card.relay === undefined ? {} : { relay: card.relay }),
    ...(card.mapped ? { mapped: card.mapped } : {}),
    ...(load?.activity ? { activity: load.activity } : {}),
    state,
  };
}

export class PeerView extends EventEmitter<PeerViewEvents> {
  private readonly peers = new Map<string, PeerViewEntry>();

  update(peerId: string, advert: PeerAdvert, now = Date.now(), rttMs?: number): PeerViewEntry {
    const existing = this.peers.get(peerId);
    const entry: PeerViewEntry = { peerId, advert, lastSeen: now, rttMs: rttMs ?? existing?.rttMs };
    this.peers.set(peerId, entry);
    this.emit(existing ? 'updated' : 'added', entry);
    return entry;
  }

  setRtt(peerId: string, rttMs: number): void {
    const entry = this.peers.get(peerId);
    if (entry) entry.rttMs = rttMs;
  }

  get(peerId: string): PeerViewEntry | undefined {
    return this.peers.get(peerId);
  }

  has(peerId: string): boolean {
    return this.peers.has(peerId);
  }

  remove(peerId: string, why: 'dead' | 'stopped' = 'dead'): boolean {
    const entry = this.peers.get(peerId);
    if (!entry) return false;
    this.peers.delete(peerId);
    this.emit('removed', peerId, why, entry);
    return true;
  }

  clear(): void {
    for (const peerId of [...this.peers.keys()]) this.remove(peerId, 'stopped');
  }

  /** The entries as they are, in no order (no copy, no sort: for checks that run every few
   *  seconds whatever the mesh's size). */
  entries(): IterableIterator<PeerViewEntry> {
    return this.peers.values();
  }

  /** A snapshot, ordered by peer id. */
  list(): PeerViewEntry[] {
    return [...this.peers.values()]
      .map((e) => ({ ...e }))
      .sort((a, b) => (a.peerId < b.peerId ? -1 : a.peerId > b.peerId ? 1 : 0));
  }

  get size(): number {
    return this.peers.size;
  }
}
