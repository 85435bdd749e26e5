// The wire of /meshcc/cache/2: requests ride one session per member (job-session.ts), each
// numbered. `get` asks an owner for an entry and
// is answered with the entry and its outputs' bytes in one message (a hit is one round trip);
// `put` hands an owner an entry with its bytes. The receiver checks every output against its
// hash and records the connection's peer as the writer, whatever the message says.
import { z } from 'zod';
import { CacheEntry } from './entry.js';

export const CACHE_PROTOCOL = '/meshcc/cache/2';
/** An entry with its outputs travels in one frame. */
export const CACHE_FRAME_BYTES = 256 * 1024 * 1024;

const key = z.string().regex(/^[0-9a-f]{64}$/);
const bytes = z.custom<Uint8Array>((v) => v instanceof Uint8Array, 'must be bytes');

export const CacheRequest = z.discriminatedUnion('t', [
  z.object({ t: z.literal('get'), key }),
  z.object({ t: z.literal('put'), entry: CacheEntry, data: z.array(bytes) }),
]);
export type CacheRequest = z.infer<typeof CacheRequest>;

export const CacheReply = z.discriminatedUnion('t', [
  z.object({ t: z.literal('hit'), entry: CacheEntry, data: z.array(bytes) }),
  z.object({ t: z.literal('miss') }),
  z.object({ t: z.literal('stored') }),
  z.object({ t: z.literal('refused'), reason: z.string().max(200) }),
]);
export type CacheReply = z.infer<typeof CacheReply>;
