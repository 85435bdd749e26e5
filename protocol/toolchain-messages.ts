// /meshcc/toolchain/1: one stream per toolchain a peer lacks. The peer that needs it asks any
// agent that holds it (the client of a job, or a peer whose advert lists the id); the holder
// answers with the deterministic tarball, brotli-compressed, in chunks. The receiver checks
// the sha256 against the id while it installs, so a holder can waste time but never plant a
// different toolchain.
//
//   fetcher → holder   get       the toolchain id
//   holder → fetcher   tarball   the uncompressed size, then
//                      chunk*    compressed bytes, the last one with `last`
//                   or refused   it does not hold that toolchain (any more)
import { z } from 'zod';
import { bytes, sha256 } from './messages.js';

export const TOOLCHAIN_PROTOCOL = '/meshcc/toolchain/1';

export const TOOLCHAIN_LIMITS = {
  /** Compressed bytes per chunk frame. */
  chunkBytes: 256 * 1024,
  frameBytes: 256 * 1024 + 4096,
  /** A tarball larger than this is not accepted even before the cache's own bound. */
  tarBytes: 16 * 1024 ** 3,
  textBytes: 4096,
} as const;

export const ToolchainGet = z.object({ t: z.literal('get'), v: z.number().int(), id: sha256 });
export type ToolchainGet = z.infer<typeof ToolchainGet>;

export const ToolchainTarball = z.object({
  t: z.literal('tarball'),
  id: sha256,
  /** uncompressed tarball bytes */
  size: z.number().int().nonnegative().max(TOOLCHAIN_LIMITS.tarBytes),
  z: z.literal('br'),
});
export const ToolchainChunk = z.object({
  t: z.literal('chunk'),
  data: bytes.refine((b) => b.length <= TOOLCHAIN_LIMITS.chunkBytes, 'chunk too large'),
  last: z.boolean(),
});
export type ToolchainChunk = z.infer<typeof ToolchainChunk>;
export const ToolchainRefused = z.object({ t: z.literal('refused'), reason: z.string().max(TOOLCHAIN_LIMITS.textBytes), message: z.string().max(TOOLCHAIN_LIMITS.textBytes) });

export const HolderToFetcher = z.discriminatedUnion('t', [ToolchainTarball, ToolchainRefused]);
