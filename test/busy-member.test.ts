// A member whose membership answers stop (its cores busy compiling, its event loop late) but
// that keeps sending work over a job session is alive: the agent it works for neither suspects
// it nor declares it dead. A member silent on both is suspected as before. Real libp2p nodes on
// loopback; the two that stop answering are nodes without the membership protocol, listed by
// the watcher as any member is (a card heard in gossip).
import { generateKeyPair } from '@libp2p/crypto/keys';
import { pino } from 'pino';
import { afterAll, describe, expect, it } from 'vitest';
import { joinThrough } from '../node/mesh/membership/bare-member.js';
import { SwimService } from '../node/mesh/membership/swim-service.js';
import { createMeshNode, type MeshNode } from '../node/mesh/node.js';
import { JobSession } from '../node/remote/job-session.js';
import { PROTOCOL_VERSION } from '../protocol/messages.js';
import type { MemberCard } from '../protocol/swim-messages.js';
import { waitFor } from './helpers/wait.js';

const log = pino({ level: 'silent' });
const WORK_PROTOCOL = '/meshcc-test/work/1';

describe('a busy member', () => {
  const nodes: MeshNode[] = [];
  const members: SwimService[] = [];
  const timers: NodeJS.Timeout[] = [];
  afterAll(async () => {
    for (const t of timers) clearInterval(t);
    await Promise.all(members.map((m) => m.stop().catch(() => undefined)));
    await Promise.all(nodes.map((n) => n.stop().catch(() => undefined)));
  });

  it('that sends work is not suspected though its probes go unanswered; a silent one is', async () => {
    const meshKey = new Uint8Array(32).fill(9);
    const events: { peer?: string; msg: string }[] = [];
    const watcherLog = pino({ level: 'info' }, { write: (line: string) => void events.push(JSON.parse(line) as { peer?: string; msg: string }) });
    const judgedByWatcher = (peer: string) => events.some((e) => e.peer === peer && /member suspected|declared dead/.test(e.msg));
    const node = async () => {
      const n = await createMeshNode({ privateKey: await generateKeyPair('Ed25519'), meshKey, listen: ['/ip4/127.0.0.1/tcp/0'], log, relay: false });
      nodes.push(n);
      return n;
    };
    const startedAt = Date.now();
    const cardOf = (n: MeshNode, name: string): MemberCard => ({ peerId: n.peerId.toString(), name, addresses: n.addresses(), startedAt, protocolVersion: PROTOCOL_VERSION, candidate: false, cores: 1, slots: 2, speed: 1, os: 'linux', arch: 'x64', libc: 'glibc', toolchains: [] });
    for (const name of ['watcher', 'helper']) {
      const n = await node();
      const swim = new SwimService({ node: n, card: () => cardOf(n, name), leader: () => ({ term: 0, peerId: '' }), onLeader: () => undefined, admit: () => true, keep: () => false, log: name === 'watcher' ? watcherLog : log, probeIntervalMs: 100 });
      await swim.start();
      members.push(swim);
    }
    const [watcher, helper] = members as [SwimService, SwimService];
    const watcherNode = nodes[0]!;
    await joinThrough(helper, watcherNode.addresses()[0]!);
    // Two members whose membership answers never come: one works for the watcher, one does not.
    const [busy, silent] = [await node(), await node()];
    watcher.hear([busy, silent].map((n, i) => ({ peerId: n.peerId.toString(), state: 'alive' as const, incarnation: 1, card: cardOf(n, i ? 'silent' : 'busy') })), helper.table.selfId);
    const [busyId, silentId] = [busy.peerId.toString(), silent.peerId.toString()];
    expect(watcher.table.get(busyId)?.state).toBe('alive');

    // The watcher serves work sessions the way the job server does: each frame is proof of life.
    await watcherNode.libp2p.handle(WORK_PROTOCOL, (stream, connection) => {
      const from = connection.remotePeer.toString();
      new JobSession(stream, { opens: ['work'], onFrame: () => watcherNode.heard(from), onJob: () => undefined });
    });
    const channel = new JobSession(await busy.openStream(watcherNode.peerId, WORK_PROTOCOL, { addresses: watcherNode.addresses() })).open();
    timers.push(setInterval(() => void channel.send({ t: 'work' }).catch(() => undefined), 50));

    await waitFor('the watcher to suspect the silent member', () => (judgedByWatcher(silentId) ? true : undefined), 15_000);
    // Long enough for a suspicion of the busy one to have run out and its last chance to fail.
    await new Promise((r) => setTimeout(r, 3000));
    expect(judgedByWatcher(busyId)).toBe(false);
    expect(watcher.counts.busyButAlive).toBeGreaterThan(0);
    // (The helper, which gets no work from it, may suspect and bury it: a real member refutes
    // when it hears that, as a busy agent's event loop eventually does; these nodes cannot.)
  }, 40_000);
});
