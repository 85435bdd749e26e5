// A libp2p stream carrying meshcc frames, read one message at a time with a deadline,
// written with back-pressure (wait for `drain`), and counting the bytes each way.
import type { Stream } from '@libp2p/interface';
import { MeshccError } from '../../protocol/errors.js';
import { encodeFrame, FrameDecoder } from '../../protocol/framing.js';

export class FramedStream {
  private readonly decoder: FrameDecoder;
  private readonly queued: { value: unknown; bytes: number }[] = [];
  private readonly source: AsyncIterator<unknown>;
  private ended = false;
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

  /** Several messages in one write: every write costs a muxer frame, an encryption, a system
   *  call and, on the other side, a window update, whatever its size. */
  async sendAll(values: unknown[]): Promise<void> {
    if (values.length === 1) return this.send(values[0]);
    await this.write(Buffer.concat(values.map(encodeFrame)));
  }

  /** Frames already encoded (several at once), with back-pressure. */
  async writeBytes(bytes: Buffer): Promise<void> {
    await this.write(bytes);
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
