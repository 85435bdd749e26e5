// What this agent knows about its peers: their latest advert, when it was heard, and the
// measured round-trip time. A peer that has been silent too long is dropped.
import { EventEmitter } from 'node:events';
import type { Advert } from '../../protocol/messages.js';

export interface PeerViewEntry {
  peerId: string;
  advert: Advert;
  /** Local clock (ms since the epoch) when the latest advert arrived. */
  lastSeen: number;
  /** Latest measured round-trip time, if any. */
  rttMs?: number;
}

export interface PeerViewEvents {
  added: [PeerViewEntry];
  updated: [PeerViewEntry];
  /** the peer, why, and what was known of it last */
  removed: [string, 'silent' | 'disconnected' | 'stopped', PeerViewEntry];
}

export class PeerView extends EventEmitter<PeerViewEvents> {
  private readonly peers = new Map<string, PeerViewEntry>();

  constructor(readonly silenceMs = 3000) {
    super();
  }

  update(peerId: string, advert: Advert, now = Date.now()): PeerViewEntry {
    const existing = this.peers.get(peerId);
    const entry: PeerViewEntry = { peerId, advert, lastSeen: now, rttMs: existing?.rttMs };
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

  remove(peerId: string, why: 'silent' | 'disconnected' | 'stopped' = 'disconnected'): boolean {
    const entry = this.peers.get(peerId);
    if (!entry) return false;
    this.peers.delete(peerId);
    this.emit('removed', peerId, why, entry);
    return true;
  }

  /** Drop every peer not heard from for silenceMs; returns their ids. */
  expire(now = Date.now()): string[] {
    const dropped: string[] = [];
    for (const [peerId, entry] of this.peers) {
      if (now - entry.lastSeen > this.silenceMs) dropped.push(peerId);
    }
    for (const peerId of dropped) this.remove(peerId, 'silent');
    return dropped;
  }

  clear(): void {
    for (const peerId of [...this.peers.keys()]) this.remove(peerId, 'stopped');
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
