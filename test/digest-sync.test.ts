// Anti-entropy by digest (node/mesh/membership/digest-sync.ts): tables that agree exchange a
// hash and nothing else; tables that differ exchange only the rows one side lacks or has
// older, deaths beat listings, and a member told of its own death refutes it. First the rules
// on bare tables, then real members on loopback (an agent that knows no digests still gets
// the whole table).
import { generateKeyPair } from '@libp2p/crypto/keys';
import { pino } from 'pino';
import { afterAll, describe, expect, it } from 'vitest';
import { digestEntries, reconcile, tableDigest } from '../node/mesh/membership/digest-sync.js';
import { joinThrough } from '../node/mesh/membership/bare-member.js';
import { SwimService } from '../node/mesh/membership/swim-service.js';
import { SwimTable } from '../node/mesh/membership/table.js';
import { createMeshNode, type MeshNode } from '../node/mesh/node.js';
import { PROTOCOL_VERSION } from '../protocol/messages.js';
import type { MemberCard } from '../protocol/swim-messages.js';

const log = pino({ level: 'silent' });

function card(peerId: string): MemberCard {
  return { peerId, name: peerId, addresses: [], startedAt: 1_000_000, protocolVersion: 1, cores: 2, slots: 2, speed: 1, os: 'linux', arch: 'x64', libc: 'glibc', toolchains: ['gcc-12'] };
}

function alive(peerId: string, incarnation = 1000) {
  return { peerId, state: 'alive' as const, incarnation, card: card(peerId) };
}

/** One anti-entropy round as the service runs it, `a` asking `b`. */
function round(a: SwimTable, b: SwimTable): { rows: number } {
  if (tableDigest(a) === tableDigest(b)) return { rows: 0 };
  const { send, want, apply } = reconcile(a, digestEntries(b));
  for (const u of apply) a.apply(u, b.selfId);
  for (const u of send) b.apply(u, a.selfId);
  for (const id of want) a.apply(b.row(id)!, b.selfId);
  return { rows: send.length + want.length };
}

describe('digest sync, the rules', () => {
  it('tables that agree have one digest; any difference in who, incarnation or state changes it', () => {
    const a = new SwimTable(() => card('a'), 1000);
    const b = new SwimTable(() => card('b'), 1000);
    a.apply(alive('b'), 'b');
    b.apply(alive('a'), 'a');
    for (const t of [a, b]) for (const id of ['c', 'd']) t.apply(alive(id), 'x');
    expect(tableDigest(a)).toBe(tableDigest(b));
    expect(round(a, b).rows).toBe(0);
    b.suspect('c');
    expect(tableDigest(a)).not.toBe(tableDigest(b));
    // A grave only one side still remembers is not a difference.
    a.apply(alive('e'), 'x');
    b.apply(alive('e'), 'x');
    a.declareDead('e');
    b.declareDead('e');
    b.apply({ peerId: 'f', state: 'dead', incarnation: 5 }, 'x');
    b.suspect('c');
    a.suspect('c');
    expect(tableDigest(a)).toBe(tableDigest(b));
  });

  it('tables that differ converge in one round, sending only what differs; a death beats a listing; news of oneself is refuted', () => {
    const a = new SwimTable(() => card('a'), 1000);
    const b = new SwimTable(() => card('b'), 1000);
    a.apply(alive('b'), 'b');
    b.apply(alive('a'), 'a');
    for (let i = 0; i < 200; i++) for (const t of [a, b]) t.apply(alive(`m${i}`), 'x');
    a.apply(alive('only-a'), 'x');
    b.apply(alive('only-b'), 'x');
    b.apply(alive('m1', 2000), 'x'); // m1 published a new card that only b heard of
    a.declareDead('m2'); // a saw m2 die; b still lists it
    b.apply({ peerId: 'a', state: 'suspect', incarnation: a.incarnation }, 'x'); // b suspects a
    const { rows } = round(a, b);
    expect(rows).toBeLessThanOrEqual(5);
    // a refuted with a higher incarnation: one more round carries it.
    round(a, b);
    expect(tableDigest(a)).toBe(tableDigest(b));
    expect(b.get('only-a')?.card.name).toBe('only-a');
    expect(a.get('only-b')?.card.name).toBe('only-b');
    expect(a.get('m1')?.incarnation).toBe(2000);
    expect(b.get('m2')).toBeUndefined();
    expect(b.get('a')?.state).toBe('alive');
    expect(round(a, b).rows).toBe(0);
  });
});

describe('digest sync, on real members', () => {
  const nodes: MeshNode[] = [];
  const members: SwimService[] = [];
  afterAll(async () => {
    await Promise.all(members.map((m) => m.stop().catch(() => undefined)));
    await Promise.all(nodes.map((n) => n.stop().catch(() => undefined)));
  });

  async function member(name: string): Promise<SwimService> {
    const node = await createMeshNode({ privateKey: await generateKeyPair('Ed25519'), meshKey: new Uint8Array(32).fill(9), listen: ['/ip4/127.0.0.1/tcp/0'], log, relay: false });
    nodes.push(node);
    const startedAt = Date.now();
    const swim = new SwimService({
      node,
      card: () => ({ peerId: node.peerId.toString(), name, addresses: node.addresses(), startedAt, protocolVersion: PROTOCOL_VERSION, candidate: false, cores: 1, slots: 0, speed: 1, os: 'linux', arch: 'x64', libc: 'glibc', toolchains: [] }),
      leader: () => ({ term: 0, peerId: '' }),
      onLeader: () => undefined,
      admit: () => true,
      keep: () => false,
      log,
      // No probe periods during the test: only the syncs it asks for move news.
      probeIntervalMs: 600_000,
    });
    await swim.start();
    members.push(swim);
    return swim;
  }

  it('exchange a digest when they agree, and the missing rows when they do not', async () => {
    const [a, b, c, d] = [await member('a'), await member('b'), await member('c'), await member('d')];
    const address = (s: SwimService) => nodes[members.indexOf(s)]!.addresses()[0]!;
    await joinThrough(b, address(a));
    await joinThrough(c, address(a)); // a lists c; b has not heard of it
    await joinThrough(d, address(b)); // b lists d; a has not heard of it
    expect(a.table.get(d.table.selfId)).toBeUndefined();
    expect(b.table.get(c.table.selfId)).toBeUndefined();

    await b.reconcile(a.table.selfId, [address(a)]);
    expect(b.table.get(c.table.selfId)?.card.name).toBe('c');
    expect(a.table.get(d.table.selfId)?.card.name).toBe('d');
    expect(b.counts.syncRows).toBe(2);
    expect(tableDigest(a.table)).toBe(tableDigest(b.table));

    // Agreeing tables: a digest each way, no rows.
    await b.reconcile(a.table.selfId, [address(a)]);
    expect(b.counts.syncs).toBe(2);
    expect(b.counts.syncRows).toBe(2);
  }, 30_000);
});
