// How a member finds its way back to the rest of its mesh beyond LAN discovery: it joins
// through members it remembers (its member list on disk) that the membership does not list,
// one at a time (a partition heals, a restarted agent rejoins); it tries a direct connection
// now and then to members it reaches only through a relay; and, when it cannot be dialled
// itself, keeps a reservation on a relay.
import type { Logger } from '../log.js';
import type { Membership } from './membership.js';
import type { MeshNode } from './node.js';
import { dialOrder, type Reachability } from './reachability.js';
import type { PeerViewEntry } from './view.js';

/** A remembered member is tried again after this long (one per tick while alone, else one every 20 s). */
const MEMBER_REDIAL_MS = 10_000;
const REJOIN_EVERY_MS = 20_000;
/** A peer reached only through a relay is offered a direct connection again after this long. */
const UPGRADE_EVERY_MS = 15_000;

export interface MemberLinksOptions {
  node: MeshNode;
  membership: Membership;
  reachability: Reachability;
  /** The view's entries, in no order. */
  peers: () => Iterable<PeerViewEntry>;
  /** Whether the membership lists this peer now. */
  listed: (peerId: string) => boolean;
  /** Dials a peer by the first of these addresses that answers (shared with discovery). */
  connect: (peerId: string, addresses: string[]) => void;
  /** Peers being dialled now (shared with discovery). */
  dialing: Set<string>;
  log: Logger;
}

export class MemberLinks {
  private readonly lastMemberDial = new Map<string, number>();
  private readonly lastUpgrade = new Map<string, number>();
  private lastRejoin = 0;

  constructor(private readonly options: MemberLinksOptions) {}

  tick(): void {
    this.dialMembers();
    this.keepRelay();
  }

  /** Joins through one remembered member the membership does not list: every tick while this
   *  agent lists nobody, else every 20 s (constant work, whatever the mesh's size). */
  private dialMembers(): void {
    const { membership, node, listed } = this.options;
    const now = Date.now();
    const links = node.links();
    for (const [peerId, link] of links) {
      if (link !== 'relayed') continue;
      const record = membership.get(peerId);
      if (record) this.upgrade(peerId, record.addresses, now);
    }
    // A member that says it cannot be dialled, with no connection from here: jobs stay off it
    // (its dial would go through a relay) until a direct dial succeeds, as it does from its LAN.
    // One such dial a tick, so that the cost does not grow with the mesh.
    let alone = true;
    for (const p of this.options.peers()) {
      alone = false;
      if (p.advert.reachable === false && !links.has(p.peerId) && now - (this.lastUpgrade.get(p.peerId) ?? 0) >= UPGRADE_EVERY_MS) {
        this.upgrade(p.peerId, p.advert.addresses, now);
        break;
      }
    }
    if (!alone && now - this.lastRejoin < REJOIN_EVERY_MS) return;
    const record = membership.dialable(now).find((m) => !listed(m.peerId) && !links.has(m.peerId) && now - (this.lastMemberDial.get(m.peerId) ?? 0) >= MEMBER_REDIAL_MS);
    if (!record) return;
    this.lastRejoin = now;
    this.lastMemberDial.set(record.peerId, now);
    this.options.connect(record.peerId, dialOrder(record.addresses, record.reachable));
  }

  /** A peer reached through a relay is tried directly now and then; on success the relayed
   *  connection is closed, so streams use the direct one. */
  private upgrade(peerId: string, addresses: string[], now: number): void {
    if (now - (this.lastUpgrade.get(peerId) ?? 0) < UPGRADE_EVERY_MS || this.options.dialing.has(peerId)) return;
    this.lastUpgrade.set(peerId, now);
    const direct = addresses.filter((a) => !a.includes('/p2p-circuit'));
    if (direct.length === 0) return;
    this.options.dialing.add(peerId);
    const node = this.options.node;
    void (async () => {
      for (const address of direct) {
        try {
          await node.dialNew(address.includes('/p2p/') ? address : `${address}/p2p/${peerId}`, { signal: AbortSignal.timeout(4000) });
          for (const connection of node.libp2p.getConnections()) {
            if (connection.remotePeer.toString() === peerId && connection.remoteAddr.toString().includes('/p2p-circuit')) await connection.close().catch(() => undefined);
          }
          this.options.log.info({ peer: peerId, address }, 'upgraded a relayed connection to a direct one');
          return;
        } catch {
          // not reachable there from here
        }
      }
    })().finally(() => this.options.dialing.delete(peerId));
  }

  /** Keeps a relay reservation while members cannot dial this agent. */
  private keepRelay(): void {
    const { reachability } = this.options;
    if (reachability.state !== 'unreachable') return;
    const candidates = Array.from(this.options.peers())
      .filter((p) => p.advert.relay && p.advert.reachable === true)
      .map((p) => p.peerId);
    void reachability.keepRelay(candidates);
  }
}
