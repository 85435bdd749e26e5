// bench/cache-owners-sim: where the result cache's entries live, two designs side by side
// (issue 22): rendezvous hashing over the members (what node/cache/owners.ts does: the writer
// plus the two members ranked highest for the key hold it, and a lookup asks the two ranked
// highest but the asker, at once) against an index kept by the scheduler (the writer holds
// it; the scheduler maps key → holder; a lookup asks the scheduler, then the holder). No
// sockets: members are names, a lookup counts round trips, and after each change of the mesh
// it prints how many entries a lookup from a random member still finds. The CPU of choosing
// owners is the real function's, timed here.
//   node dist/bench/cache-owners-sim.js        (env: SIZES, KEYS)
import { randomBytes } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { ownersOf } from '../node/cache/owners.js';

const SIZES = (process.env.SIZES ?? '10,100,1000').split(',').map(Number);
const KEYS = Number(process.env.KEYS ?? 2000);

const id = () => randomBytes(16).toString('hex');
const pick = <T>(items: readonly T[]) => items[Math.floor(Math.random() * items.length)]!;

interface Mesh {
  members: string[];
  /** rendezvous: who holds each key */
  held: Map<string, Set<string>>;
  /** index: the writer of each key, as the scheduler knows it (lost when the scheduler changes) */
  index: Map<string, string>;
  writerOf: Map<string, string>;
}

function write(mesh: Mesh, key: string, writer: string): void {
  mesh.held.set(key, new Set([writer, ...ownersOf(key, mesh.members.filter((m) => m !== writer))]));
  mesh.index.set(key, writer);
  mesh.writerOf.set(key, writer);
}

/** Share of keys a random member finds: rendezvous (asks the two ranked highest but itself) and index (asks the scheduler, then the writer). */
function found(mesh: Mesh): { rendezvous: number; index: number } {
  let r = 0;
  let i = 0;
  const alive = new Set(mesh.members);
  for (const [key, holders] of mesh.held) {
    const asker = pick(mesh.members);
    if (holders.has(asker) || ownersOf(key, mesh.members.filter((m) => m !== asker)).some((o) => holders.has(o))) r++;
    const writer = mesh.index.get(key);
    if (writer !== undefined && alive.has(writer)) i++;
  }
  return { rendezvous: r / mesh.held.size, index: i / mesh.held.size };
}

function leave(mesh: Mesh, member: string): void {
  mesh.members = mesh.members.filter((m) => m !== member);
  for (const holders of mesh.held.values()) holders.delete(member);
}

const pct = (x: number) => `${(100 * x).toFixed(1)} %`;

console.log('bench/cache-owners-sim: entries found by a lookup after each change, rendezvous (1 round trip) vs a scheduler index (2 round trips)');
for (const size of SIZES) {
  const mesh: Mesh = { members: Array.from({ length: size }, id), held: new Map(), index: new Map(), writerOf: new Map() };
  const keys = Array.from({ length: KEYS }, id);
  for (const key of keys) write(mesh, key, pick(mesh.members));
  const rows: [string, { rendezvous: number; index: number }][] = [['steady', found(mesh)]];
  leave(mesh, pick(mesh.members));
  rows.push(['one member left', found(mesh)]);
  mesh.members.push(id());
  rows.push(['one member joined', found(mesh)]);
  const churn = Math.max(1, Math.round(size / 10));
  for (let k = 0; k < churn; k++) {
    leave(mesh, pick(mesh.members));
    mesh.members.push(id());
  }
  rows.push([`${churn} left and ${churn} joined`, found(mesh)]);
  // The scheduler fails over: its index is gone (members would have to report every key again).
  mesh.index.clear();
  rows.push(['the scheduler failed over', found(mesh)]);
  const t0 = performance.now();
  const LOOKUPS = 2000;
  for (let k = 0; k < LOOKUPS; k++) ownersOf(pick(keys), mesh.members);
  const ownersUs = ((performance.now() - t0) * 1000) / LOOKUPS;
  console.log(`${size} members, ${KEYS} entries; choosing a key's owners costs ${ownersUs.toFixed(1)} µs of CPU; the index holds ${KEYS} keys on the scheduler, rendezvous nothing`);
  for (const [what, share] of rows) console.log(`  ${what.padEnd(28)} rendezvous ${pct(share.rendezvous).padStart(7)}   index ${pct(share.index).padStart(7)}`);
}
