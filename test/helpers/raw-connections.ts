// Raw TCP connections that replay the first bytes of a real dialler's handshake and then end
// or reset: thousands of them cost the test almost nothing and reach every byte of the knock,
// pnet's nonce exchange and Noise's handshake on the agent's side.
import net from 'node:net';
import type { LoopbackHosts } from './tcp-proxy.js';

export const KNOCK_END = 32;
/** pnet's nonce follows the knock. */
export const NONCE_END = KNOCK_END + 24;

export interface RawPlan {
  /** What the connection sends before it ends. */
  bytes: Buffer;
  /** FIN (end) or RST (reset). */
  how: 'end' | 'reset';
  /** Write everything at once, in two halves a turn apart, or one byte per write. */
  writes: 'one' | 'halves' | 'bytewise';
  /** End at once, or once the agent has answered (its 24-byte nonce), or after a short pause. */
  wait: 'none' | 'reply' | 'pause';
}

export interface RawOutcome {
  /** Bytes the agent sent (24, its nonce, once the knock was accepted). */
  received: number;
  /** The agent had not closed the connection 5 s after it ended on our side. */
  leftOpen: boolean;
}

const REPLY_WAIT_MS = 200;
const LEFT_OPEN_MS = 5000;

function writeAll(socket: net.Socket, bytes: Buffer, writes: RawPlan['writes']): Promise<void> {
  if (bytes.length === 0) return Promise.resolve();
  const pieces =
    writes === 'one' ? [bytes] : writes === 'halves' ? [bytes.subarray(0, bytes.length >> 1), bytes.subarray(bytes.length >> 1)] : [...bytes].map((b) => Buffer.from([b]));
  return (async () => {
    for (const piece of pieces) {
      if (piece.length === 0 || socket.destroyed) continue;
      await new Promise<void>((resolve) => socket.write(piece, () => resolve()));
      if (writes !== 'one') await new Promise((r) => setImmediate(r));
    }
  })();
}

export function rawConnection(port: number, localAddress: string, plan: RawPlan): Promise<RawOutcome> {
  return new Promise((resolve) => {
    let received = 0;
    let ended = false;
    let replyWaiter: (() => void) | undefined;
    let leftOpenTimer: NodeJS.Timeout | undefined;
    const socket = net.connect({ port, host: '127.0.0.1', localAddress });
    const end = () => {
      if (ended) return;
      ended = true;
      if (plan.how === 'reset') socket.resetAndDestroy();
      else socket.end();
      leftOpenTimer = setTimeout(() => {
        socket.destroy();
        resolve({ received, leftOpen: true });
      }, LEFT_OPEN_MS);
    };
    socket.on('data', (chunk: Buffer) => {
      received += chunk.length;
      if (received >= NONCE_END - KNOCK_END) replyWaiter?.();
    });
    socket.on('error', () => undefined);
    socket.on('close', () => {
      clearTimeout(leftOpenTimer);
      resolve({ received, leftOpen: false });
    });
    socket.on('connect', () => {
      void writeAll(socket, plan.bytes, plan.writes).then(() => {
        if (plan.wait === 'none' || socket.destroyed) return end();
        if (plan.wait === 'pause') return void setTimeout(end, 3);
        if (plan.bytes.length < KNOCK_END || received >= NONCE_END - KNOCK_END) return end();
        const timer = setTimeout(end, REPLY_WAIT_MS);
        replyWaiter = () => {
          clearTimeout(timer);
          end();
        };
      });
    });
  });
}

/** Runs `work` over `items`, at most `concurrency` at a time (`worker` says which of them runs it). */
export async function inPool<T, R>(items: T[], concurrency: number, work: (item: T, index: number, worker: number) => Promise<R>): Promise<R[]> {
  const results: R[] = new Array(items.length);
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(concurrency, items.length) }, async (_, worker) => {
      while (next < items.length) {
        const i = next++;
        results[i] = await work(items[i]!, i, worker);
      }
    }),
  );
  return results;
}

/** Every prefix length of a handshake (0..n bytes), or every `step`-th past byte `from`. */
export function prefixLengths(handshake: Buffer, sparse?: { from: number; step: number }): number[] {
  const lengths: number[] = [];
  for (let k = 0; k <= handshake.length; k += sparse && k >= sparse.from ? sparse.step : 1) lengths.push(k);
  return lengths;
}

/** Those prefixes of a handshake, each ended in each way; with `corruptLast`, the last byte sent is wrong. */
export function prefixPlans(handshake: Buffer, variants: Omit<RawPlan, 'bytes'>[], corruptLast = false, lengths = prefixLengths(handshake)): RawPlan[] {
  const plans: RawPlan[] = [];
  for (const k of lengths) {
    const bytes = Buffer.from(handshake.subarray(0, k));
    if (corruptLast && k > 0) bytes[k - 1] = bytes[k - 1]! ^ 0x5a;
    for (const variant of variants) plans.push({ bytes, ...variant });
  }
  return plans;
}

/** Every way a raw connection can end here: FIN or RST, after one, two or many writes, at once, after the agent's answer or a pause. */
export function allEndings(): Omit<RawPlan, 'bytes'>[] {
  const endings: Omit<RawPlan, 'bytes'>[] = [];
  for (const how of ['end', 'reset'] as const) {
    for (const writes of ['one', 'halves', 'bytewise'] as const) for (const wait of ['none', 'reply', 'pause'] as const) endings.push({ how, writes, wait });
  }
  return endings;
}

export async function runRawPlans(port: number, hosts: LoopbackHosts, plans: RawPlan[], concurrency: number): Promise<RawOutcome[]> {
  return inPool(plans, concurrency, (plan) => rawConnection(port, hosts.next(), plan));
}
