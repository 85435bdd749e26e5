// One cached result as it is kept and sent: the compile's exit code, stdout and stderr, and
// every output file by path and content hash (the bytes live in the content-addressed store
// and travel beside the entry). Every entry names the member that compiled it.
import { z } from 'zod';
import { decodeBody, encodeBody } from '../../protocol/framing.js';
import { LIMITS, parseMessage } from '../../protocol/messages.js';

const sha256Hex = z.string().regex(/^[0-9a-f]{64}$/);
const absolutePath = z.string().min(1).max(LIMITS.pathBytes).startsWith('/');
const bytes = z.custom<Uint8Array>((v) => v instanceof Uint8Array, 'must be bytes');

/** The diagnostics of one compile are kept whole up to this size; a larger result is not cached. */
export const MAX_DIAGNOSTIC_BYTES = 4 * 1024 * 1024;

export const CachedOutput = z.object({ path: absolutePath, hash: sha256Hex, size: z.number().int().nonnegative(), executable: z.boolean() });
export type CachedOutput = z.infer<typeof CachedOutput>;

export const CacheEntry = z.object({
  key: sha256Hex,
  /** Peer id of the member whose compile this is. */
  writer: z.string().min(1).max(128),
  writtenAt: z.number().int().nonnegative(),
  exit: z.number().int(),
  stdout: bytes.refine((b) => b.length <= MAX_DIAGNOSTIC_BYTES, 'stdout too large'),
  stderr: bytes.refine((b) => b.length <= MAX_DIAGNOSTIC_BYTES, 'stderr too large'),
  outputs: z.array(CachedOutput).min(1).max(LIMITS.outputsPerJob),
});
export type CacheEntry = z.infer<typeof CacheEntry>;

export function encodeEntry(entry: CacheEntry): Buffer {
  return encodeBody(entry);
}

export function decodeEntry(data: Uint8Array): CacheEntry {
  return parseMessage(CacheEntry, decodeBody(data));
}

/** The bytes an entry accounts for: its outputs and diagnostics. */
export function entryBytes(entry: CacheEntry): number {
  return entry.outputs.reduce((n, o) => n + o.size, 0) + entry.stdout.length + entry.stderr.length;
}
