// The job session: one stream between a client agent and a peer carries every job between
// them; each job behaves like a stream of its own, and what all jobs send in one turn of the
// event loop leaves in one write. Real libp2p nodes with a mesh key, over loopback.
import { randomBytes } from 'node:crypto';
import type { Stream } from '@libp2p/interface';
import { afterEach, describe, expect, it } from 'vitest';
import { meshPair, stopNodes } from './helpers/mesh-pair.js';
import { JOB_PROTOCOL, JobSession, JobSessions, type JobChannel } from '../node/remote/job-session.js';

const sessions: JobSessions[] = [];

async function pair(onJob: (channel: JobChannel, session: JobSession) => void) {
  const { client, peer } = await meshPair();
  const streams: Stream[] = [];
  await peer.libp2p.handle(JOB_PROTOCOL, (stream) => {
    streams.push(stream);
    const session: JobSession = new JobSession(stream, { onJob: (channel) => onJob(channel, session) });
  });
  await client.dial(peer.addresses()[0]!);
  const pool = new JobSessions();
  sessions.push(pool);
  const peerId = peer.peerId.toString();
  const open = (signal?: AbortSignal) => pool.open(() => client.openStream(peerId, JOB_PROTOCOL), peerId, signal);
  return { client, peer, streams, pool, peerId, open };
}

afterEach(async () => {
  for (const pool of sessions.splice(0)) pool.stop();
  await stopNodes();
});

describe('job sessions', () => {
  it('carries many concurrent jobs on one stream, each answered on its own channel', async () => {
    const { streams, open } = await pair((channel) => {
      void (async () => {
        const offer = (await channel.receive(5000)) as { t: string; n: number };
        await channel.sendAll([{ t: 'result', n: offer.n * 2 }, { t: 'output', n: offer.n * 3 }]);
        channel.close();
      })();
    });
    const answers = await Promise.all(
      Array.from({ length: 200 }, async (_, n) => {
        const channel = await open();
        await channel.send({ t: 'job', n });
        const result = (await channel.receive(5000)) as { n: number };
        const output = (await channel.receive(5000)) as { n: number };
        channel.close();
        return [result.n, output.n];
      }),
    );
    expect(answers).toEqual(Array.from({ length: 200 }, (_, n) => [n * 2, n * 3]));
    expect(streams).toHaveLength(1);
  });

  it('sends what the jobs queue in one turn of the event loop in one write', async () => {
    let peerStream: Stream | undefined;
    const { open, streams } = await pair((channel) => void channel.receive(5000).then(() => channel.close()));
    const first = await open();
    await first.send({ t: 'job' });
    peerStream = streams[0]!;
    const chunks: number[] = [];
    peerStream.addEventListener('message', (evt) => chunks.push((evt as unknown as { data: { byteLength: number } }).data.byteLength));
    const channels = await Promise.all(Array.from({ length: 50 }, () => open()));
    await Promise.all(channels.map((c) => c.send({ t: 'job', pad: 'x'.repeat(100) })));
    await new Promise((r) => setTimeout(r, 200));
    // 50 frames of ~120 bytes: one write arrives as one message (the muxer's frame), not 50.
    expect(chunks.length).toBeLessThanOrEqual(2);
    expect(chunks.reduce((a, b) => a + b, 0)).toBeGreaterThan(50 * 100);
  });

  it('a cancelled job ends on the peer; the session and its other jobs go on', async () => {
    const ended: string[] = [];
    const { open } = await pair((channel) => {
      channel.ended$.signal.addEventListener('abort', () => ended.push((channel.ended$.signal.reason as Error).message));
      void (async () => {
        const offer = (await channel.receive(5000)) as { wait?: boolean };
        if (offer.wait) return; // never answers: the client cancels
        await channel.send({ t: 'result' });
        channel.close();
      })();
    });
    const slow = await open();
    await slow.send({ t: 'job', wait: true });
    slow.abort(new Error('a hedge won'));
    await expect(slow.receive(1000)).rejects.toThrow('a hedge won');
    const fast = await open();
    await fast.send({ t: 'job' });
    expect(await fast.receive(5000)).toMatchObject({ t: 'result' });
    await new Promise((r) => setTimeout(r, 100));
    expect(ended[0]).toMatch(/cancelled/);
  });

  it('a session that breaks ends every job on it, and the next job opens a new one', async () => {
    const { open, streams } = await pair((channel) => void channel.receive(5000));
    const jobs = await Promise.all([open(), open(), open()]);
    for (const job of jobs) await job.send({ t: 'job' });
    await new Promise((r) => setTimeout(r, 50));
    streams[0]!.abort(new Error('the peer went away'));
    for (const job of jobs) await expect(job.receive(5000)).rejects.toThrow();
    const next = await open();
    await next.send({ t: 'job' });
    await new Promise((r) => setTimeout(r, 50));
    expect(streams).toHaveLength(2);
  });

  it('garbage from the peer, or a message without its job number, ends the session with a protocol error', async () => {
    for (const bad of [Buffer.concat([Buffer.from([0xff, 0xff, 0xff, 0xff]), randomBytes(60)]), Buffer.from([0, 0, 0, 2, 0x81, 0xa0])]) {
      const { open, streams } = await pair((channel) => void channel.receive(5000).then(() => streams.at(-1)!.send(bad)));
      const job = await open();
      await job.send({ t: 'job' });
      await expect(job.receive(5000)).rejects.toThrow(/job number|msgpack|frame/);
      for (const pool of sessions.splice(0)) pool.stop();
      await stopNodes();
    }
  });
});

describe('job sessions, ordering', () => {
  it('answers jobs whose offers arrive in another order than they were numbered', async () => {
    const { open } = await pair((channel) => {
      void (async () => {
        const offer = (await channel.receive(5000)) as { n: number };
        await channel.send({ t: 'result', n: offer.n });
        channel.close();
      })();
    });
    // A client numbers a job when it opens it, and sends the offer once it is ready.
    const channels = await Promise.all(Array.from({ length: 20 }, () => open()));
    for (const [n, channel] of [...channels.entries()].reverse()) await channel.send({ t: 'job', n });
    const answers = await Promise.all(channels.map(async (c) => ((await c.receive(5000)) as { n: number }).n));
    expect(answers).toEqual(Array.from({ length: 20 }, (_, n) => n));
  });
});
