// The identifier's results on disk, so an agent restart does not hash the compilers again.
// Entries are only hints: identify re-validates each one (driver and every file signature)
// before using it, exactly like an entry it computed itself.
import { readFileSync } from 'node:fs';
import { rename, writeFile } from 'node:fs/promises';
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

/** The entries of the file, or none if it is missing, unreadable or of another format. */
export function loadCache(file: string): CachedEntry[] {
  try {
    const parsed = CacheContent.safeParse(JSON.parse(readFileSync(file, 'utf8')));
    return parsed.success ? parsed.data.entries.filter((e) => e.signatures.length === e.toolchain.files.length) : [];
  } catch {
    return [];
  }
}

export class CacheWriter {
  private chain: Promise<void> = Promise.resolve();

  constructor(
    private readonly file: string,
    private readonly onError: (err: Error) => void,
  ) {}

  /** Writes the entries (atomically: temp file and rename), after any write still under way. */
  save(entries: CachedEntry[]): Promise<void> {
    const data = JSON.stringify({ version: 1, entries });
    this.chain = this.chain.then(async () => {
      const tmp = `${this.file}.${process.pid}.tmp`;
      try {
        await writeFile(tmp, data);
        await rename(tmp, this.file);
      } catch (err) {
        this.onError(err as Error);
      }
    });
    return this.chain;
  }
}
