// The subcommands. Each does one thing and prints one clear line when it cannot.
import { Command } from 'commander';
import { MeshccError } from '../../protocol/errors.js';
import { PROTOCOL_VERSION } from '../../protocol/messages.js';
import { meshccHome, socketPath } from '../config.js';
import type { AgentStatus } from '../mesh/mesh-service.js';
import { formatStats, formatStatus } from './format.js';
import { PACKAGE_VERSION } from '../paths.js';
import { query } from './query.js';
import { addToolchainCommands } from './toolchain-command.js';
import { addMonitorCommands } from './monitor-command.js';
import { addServiceCommands } from './service-command.js';
import { addMemberCommands } from './member-command.js';
import { addCacheCommands } from '../cache/cli.js';

export function buildProgram(setExitCode: (code: number) => void): Command {
  const program = new Command('meshcc')
    .description('a distributed C/C++ compilation mesh')
    .version(PACKAGE_VERSION, '-V, --version', 'print the version of meshcc')
    .exitOverride((err) => {
      setExitCode(err.exitCode);
      throw err;
    });

  program
    .command('agent')
    .description('run the per-machine agent (state in $MESHCC_HOME, default ~/.meshcc)')
    .option('--pretty', 'readable log lines instead of JSON')
    .option('--log-level <level>', 'trace, debug, info, warn or error', process.env.MESHCC_LOG_LEVEL ?? 'info')
    .option('--listen <multiaddr...>', 'where the mesh node listens (default /ip4/0.0.0.0/tcp/0)')
    .option('--peer <multiaddr...>', 'a peer to keep connected to, /ip4/…/tcp/…/p2p/… (no multicast needed)')
    .option('--peers-dns <name[:port]>', 'dial every address a DNS name resolves to (e.g. a Kubernetes headless Service), again every 15 s')
    .action(async (opts: { pretty?: boolean; logLevel: string; listen?: string[]; peer?: string[]; peersDns?: string }) => {
      const { runAgent } = await import('./run-agent.js');
      await runAgent({ pretty: opts.pretty, level: opts.logLevel, listen: opts.listen, peer: opts.peer, peersDns: opts.peersDns });
    });

  program
    .command('relay')
    .description('run a relay for a mesh without a reachable member (a small public machine): circuit relay v2 and the member list for members, no jobs; listens on tcp/7624')
    .option('--pretty', 'readable log lines instead of JSON')
    .option('--log-level <level>', 'trace, debug, info, warn or error', process.env.MESHCC_LOG_LEVEL ?? 'info')
    .option('--listen <multiaddr...>', 'where it listens (default /ip4/0.0.0.0/tcp/7624)')
    .action(async (opts: { pretty?: boolean; logLevel: string; listen?: string[] }) => {
      const { runRelay } = await import('./run-relay.js');
      await runRelay({ pretty: opts.pretty, level: opts.logLevel, listen: opts.listen });
    });

  program
    .command('status')
    .description('one row per agent of the mesh, this one included')
    .option('--json', 'a JSON array of objects (name, peerId, self, addresses, cores, slots, slotsUsed, load, speed, toolchains, rttMs, link, role, activity)')
    .action(async (opts: { json?: boolean }) => {
      const reply = await query(socketPath(), { t: 'status', v: PROTOCOL_VERSION });
      const agents = reply.agents as AgentStatus[];
      process.stdout.write(opts.json ? `${JSON.stringify(agents, null, 2)}\n` : formatStatus(agents));
    });

  const key = program
    .command('key')
    .description("print this machine's mesh key (created on first use); share it to let a machine join")
    .action(async () => {
      const { loadOrCreateMeshKey } = await import('../mesh/keys.js');
      const meshKey = await loadOrCreateMeshKey(meshccHome());
      process.stdout.write(`${Buffer.from(meshKey).toString('hex')}\n`);
    });
  key
    .command('set <hex>')
    .description('replace the mesh key (64 hex characters); the agent uses it from its next start')
    .action(async (hex: string) => {
      const { setMeshKey } = await import('../mesh/keys.js');
      await setMeshKey(meshccHome(), hex);
      process.stderr.write('mesh key replaced; restart the agent to join that mesh\n');
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
    .command('jobs')
    .description('a sensible -j for the mesh as it is now: the free slots of the other agents plus the local cores')
    .option('-v, --verbose', 'say how it was counted (on stderr)')
    .action(async (opts: { verbose?: boolean }) => {
      const os = await import('node:os');
      const cores = os.availableParallelism();
      const agents = await query(socketPath(), { t: 'status', v: PROTOCOL_VERSION })
        .then((reply) => reply.agents as AgentStatus[])
        .catch((err: Error) => {
          process.stderr.write(`meshcc: ${err.message}; counting only this machine\n`);
          return [] as AgentStatus[];
        });
      const peers = agents.filter((a) => !a.self && a.link !== 'none' && !a.executorUnavailable);
      const free = peers.reduce((n, a) => n + Math.max(0, a.slots - a.slotsUsed), 0);
      if (opts.verbose) process.stderr.write(`${cores} local cores + ${free} free slots on ${peers.length} other agent(s)\n`);
      process.stdout.write(`${cores + free}\n`);
    });

  program
    .command('run')
    .description('run a build with a short-lived agent (for CI runners and docker build): meshcc run -- make -j16')
    .argument('<command...>', 'the command, after --')
    .option('--serve', 'take jobs from the mesh too while it runs (default: client only)')
    .option('--peer <multiaddr...>', 'a peer to connect to by address')
    .option('--peers-dns <name[:port]>', 'dial every address a DNS name resolves to')
    .option('--join <token>', 'the mesh of an invitation (meshcc invite), for this command only (also MESHCC_JOIN)')
    .option('--wait <seconds>', 'how long to wait for the mesh before the command starts', '10')
    .action(async (command: string[], opts: { serve?: boolean; peer?: string[]; peersDns?: string; join?: string; wait: string }) => {
      const wait = Number(opts.wait);
      if (!Number.isFinite(wait) || wait < 0) throw new MeshccError('usage', `--wait takes seconds, got '${opts.wait}'`);
      const { runWithMesh } = await import('./run-command.js');
      const join = opts.join ?? process.env.MESHCC_JOIN;
      const code = await runWithMesh({ command, serve: opts.serve ?? false, peer: opts.peer ?? [], peersDns: opts.peersDns, ...(join ? { join } : {}), waitMs: wait * 1000 });
      // Everything is stopped and removed; libp2p's address manager still holds a 1 s debounce
      // timer from its stop, which kept every `meshcc run` (a CI step) alive a second longer.
      process.exit(code);
    });

  program
    .command('bindir')
    .description('print the directory of compiler links to put first on PATH (masquerade form); builds the native client on first use')
    .action(async () => {
      const { ensureClient } = await import('../native-client.js');
      process.stdout.write(`${ensureClient().masquerade}\n`);
    });

  program
    .command('setup')
    .description('(re)build the native compiler client and its masquerade directory')
    .action(async () => {
      const { rebuildClient } = await import('../native-client.js');
      rebuildClient();
    });

  addToolchainCommands(program);
  addMonitorCommands(program);
  addServiceCommands(program);
  addMemberCommands(program);
  addCacheCommands(program);

  program.command('cc').description('compile through the agent from Node: meshcc cc gcc -c a.c');
  return program;
}
