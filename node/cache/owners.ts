// Which agents hold an entry: the few members that score highest for its key (rendezvous, or
// highest-random-weight, hashing). Every agent computes the same owners from the same view
// with no coordination, and a member that leaves moves only the entries it held.
import { createHash } from 'node:crypto';

/** Owners per entry: a lookup asks them all at once (one round trip); one may leave without a loss. */
export const OWNERS_PER_ENTRY = 2;

function weight(key: string, member: string): bigint {
  return createHash('sha256').update(key).update('\0').update(member).digest().readBigUInt64BE(0);
}

/** The `count` members with the highest weight for this key, highest first. */
export function ownersOf(key: string, members: Iterable<string>, count = OWNERS_PER_ENTRY): string[] {
  return [...new Set(members)]
    .map((m) => ({ m, w: weight(key, m) }))
    .sort((a, b) => (a.w === b.w ? (a.m < b.m ? -1 : 1) : a.w > b.w ? -1 : 1))
    .slice(0, count)
    .map((o) => o.m);
}
