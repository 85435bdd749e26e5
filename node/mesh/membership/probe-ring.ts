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
  /** On each ring, the nearest member ahead and behind (absent in a small mesh). */
  around?: { next: Near; previous: Near }[];
}

interface Near {
  id: string;
  gap: number;
}

const SPAN = 2 ** 48;

/** Whether `candidate` is nearer than `current` (ties by peer id: no two agents disagree). */
function nearer(candidate: Near, current: Near | undefined): boolean {
  return !current || candidate.gap < current.gap || (candidate.gap === current.gap && candidate.id < current.id);
}

function fromAround(around: { next: Near; previous: Near }[]): ProbeRing {
  return { targets: [...new Set(around.map((a) => a.next.id))], observers: [...new Set(around.map((a) => a.previous.id))], around };
}

/** This agent's targets and observers among `members` (peer ids, itself excluded or not). */
export function probeRing(self: string, members: Iterable<string>): ProbeRing {
  const others = [...new Set(members)].filter((m) => m !== self);
  if (others.length <= SMALL_MESH) return { targets: others, observers: others };
  const mine = positionsOf(self);
  const around: { next: Near; previous: Near }[] = [];
  for (let ring = 0; ring < RINGS; ring++) {
    const at = mine[ring]!;
    let next: Near | undefined;
    let previous: Near | undefined;
    for (const id of others) {
      const p = positionsOf(id)[ring]!;
      const ahead = { id, gap: (p - at + SPAN) % SPAN };
      const behind = { id, gap: (at - p + SPAN) % SPAN };
      if (nearer(ahead, next)) next = ahead;
      if (nearer(behind, previous)) previous = behind;
    }
    around.push({ next: next!, previous: previous! });
  }
  return fromAround(around);
}

/** The ring after `peerId` joined: it takes a place only where it is nearer than the member
 *  there now, so a join costs a few comparisons, not the whole list again (in a rollout of a
 *  thousand agents, every member hears every join). Undefined when the ring must be worked out
 *  anew (a small mesh, where everyone probes everyone). */
export function withMember(ring: ProbeRing, self: string, peerId: string): ProbeRing | undefined {
  if (!ring.around) return undefined;
  if (peerId === self || ring.targets.includes(peerId) || ring.observers.includes(peerId)) return ring;
  const mine = positionsOf(self);
  const theirs = positionsOf(peerId);
  let changed = false;
  const around = ring.around.map(({ next, previous }, index) => {
    const ahead = { id: peerId, gap: (theirs[index]! - mine[index]! + SPAN) % SPAN };
    const behind = { id: peerId, gap: (mine[index]! - theirs[index]! + SPAN) % SPAN };
    const moved = { next: nearer(ahead, next) ? ahead : next, previous: nearer(behind, previous) ? behind : previous };
    if (moved.next !== next || moved.previous !== previous) changed = true;
    return moved;
  });
  return changed ? fromAround(around) : ring;
}
