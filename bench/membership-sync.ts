// bench/membership-sync: what one anti-entropy sync costs as the mesh grows, the full sync
// (every card both ways, as before) against the sync by digest (membership/digest-sync.ts) when
// the two tables agree, as they do in a settled mesh, and when one member is missing. Bytes on
// the wire (msgpack) and CPU for both ends (encode, decode, check, apply), measured in turn in
// one process. Cards are an agent's: addresses and 14 toolchain ids.
//   node dist/bench/membership-sync.js        (env: SIZES, ROUNDS)
import { performance } from 'node:perf_hooks';
import { randomBytes } from 'node:crypto';
import { decodeBody, encodeBody } from '../protocol/framing.js';
import { parseMessage } from '../protocol/messages.js';
import { SwimAnswer, SwimRequest, type MemberCard } from '../protocol/swim-messages.js';
import { digestEntries, reconcile, tableDigest } from '../node/mesh/membership/digest-sync.js';
import { SwimTable } from '../node/mesh/membership/table.js';

const SIZES = (process.env.SIZES ?? '100,300,1000').split(',').map(Number);
const ROUNDS = Number(process.env.ROUNDS ?? 20);
const leader = { term: 3, peerId: '12D3KooWLeader' };

function card(peerId: string): MemberCard {
  return {
    peerId,
    name: `agent-${peerId.slice(-6)}`,
    addresses: [`/ip4/10.0.${peerId.charCodeAt(20) % 250}.${peerId.charCodeAt(21) % 250}/tcp/7624`],
    startedAt: 1_796_000_000_000,
    protocolVersion: 9,
    candidate: true,
    cores: 16,
    slots: 16,
    speed: 1,
    os: 'linux',
    arch: 'x64',
    libc: 'glibc',
    toolchains: Array.from({ length: 14 }, (_, i) => `${i}`.padStart(2, '0') + randomBytes(31).toString('hex')),
  };
}

function tables(n: number, missing: number): [SwimTable, SwimTable] {
  const ids = Array.from({ length: n }, () => `12D3KooW${randomBytes(33).toString('base64url').slice(0, 44)}`);
  const cards = new Map(ids.map((id) => [id, card(id)]));
  const a = new SwimTable(() => cards.get(ids[0]!)!, 2000);
  const b = new SwimTable(() => cards.get(ids[1]!)!, 2000);
  for (const [t, self] of [[a, ids[0]!], [b, ids[1]!]] as const) {
    for (const id of ids) if (id !== self && !(t === a && ids.indexOf(id) >= n - missing)) t.apply({ peerId: id, state: 'alive', incarnation: 1_796_000_000, card: cards.get(id)! }, 'x');
  }
  return [a, b];
}

/** One message through the wire: encoded, decoded and checked. */
function wire<T>(schema: { parse: (v: unknown) => T } & object, value: object): { value: T; bytes: number } {
  const bytes = encodeBody(value);
  return { value: parseMessage(schema as never, decodeBody(bytes)) as T, bytes: bytes.length };
}

function fullSync(a: SwimTable, b: SwimTable): number {
  const request = wire<SwimRequest>(SwimRequest, { t: 'sync', leader, members: a.snapshot() });
  if (request.value.t === 'sync') for (const u of request.value.members) b.apply(u, a.selfId);
  const answer = wire<SwimAnswer>(SwimAnswer, { t: 'sync', leader, members: b.snapshot() });
  if (answer.value.t === 'sync') for (const u of answer.value.members) a.apply(u, b.selfId);
  return request.bytes + answer.bytes;
}

function digestSync(a: SwimTable, b: SwimTable): number {
  const mine = tableDigest(a);
  const request = wire<SwimRequest>(SwimRequest, { t: 'sync', leader, members: [], digest: mine });
  const theirs = tableDigest(b);
  const first = wire<SwimAnswer>(SwimAnswer, theirs === mine ? { t: 'sync', leader, members: [], digest: theirs } : { t: 'sync', leader, members: [], digest: theirs, entries: digestEntries(b) });
  const bytes = request.bytes + first.bytes;
  if (first.value.t !== 'sync' || first.value.digest === mine || !first.value.entries) return bytes;
  const { send, want, apply } = reconcile(a, first.value.entries);
  for (const u of apply) a.apply(u, b.selfId);
  const second = wire<SwimRequest>(SwimRequest, { t: 'sync', leader, members: send, want });
  if (second.value.t === 'sync') for (const u of second.value.members) b.apply(u, a.selfId);
  const rows = wire<SwimAnswer>(SwimAnswer, { t: 'sync', leader, members: want.flatMap((id) => b.row(id) ?? []) });
  if (rows.value.t === 'sync') for (const u of rows.value.members) a.apply(u, b.selfId);
  return bytes + second.bytes + rows.bytes;
}

function measure(n: number, missing: number, sync: (a: SwimTable, b: SwimTable) => number): { ms: number; bytes: number } {
  let ms = 0;
  let bytes = 0;
  for (let round = 0; round < ROUNDS; round++) {
    const [a, b] = tables(n, missing);
    const started = performance.now();
    bytes = sync(a, b);
    ms += performance.now() - started;
  }
  return { ms: ms / ROUNDS, bytes };
}

// Warm-up: the first syncs run before V8 has compiled the hot paths.
for (const sync of [fullSync, digestSync]) measure(100, 1, sync);
console.log(`bench/membership-sync: one anti-entropy sync between two members, both ends' CPU (ms) and bytes; mean of ${ROUNDS}, measured in turn in one process`);
console.log(' size | tables            | full sync              | by digest');
for (const n of SIZES) {
  for (const missing of [0, 1]) {
    const full = measure(n, missing, fullSync);
    const digest = measure(n, missing, digestSync);
    const kib = (b: number) => `${(b / 1024).toFixed(1)} KiB`.padStart(10);
    console.log(`${String(n).padStart(5)} | ${missing ? 'one member missing' : 'agree            '} | ${full.ms.toFixed(2).padStart(7)} ms ${kib(full.bytes)} | ${digest.ms.toFixed(2).padStart(7)} ms ${kib(digest.bytes)}`);
  }
}
