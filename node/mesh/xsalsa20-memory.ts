// xsalsa20 1.2, the private network's stream cipher (psk-stream.ts), keeps one WebAssembly memory for all its
// ciphers, and each cipher its own view of that memory. When one cipher grows the memory (for
// a chunk larger than the 640 KB it starts with), every other cipher's view is detached
// (length 0), and each of them, on its next update, grows the memory again instead of looking
// at it anew. With two connections taking turns, the memory then grows on every update until
// WebAssembly's limit throws a RangeError out of a socket's data handler, and the agent dies
// (here: 484 alternating 1 KB updates after one 2 MiB chunk; found by bench/throughput, whose
// batched writes exceed 640 KB). Any peer could cause it with one large message. The fix: a
// cipher whose view is stale takes the current memory before an update or its release.
// Imported with the other fixes before libp2p (polyfill.ts).
import { createRequire } from 'node:module';

interface WasmCipher {
  _memory: Uint8Array;
  realloc(size: number): void;
  update(input: Uint8Array, output: Uint8Array): void;
  finalize(): void;
}

const require = createRequire(import.meta.url);
const XSalsa20 = require('xsalsa20') as (nonce: Uint8Array, key: Uint8Array) => { _xor: WasmCipher; finalize(): void };

const probe = XSalsa20(new Uint8Array(24), new Uint8Array(32));
const cipher = Object.getPrototypeOf(probe._xor) as WasmCipher;
// Only the WebAssembly build has the flaw (the pure-JS fallback has no shared memory).
if (typeof cipher.realloc === 'function' && probe._xor._memory instanceof Uint8Array) {
  let current = probe._xor._memory;
  const realloc = cipher.realloc;
  cipher.realloc = function (this: WasmCipher, size: number) {
    realloc.call(this, size);
    current = this._memory;
  };
  const update = cipher.update;
  cipher.update = function (this: WasmCipher, input: Uint8Array, output: Uint8Array) {
    if (this._memory.buffer !== current.buffer) this._memory = new Uint8Array(current.buffer);
    update.call(this, input, output);
  };
  // Releasing a cipher zeroes its slot through the same view: on a detached one that throws
  // (psk-stream.ts releases every connection's two ciphers when it ends).
  const finalize = cipher.finalize;
  cipher.finalize = function (this: WasmCipher) {
    if (this._memory.buffer !== current.buffer) this._memory = new Uint8Array(current.buffer);
    finalize.call(this);
  };
}
probe.finalize();

export {};
