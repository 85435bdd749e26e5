// The connection protector of the mesh: a knock, then the private network (libp2p PSK v1: a
// nonce each way, then XSalsa20 under a key derived from the mesh key; psk-stream.ts).
//
// However a connection ends during either step, protect() rejects once (the upgrader awaits
// that) and the connection is aborted; no other promise is left rejecting with nobody
// waiting. An agent died of exactly that when this protector wrapped @libp2p/pnet's: pnet's
// nonce read was started, then resume() threw on a relayed stream reset right behind the
// knock, and the read's rejection ("stream closed after reading 0/24 bytes") was an unhandled
// rejection, which ends a Node process. Here every read is one awaited promise, and the
// stream is built only once both nonces are in.
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import type { AbortOptions, ConnectionProtector, MessageStream, MultiaddrConnection, StreamMessageEvent } from '@libp2p/interface';
import { MeshccError } from '../../protocol/errors.js';
import type { Logger } from '../log.js';
import { pnetKey } from './keys.js';
import { NONCE_BYTES, PskStream } from './psk-stream.js';

const KNOCK_NONCE = 16;
const KNOCK_TAG = 16;
export const KNOCK_BYTES = KNOCK_NONCE + KNOCK_TAG;

function knockKeyOf(meshKey: Uint8Array): Buffer {
  return createHmac('sha256', Buffer.from(meshKey)).update('meshcc knock key').digest();
}

function knockTag(knockKey: Buffer, nonce: Uint8Array): Buffer {
  return createHmac('sha256', knockKey).update('meshcc knock v1\0').update(nonce).digest().subarray(0, KNOCK_TAG);
}

function knockWith(knockKey: Buffer): Buffer {
  const nonce = randomBytes(KNOCK_NONCE);
  return Buffer.concat([nonce, knockTag(knockKey, nonce)]);
}

/** A fresh knock for this mesh key: the first bytes a dialler sends. */
export function createKnock(meshKey: Uint8Array): Buffer {
  return knockWith(knockKeyOf(meshKey));
}

function chunkBytes(evt: StreamMessageEvent): Uint8Array {
  const data = evt.data;
  return data instanceof Uint8Array ? data : data.subarray();
}

function protectFailed(message: string): MeshccError {
  return new MeshccError('knock-failed', message);
}

/** Read exactly n bytes (`what`) from a raw connection, leaving it paused with anything after them unread. */
function readExactly(conn: MessageStream, n: number, what: string, signal: AbortSignal): Promise<Uint8Array> {
  return new Promise((resolve, reject) => {
    const chunks: Uint8Array[] = [];
    let have = 0;
    const cleanup = () => {
      conn.removeEventListener('message', onMessage);
      conn.removeEventListener('close', onEnd);
      conn.removeEventListener('remoteCloseWrite', onEnd);
      signal.removeEventListener('abort', onAbort);
    };
    const fail = (err: Error) => {
      cleanup();
      reject(err);
    };
    // A listener that throws is an uncaught exception (libp2p's streams are EventTargets):
    // everything in here that can throw is caught.
    const onMessage = (evt: StreamMessageEvent) => {
      try {
        const chunk = chunkBytes(evt);
        chunks.push(chunk);
        have += chunk.length;
        if (have < n) return;
        cleanup();
        conn.pause();
        const all = Buffer.concat(chunks);
        const rest = all.subarray(n);
        if (rest.length) conn.unshift(rest);
        resolve(all.subarray(0, n));
      } catch (err) {
        fail(err as Error);
      }
    };
    const onEnd = () => fail(protectFailed(`connection closed after ${have}/${n} bytes of the ${what}`));
    const onAbort = () => fail(protectFailed(`no ${what} in time`));
    if (signal.aborted) return onAbort();
    if (conn.status !== 'open') return onEnd();
    conn.addEventListener('message', onMessage);
    conn.addEventListener('close', onEnd);
    conn.addEventListener('remoteCloseWrite', onEnd);
    signal.addEventListener('abort', onAbort);
    try {
      // A previous read left it paused, maybe with our bytes already buffered.
      conn.resume();
    } catch (err) {
      fail(err as Error);
    }
  });
}

async function send(conn: MessageStream, bytes: Uint8Array, options?: AbortOptions): Promise<void> {
  if (!conn.send(bytes)) await conn.onDrain(options);
}

/**
 * The dialer first sends 16 random bytes and their HMAC under a key derived from the mesh key;
 * the listener checks it before writing anything (the private network alone would answer any
 * TCP client with its nonce). A bad or missing knock closes the connection silently.
 */
class MeshProtector implements ConnectionProtector {
  readonly [Symbol.toStringTag] = 'meshcc/knock+pnet';

  constructor(
    private readonly psk: Uint8Array,
    private readonly knockKey: Buffer,
    private readonly timeoutMs: number,
    private readonly log: Logger,
  ) {}

  async protect(conn: MessageStream, options?: AbortOptions): Promise<MessageStream> {
    try {
      return conn.direction === 'outbound' ? await this.protectOutbound(conn, options) : await this.protectInbound(conn, options);
    } catch (err) {
      // Whatever failed, this connection is over; its transport would close it too, but a
      // relayed one only once the relay stream's handler returns.
      conn.abort(err instanceof Error ? err : new Error(String(err)));
      throw err;
    }
  }

  private deadline(options?: AbortOptions): AbortSignal {
    const timeout = AbortSignal.timeout(this.timeoutMs);
    return options?.signal ? AbortSignal.any([options.signal, timeout]) : timeout;
  }

  private async protectOutbound(conn: MessageStream, options?: AbortOptions): Promise<MessageStream> {
    const localNonce = randomBytes(NONCE_BYTES);
    // The knock and our nonce leave in one write; the listener reads them in turn.
    await send(conn, Buffer.concat([knockWith(this.knockKey), localNonce]), options);
    const remoteNonce = await readExactly(conn, NONCE_BYTES, 'private network nonce', this.deadline(options));
    return this.privateStream(conn, localNonce, remoteNonce);
  }

  private async protectInbound(conn: MessageStream, options?: AbortOptions): Promise<MessageStream> {
    // The dialer sends its knock and nonce together: one deadline for both.
    const signal = this.deadline(options);
    const knock = await readExactly(conn, KNOCK_BYTES, 'mesh knock', signal);
    const expected = knockTag(this.knockKey, knock.subarray(0, KNOCK_NONCE));
    if (!timingSafeEqual(expected, knock.subarray(KNOCK_NONCE))) {
      const err = new MeshccError('not-a-member', 'inbound connection does not know the mesh key');
      this.log.debug({ err: err.message }, 'refused an inbound connection');
      throw err;
    }
    const localNonce = randomBytes(NONCE_BYTES);
    await send(conn, localNonce, options);
    const remoteNonce = await readExactly(conn, NONCE_BYTES, 'private network nonce', signal);
    return this.privateStream(conn, localNonce, remoteNonce);
  }

  private privateStream(conn: MessageStream, localNonce: Uint8Array, remoteNonce: Uint8Array): MessageStream {
    // A stream over a connection that already ended would never hear of its end (and never
    // release its ciphers).
    if (conn.status !== 'open') throw protectFailed('connection closed right after the private network nonces');
    // The upgrader only ever protects multiaddr connections (TCP or relayed).
    const stream = new PskStream(conn as MultiaddrConnection, this.psk, localNonce, remoteNonce);
    try {
      // What came behind the nonce is buffered in the paused connection: the stream takes it now.
      conn.resume();
    } catch (err) {
      stream.abort(err as Error);
      throw err;
    }
    return stream;
  }
}

/** The connectionProtector of a mesh node: knock + private network under keys derived from the mesh key. */
export function meshProtector(meshKey: Uint8Array, timeoutMs: number, log: Logger): () => ConnectionProtector {
  const psk = pnetKey(meshKey);
  const knockKey = knockKeyOf(meshKey);
  return (): ConnectionProtector => new MeshProtector(psk, knockKey, timeoutMs, log);
}
