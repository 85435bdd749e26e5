// Every meshcc byte stream (the client socket now, libp2p streams later) carries the
// same frames: a 4-byte big-endian length, then one msgpack value of that length.
// Plain msgpack maps (no msgpackr records) so that the C client can read and write them.
import { Packr } from 'msgpackr';
import { ProtocolError } from './errors.js';

const packr = new Packr({ useRecords: false, moreTypes: false, mapsAsObjects: true });

export const FRAME_HEADER_BYTES = 4;

export function encodeFrame(value: unknown): Buffer {
  const body = packr.pack(value);
  const frame = Buffer.allocUnsafe(FRAME_HEADER_BYTES + body.length);
  frame.writeUInt32BE(body.length, 0);
  body.copy(frame, FRAME_HEADER_BYTES);
  return frame;
}

/** One msgpack value without a frame header (a payload inside a message). */
export function encodeBody(value: unknown): Buffer {
  return packr.pack(value);
}

export function decodeBody(body: Uint8Array): unknown {
  try {
    return packr.unpack(body);
  } catch (err) {
    throw new ProtocolError('bad-message', `message is not valid msgpack (${(err as Error).message})`);
  }
}

function formatBytes(n: number): string {
  if (n >= 1024 * 1024) return `${(n / (1024 * 1024)).toFixed(n % (1024 * 1024) === 0 ? 0 : 1)} MiB`;
  if (n >= 1024) return `${(n / 1024).toFixed(0)} KiB`;
  return `${n} B`;
}

/**
 * Incremental frame reader. Push chunks as they arrive; complete frames come out as
 * decoded values. A frame larger than maxFrameBytes is rejected from its header alone,
 * before any of its body is buffered.
 */
export class FrameDecoder {
  private chunks: Buffer[] = [];
  private buffered = 0;

  constructor(private readonly maxFrameBytes: number) {}

  push(chunk: Buffer): unknown[] {
    return this.pushSized(chunk).map((f) => f.value);
  }

  /** Like push, with each frame's size on the wire (header included). */
  pushSized(chunk: Buffer): { value: unknown; bytes: number }[] {
    this.chunks.push(chunk);
    this.buffered += chunk.length;
    const values: { value: unknown; bytes: number }[] = [];
    for (;;) {
      if (this.buffered < FRAME_HEADER_BYTES) break;
      const head = this.peek(FRAME_HEADER_BYTES);
      const length = head.readUInt32BE(0);
      if (length > this.maxFrameBytes) {
        throw new ProtocolError(
          'frame-too-large',
          `frame of ${formatBytes(length)} exceeds the ${formatBytes(this.maxFrameBytes)} limit`,
        );
      }
      if (this.buffered < FRAME_HEADER_BYTES + length) break;
      const all = this.take(FRAME_HEADER_BYTES + length);
      values.push({ value: decodeBody(all.subarray(FRAME_HEADER_BYTES)), bytes: FRAME_HEADER_BYTES + length });
    }
    return values;
  }

  private peek(n: number): Buffer {
    if (this.chunks[0]!.length < n) this.chunks = [Buffer.concat(this.chunks)];
    return this.chunks[0]!.subarray(0, n);
  }

  private take(n: number): Buffer {
    const all = this.chunks.length === 1 ? this.chunks[0]! : Buffer.concat(this.chunks);
    const taken = all.subarray(0, n);
    const rest = all.subarray(n);
    this.chunks = rest.length ? [rest] : [];
    this.buffered = rest.length;
    return taken;
  }
}
