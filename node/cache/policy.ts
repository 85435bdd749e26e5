// What this agent does with the result cache, from its environment: MESHCC_CACHE=read-write
// (look up, and publish what it compiles), read-only (look up only: a CI runner building
// untrusted pull requests), off; MESHCC_CACHE_MB bounds the entries it holds (default: half
// of the store, whose eviction the entries' objects share).
import { MeshccError } from '../../protocol/errors.js';

export type CacheMode = 'read-write' | 'read-only' | 'off';

export interface CacheConfig {
  mode: CacheMode;
  /** Bytes of entries (outputs and diagnostics) this agent holds at most. */
  maxBytes: number;
  /** How long a lookup waits for the mesh's owners before it counts as a miss. */
  lookupTimeoutMs: number;
}

const MODES: readonly CacheMode[] = ['read-write', 'read-only', 'off'];

export function cacheConfig(env: NodeJS.ProcessEnv, storeBytes: number): CacheConfig {
  const mode = (env.MESHCC_CACHE ?? 'off').trim() as CacheMode;
  if (!MODES.includes(mode)) throw new MeshccError('bad-config', `MESHCC_CACHE must be one of ${MODES.join(', ')}, got '${env.MESHCC_CACHE}'`);
  let maxBytes = Math.floor(storeBytes / 2);
  if (env.MESHCC_CACHE_MB !== undefined) {
    const mb = Number(env.MESHCC_CACHE_MB);
    if (!Number.isInteger(mb) || mb < 0) throw new MeshccError('bad-config', `MESHCC_CACHE_MB must be a whole number, got '${env.MESHCC_CACHE_MB}'`);
    maxBytes = mb * 1024 * 1024;
  }
  const timeout = Number(env.MESHCC_CACHE_LOOKUP_MS ?? 3000);
  if (!Number.isFinite(timeout) || timeout <= 0) throw new MeshccError('bad-config', `MESHCC_CACHE_LOOKUP_MS must be a positive number, got '${env.MESHCC_CACHE_LOOKUP_MS}'`);
  return { mode, maxBytes, lookupTimeoutMs: timeout };
}
