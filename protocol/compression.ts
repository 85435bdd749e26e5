// Compression of what crosses the mesh, chosen by measurement (bench/compression.ts, on this
// machine's headers and -g objects, each file compressed on its own as the mesh sends them):
// brotli at quality 1 was the fastest built-in codec end to end on both a 100 Mbit/s LAN and
// a 20 Mbit/s link (sources to 26 %, objects to 23 %); zstd from a native npm package was only
// 10-15 % faster, not worth a native dependency. Job offers use raw deflate instead, because
// it takes a preset dictionary (the previous offer), which Node 20's brotli does not.
// A chunk that does not shrink travels as it is.
import { promisify } from 'node:util';
import zlib from 'node:zlib';
import { ProtocolError } from './errors.js';

const brotliAsync = promisify(zlib.brotliCompress);
const unbrotliAsync = promisify(zlib.brotliDecompress);
const deflateAsync = promisify(zlib.deflateRaw);
const inflateAsync = promisify(zlib.inflateRaw);
/** Below this, compression costs more than it saves. */
const MIN_BYTES = 256;
/** Up to this many input bytes a codec runs on the calling thread: an asynchronous call costs
 *  the event loop ~200 µs of set-up whatever the size, a synchronous one 40-50 µs for a 6 KB
 *  object (brotli quality 1, measured here); larger inputs go to the thread pool. */
const INLINE_BYTES = 32 * 1024;

type Options = zlib.BrotliOptions & zlib.ZlibOptions;
const run =
  (inline: (data: Uint8Array, options: Options) => Buffer, pooled: (data: Uint8Array, options: Options) => Promise<Buffer>) =>
  (data: Uint8Array, options: Options): Promise<Buffer> => {
    if (data.length > INLINE_BYTES) return pooled(data, options);
    try {
      return Promise.resolve(inline(data, options));
    } catch (err) {
      return Promise.reject(err as Error);
    }
  };
const brotli = run(zlib.brotliCompressSync, brotliAsync);
const unbrotli = run(zlib.brotliDecompressSync, unbrotliAsync);
const deflate = run(zlib.deflateRawSync, deflateAsync);
const inflate = run(zlib.inflateRawSync, inflateAsync);

export interface PackedChunk {
  z: boolean;
  data: Uint8Array;
}

/** Brotli quality over a slow link: kernel headers to 27.7 % instead of 33.8 % at quality 1,
 *  still over 20 MB/s on one core here, far above a 20 Mbit/s uplink (quality 9 and up
 *  compress at 1 MB/s or less: slower than such a link sends). */
export const FAR_QUALITY = 5;

/** Brotli quality over a near link: what a job's chunks are packed at unless the link is slow. */
export const NEAR_QUALITY = 1;

/** Compresses one chunk of a file (an input, an output) with brotli (NEAR_QUALITY unless the link is slow). */
export async function packChunk(data: Uint8Array, quality = NEAR_QUALITY): Promise<PackedChunk> {
  if (data.length < MIN_BYTES) return { z: false, data };
  return smaller(data, await brotli(data, brotliOptions(quality, data.length)));
}

/** packChunk on the calling thread: for a worker thread, where it blocks nothing (the walk packs
 *  a unit's fresh source there, off the agent's event loop). */
export function packChunkSync(data: Uint8Array, quality = NEAR_QUALITY): PackedChunk {
  if (data.length < MIN_BYTES) return { z: false, data };
  return smaller(data, zlib.brotliCompressSync(data, brotliOptions(quality, data.length)));
}

function brotliOptions(quality: number, size: number): Options {
  return { params: { [zlib.constants.BROTLI_PARAM_QUALITY]: quality, [zlib.constants.BROTLI_PARAM_SIZE_HINT]: size } };
}

/** The packed form when it saves bytes; a chunk that does not shrink travels as it is. */
function smaller(data: Uint8Array, packed: Buffer): PackedChunk {
  return packed.length < data.length ? { z: true, data: packed } : { z: false, data };
}

/** Inflates a chunk, refusing to produce more than `maxBytes` (a hostile peer's bomb). */
export async function unpackChunk(chunk: PackedChunk, maxBytes: number): Promise<Buffer> {
  if (!chunk.z) return asIs(chunk, maxBytes);
  try {
    return await unbrotli(chunk.data, { maxOutputLength: maxBytes });
  } catch (err) {
    throw new ProtocolError('bad-chunk', `a compressed chunk does not decompress: ${(err as Error).message}`);
  }
}

/** Compresses a job offer; with a dictionary (an offer both sides hold) what they share costs nearly nothing. */
export async function packOffer(data: Uint8Array, dictionary?: Uint8Array): Promise<PackedChunk> {
  return smaller(data, await deflate(data, dictionary ? { level: 6, dictionary } : { level: 6 }));
}

export async function unpackOffer(chunk: PackedChunk, maxBytes: number, dictionary?: Uint8Array): Promise<Buffer> {
  if (!chunk.z) return asIs(chunk, maxBytes);
  try {
    return await inflate(chunk.data, dictionary ? { maxOutputLength: maxBytes, dictionary } : { maxOutputLength: maxBytes });
  } catch (err) {
    throw new ProtocolError('bad-chunk', `a compressed offer does not inflate: ${(err as Error).message}`);
  }
}

function asIs(chunk: PackedChunk, maxBytes: number): Buffer {
  if (chunk.data.length > maxBytes) throw new ProtocolError('too-large', `chunk of ${chunk.data.length} bytes exceeds ${maxBytes}`);
  return Buffer.from(chunk.data.buffer, chunk.data.byteOffset, chunk.data.length);
}
