// bench/throughput: the job rate one client agent sustains, and what each job costs the
// agents, when the compiles themselves are as cheap as a real header set allows: a generated
// project of units that each include the same few hundred real headers (git's, as
// builtin/commit.c includes them; or the kernel's, as kernel/fork.c does under tinyconfig) and
// have a one-line body, so every job carries a git- or kernel-sized input tree.
//
// A client agent without slots in network namespace h0, P peer agents with S slots each in
// h1..hP, `make -jJ` in h0 through meshcc's compiler links. Per build it prints the jobs per
// second reached, each agent's main-thread CPU per job (/proc/PID/task/PID/stat) and its total
// CPU per job (all its threads, and for the client its helper processes too), and, with
// --profile, where that time went (node --cpu-prof, self time by module).
//
// On one small machine the compiles and every agent share the same cores, so the rate
// reached is bounded by the machine, not by the client agent: the figure that says what one
// client agent sustains is its main thread's CPU per job (1000 / ms per job = the ceiling of
// jobs per second its event loop allows), printed beside the rate reached.
//
// Sustained means a build long enough that what every agent pays once (V8 optimising its hot
// code, the headers' first trip to each peer, the tables and caches filling) is a small part
// of it: 2,000 git units and 1,000 kernel ones by default (at 300 units the same agents read
// 5.2-6.5 ms a job on the client's main thread, at 3,000 3.8).
//
// With --baseline DIR (a built checkout of another version), every build runs twice in the same
// run, on that version's agents and then on this one's, and the ratios are printed: this
// machine is shared and noisy, so only figures measured side by side compare, and even they
// drift: the same checkout on both sides read 0.93-1.12 of itself per job (2 December, 500
// units, with other load on the machine; 0.77-0.95 with tests running beside it). A change
// smaller than that is real only when it holds with the versions swapped (pass this checkout
// as the baseline of the other's) and in the longer default builds.
//
//   node dist/bench/throughput.js [--headers git|linux|both] [--units N] [--peers P] [--slots S] [-j J] [--cheap] [--profile DIR] [--baseline DIR] [--keep]
// Needs root (network namespaces). The projects are fetched by bench/fetch-project.sh.
import { execFileSync, type ChildProcess } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, mkdtempSync, openSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { query } from '../node/cli/query.js';
import { socketAnswers } from '../node/instance-lock.js';
import { setMeshKey } from '../node/mesh/keys.js';
import type { AgentStatus } from '../node/mesh/mesh-service.js';
import { walkThreadsFor } from '../node/scan/walk-thread.js';
import { createNetnsMesh, netnsAvailable, type NetnsMesh } from '../test/helpers/netns.js';
import { monotonicUs, profilesIn, summariseProfile, topPlaces } from './cpu-profile.js';
import { nodeArgsFrom } from './measure.js';

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const FETCH = path.join(repo, 'bench', 'fetch-project.sh');
const WORK = '/tmp/meshcc-throughput';

const { values: opts } = parseArgs({
  options: {
    headers: { type: 'string', default: 'both' },
    units: { type: 'string' },
    peers: { type: 'string', default: '2' },
    slots: { type: 'string', default: '2' },
    jobs: { type: 'string', short: 'j', default: '24' },
    profile: { type: 'string' },
    baseline: { type: 'string' },
    cheap: { type: 'boolean', default: false },
    keep: { type: 'boolean', default: false },
  },
});

const say = (line: string) => console.log(line);
/** Agent homes made by this run, removed at exit. */
const homes: string[] = [];
process.on('exit', () => {
  for (const home of homes) rmSync(home, { recursive: true, force: true });
});

function baseEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('MESHCC_')) env[k] = v;
  return env;
}

// ---------------------------------------------------------------------------------------------
// the generated projects

interface Project {
  name: string;
  /** Directory make runs in. */
  dir: string;
  units: number;
}

const includeLines = (file: string) =>
  readFileSync(file, 'utf8')
    .split('\n')
    .filter((l) => /^#include\s*[<"]/.test(l));

/** With --cheap the includes stand under `#if 0`: the scan still follows them (it reads every
 *  branch), so each job carries and checks the same input tree, but the compiler parses none of
 *  them and a compile costs ~15 ms instead of ~100: the agents' share shows at a higher job rate. */
function writeUnits(unitDir: string, includes: string[], units: number): void {
  rmSync(unitDir, { recursive: true, force: true });
  mkdirSync(unitDir, { recursive: true });
  const lines = opts.cheap ? ['#if 0', ...includes, '#endif'] : includes;
  for (let i = 0; i < units; i++) {
    writeFileSync(path.join(unitDir, `u${i}.c`), `${lines.join('\n')}\n\nint throughput_unit_${i}(void);\nint throughput_unit_${i}(void) { return ${i}; }\n`);
  }
}

/** git's headers, as builtin/commit.c includes them, from git's own directory (-I). */
function gitProject(units: number): Project {
  const source = execFileSync('bash', [FETCH, 'git'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] }).trim();
  const dir = path.join(WORK, 'git');
  writeUnits(path.join(dir, 'units'), includeLines(path.join(source, 'builtin', 'commit.c')), units);
  writeFileSync(
    path.join(dir, 'Makefile'),
    `OBJS := $(patsubst %.c,%.o,$(wildcard units/*.c))\nall: $(OBJS)\n%.o: %.c\n\t$(CC) -g -O2 -Wall -MMD -MF $(@:.o=.d) -I${source} -c $< -o $@\n`,
  );
  return { name: 'git headers', dir, units };
}

/** The kernel's headers as kernel/fork.c includes them, with the kernel's own compile command
 *  (from kbuild's .fork.o.cmd in an out-of-tree tinyconfig build). */
function linuxProject(units: number): Project {
  const source = execFileSync('bash', [FETCH, 'linux'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] }).trim();
  const out = path.join(WORK, 'linux-out');
  const cmdFile = path.join(out, 'kernel', '.fork.o.cmd');
  if (!existsSync(cmdFile)) {
    say('  configuring the kernel out of tree (tinyconfig, prepare, kernel/fork.o; once, not timed)');
    mkdirSync(out, { recursive: true });
    const make = (...args: string[]) => execFileSync('make', ['-C', source, `O=${out}`, `-j${os.availableParallelism()}`, ...args], { stdio: 'ignore', env: baseEnv() });
    make('tinyconfig');
    make('prepare');
    make('kernel/fork.o');
  }
  const command = readFileSync(cmdFile, 'utf8').split('\n')[0]!.replace(/^(saved)?cmd_kernel\/fork\.o := /, '');
  const forkC = command.match(/\S*kernel\/fork\.c/)![0];
  // The unit's own names where fork.c's are; kbuild's quoting stays as make passes it to sh.
  const recipe = command
    .replace(forkC, '$<')
    .replace(/-o kernel\/fork\.o/, '-o $@')
    .replace(/kernel\/\.fork\.o\.d/, '$(@D)/.$(@F).d')
    .replace(/\$/g, (m, offset: number, s: string) => (s.startsWith('$<', offset) || s.startsWith('$@', offset) || s.startsWith('$(@', offset) ? m : '$$'));
  const includes = includeLines(path.join(source, 'kernel', 'fork.c')).filter((l) => l.includes('<'));
  writeUnits(path.join(out, 'units'), includes, units);
  writeFileSync(path.join(out, 'units', 'Makefile.throughput'), `OBJS := $(patsubst %.c,%.o,$(wildcard units/*.c))\nall: $(OBJS)\n%.o: %.c\n\t${recipe}\n`);
  return { name: 'kernel headers', dir: out, units };
}

// ---------------------------------------------------------------------------------------------
// CPU from /proc

const TCK = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;

function statFields(file: string): string[] | undefined {
  try {
    return readFileSync(file, 'utf8').split(') ')[1]!.split(' ');
  } catch {
    return undefined;
  }
}

/** Milliseconds of CPU: the main thread alone, the whole process (all threads), and the process
 *  with its children, reaped and live (the client's spawner helper and the scans it starts). */
function cpuOf(pid: number): { main: number; own: number; tree: number; threads: Map<string, number> } {
  const ms = (f: string[] | undefined, from: number, to: number) => {
    if (!f) return 0;
    let t = 0;
    for (let i = from; i <= to; i++) t += Number(f[i]);
    return (t * 1000) / TCK;
  };
  const own = statFields(`/proc/${pid}/stat`);
  let tree = ms(own, 11, 14);
  let children: string[] = [];
  try {
    children = readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean);
  } catch {
    // no children file
  }
  for (const child of children) tree += cpuOf(Number(child)).tree;
  // Every thread's, to find the walk worker's (the busiest after the main thread).
  const threads = new Map<string, number>();
  try {
    for (const tid of readdirSync(`/proc/${pid}/task`)) if (tid !== String(pid)) threads.set(tid, ms(statFields(`/proc/${pid}/task/${tid}/stat`), 11, 12));
  } catch {
    // the process is gone
  }
  return { main: ms(statFields(`/proc/${pid}/task/${pid}/stat`), 11, 12), own: ms(own, 11, 12), tree, threads };
}

// ---------------------------------------------------------------------------------------------
// the mesh

async function until(probe: () => Promise<boolean>, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await probe().catch(() => false))) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

const statusOf = async (home: string) => (await query(path.join(home, 'agent.sock'), { t: 'status', v: 1 })).agents as AgentStatus[];
const statsOf = async (home: string) => (await query(path.join(home, 'agent.sock'), { t: 'stats', v: 1 })).stats as { counts: Record<string, number>; fallbackByReason?: Record<string, number> };

interface Agents {
  mesh: NetnsMesh;
  client: { child: ChildProcess; home: string };
  peers: { child: ChildProcess; home: string }[];
  profileDirs: string[];
}

/** The checkout whose agents and compiler links a build uses. */
interface Version {
  label: string;
  bin: string;
}

async function startMesh(version: Version, peers: number, slots: number, logs: string, label: string): Promise<Agents> {
  const mesh = await createNetnsMesh({ hosts: peers + 1, prefix: 'mctp' });
  const key = Buffer.from(crypto.getRandomValues(new Uint8Array(32))).toString('hex');
  const profileDirs: string[] = [];
  const start = async (host: number, extra: NodeJS.ProcessEnv) => {
    const home = mkdtempSync(path.join(os.tmpdir(), 'meshcc-throughput-home-'));
    homes.push(home);
    await setMeshKey(home, key);
    // MESHCC_BENCH_NODE_ARGS: extra node options for the agents (e.g. --trace-deopt), as in bench/mesh-build.
    const nodeArgs = nodeArgsFrom('MESHCC_BENCH_NODE_ARGS');
    if (opts.profile) {
      const dir = path.join(opts.profile, label.replace(/\W+/g, '-'), `h${host}`);
      mkdirSync(dir, { recursive: true });
      profileDirs[host] = dir;
      nodeArgs.push('--cpu-prof', `--cpu-prof-dir=${dir}`);
    }
    const fd = openSync(path.join(logs, `agent-h${host}.log`), 'a');
    const child = mesh.spawn(host, process.execPath, [...nodeArgs, version.bin, 'agent'], {
      env: { ...baseEnv(), MESHCC_HOME: home, MESHCC_LOG_LEVEL: 'warn', ...extra },
      stdio: ['ignore', fd, fd],
    });
    closeSync(fd);
    await until(
      async () => {
        if (child.exitCode !== null) throw new Error(`agent h${host} exited (${child.exitCode}); see ${logs}`);
        return socketAnswers(path.join(home, 'agent.sock'));
      },
      30_000,
      `agent h${host} to answer`,
    );
    return { child, home };
  };
  const peerAgents = [];
  for (let i = 1; i <= peers; i++) peerAgents.push(await start(i, { MESHCC_SLOTS: String(slots), MESHCC_LOCAL_SLOTS: '0' }));
  const client = await start(0, { MESHCC_SLOTS: '0', MESHCC_LOCAL_SLOTS: '0' });
  await until(async () => (await statusOf(client.home)).length === peers + 1, 60_000, `the client to list ${peers + 1} agents`);
  // Every agent identifies its host's compilers once on a first start: wait until that settled.
  let seen = '';
  let stableSince = Date.now();
  await until(
    async () => {
      const now = JSON.stringify((await statusOf(client.home)).map((a) => a.toolchains.length));
      if (now !== seen) [seen, stableSince] = [now, Date.now()];
      return !now.includes('0') && Date.now() - stableSince > 2000;
    },
    90_000,
    'the agents to identify their toolchains',
  );
  return { mesh, client, peers: peerAgents, profileDirs };
}

async function stopAgents(agents: Agents): Promise<void> {
  await Promise.all(
    [agents.client, ...agents.peers].map(
      ({ child }) =>
        new Promise<void>((resolve) => {
          if (child.exitCode !== null) return resolve();
          const timer = setTimeout(resolve, 15_000);
          child.once('exit', () => (clearTimeout(timer), resolve()));
          child.kill('SIGTERM'); // a clean stop writes the --cpu-prof profiles
        }),
    ),
  );
  await agents.mesh.destroy();
}

function make(version: Version, agents: Agents, project: Project, targets: string[], makefile: string | undefined): Promise<number> {
  const bindir = execFileSync(process.execPath, [version.bin, 'bindir'], { encoding: 'utf8' }).trim();
  const env = { ...baseEnv(), PATH: `${bindir}:${process.env.PATH ?? '/usr/bin:/bin'}`, MESHCC_HOME: agents.client.home };
  const args = [`-j${opts.jobs}`, ...(makefile ? ['-f', makefile] : []), ...targets];
  const child = agents.mesh.spawn(0, 'make', args, { cwd: project.dir, env, stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => (stderr = (stderr + d.toString()).slice(-4000)));
  return new Promise((resolve, reject) => {
    child.once('error', reject);
    child.once('close', (code) => (code === 0 ? resolve(0) : reject(new Error(`make failed (${code}): ${stderr}`))));
  });
}

// ---------------------------------------------------------------------------------------------

interface Figures {
  jobsPerS: number;
  clientMain: number;
  clientWalk: number;
  clientAll: number;
  peersMain: number;
  peersAll: number;
}

async function measure(version: Version, project: Project, makefile: string | undefined, logs: string): Promise<Figures> {
  const peers = Number(opts.peers);
  const slots = Number(opts.slots);
  say(`\n== ${project.name}${opts.cheap ? ' (under #if 0: cheap compiles)' : ''} on ${version.label}: ${project.units} units, client agent without slots in h0, ${peers} peer agents with ${slots} slots each, make -j${opts.jobs}`);
  // Every object again: make builds what is missing.
  const unitDir = path.join(project.dir, 'units');
  for (const name of readdirSync(unitDir)) if (/\.(o|d|o\.d)$/.test(name)) rmSync(path.join(unitDir, name));
  const agents = await startMesh(version, peers, slots, logs, `${project.name} ${version.label}`);
  try {
    // Warm-up (not measured): the toolchain and the headers reach each peer once.
    const warm = Array.from({ length: 2 * peers * slots }, (_, i) => `units/u${i}.o`);
    await make(version, agents, project, warm, makefile);
    const before = await statsOf(agents.client.home);
    const pids = [agents.client.child.pid!, ...agents.peers.map((p) => p.child.pid!)];
    const cpu0 = pids.map(cpuOf);
    const started = performance.now();
    const fromUs = monotonicUs();
    await make(version, agents, project, [], makefile);
    const window = { fromUs, toUs: monotonicUs() };
    const wallMs = performance.now() - started;
    const cpu1 = pids.map(cpuOf);
    const after = await statsOf(agents.client.home);
    const d = (k: string) => (after.counts[k] ?? 0) - (before.counts[k] ?? 0);
    const jobs = d('remote');
    const compiles = jobs + d('fallback') + d('local') + d('job');
    const per = (i: number, k: 'main' | 'own' | 'tree') => (cpu1[i]![k] - cpu0[i]![k]) / Math.max(1, jobs);
    say(`${compiles} compiles in ${(wallMs / 1000).toFixed(1)} s: ${jobs} remote, ${d('fallback')} fallback, ${d('local')} local`);
    if (d('fallback')) say(`  fallbacks: ${JSON.stringify(after.fallbackByReason)}`);
    say(`jobs/s reached             ${((1000 * jobs) / wallMs).toFixed(1)} (bounded by this machine's ${os.availableParallelism()} cores, shared by the compiles and every agent)`);
    say(`client agent main thread   ${per(0, 'main').toFixed(2)} ms/job (target <= 5): its event loop allows ${(1000 / per(0, 'main')).toFixed(0)} jobs/s (target >= 200)`);
    say(`client agent, all threads  ${per(0, 'own').toFixed(2)} ms/job; with its helper processes ${per(0, 'tree').toFixed(2)} ms/job`);
    // The client's walk worker (its busiest thread after the main one) walks and hashes every
    // job: one caps the agent too, so a machine with the cores runs several (walkThreadsFor).
    let walk = 0;
    for (const [tid, end] of cpu1[0]!.threads) walk = Math.max(walk, (end - (cpu0[0]!.threads.get(tid) ?? 0)) / Math.max(1, jobs));
    const walkCeiling = (n: number) => ((1000 * n) / walk).toFixed(0);
    say(`client walk worker         ${walk.toFixed(2)} ms/job: one allows ${walkCeiling(1)} jobs/s; an 8-core machine's ${walkThreadsFor(8, {})} ${walkCeiling(walkThreadsFor(8, {}))}, a 16-core one's ${walkThreadsFor(16, {})} ${walkCeiling(walkThreadsFor(16, {}))}`);
    const peerMain = pids.slice(1).map((_, i) => per(i + 1, 'main'));
    const peerOwn = pids.slice(1).map((_, i) => per(i + 1, 'own'));
    const peerJobs = pids.slice(1).map((_, i) => ((cpu1[i + 1]!.tree - cpu1[i + 1]!.own - (cpu0[i + 1]!.tree - cpu0[i + 1]!.own)) / Math.max(1, jobs)));
    const sum = (xs: number[]) => xs.reduce((a, b) => a + b, 0);
    say(`peer agents main threads   ${sum(peerMain).toFixed(2)} ms/job (target <= 10; ${peerMain.map((x) => x.toFixed(1)).join(' + ')})`);
    say(`peer agents, all threads   ${sum(peerOwn).toFixed(2)} ms/job; the compiles in bubblewrap ${sum(peerJobs).toFixed(1)} ms/job`);
    const figures: Figures = { jobsPerS: (1000 * jobs) / wallMs, clientMain: per(0, 'main'), clientWalk: walk, clientAll: per(0, 'own'), peersMain: sum(peerMain), peersAll: sum(peerOwn) };
    await stopAgents(agents);
    if (opts.profile) {
      for (const [host, dir] of agents.profileDirs.entries()) {
        if (!dir) continue;
        const { mainThread, workers } = profilesIn(dir);
        if (!mainThread) continue;
        const main = summariseProfile(mainThread, window);
        say(`where h${host}'s main thread went during the build (self time by module; ${(main.busyMs / Math.max(1, jobs)).toFixed(2)} ms/job sampled):`);
        for (const line of topPlaces(main.byPlace, jobs)) say(`  ${line}`);
        const workerMs = workers.map((w) => summariseProfile(w, window).busyMs).reduce((a, b) => a + b, 0);
        if (workers.length) say(`  worker threads: ${workers.length}, ${(workerMs / Math.max(1, jobs)).toFixed(2)} ms/job busy`);
      }
    }
    return figures;
  } finally {
    await stopAgents(agents).catch(() => undefined);
  }
}

async function main(): Promise<void> {
  const avail = netnsAvailable();
  if (!avail.ok) {
    say(`throughput benchmark needs network namespaces: ${avail.reason}`);
    return;
  }
  mkdirSync(WORK, { recursive: true });
  const logs = mkdtempSync(path.join(os.tmpdir(), 'meshcc-throughput-logs-'));
  say(`agent logs in ${logs}`);
  const kinds = opts.headers === 'both' ? ['git', 'linux'] : [opts.headers];
  const current: Version = { label: 'this version', bin: path.join(repo, 'bin', 'meshcc.js') };
  const versions = opts.baseline ? [{ label: `baseline ${path.basename(path.resolve(opts.baseline))}`, bin: path.join(path.resolve(opts.baseline), 'bin', 'meshcc.js') }, current] : [current];
  const table: string[] = [];
  for (const kind of kinds) {
    let project: Project;
    let makefile: string | undefined;
    if (kind === 'git') project = gitProject(Number(opts.units ?? 2000));
    else if (kind === 'linux') [project, makefile] = [linuxProject(Number(opts.units ?? 1000)), 'units/Makefile.throughput'];
    else throw new Error(`--headers takes git, linux or both, not ${kind}`);
    const figures: Figures[] = [];
    for (const version of versions) figures.push(await measure(version, project, makefile, logs));
    for (const [i, f] of figures.entries()) {
      table.push(
        `${project.name.padEnd(15)} ${versions[i]!.label.padEnd(28)} ${f.jobsPerS.toFixed(1).padStart(6)} ${f.clientMain.toFixed(2).padStart(8)} ${(1000 / f.clientMain).toFixed(0).padStart(8)} ${f.clientWalk.toFixed(2).padStart(8)} ${f.clientAll.toFixed(2).padStart(8)} ${f.peersMain.toFixed(2).padStart(8)} ${f.peersAll.toFixed(2).padStart(8)}`,
      );
    }
    if (figures.length === 2) {
      const [a, b] = figures as [Figures, Figures];
      table.push(`${''.padEnd(15)} ${'this / baseline'.padEnd(28)} ${(b.jobsPerS / a.jobsPerS).toFixed(2).padStart(6)} ${(b.clientMain / a.clientMain).toFixed(2).padStart(8)} ${''.padStart(8)} ${(b.clientWalk / a.clientWalk).toFixed(2).padStart(8)} ${(b.clientAll / a.clientAll).toFixed(2).padStart(8)} ${(b.peersMain / a.peersMain).toFixed(2).padStart(8)} ${(b.peersAll / a.peersAll).toFixed(2).padStart(8)}`);
    }
  }
  say('\n== summary (ms of CPU per job, from /proc)');
  say(`${'headers'.padEnd(15)} ${'agents'.padEnd(28)} ${'jobs/s'.padStart(6)} ${'client'.padStart(8)} ${'ceiling'.padStart(8)} ${'walk'.padStart(8)} ${'client*'.padStart(8)} ${'peers'.padStart(8)} ${'peers*'.padStart(8)}`);
  for (const line of table) say(line);
  say('client, peers: main threads (targets <= 5 and <= 10 ms/job); ceiling: jobs/s the client main thread allows (target >= 200); walk: the client walk worker (one per four cores, up to four); *: all threads');
  if (!opts.keep) rmSync(logs, { recursive: true, force: true });
}

try {
  await main();
} catch (err) {
  console.error(`throughput: ${(err as Error).message}`);
  process.exitCode = 1;
}
