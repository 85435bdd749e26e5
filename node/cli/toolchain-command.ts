// `meshcc toolchain create|list|prune`: through the running agent (which owns the toolchain
// cache), or on the cache directly when no agent runs.
// The toolchain modules load only when a toolchain command runs: other commands start fast.
import path from 'node:path';
import type { Command } from 'commander';
import { MeshccError } from '../../protocol/errors.js';
import { PROTOCOL_VERSION } from '../../protocol/messages.js';
import { loadConfig, meshccHome, socketPath, toolchainKnowledgeDir } from '../config.js';
import type { ToolchainAdmin, ToolchainOp, ToolchainOpResult, ToolchainRow } from '../toolchain-admin.js';
import type { ToolchainCache } from '../toolchain-cache.js';
import { query } from './query.js';

async function directAdmin(): Promise<{ admin: ToolchainAdmin; cache: ToolchainCache }> {
  const [{ pino }, { ToolchainAdmin }, { ToolchainCache }, { HostToolchains }] = await Promise.all([
    import('pino'),
    import('../toolchain-admin.js'),
    import('../toolchain-cache.js'),
    import('../toolchains.js'),
  ]);
  const home = meshccHome();
  const log = pino({ level: 'silent' });
  const cache = new ToolchainCache({ dir: path.join(home, 'toolchains'), maxBytes: loadConfig().toolchainCacheBytes, log });
  const host = new HostToolchains(log, toolchainKnowledgeDir());
  return { admin: new ToolchainAdmin(host, cache), cache };
}

async function perform(request: ToolchainOp): Promise<ToolchainOpResult> {
  try {
    const reply = await query(socketPath(), { t: 'toolchains', v: PROTOCOL_VERSION, ...request });
    if (reply.t === 'error') throw new MeshccError(String(reply.code), String(reply.message));
    return reply as unknown as ToolchainOpResult;
  } catch (err) {
    if (!(err instanceof MeshccError) || err.code !== 'no-agent') throw err;
  }
  const { admin, cache } = await directAdmin();
  try {
    return await admin.run(request);
  } finally {
    await cache.flush();
  }
}

const mib = (bytes: number) => `${(bytes / 1048576).toFixed(1)} MiB`;

function ago(ms: number | undefined): string {
  if (!ms) return '-';
  const s = Math.max(0, Math.round((Date.now() - ms) / 1000));
  return s < 120 ? `${s} s ago` : s < 7200 ? `${Math.round(s / 60)} min ago` : s < 172_800 ? `${Math.round(s / 3600)} h ago` : `${Math.round(s / 86400)} d ago`;
}

export function formatToolchains(rows: ToolchainRow[]): string {
  if (rows.length === 0) return 'no toolchains\n';
  const table = [
    ['id', 'where', 'compiler', 'version', 'target', 'arch', 'size', 'last used', ''],
    ...rows.map((r) => [r.id.slice(0, 12), r.where, r.compiler, `${r.family} ${r.version}`, r.target, `${r.os}/${r.arch}`, mib(r.bytes), ago(r.lastUsed), r.inUse ? 'in use' : '']),
  ];
  const widths = table[0]!.map((_, i) => Math.max(...table.map((line) => line[i]!.length)));
  return `${table.map((line) => line.map((cell, i) => cell.padEnd(widths[i]!)).join('  ').trimEnd()).join('\n')}\n`;
}

export function addToolchainCommands(program: Command): void {
  const toolchain = program.command('toolchain').description('the compiler toolchains this machine holds and ships to peers');

  toolchain
    .command('list')
    .description("this agent's toolchains: installed in its cache (shipped to it, or created) and its own compilers")
    .option('--json', 'machine-readable output')
    .action(async (opts: { json?: boolean }) => {
      const { toolchains } = await perform({ op: 'list' });
      process.stdout.write(opts.json ? `${JSON.stringify(toolchains, null, 2)}\n` : formatToolchains(toolchains));
    });

  toolchain
    .command('create <compiler>')
    .description('pack a compiler (e.g. a cross compiler) into the toolchain cache, so the agent advertises and ships it')
    .option('-o, --output <file>', 'write the tarball to this file instead (its sha256 is the toolchain id)')
    .action(async (compiler: string, opts: { output?: string }) => {
      const { resolveCompiler } = await import('../toolchain-admin.js');
      const resolved = resolveCompiler(compiler);
      if (opts.output) {
        const { admin } = await directAdmin();
        const { id, size } = await admin.writeTarball(resolved, opts.output);
        process.stdout.write(`${id}  ${mib(size)}  ${opts.output}\n`);
        return;
      }
      const { created } = await perform({ op: 'create', compiler: resolved });
      process.stdout.write(`${created}\n`);
    });

  toolchain
    .command('prune')
    .description('remove cached toolchains not in use, least recently used first')
    .option('--max-mb <n>', 'keep up to this many MiB of cached toolchains (default 0: remove every one not in use)', '0')
    .action(async (opts: { maxMb: string }) => {
      const maxMb = Number(opts.maxMb);
      if (!Number.isFinite(maxMb) || maxMb < 0) throw new MeshccError('bad-option', `--max-mb: ${opts.maxMb} is not a number of MiB`);
      const { removed = [], toolchains } = await perform({ op: 'prune', maxBytes: Math.floor(maxMb * 1048576) });
      const left = toolchains.filter((t) => t.where === 'cache');
      process.stdout.write(`removed ${removed.length} toolchain${removed.length === 1 ? '' : 's'}; ${left.length} cached (${mib(left.reduce((n, t) => n + t.bytes, 0))})\n`);
    });
}
