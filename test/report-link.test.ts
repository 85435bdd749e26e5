// A member's report link to its scheduler: a question for the mesh's loads that is pending when
// the scheduler dies fails at once, not at its 3 s timeout (`meshcc status` answered 3 s late
// right after a failover, though the new scheduler had been agreed on in 150 ms).
import { generateKeyPair } from '@libp2p/crypto/keys';
import { pino } from 'pino';
import { afterAll, describe, expect, it } from 'vitest';
import { FramedStream } from '../node/mesh/framed-stream.js';
import { createMeshNode, type MeshNode } from '../node/mesh/node.js';
import { ReportLink } from '../node/scheduler/report-link.js';
import { REPORT_PROTOCOL, SWIM_LIMITS } from '../protocol/swim-messages.js';

const log = pino({ level: 'silent' });

describe('report link', () => {
  const nodes: MeshNode[] = [];
  afterAll(async () => {
    await Promise.all(nodes.map((n) => n.stop().catch(() => undefined)));
  });

  it('fails a pending question for the loads as soon as the scheduler is gone', async () => {
    const meshKey = new Uint8Array(32).fill(5);
    for (let i = 0; i < 2; i++) nodes.push(await createMeshNode({ privateKey: await generateKeyPair('Ed25519'), meshKey, listen: ['/ip4/127.0.0.1/tcp/0'], log, relay: false }));
    const [member, scheduler] = nodes as [MeshNode, MeshNode];
    // A scheduler that grants a lease and then never answers a question.
    await scheduler.libp2p.handle(REPORT_PROTOCOL, (stream) => {
      const framed = new FramedStream(stream, SWIM_LIMITS.frameBytes);
      void (async () => {
        await framed.receive(5000);
        await framed.send({ t: 'lease', term: 1, everyMs: 1000 });
        for (;;) await framed.read();
      })().catch(() => undefined);
    });
    const links: ReportLink[] = [];
    const leased = new Promise<void>((resolve) => {
      const link = new ReportLink(scheduler.peerId.toString(), member, { lease: () => resolve(), redirect: () => undefined, news: () => undefined, closed: () => undefined }, () => 1, log);
      links.push(link);
      link.open(scheduler.addresses(), { t: 'hello', term: 1 }, 5000);
    });
    await leased;
    const asked = links[0]!.loads(3000).then(
      () => 'answered',
      (err: Error) => err.message,
    );
    const killedAt = performance.now();
    await scheduler.stop();
    expect(await asked).not.toBe('answered');
    expect(performance.now() - killedAt).toBeLessThan(1500);
  });
});
