// Compression of what crosses the mesh: each chunk (a file, or 1 MiB of one) on its own,
// so a peer can store what it receives as it arrives. The codec was chosen by measurement
// (bench/compression.ts); a chunk that does not shrink travels as it is.
import { promisify } from 'node:util';
import zlib from 'node:zlib';
import { ProtocolError } from './errors.js';

const deflate = promisify(zlib.deflateRaw);
const inflate = promisify(zlib.inflateRaw);
const LEVEL = 1;
/** Below this, compression costs more than it saves. */
const MIN_BYTES = 256;

export interface PackedChunk {
  z: boolean;
  data: Uint8Array;
}

/** Compresses a chunk; with a dictionary (bytes both sides hold) what they share costs nearly nothing. */
export async function packChunk(data: Uint8Array, dictionary?: Uint8Array): Promise<PackedChunk> {
  if (data.length < MIN_BYTES && !dictionary) return { z: false, data };
  const packed = await deflate(data, dictionary ? { level: LEVEL, dictionary } : { level: LEVEL });
  return packed.length < data.length ? { z: true, data: packed } : { z: false, data };
}

/** Inflates a chunk, refusing to produce more than `maxBytes` (a hostile peer's bomb). */
export async function unpackChunk(chunk: PackedChunk, maxBytes: number, dictionary?: Uint8Array): Promise<Buffer> {
  if (!chunk.z) {
    if (chunk.data.length > maxBytes) throw new ProtocolError('too-large', `chunk of ${chunk.data.length} bytes exceeds ${maxBytes}`);
    return Buffer.from(chunk.data.buffer, chunk.data.byteOffset, chunk.data.length);
  }
  try {
    return await inflate(chunk.data, dictionary ? { maxOutputLength: maxBytes, dictionary } : { maxOutputLength: maxBytes });
  } catch (err) {
    throw new ProtocolError('bad-chunk', `a compressed chunk does not inflate: ${(err as Error).message}`);
  }
}
