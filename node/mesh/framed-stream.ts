// A libp2p stream carrying meshcc frames, read one message at a time with a deadline,
// written with back-pressure (wait for `drain`), and counting the bytes each way. Streams
// that carry many small messages (job sessions, the scheduler's) send them `soon`: everything
// queued in one turn of the event loop leaves in one write, since every write costs a muxer
// frame, an encryption, a system call and a window update on the other side, whatever its size.
import type { Stream } from '@libp2p/interface';
import { MeshccError } from '../../protocol/errors.js';
import { encodeFrame, FrameDecoder } from '../../protocol/framing.js';

/** Bytes of frames one write gathers at most. */
const SOON_BATCH_BYTES = 4 * 1024 * 1024;

export class FramedStream {
  private readonly decoder: FrameDecoder;
  private readonly queued: { value: unknown; bytes: number }[] = [];
  private readonly source: AsyncIterator<unknown>;
  private ended = false;
  /** Frames queued by sendSoon, the promises waiting for them, and the flush under way. */
  private soon: Buffer[] = [];
  private soonWaiters: { resolve: () => void; reject: (err: Error) => void }[] = [];
  private flushing?: Promise<void>;
  bytesIn = 0;
  bytesOut = 0;

  constructor(
    readonly stream: Stream,
    maxFrameBytes: number,
  ) {
    this.decoder = new FrameDecoder(maxFrameBytes);
    this.source = (stream as unknown as AsyncIterable<unknown>)[Symbol.asyncIterator]();
  }

  async send(value: unknown): Promise<void> {
    await this.write(encodeFrame(value));
  }

  /** Several messages in one write. */
  async sendAll(values: unknown[]): Promise<void> {
    if (values.length === 1) return this.send(values[0]);
    await this.write(Buffer.concat(values.map(encodeFrame)));
  }

  /** Messages that leave with everything else queued in this turn of the event loop; resolves
   *  once they are written. */
  sendSoon(value: unknown): Promise<void> {
    return this.sendSoonEncoded([encodeFrame(value)]);
  }

  /** Frames already encoded, sent like sendSoon. */
  sendSoonEncoded(frames: Buffer[]): Promise<void> {
    if (this.stream.writeStatus !== 'writable') return Promise.reject(new MeshccError('stream-closed', 'the stream closed before the message was sent'));
    this.soon.push(...frames);
    const written = new Promise<void>((resolve, reject) => this.soonWaiters.push({ resolve, reject }));
    if (!this.flushing) this.flushing = new Promise<void>((resolve) => setImmediate(resolve)).then(() => this.flushSoon());
    return written;
  }

  private async flushSoon(): Promise<void> {
    try {
      while (this.soon.length > 0) {
        let count = 0;
        let bytes = 0;
        while (count < this.soon.length && (count === 0 || bytes + this.soon[count]!.length <= SOON_BATCH_BYTES)) bytes += this.soon[count++]!.length;
        const batch = this.soon.splice(0, count);
        // Every waiter so far is answered by this write, or by an earlier one.
        const waiters = this.soon.length === 0 ? this.soonWaiters.splice(0) : [];
        try {
          await this.write(batch.length === 1 ? batch[0]! : Buffer.concat(batch, bytes));
        } catch (err) {
          for (const w of [...waiters, ...this.soonWaiters.splice(0)]) w.reject(err as Error);
          this.soon = [];
          return;
        }
        for (const w of waiters) w.resolve();
      }
    } finally {
      this.flushing = undefined;
    }
  }

  private async write(bytes: Buffer): Promise<void> {
    this.bytesOut += bytes.length;
    if (this.stream.writeStatus !== 'writable') throw new MeshccError('stream-closed', 'the stream closed before the message was sent');
    if (!this.stream.send(bytes)) await this.drained();
  }

  private drained(): Promise<void> {
    return new Promise((resolve, reject) => {
      const done = () => {
        this.stream.removeEventListener('drain', onDrain);
        this.stream.removeEventListener('close', onClose);
      };
      const onDrain = () => {
        done();
        resolve();
      };
      const onClose = () => {
        done();
        reject(new MeshccError('stream-closed', 'the stream closed while sending'));
      };
      this.stream.addEventListener('drain', onDrain);
      this.stream.addEventListener('close', onClose);
    });
  }

  /** The next message; rejects on timeout, on a malformed frame, or when the stream ends. */
  async receive(timeoutMs: number, signal?: AbortSignal): Promise<unknown> {
    let timer: NodeJS.Timeout | undefined;
    let onAbort: (() => void) | undefined;
    const deadline = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new MeshccError('timeout', `no answer within ${Math.round(timeoutMs / 1000)} s`)), timeoutMs);
      onAbort = () => reject(signal?.reason instanceof Error ? signal.reason : new MeshccError('aborted', 'aborted'));
      signal?.addEventListener('abort', onAbort, { once: true });
    });
    try {
      return (await Promise.race([this.read(), deadline])).value;
    } finally {
      clearTimeout(timer);
      if (onAbort) signal?.removeEventListener('abort', onAbort);
    }
  }

  /** The next message and its size on the wire, without a deadline. */
  async read(): Promise<{ value: unknown; bytes: number }> {
    while (this.queued.length === 0) {
      if (this.ended) throw new MeshccError('stream-closed', 'the peer closed the stream');
      const { done, value } = await this.source.next();
      if (done) {
        this.ended = true;
        continue;
      }
      const bytes = value instanceof Uint8Array ? value : (value as { subarray(): Uint8Array }).subarray();
      this.bytesIn += bytes.length;
      this.queued.push(...this.decoder.pushSized(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length)));
    }
    return this.queued.shift()!;
  }

  async close(): Promise<void> {
    // What was queued to be sent soon leaves first.
    await this.flushing;
    try {
      await this.stream.close();
    } catch {
      this.stream.abort(new MeshccError('closed', 'closed'));
    }
  }

  abort(reason: Error): void {
    this.stream.abort(reason);
  }
}
