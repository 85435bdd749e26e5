// The probe rings (node/mesh/membership/probe-ring.ts): each member probes a few successors and
// is probed by a few predecessors whatever the mesh's size, both ends agree, every member is
// watched, and news crosses the rings in few hops. Then real members on loopback: each keeps
// connections to its ring only (not to every member in turn) with one membership stream each
// (not one per message), and a member that dies still leaves every view.
import { generateKeyPair } from '@libp2p/crypto/keys';
import { peerIdFromPrivateKey } from '@libp2p/peer-id';
import { pino } from 'pino';
import { afterAll, describe, expect, it } from 'vitest';
import { createMeshNode, type MeshNode } from '../node/mesh/node.js';
import { PROTOCOL_VERSION } from '../protocol/messages.js';
import { SWIM_PROTOCOL } from '../protocol/swim-messages.js';
import { joinThrough } from '../node/mesh/membership/bare-member.js';
import { probeRing, RINGS, SMALL_MESH, withMember } from '../node/mesh/membership/probe-ring.js';
import { SwimService } from '../node/mesh/membership/swim-service.js';
import { waitFor } from './helpers/wait.js';

const log = pino({ level: 'silent' });

async function peerIds(n: number): Promise<string[]> {
  return Promise.all(Array.from({ length: n }, async () => peerIdFromPrivateKey(await generateKeyPair('Ed25519')).toString()));
}

describe('probe rings', () => {
  it('bound targets and observers, agree at both ends, watch everyone, and spread news in few hops', async () => {
    for (const n of [2, 9, 10, 100, 1000]) {
      const ids = await peerIds(n);
      const rings = new Map(ids.map((id) => [id, probeRing(id, ids)]));
      const watched = new Set<string>();
      for (const [id, ring] of rings) {
        // A small mesh: everyone probes everyone (every status row gets a round trip).
        const most = n - 1 <= SMALL_MESH ? n - 1 : RINGS;
        if (n - 1 <= SMALL_MESH) expect(ring.targets.length).toBe(n - 1);
        expect(ring.targets.length).toBeGreaterThan(0);
        expect(ring.targets.length).toBeLessThanOrEqual(most);
        expect(ring.observers.length).toBeLessThanOrEqual(most);
        expect(ring.targets).not.toContain(id);
        for (const target of ring.targets) {
          watched.add(target);
          expect(rings.get(target)!.observers).toContain(id);
        }
      }
      expect(watched.size).toBe(n);
      // Hops from one member to the farthest along probe edges (news rides both ways on a probe).
      const hops = new Map([[ids[0]!, 0]]);
      for (let frontier = [ids[0]!]; frontier.length; ) {
        const next: string[] = [];
        for (const id of frontier) {
          for (const peer of [...rings.get(id)!.targets, ...rings.get(id)!.observers]) {
            if (hops.has(peer)) continue;
            hops.set(peer, hops.get(id)! + 1);
            next.push(peer);
          }
        }
        frontier = next;
      }
      expect(hops.size).toBe(n);
      expect(Math.max(...hops.values())).toBeLessThanOrEqual(Math.max(2, 2 * Math.ceil(Math.log2(n))));
    }
  });

  it('a member that joins changes a ring only where it is nearer: the same ring as worked out anew', async () => {
    for (const n of [12, 100, 1000]) {
      const ids = await peerIds(n);
      const self = ids[0]!;
      let ring = probeRing(self, ids.slice(0, SMALL_MESH + 2));
      for (let i = SMALL_MESH + 2; i < n; i++) {
        ring = withMember(ring, self, ids[i]!) ?? probeRing(self, ids.slice(0, i + 1));
        const fresh = probeRing(self, ids.slice(0, i + 1));
        expect(new Set(ring.targets)).toEqual(new Set(fresh.targets));
        expect(new Set(ring.observers)).toEqual(new Set(fresh.observers));
      }
    }
    // A small mesh (everyone probes everyone) is worked out anew.
    const few = await peerIds(4);
    expect(withMember(probeRing(few[0]!, few.slice(0, 3)), few[0]!, few[3]!)).toBeUndefined();
  });

  describe('on real members', () => {
    const nodes: MeshNode[] = [];
    const members: SwimService[] = [];
    afterAll(async () => {
      await Promise.all(members.map((m) => m.stop().catch(() => undefined)));
      await Promise.all(nodes.map((n) => n.stop().catch(() => undefined)));
    });

    it('keep connections to their ring only, one membership stream on each, and a dead member still leaves every view', async () => {
      const meshKey = new Uint8Array(32).fill(7);
      const n = 20;
      for (let i = 0; i < n; i++) {
        const node = await createMeshNode({ privateKey: await generateKeyPair('Ed25519'), meshKey, listen: ['/ip4/127.0.0.1/tcp/0'], log, relay: false });
        nodes.push(node);
        // 100 ms periods, idle connections closed after 2 s: probing every member in turn would
        // keep connections to all 19 others (each probed every 1.9 s, and probing us as often).
        const startedAt = Date.now();
        const card = () => ({ peerId: node.peerId.toString(), name: `m${i}`, addresses: node.addresses(), startedAt, protocolVersion: PROTOCOL_VERSION, candidate: false, cores: 1, slots: 0, speed: 1, os: 'linux', arch: 'x64', libc: 'glibc', toolchains: [] });
        const swim = new SwimService({ node, card, leader: () => ({ term: 0, peerId: '' }), onLeader: () => undefined, admit: () => true, keep: () => false, log, probeIntervalMs: 100, idleMs: 2000 });
        await swim.start();
        members.push(swim);
        if (i > 0) await joinThrough(members[i]!, nodes[0]!.addresses()[0]!);
      }
      await waitFor('every member lists all', () => (members.every((m) => m.table.size === n - 1) ? true : undefined), 15_000);
      await new Promise((r) => setTimeout(r, 4000));
      for (let i = 1; i < n; i++) {
        const peers = new Set(nodes[i]!.libp2p.getConnections().map((c) => c.remotePeer.toString()));
        const ring = members[i]!.probeRing();
        // Its ring, and perhaps a member it just asked to probe for it (ping-req) or synced with.
        expect(peers.size, `member ${i} is connected to ${peers.size} peers`).toBeLessThanOrEqual(ring.targets.length + ring.observers.length + 2);
        for (const target of ring.targets) expect(peers.has(target)).toBe(true);
      }
      expect(members.every((m) => m.counts.served > 0)).toBe(true);

      // One long-lived membership stream per peer (swim-channel.ts), not one per probe: the
      // streams open now are the ones that were open a few probes ago.
      const swimStreams = () => new Set(nodes[1]!.libp2p.getConnections().flatMap((c) => c.streams.filter((s) => s.protocol === SWIM_PROTOCOL).map((s) => `${c.id}/${s.id}`)));
      const before = swimStreams();
      const servedBefore = members[1]!.counts.served;
      await new Promise((r) => setTimeout(r, 1000));
      expect(members[1]!.counts.served).toBeGreaterThan(servedBefore);
      expect(before.size).toBeGreaterThan(0);
      // (A probe unanswered in time ends its stream: on a busy machine one may have been replaced.)
      const after = swimStreams();
      expect([...before].filter((id) => after.has(id)).length).toBeGreaterThanOrEqual(before.size / 2);

      // A member whose process is gone: its observers' probes are refused, the news spreads.
      const dead = members[7]!.table.selfId;
      await nodes[7]!.stop();
      const alive = members.filter((_, i) => i !== 7);
      await waitFor('the dead member gone from every view', () => (alive.every((m) => m.table.get(dead) === undefined) ? true : undefined), 10_000);
    }, 60_000);
  });
});
