// The subcommands. Each does one thing and prints one clear line when it cannot.
import { spawnSync } from 'node:child_process';
import { Command } from 'commander';
import { PROTOCOL_VERSION } from '../../protocol/messages.js';
import { socketPath } from '../config.js';
import { formatStats } from './format-stats.js';
import { CLIENT_BUILD_SCRIPT, MASQUERADE_DIR } from '../paths.js';
import { query } from './query.js';

export function buildProgram(setExitCode: (code: number) => void): Command {
  const program = new Command('meshcc')
    .description('a distributed C/C++ compilation mesh')
    .exitOverride((err) => {
      setExitCode(err.exitCode);
      throw err;
    });

  program
    .command('agent')
    .description('run the per-machine agent (state in $MESHCC_HOME, default ~/.meshcc)')
    .option('--pretty', 'readable log lines instead of JSON')
    .option('--log-level <level>', 'trace, debug, info, warn or error', process.env.MESHCC_LOG_LEVEL ?? 'info')
    .action(async (opts: { pretty?: boolean; logLevel: string }) => {
      const { runAgent } = await import('./run-agent.js');
      await runAgent({ pretty: opts.pretty, level: opts.logLevel });
    });

  program
    .command('stats')
    .description('jobs by route (local, job route, fallback) and time spent')
    .option('--json', 'machine-readable output')
    .action(async (opts: { json?: boolean }) => {
      const reply = await query(socketPath(), { t: 'stats', v: PROTOCOL_VERSION });
      process.stdout.write(opts.json ? `${JSON.stringify(reply.stats, null, 2)}\n` : formatStats(reply.stats as never));
    });

  program
    .command('bindir')
    .description('print the directory of compiler links to put first on PATH (masquerade form)')
    .action(() => {
      process.stdout.write(`${MASQUERADE_DIR}\n`);
    });

  program
    .command('setup')
    .description('(re)build the native compiler client and its masquerade directory')
    .action(() => {
      const built = spawnSync(process.execPath, [CLIENT_BUILD_SCRIPT], { stdio: 'inherit' });
      setExitCode(built.status ?? 1);
    });

  program.command('cc').description('compile through the agent from Node: meshcc cc gcc -c a.c');
  return program;
}
