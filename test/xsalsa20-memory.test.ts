// The private network's stream cipher (xsalsa20 under @libp2p/pnet) must survive one large
// chunk followed by connections taking turns: unpatched, its shared WebAssembly memory grew
// on every update until a RangeError ended the agent.
import { createRequire } from 'node:module';
import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import '../node/mesh/polyfill.js';

const require = createRequire(import.meta.url);
const XSalsa20 = require('xsalsa20') as (nonce: Uint8Array, key: Uint8Array) => { update(input: Uint8Array): Uint8Array };

describe('the private network cipher', () => {
  it('after a chunk larger than its first memory, ciphers taking turns neither throw nor go wrong', () => {
    const key = randomBytes(32);
    const [nonceA, nonceB] = [randomBytes(24), randomBytes(24)];
    const [sendA, sendB] = [XSalsa20(nonceA, key), XSalsa20(nonceB, key)];
    const [readA, readB] = [XSalsa20(nonceA, key), XSalsa20(nonceB, key)];
    const big = randomBytes(4 << 20);
    expect(Buffer.from(readA.update(sendA.update(big))).equals(big)).toBe(true);
    for (let i = 0; i < 20_000; i++) {
      const message = randomBytes(1 + (i % 3000));
      const [send, read] = i % 2 ? [sendA, readA] : [sendB, readB];
      expect(Buffer.from(read.update(send.update(message))).equals(message)).toBe(true);
    }
  });
});
