// A stream that receives many small messages answers with a window update only once half of
// its receive window is used (yamux-window.ts), not after every frame; large transfers still
// flow both ways. Real libp2p nodes with a mesh key, over loopback.
import { randomBytes } from 'node:crypto';
import { setImmediate as nextTurn } from 'node:timers/promises';
import type { Stream } from '@libp2p/interface';
import { afterEach, describe, expect, it } from 'vitest';
import { meshPair, stopNodes } from './helpers/mesh-pair.js';

const PROTOCOL = '/meshcc-test/sink/1';
const WINDOW_UPDATE = 1;

afterEach(stopNodes);

/** A client and a peer whose handler counts the window updates its stream sends and the bytes it reads. */
async function sinkPair() {
  const { client, peer } = await meshPair();
  let ended!: () => void;
  const seen = { windowUpdates: 0, bytes: 0, done: new Promise<void>((resolve) => (ended = resolve)) };
  await peer.libp2p.handle(PROTOCOL, (stream: Stream) => {
    const frames = stream as unknown as { sendFrame(header: { type: number }, data?: unknown): unknown };
    const sendFrame = frames.sendFrame;
    frames.sendFrame = (header, data) => {
      if (header.type === WINDOW_UPDATE) seen.windowUpdates++;
      return sendFrame(header, data);
    };
    stream.addEventListener('message', (event) => {
      seen.bytes += event.data.byteLength;
    });
    stream.addEventListener('remoteCloseWrite', () => ended());
  });
  await client.dial(peer.addresses()[0]!);
  const stream = await client.openStream(peer.peerId.toString(), PROTOCOL);
  return { stream, seen };
}

describe('yamux window updates', () => {
  it('500 small messages, each in its own write, cost a handful of window updates, not one each', async () => {
    const { stream, seen } = await sinkPair();
    const message = randomBytes(200);
    for (let i = 0; i < 500; i++) {
      stream.send(message);
      await nextTurn();
    }
    await stream.close();
    await seen.done;
    expect(seen.bytes).toBe(500 * 200);
    // 100 KB is well under half of the 256 KB first window: only the stream's ACK goes back.
    expect(seen.windowUpdates).toBeLessThanOrEqual(2);
  });

  it('8 MiB in 64 KB messages still flow, the window opened as it is used', async () => {
    const { stream, seen } = await sinkPair();
    const chunk = randomBytes(64 << 10);
    for (let i = 0; i < 128; i++) {
      if (!stream.send(chunk)) await new Promise((resolve) => stream.addEventListener('drain', resolve, { once: true }));
    }
    await stream.close();
    await seen.done;
    expect(seen.bytes).toBe(128 * chunk.length);
    expect(seen.windowUpdates).toBeGreaterThan(2);
    expect(seen.windowUpdates).toBeLessThan(128);
  });
});
