// Which agents hold an entry: the few members that score highest for its key (rendezvous, or
// highest-random-weight, hashing). Every agent computes the same owners from the same view
// with no coordination, and a member that leaves moves only the entries it held.
// A member's weight for a key mixes the key's first 64 bits with a seed hashed once per
// member: one sha256 per member per key (the first version) cost 4.3 ms a lookup at 1000
// members (bench/cache-owners-sim), a mix of two 32-bit words costs nanoseconds.
import { createHash } from 'node:crypto';

/** Owners per entry: a lookup asks them all at once (one round trip); one may leave without a loss. */
export const OWNERS_PER_ENTRY = 2;

const SEEDS_KEPT = 100_000;
const seeds = new Map<string, readonly [number, number]>();

function words(text: string): readonly [number, number] {
  const digest = createHash('sha256').update(text).digest();
  return [digest.readUInt32BE(0), digest.readUInt32BE(4)];
}

function seedOf(member: string): readonly [number, number] {
  let seed = seeds.get(member);
  if (!seed) {
    if (seeds.size >= SEEDS_KEPT) seeds.clear();
    seeds.set(member, (seed = words(`meshcc-owner\0${member}`)));
  }
  return seed;
}

/** murmur3's finaliser: every input bit reaches every output bit. */
function mix(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/** The key's first 64 bits: keys are sha256 hex; anything else is hashed. */
function keyWords(key: string): readonly [number, number] {
  if (/^[0-9a-f]{16}/.test(key)) return [parseInt(key.slice(0, 8), 16), parseInt(key.slice(8, 16), 16)];
  return words(key);
}

/** The `count` members with the highest weight for this key, highest first. */
export function ownersOf(key: string, members: Iterable<string>, count = OWNERS_PER_ENTRY): string[] {
  const [k0, k1] = keyWords(key);
  const best: { member: string; weight: number }[] = [];
  const seen = new Set<string>();
  for (const member of members) {
    if (seen.has(member)) continue;
    seen.add(member);
    const [s0, s1] = seedOf(member);
    // 53 bits of weight: ties are as good as impossible, and broken by name.
    const weight = mix(s0 ^ k0) * 2 ** 21 + (mix((s1 ^ k1) + 0x9e3779b9) >>> 11);
    let at = best.length;
    while (at > 0 && (best[at - 1]!.weight < weight || (best[at - 1]!.weight === weight && best[at - 1]!.member > member))) at--;
    if (at >= count) continue;
    best.splice(at, 0, { member, weight });
    if (best.length > count) best.pop();
  }
  return best.map((b) => b.member);
}
