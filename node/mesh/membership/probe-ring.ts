// Whom an agent probes: its successors on a few rings (as Rapid's monitoring overlay), not every
// member in turn. Probing the whole list round robin revisits a member only every n periods,
// so in a mesh of more than ~15 every probe, sent or received, paid a new connection (TCP,
// the knock, the private network, Noise, yamux, identify): most of an idle member's CPU, and
// it grew with the mesh. On RINGS rings, each a pseudo-random order of all members, an agent
// probes the member after it and is probed by the member before it: at most RINGS targets and
// RINGS observers, connections to them kept open, the same few members whatever the size.
// Every member is still probed about once a period in all (RINGS observers, each probing it
// every RINGS periods), and the rings are different orders, so news piggybacked on probes
// crosses the mesh in O(log n) hops (the scheduler also passes joins and deaths on at once).
// Every member computes the same rings from the same list, so both ends agree who watches whom.
// In a mesh of at most SMALL_MESH + 1, everyone probes everyone, as before.
import { createHash } from 'node:crypto';

export const RINGS = 4;
/** Up to this many other members, everyone probes everyone (as many connections as a ring's). */
export const SMALL_MESH = 2 * RINGS;

const positions = new Map<string, number[]>();

/** Where a peer sits on each ring: the first 6 bytes of sha256(ring, peer id), cached. */
function positionsOf(peerId: string): number[] {
  let found = positions.get(peerId);
  if (!found) {
    found = [];
    for (let ring = 0; ring < RINGS; ring++) found.push(createHash('sha256').update(`${ring}/${peerId}`).digest().readUIntBE(0, 6));
    // Members come and go over days: bound the cache rather than track who left.
    if (positions.size > 100_000) positions.clear();
    positions.set(peerId, found);
  }
  return found;
}

export interface ProbeRing {
  /** The members this agent probes, round robin (its successors on each ring). */
  targets: string[];
  /** The members that probe this agent (its predecessors on each ring). */
  observers: string[];
}

/** This agent's targets and observers among `members` (peer ids, itself excluded or not). */
export function probeRing(self: string, members: Iterable<string>): ProbeRing {
  const others = [...new Set(members)].filter((m) => m !== self);
  if (others.length <= SMALL_MESH) return { targets: others, observers: others };
  const targets = new Set<string>();
  const observers = new Set<string>();
  const mine = positionsOf(self);
  for (let ring = 0; ring < RINGS; ring++) {
    const at = mine[ring]!;
    // The nearest member clockwise and counter-clockwise (ties by peer id: no two agents disagree).
    let next: { id: string; gap: number } | undefined;
    let previous: { id: string; gap: number } | undefined;
    for (const id of others) {
      const p = positionsOf(id)[ring]!;
      const ahead = (p - at + 2 ** 48) % 2 ** 48;
      const behind = (at - p + 2 ** 48) % 2 ** 48;
      if (!next || ahead < next.gap || (ahead === next.gap && id < next.id)) next = { id, gap: ahead };
      if (!previous || behind < previous.gap || (behind === previous.gap && id < previous.id)) previous = { id, gap: behind };
    }
    targets.add(next!.id);
    observers.add(previous!.id);
  }
  return { targets: [...targets], observers: [...observers] };
}
