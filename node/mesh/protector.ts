// The connection protector of the mesh: a knock, then @libp2p/pnet's pre-shared-key stream.
//
// However a connection ends during either step, protect() rejects once (the upgrader awaits
// that) and the connection is aborted; no other promise is left rejecting with nobody
// waiting. An agent died of exactly that: pnet's nonce read was started, then resume() threw
// on a relayed stream reset right behind the knock, and the read's rejection ("stream closed
// after reading 0/24 bytes") was an unhandled rejection, which ends a Node process.
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import type { AbortOptions, ConnectionProtector, MessageStream, StreamMessageEvent } from '@libp2p/interface';
import { preSharedKey } from '@libp2p/pnet';
import { MeshccError } from '../../protocol/errors.js';
import type { Logger } from '../log.js';
import { swarmKey } from './keys.js';

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

function knockFailed(message: string): MeshccError {
  return new MeshccError('knock-failed', message);
}

/** Read exactly n bytes from a raw connection, leaving anything after them unread (paused). */
function readExactly(conn: MessageStream, n: number, signal: AbortSignal): Promise<Uint8Array> {
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
    const onEnd = () => fail(knockFailed(`connection closed after ${have}/${n} bytes of the mesh knock`));
    const onAbort = () => fail(knockFailed('no mesh knock in time'));
    if (signal.aborted) return onAbort();
    if (conn.status !== 'open') return onEnd();
    conn.addEventListener('message', onMessage);
    conn.addEventListener('close', onEnd);
    conn.addEventListener('remoteCloseWrite', onEnd);
    signal.addEventListener('abort', onAbort);
  });
}

/**
 * Wraps @libp2p/pnet's PSK protector with a knock: the dialer first sends 16 random bytes and
 * their HMAC under a key derived from the mesh key; the listener checks it before writing
 * anything (pnet alone would answer any TCP client with its 24-byte nonce). A bad or missing
 * knock closes the connection silently.
 */
class MeshProtector implements ConnectionProtector {
  readonly [Symbol.toStringTag] = 'meshcc/knock+pnet';

  constructor(
    private readonly pnet: ConnectionProtector,
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

  private async protectOutbound(conn: MessageStream, options?: AbortOptions): Promise<MessageStream> {
    if (!conn.send(knockWith(this.knockKey))) await conn.onDrain(options);
    return await this.pnet.protect(conn, options);
  }

  private async protectInbound(conn: MessageStream, options?: AbortOptions): Promise<MessageStream> {
    const timeout = AbortSignal.timeout(this.timeoutMs);
    const signal = options?.signal ? AbortSignal.any([options.signal, timeout]) : timeout;
    const knock = await readExactly(conn, KNOCK_BYTES, signal);
    const expected = knockTag(this.knockKey, knock.subarray(0, KNOCK_NONCE));
    if (!timingSafeEqual(expected, knock.subarray(KNOCK_NONCE))) {
      const err = new MeshccError('not-a-member', 'inbound connection does not know the mesh key');
      this.log.debug({ err: err.message }, 'refused an inbound connection');
      throw err;
    }
    // pnet's reader attaches its listener synchronously inside protect(); resume after
    // that so bytes that arrived behind the knock reach it.
    const protecting = this.pnet.protect(conn, options);
    try {
      conn.resume();
    } catch (err) {
      // The connection ended right behind the knock (resume() throws on a closed stream).
      // Aborting it fails pnet's read at once, and that failure is the one reported below:
      // `protecting` is awaited on every path.
      conn.abort(err as Error);
    }
    return await protecting;
  }
}

/** The connectionProtector of a mesh node: knock + pnet under keys derived from the mesh key. */
export function meshProtector(meshKey: Uint8Array, timeoutMs: number, log: Logger): () => ConnectionProtector {
  const pnetFactory = preSharedKey({ psk: swarmKey(meshKey) });
  const knockKey = knockKeyOf(meshKey);
  return (): ConnectionProtector => new MeshProtector(pnetFactory(), knockKey, timeoutMs, log);
}
