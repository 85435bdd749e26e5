// `meshcc cache stats|clear`, and the cache's lines in `meshcc stats`.
import type { Command } from 'commander';
import { z } from 'zod';
import { MeshccError } from '../../protocol/errors.js';
import { PROTOCOL_VERSION } from '../../protocol/messages.js';
import { query } from '../cli/query.js';
import { socketPath } from '../config.js';
import type { StatsSnapshot } from '../stats.js';
import type { CacheStats } from './result-cache.js';

/** What a client asks the agent's socket about the cache (validated before the agent's other messages). */
export const CacheQuery = z.object({ t: z.literal('cache'), v: z.number().int(), op: z.enum(['clear']) });
export type CacheQuery = z.infer<typeof CacheQuery>;

const mib = (bytes: number) => `${(bytes / 1048576).toFixed(1)} MiB`;

export function formatCacheStats(c: CacheStats): string[] {
  const lookups = c.hits + c.misses;
  const rate = lookups ? ` (${((100 * c.hits) / lookups).toFixed(1)} % hits)` : '';
  return [
    `result cache (${c.mode}): ${c.hits} hits (${c.directHits} direct, ${c.meshHits} from the mesh), ${c.misses} misses${rate}; ${mib(c.hitBytes)} from hits; lookups ${(c.lookupMs / 1000).toFixed(1)} s`,
    `  published ${c.published} (${mib(c.publishedBytes)}); held ${c.entries} entries, ${mib(c.bytes)} of ${mib(c.maxBytes)}; for members: ${c.served} hits, ${c.servedMisses} misses served (${mib(c.servedBytes)}), ${c.stored} entries taken (${mib(c.storedBytes)})`,
    `  direct mode: ${c.manifests.matched} of ${c.manifests.checked} manifests matched (${c.manifests.rehashed} files hashed on a stat change); verified hits ${c.verified}, ${c.verifyMismatches} MISMATCHED; writers dropped ${c.droppedWriters}`,
  ];
}

export function addCacheCommands(program: Command): void {
  const cache = program.command('cache').description('the mesh-wide result cache of this agent');
  cache
    .command('stats')
    .description('hits, misses, bytes, entries held')
    .option('--json', 'machine-readable output')
    .action(async (opts: { json?: boolean }) => {
      const reply = await query(socketPath(), { t: 'stats', v: PROTOCOL_VERSION });
      const stats = (reply.stats as StatsSnapshot).cache;
      if (!stats) throw new MeshccError('no-cache', 'this agent has no result cache');
      process.stdout.write(opts.json ? `${JSON.stringify(stats, null, 2)}\n` : `${formatCacheStats(stats).join('\n')}\n`);
    });
  cache
    .command('clear')
    .description("drop every entry and manifest this agent holds (other agents keep theirs)")
    .action(async () => {
      const reply = await query(socketPath(), { t: 'cache', v: PROTOCOL_VERSION, op: 'clear' });
      if (reply.t === 'error') throw new MeshccError(String(reply.code), String(reply.message));
      process.stdout.write(`dropped ${String(reply.entries)} entries and ${String(reply.manifests)} manifests\n`);
    });
}
