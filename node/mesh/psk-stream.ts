// The private network's stream: libp2p's PSK v1 (what @libp2p/pnet speaks, byte for byte, so
// members still running it interoperate). After each side has sent a random 24-byte nonce,
// every byte is XORed with XSalsa20 under the pre-shared key: our nonce's keystream on the way
// out, the peer's on the way in.
//
// Why not @libp2p/pnet's own stream: its cipher, xsalsa20's WebAssembly build, gives every
// cipher a 64-byte slot of one memory shared by all connections until finalize(), which pnet
// never calls. Each connection that got past the nonces took 128 bytes of that memory for
// good, towards the limit where growing it throws out of a socket's data handler and ends the
// agent (connection-chaos.test.ts killed an agent this way after about 7,000 connections).
// Here both ciphers are released when the stream ends, nothing reaches a released cipher, and
// a cipher that throws ends this stream only. (The same cipher in plain JavaScript,
// @noble/ciphers' Salsa20, took twice the CPU: 7.1-7.7 s against 3.1-3.6 s to carry 256 MB
// between two nodes.)
import { createRequire } from 'node:module';
import type { AbortOptions, MultiaddrConnection } from '@libp2p/interface';
import { AbstractMultiaddrConnection, type SendResult } from '@libp2p/utils';
import { MeshccError } from '../../protocol/errors.js';

export const NONCE_BYTES = 24;
/** Larger writes go out in pieces of this size: one cipher call, and the shared memory never
 *  needs to grow for one large write. */
const MAX_CHUNK_BYTES = 256 * 1024;

interface Cipher {
  update(input: Uint8Array): Uint8Array;
  finalize(): void;
}

const require = createRequire(import.meta.url);
/** XSalsa20 over a 24-byte nonce and a 32-byte key, one keystream across update() calls. */
const xsalsa20 = require('xsalsa20') as (nonce: Uint8Array, key: Uint8Array) => Cipher;

/** A byte array or a list of them, as libp2p's streams carry data. */
type Bytes = Uint8Array | { subarray(): Uint8Array };

function contiguous(data: Bytes): Uint8Array {
  return data instanceof Uint8Array ? data : data.subarray();
}

export class PskStream extends AbstractMultiaddrConnection {
  private readonly inbound: Cipher;
  private readonly outbound: Cipher;
  private released = false;

  constructor(
    private readonly conn: MultiaddrConnection,
    psk: Uint8Array,
    localNonce: Uint8Array,
    remoteNonce: Uint8Array,
  ) {
    super({ log: conn.log.newScope('pnet'), remoteAddr: conn.remoteAddr, direction: conn.direction, maxMessageSize: MAX_CHUNK_BYTES });
    this.inbound = xsalsa20(remoteNonce, psk);
    this.outbound = xsalsa20(localNonce, psk);
    this.addEventListener('close', () => this.release());
    // These run inside the connection's event dispatch, where a throw would be an uncaught
    // exception: whatever fails ends this stream instead.
    conn.addEventListener('message', (evt) => {
      if (this.released) return;
      try {
        const data = evt.data;
        if (data instanceof Uint8Array) this.onData(this.inbound.update(data));
        else for (const piece of data) this.onData(this.inbound.update(piece));
      } catch (err) {
        this.abort(err as Error);
      }
    });
    conn.addEventListener('drain', () => this.onMuxerDrain());
    conn.addEventListener('close', (evt) => {
      if (evt.error == null) this.onTransportClosed();
      else if (evt.local) this.abort(evt.error);
      else this.onRemoteReset();
      // A stream already closed dispatches no second 'close'.
      this.release();
    });
  }

  sendData(data: Bytes): SendResult {
    if (this.released) throw new MeshccError('stream-closed', 'the private network stream has ended');
    const bytes = contiguous(data);
    return { sentBytes: bytes.byteLength, canSendMore: this.conn.send(this.outbound.update(bytes)) };
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

  private release(): void {
    if (this.released) return;
    this.released = true;
    // Called from event listeners, where a throw would end the process: a cipher that cannot
    // be released costs its 64 bytes, nothing more.
    try {
      this.inbound.finalize();
      this.outbound.finalize();
    } catch (err) {
      this.log.error('could not release the private network ciphers - %e', err);
    }
  }
}
