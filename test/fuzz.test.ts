// The protocol's decoders under random and mutated input: every frame either decodes into a
// valid message or is rejected with a one-line ProtocolError; nothing else ever escapes, and
// an agent fed garbage connections keeps serving.
import net from 'node:net';
import { afterAll, describe, expect, it } from 'vitest';
import { ProtocolError } from '../protocol/errors.js';
import { encodeFrame, FrameDecoder } from '../protocol/framing.js';
import { ClientMessage, LIMITS, parseMessage } from '../protocol/messages.js';
import { SWIM_LIMITS, SwimRequest } from '../protocol/swim-messages.js';
import { exchange, frame, startAgentInProcess } from './helpers/agent.js';
import { rng } from './helpers/rng.js';


const validFrames = [
  encodeFrame({ t: 'compile', v: 1, cwd: '/src', argv: ['gcc', '-c', 'a.c'], compiler: '/usr/bin/gcc', env: { PATH: '/usr/bin' }, umask: 18, tty: false }),
  encodeFrame({ t: 'done', exit: 0 }),
  encodeFrame({ t: 'stats', v: 1 }),
  encodeFrame({
    t: 'ping', leader: { term: 3, peerId: '12D3KooWabc' },
    updates: [{ peerId: '12D3KooWxyz', state: 'alive', incarnation: 7, card: {
      peerId: '12D3KooWxyz', name: 'box', addresses: ['/ip4/10.0.0.1/tcp/4001'], startedAt: 1, protocolVersion: 1, cores: 8, slots: 8,
      speed: 10, os: 'linux', arch: 'x64', libc: 'glibc 2.36', toolchains: [] } }],
  }),
];

function mutate(frameBytes: Buffer, random: () => number): Buffer {
  const out = Buffer.from(frameBytes);
  const kind = Math.floor(random() * 4);
  if (kind === 0) {
    for (let i = 0; i < 1 + random() * 4; i++) out[Math.floor(random() * out.length)] = Math.floor(random() * 256);
    return out;
  }
  if (kind === 1) return out.subarray(0, Math.floor(random() * out.length)); // truncated
  if (kind === 2) {
    out.writeUInt32BE(Math.floor(random() * 2 ** 32), 0); // a lying length
    return out;
  }
  const body = Buffer.from(Array.from({ length: Math.floor(random() * 64) }, () => Math.floor(random() * 256)));
  const header = Buffer.alloc(4);
  header.writeUInt32BE(body.length);
  return Buffer.concat([header, body]); // random body, honest length
}

function decodeAll(bytes: Buffer, maxFrame: number): { decoded: number; rejected: number } {
  const decoder = new FrameDecoder(maxFrame);
  let decoded = 0;
  let rejected = 0;
  try {
    for (const value of decoder.push(bytes)) {
      for (const schema of [ClientMessage, SwimRequest] as const) {
        try {
          parseMessage(schema as never, value);
          decoded++;
        } catch (err) {
          if (!(err instanceof ProtocolError)) throw err;
          expect(err.message).not.toContain('\n');
          rejected++;
        }
      }
    }
  } catch (err) {
    if (!(err instanceof ProtocolError)) throw err;
    expect(err.message).not.toContain('\n');
    rejected++;
  }
  return { decoded, rejected };
}

describe('protocol fuzzing', () => {
  it('100,000 random and mutated frames: valid messages or one-line ProtocolErrors, nothing else', () => {
    const random = rng(20261122);
    let decoded = 0;
    let rejected = 0;
    for (let i = 0; i < 100_000; i++) {
      const base = validFrames[i % validFrames.length]!;
      const input = i % 10 === 0 ? Buffer.from(Array.from({ length: Math.floor(random() * 40) }, () => Math.floor(random() * 256))) : mutate(base, random);
      const r = decodeAll(input, i % 2 ? LIMITS.clientFrameBytes : SWIM_LIMITS.frameBytes);
      decoded += r.decoded;
      rejected += r.rejected;
    }
    expect(rejected).toBeGreaterThan(50_000);
    expect(decoded).toBeGreaterThan(0);
  });
});

describe('agent under garbage connections', () => {
  const stops: (() => Promise<void>)[] = [];
  afterAll(async () => {
    for (const stop of stops) await stop();
  });

  it('keeps serving after 300 connections of mutated frames', async () => {
    const agent = await startAgentInProcess();
    stops.push(agent.stop);
    const random = rng(7);
    for (let i = 0; i < 300; i++) {
      const bytes = mutate(validFrames[i % 3]!, random);
      await new Promise<void>((resolve) => {
        const s = net.connect(agent.socketPath, () => s.end(bytes));
        s.on('data', () => undefined);
        s.on('close', () => resolve());
        s.on('error', () => resolve());
        setTimeout(() => {
          s.destroy();
          resolve();
        }, 200);
      });
    }
    expect(await exchange(agent.socketPath, frame({ t: 'ping', v: 1 }))).toMatchObject([{ t: 'pong' }]);
  });
});
