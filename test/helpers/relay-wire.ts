// Circuit relay v2 messages by hand (the package does not export its protobuf codecs), and
// reading length-prefixed replies off a libp2p stream: enough to play either end of a relay
// and to stop at any byte.
import type { Stream } from '@libp2p/interface';

export const RELAY_HOP = '/libp2p/circuit/relay/0.2.0/hop';
export const RELAY_STOP = '/libp2p/circuit/relay/0.2.0/stop';

/** Relay status codes (relay v2's Status enum). */
export const RelayStatus = { OK: 100, NO_RESERVATION: 204 } as const;

export function varint(n: number): Buffer {
  const out: number[] = [];
  while (n > 127) {
    out.push((n & 127) | 128);
    n >>>= 7;
  }
  out.push(n);
  return Buffer.from(out);
}

function bytesField(field: number, bytes: Uint8Array): Buffer {
  return Buffer.concat([varint((field << 3) | 2), varint(bytes.length), bytes]);
}

function numberField(field: number, value: number): Buffer {
  return Buffer.concat([varint(field << 3), varint(value)]);
}

/** A protobuf message with its varint length in front, as relay v2 writes them. */
export function lengthPrefixed(message: Buffer): Buffer {
  return Buffer.concat([varint(message.length), message]);
}

function peerField(field: number, peerId: Uint8Array): Buffer {
  return bytesField(field, bytesField(1, peerId));
}

/** HopMessage RESERVE (a peer asks the relay to listen for it). */
export function hopReserve(): Buffer {
  return lengthPrefixed(numberField(1, 0));
}

/** HopMessage CONNECT to a peer (its multihash bytes). */
export function hopConnect(peerId: Uint8Array): Buffer {
  return lengthPrefixed(Buffer.concat([numberField(1, 1), peerField(2, peerId)]));
}

/** StopMessage CONNECT: the relay tells a peer that `from` (multihash bytes) dials it. */
export function stopConnect(from: Uint8Array): Buffer {
  return lengthPrefixed(Buffer.concat([numberField(1, 0), peerField(2, from)]));
}

/** StopMessage STATUS, as the dialled peer answers the relay. */
export function stopStatus(status: number): Buffer {
  return lengthPrefixed(Buffer.concat([numberField(1, 1), numberField(4, status)]));
}

function readVarint(bytes: Buffer, offset: number): { value: number; next: number } | undefined {
  let value = 0;
  for (let shift = 0, i = offset; i < bytes.length && shift < 35; i++, shift += 7) {
    value += (bytes[i]! & 127) * 2 ** shift;
    if (bytes[i]! < 128) return { value, next: i + 1 };
  }
  return undefined;
}

/** The status field (HopMessage field 5, StopMessage field 4) of a decoded relay message. */
export function statusOf(message: Buffer, field: 4 | 5): number | undefined {
  for (let i = 0; i < message.length; ) {
    const key = readVarint(message, i);
    if (!key) return undefined;
    const wire = key.value & 7;
    if (wire === 0) {
      const v = readVarint(message, key.next);
      if (!v) return undefined;
      if (key.value >>> 3 === field) return v.value;
      i = v.next;
    } else if (wire === 2) {
      const len = readVarint(message, key.next);
      if (!len) return undefined;
      i = len.next + len.value;
    } else return undefined;
  }
  return undefined;
}

/**
 * Reads length-prefixed messages off a stream one at a time; what follows the last message
 * read (the relayed connection's first bytes) stays in `rest`.
 */
export class LengthPrefixedReader {
  private buffered = Buffer.alloc(0);
  private readonly source: AsyncIterator<unknown>;

  constructor(stream: Stream) {
    this.source = (stream as unknown as AsyncIterable<unknown>)[Symbol.asyncIterator]();
  }

  get rest(): Buffer {
    return this.buffered;
  }

  /** The next message, or undefined if the stream ended first. */
  async next(): Promise<Buffer | undefined> {
    for (;;) {
      const length = readVarint(this.buffered, 0);
      if (length && this.buffered.length >= length.next + length.value) {
        const message = this.buffered.subarray(length.next, length.next + length.value);
        this.buffered = this.buffered.subarray(length.next + length.value);
        return message;
      }
      const { done, value } = await this.source.next();
      if (done) return undefined;
      const chunk = value instanceof Uint8Array ? value : (value as { subarray(): Uint8Array }).subarray();
      this.buffered = Buffer.concat([this.buffered, chunk]);
    }
  }
}
