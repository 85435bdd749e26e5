// The private network's stream: libp2p's PSK v1 (what @libp2p/pnet speaks, byte for byte, so
// members still running it interoperate). After each side has sent a random 24-byte nonce,
// every byte is XORed with XSalsa20 under the pre-shared key: our nonce's keystream on the way
// out, the peer's on the way in.
//
// Why not @libp2p/pnet's own stream: its cipher, xsalsa20's WebAssembly build, keeps every
// cipher in one memory shared by all connections. pnet never releases its two ciphers, so each
// connection that got past the nonces took 128 bytes of that memory for good, towards the limit
// where growing it throws out of a socket's data handler and ends the agent
// (connection-chaos.test.ts killed an agent this way after about 7,000 connections); and
// releasing one after the memory grew throws on a stale view. Here each connection has its own
// keystream (@noble/ciphers' Salsa20, plain JavaScript): nothing shared between connections,
// nothing to release, and a failure costs that connection only.
import type { AbortOptions, MultiaddrConnection } from '@libp2p/interface';
import { hsalsa, salsa20 } from '@noble/ciphers/salsa.js';
import { AbstractMultiaddrConnection, type SendResult } from '@libp2p/utils';

export const NONCE_BYTES = 24;
/** Larger writes go out in pieces of this size (one cipher call and one copy each). */
const MAX_CHUNK_BYTES = 64 * 1024;
const BLOCK = 64;
const ZERO_BLOCK = new Uint8Array(BLOCK);
/** "expand 32-byte k" */
const SIGMA = new Uint32Array([0x61707865, 0x3320646e, 0x79622d32, 0x6b206574]);

function words(bytes: Uint8Array): Uint32Array {
  return new Uint32Array(Uint8Array.from(bytes).buffer);
}

/**
 * XSalsa20 as one keystream across calls: pnet XORs each message with the next bytes of it.
 * (The block counter is 32 bits: past 256 GB in one direction the cipher throws, and that
 * connection ends.)
 */
export class XSalsa20Keystream {
  private readonly key: Uint8Array;
  private readonly nonce: Uint8Array;
  private nextBlock = 0;
  /** The keystream block the last call used part of, and how much of it is used. */
  private readonly partial = new Uint8Array(BLOCK);
  private partialUsed = BLOCK;

  constructor(key: Uint8Array, nonce: Uint8Array) {
    // XSalsa20 is Salsa20 under a subkey HSalsa20 derives from the key and the nonce's first 16 bytes.
    const subkey = new Uint32Array(8);
    hsalsa(SIGMA, words(key), words(nonce.subarray(0, 16)), subkey);
    this.key = new Uint8Array(subkey.buffer);
    this.nonce = Uint8Array.from(nonce.subarray(16, 24));
  }

  xor(input: Uint8Array): Uint8Array {
    const output = new Uint8Array(input.length);
    let at = Math.min(input.length, BLOCK - this.partialUsed);
    for (let i = 0; i < at; i++) output[i] = input[i]! ^ this.partial[this.partialUsed + i]!;
    this.partialUsed += at;
    const whole = (input.length - at) & ~(BLOCK - 1);
    if (whole > 0) {
      salsa20(this.key, this.nonce, input.subarray(at, at + whole), output.subarray(at, at + whole), this.nextBlock);
      this.nextBlock += whole / BLOCK;
      at += whole;
    }
    if (at < input.length) {
      salsa20(this.key, this.nonce, ZERO_BLOCK, this.partial, this.nextBlock++);
      this.partialUsed = input.length - at;
      for (let i = 0; at + i < input.length; i++) output[at + i] = input[at + i]! ^ this.partial[i]!;
    }
    return output;
  }
}

/** A byte array or a list of them, as libp2p's streams carry data. */
type Bytes = Uint8Array | { subarray(): Uint8Array };

function contiguous(data: Bytes): Uint8Array {
  return data instanceof Uint8Array ? data : data.subarray();
}

export class PskStream extends AbstractMultiaddrConnection {
  private readonly inbound: XSalsa20Keystream;
  private readonly outbound: XSalsa20Keystream;

  constructor(
    private readonly conn: MultiaddrConnection,
    psk: Uint8Array,
    localNonce: Uint8Array,
    remoteNonce: Uint8Array,
  ) {
    super({ log: conn.log.newScope('pnet'), remoteAddr: conn.remoteAddr, direction: conn.direction, maxMessageSize: MAX_CHUNK_BYTES });
    this.inbound = new XSalsa20Keystream(psk, remoteNonce);
    this.outbound = new XSalsa20Keystream(psk, localNonce);
    // These run inside the connection's event dispatch, where a throw would be an uncaught
    // exception: whatever fails ends this stream instead.
    conn.addEventListener('message', (evt) => {
      try {
        this.onData(this.inbound.xor(contiguous(evt.data)));
      } catch (err) {
        this.abort(err as Error);
      }
    });
    conn.addEventListener('drain', () => this.onMuxerDrain());
    conn.addEventListener('close', (evt) => {
      if (evt.error == null) this.onTransportClosed();
      else if (evt.local) this.abort(evt.error);
      else this.onRemoteReset();
    });
  }

  sendData(data: Bytes): SendResult {
    const bytes = contiguous(data);
    return { sentBytes: bytes.byteLength, canSendMore: this.conn.send(this.outbound.xor(bytes)) };
  }

  async sendClose(options?: AbortOptions): Promise<void> {
    await this.conn.close(options);
  }

  sendReset(err: Error): void {
    this.conn.abort(err);
  }

  // Flow control only: a connection whose readable end has closed (which this stream hears of
  // a moment later) has nothing left to pause or resume, and throws if asked.
  sendPause(): void {
    try {
      this.conn.pause();
    } catch {
      // ended already
    }
  }

  sendResume(): void {
    try {
      this.conn.resume();
    } catch {
      // ended already
    }
  }
}
