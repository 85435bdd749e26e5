// The identifier's results on disk, so an agent restart does not hash the compilers again.
// Entries are only hints: identify re-validates each one (driver and every file signature)
// before using it, exactly like an entry it computed itself.
import { readFileSync } from 'node:fs';
import { z } from 'zod';
import type { Toolchain } from './types.js';

const CachedToolchain = z.object({
  compiler: z.string(),
  driverKey: z.string(),
  signatures: z.array(z.string()),
  toolchain: z.object({
    id: z.string().regex(/^[0-9a-f]{64}$/),
    driver: z.string(),
    family: z.enum(['gcc', 'clang']),
    mode: z.enum(['c', 'c++']),
    version: z.string(),
    target: z.string(),
    files: z.array(z.object({ role: z.string(), path: z.string(), size: z.number(), hash: z.string(), executable: z.boolean() })),
  }),
});
const CacheContent = z.object({ version: z.literal(1), entries: z.array(CachedToolchain) });

export interface CachedEntry {
  /** the path as invoked */
  compiler: string;
  /** the driver's real path and signature */
  driverKey: string;
  /** the signature of each file of the toolchain, in the order of toolchain.files */
  signatures: string[];
  toolchain: Toolchain;
}

/** What the file holds: written with toolchain/json-file.ts. */
export function cacheContent(entries: CachedEntry[]): unknown {
  return { version: 1, entries };
}

/** The entries of the file, or none if it is missing, unreadable or of another format. */
export function loadCache(file: string): CachedEntry[] {
  try {
    const parsed = CacheContent.safeParse(JSON.parse(readFileSync(file, 'utf8')));
    return parsed.success ? parsed.data.entries.filter((e) => e.signatures.length === e.toolchain.files.length) : [];
  } catch {
    return [];
  }
}
