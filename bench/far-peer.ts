// bench/far-peer: does a far peer help or hurt? A real project built in h0 (a client agent
// without slots) twice, every agent started afresh each time (empty stores):
//   near only   h1, a near peer, takes the jobs;
//   near + far  h1 and h2, a far peer behind 100 ms round trip and 20 Mbit/s (tc netem + tbf on
//               both directions of its link), take them.
// The far peer must not make the build slower: the client measures what a job costs it on each
// peer and the scheduler sends one there only when that beats waiting for a near slot. Prints
// both wall times, the jobs each peer ran and whether the two builds' objects are identical.
// All agents share this machine's cores: the near peer gets --near-slots (1 by default) so the
// far peer has a core of its own to offer.
//
//   node dist/bench/far-peer.js [--project linux|git|zlib] [-j N] [--near-slots N] [--far-slots N]
// Needs root (network namespaces). The project is fetched by bench/fetch-project.sh.
import { execFileSync, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { performance } from 'node:perf_hooks';
import { query } from '../node/cli/query.js';
import { socketAnswers } from '../node/instance-lock.js';
import { setMeshKey } from '../node/mesh/keys.js';
import type { AgentStatus } from '../node/mesh/mesh-service.js';
import type { StatsSnapshot } from '../node/stats.js';
import { FAR_LINK, makeFar } from '../test/helpers/link-shape.js';
import { createNetnsMesh, netnsAvailable, type NetnsMesh } from '../test/helpers/netns.js';
import { plainEnv } from '../test/helpers/agent.js';
import { collect, differences } from '../test/helpers/projects.js';
import { waitFor } from '../test/helpers/wait.js';

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const MESHCC_BIN = path.join(repo, 'bin', 'meshcc.js');
const FETCH = path.join(repo, 'bench', 'fetch-project.sh');
const BUILD_ROOT = '/tmp/meshcc-bench-far';

const CONFIGURE: Record<string, (dir: string, env: NodeJS.ProcessEnv) => void> = {
  linux: (dir, env) => execFileSync('make', ['tinyconfig'], { cwd: dir, stdio: 'ignore', env }),
  git: () => undefined,
  zlib: (dir, env) => execFileSync('./configure', [], { cwd: dir, stdio: 'ignore', env }),
};

const { values: opts } = parseArgs({
  options: {
    project: { type: 'string', default: 'linux' },
    jobs: { type: 'string', short: 'j', default: '8' },
    'near-slots': { type: 'string', default: '1' },
    'far-slots': { type: 'string', default: '1' },
  },
});

const say = (line: string) => console.log(line);
const secs = (ms: number) => `${(ms / 1000).toFixed(1)} s`;

function baseEnv(): NodeJS.ProcessEnv {
  // The kernel writes the build's time, user and host into init/version.o: fixed, so that two
  // builds of the same tree are byte-identical.
  return { ...plainEnv, KBUILD_BUILD_TIMESTAMP: 'Thu Jan  1 00:00:00 UTC 2026', KBUILD_BUILD_USER: 'meshcc', KBUILD_BUILD_HOST: 'bench' };
}

interface Run {
  wallMs: number;
  jobsByHost: Record<string, number>;
  counts: StatsSnapshot['counts'];
  objects: Map<string, Buffer>;
}

async function build(template: string, withFar: boolean, env: NodeJS.ProcessEnv, bindir: string): Promise<Run> {
  const mesh: NetnsMesh = await createNetnsMesh({ hosts: 3, prefix: 'mcbf' });
  const agents: ChildProcess[] = [];
  try {
    const how = await makeFar(mesh, mesh.hosts[2]!, FAR_LINK);
    if (!withFar) say(`  the far link: ${how}`);
    const key = Buffer.from(crypto.getRandomValues(new Uint8Array(32))).toString('hex');
    const homes = [0, 1, 2].map(() => mkdtempSync(path.join(os.tmpdir(), 'meshcc-bench-far-home-')));
    for (const home of homes) await setMeshKey(home, key);
    const slots = ['0', opts['near-slots'], opts['far-slots']];
    const hosts = withFar ? [0, 1, 2] : [0, 1];
    for (const i of hosts) {
      agents.push(
        mesh.spawn(i, process.execPath, [MESHCC_BIN, 'agent'], {
          env: { ...env, MESHCC_HOME: homes[i], MESHCC_LOG_LEVEL: 'warn', MESHCC_HTTP: 'off', MESHCC_SLOTS: slots[i], MESHCC_LOCAL_SLOTS: '0', MESHCC_NAME: `h${i}` },
          stdio: 'ignore',
        }),
      );
    }
    const client = homes[0]!;
    const status = async () => (await query(path.join(client, 'agent.sock'), { t: 'status', v: 1 })).agents as AgentStatus[];
    await waitFor('the client agent', async () => ((await socketAnswers(path.join(client, 'agent.sock'))) ? true : undefined), 30_000);
    await waitFor(`the client to list ${hosts.length} agents with their toolchains`, async () => {
      const rows = await status();
      return rows.length === hosts.length && rows.every((r) => r.toolchains.length > 0) ? true : undefined;
    }, 90_000);
    await new Promise((r) => setTimeout(r, 2000));
    const names = new Map((await status()).map((r) => [r.peerId, r.name]));

    const tree = path.join(BUILD_ROOT, 'tree');
    rmSync(tree, { recursive: true, force: true });
    execFileSync('cp', ['-a', template, tree]);
    say(`  make -j${opts.jobs} in h0 (${withFar ? 'near h1 + far h2' : 'near h1 only'})`);
    const started = performance.now();
    const code = await new Promise<number | null>((resolve) => {
      const make = mesh.spawn(0, 'make', [`-j${opts.jobs}`], { cwd: tree, env: { ...env, MESHCC_HOME: client, PATH: `${bindir}:${env.PATH ?? '/usr/bin:/bin'}` }, stdio: 'ignore' });
      make.once('exit', (c) => resolve(c));
    });
    const wallMs = performance.now() - started;
    if (code !== 0) throw new Error(`make exited with ${code}`);
    const stats = (await query(path.join(client, 'agent.sock'), { t: 'stats', v: 1 })).stats as StatsSnapshot;
    const jobsByHost: Record<string, number> = {};
    for (const [peer, p] of Object.entries(stats.perPeer)) jobsByHost[names.get(peer) ?? peer] = p.jobs;
    return { wallMs, jobsByHost, counts: stats.counts, objects: collect(tree, /\.o$/) };
  } finally {
    await mesh.destroy();
  }
}

async function main(): Promise<void> {
  const avail = netnsAvailable();
  if (!avail.ok) return say(`far-peer benchmark needs network namespaces: ${avail.reason}`);
  const configure = CONFIGURE[opts.project];
  if (!configure) throw new Error(`unknown project ${opts.project} (known: ${Object.keys(CONFIGURE).join(', ')})`);
  const env = baseEnv();
  const bindir = execFileSync(process.execPath, [MESHCC_BIN, 'bindir'], { encoding: 'utf8' }).trim();
  const source = execFileSync('bash', [FETCH, opts.project], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] }).trim();
  rmSync(BUILD_ROOT, { recursive: true, force: true });
  mkdirSync(BUILD_ROOT, { recursive: true });
  const template = path.join(BUILD_ROOT, 'configured');
  execFileSync('cp', ['-a', source, template]);
  configure(template, env);
  say(`far-peer: ${opts.project}; client h0 without slots; near h1 with ${opts['near-slots']} slot(s); far h2 with ${opts['far-slots']} slot(s), ${2 * FAR_LINK.delayMs} ms round trip at ${FAR_LINK.rateMbit} Mbit/s`);
  const near = await build(template, false, env, bindir);
  say(`  near only:  ${secs(near.wallMs)} wall; jobs ${JSON.stringify(near.jobsByHost)}; counts ${JSON.stringify(near.counts)}`);
  const both = await build(template, true, env, bindir);
  say(`  near + far: ${secs(both.wallMs)} wall; jobs ${JSON.stringify(both.jobsByHost)}; counts ${JSON.stringify(both.counts)}`);
  const differ = differences(near.objects, both.objects);
  const differing = `${differ.length}${differ.length ? ` (${differ.slice(0, 5).join(', ')})` : ''}`;
  say('');
  say(`== ${opts.project}: near + far / near only = ${(both.wallMs / near.wallMs).toFixed(2)} (target <= 1.00); ${near.objects.size} objects, ${differing} differing between the two builds`);
  rmSync(BUILD_ROOT, { recursive: true, force: true });
}

try {
  await main();
} catch (err) {
  console.error(`far-peer: ${(err as Error).message}`);
  process.exitCode = 1;
}
