// bench/mesh-build: a real project built three ways on this one machine, from fresh copies of
// one configured tree at one absolute path (so objects are comparable):
//   plain   `make -j<cores>` with the plain compilers;
//   mesh    two network namespaces: a client agent in h0 that runs nothing itself
//           (MESHCC_SLOTS=0, MESHCC_LOCAL_SLOTS=0) and a peer agent in h1 with 2 slots;
//           `make -j<N>` in h0 with meshcc's compiler links first on PATH; every object must
//           be byte-identical to the plain build's; then one header is touched and make runs
//           again in the same tree;
//   and, in a separate untimed pass, every compile of the plain build is run again with -E
//   and gzip'd: what icecream and distcc would send for it, next to meshcc's bytes sent.
// Client-side CPU = make and everything under it (the native clients, local fallback
// compiles, links, generator scripts; from bash's `times`) + the client agent's CPU and its
// children's, live (its spawner helper) or reaped (scans): /proc/<pid>/stat utime+stime+cutime+cstime read just before and
// just after the build (so the agent's start-up, e.g. its speed benchmark, is not counted).
// The peer's CPU is not client side. Numbers are printed, nothing passes or fails.
// Where the machine's CPU went during the mesh build is printed too (/proc/stat and each
// agent's own /proc/<pid>/stat): busy, stolen by the hypervisor (a VM's neighbours: wall
// time neither build could use, and the main reason this ratio varies between runs), each
// agent, and what the build would take if both agents cost nothing.
//
// With --far, the peer is far: 50 ms each way (100 ms round trip) and 20 Mbit/s on its link
// (tc netem + tbf on both directions), what bench/wire-bytes runs.
//
//   node dist/bench/mesh-build.js [--project git|zlib|linux] [-j N] [--far] [--no-gzip-e] [--header PATH] [--keep]
//   env: MESHCC_BENCH_PROJECT, MESHCC_BENCH_JOBS, MESHCC_BENCH_SKIP_E=1 (same meanings),
//        MESHCC_BENCH_NODE_ARGS (node options for both agents, e.g. "--cpu-prof --cpu-prof-dir=/tmp/p")
// Needs root (network namespaces). The project is fetched by bench/fetch-project.sh.
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { appendFileSync, closeSync, existsSync, lstatSync, mkdirSync, mkdtempSync, openSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { promisify } from 'node:util';
import { gzip } from 'node:zlib';
import { query } from '../node/cli/query.js';
import { socketAnswers } from '../node/instance-lock.js';
import { setMeshKey } from '../node/mesh/keys.js';
import type { AgentStatus } from '../node/mesh/mesh-service.js';
import { createNetnsMesh, netnsAvailable, type NetnsMesh } from '../test/helpers/netns.js';
import { FAR_LINK, makeFar } from '../test/helpers/link-shape.js';

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const MESHCC_BIN = path.join(repo, 'bin', 'meshcc.js');
const FETCH = path.join(repo, 'bench', 'fetch-project.sh');
/** Every build happens at this path (objects record it: DW_AT_comp_dir, __FILE__). */
const BUILD_ROOT = '/tmp/meshcc-bench-build';
const CORES = os.availableParallelism();
const gzipAsync = promisify(gzip);

interface Project {
  /** One-time configure step, run in place at the build path; not timed. */
  configure(dir: string): void;
  /** Extra arguments of every make. */
  makeArgs: string[];
  /** Header touched for the incremental build (relative to the tree): one included by a modest number of units. */
  header: string;
  /** What counts as an object file. */
  objectExts: string[];
}

const PROJECTS: Record<string, Project> = {
  // git's own Makefile; the optional libraries off so that only zlib is needed.
  git: {
    configure: (dir) =>
      writeFileSync(
        path.join(dir, 'config.mak'),
        ['NO_CURL=1', 'NO_OPENSSL=1', 'NO_EXPAT=1', 'NO_GETTEXT=1', 'NO_TCLTK=1', 'NO_PERL=1', 'NO_PYTHON=1', ''].join('\n'),
      ),
    makeArgs: [],
    header: 'progress.h', // 28 of 496 units include it
    objectExts: ['.o'],
  },
  // The kernel's tinyconfig (Linux 6.1 from Debian): 456-odd units that each read hundreds of
  // headers, the case DESIGN.md measured (11.7 MB of distinct inputs, 3.3 MB gzip).
  linux: {
    configure: (dir) => execFileSync('make', ['tinyconfig'], { cwd: dir, stdio: 'ignore', env: baseEnv() }),
    makeArgs: [],
    header: 'kernel/sched/sched.h',
    objectExts: ['.o'],
  },
  // A quick smoke run: 30 units (static .o and shared .lo objects).
  zlib: {
    configure: (dir) => execFileSync('./configure', [], { cwd: dir, stdio: 'ignore', env: baseEnv() }),
    makeArgs: [],
    header: 'inftrees.h',
    objectExts: ['.o', '.lo'],
  },
};

// ---------------------------------------------------------------------------------------------
// options

const { values: opts } = parseArgs({
  args: process.env.MESHCC_BENCH_ARGS !== undefined ? process.env.MESHCC_BENCH_ARGS.split(' ').filter(Boolean) : process.argv.slice(2),
  options: {
    far: { type: 'boolean', default: false },
    project: { type: 'string', default: process.env.MESHCC_BENCH_PROJECT ?? 'git' },
    jobs: { type: 'string', short: 'j', default: process.env.MESHCC_BENCH_JOBS ?? '8' },
    'no-gzip-e': { type: 'boolean', default: process.env.MESHCC_BENCH_SKIP_E === '1' },
    header: { type: 'string' },
    keep: { type: 'boolean', default: false },
    help: { type: 'boolean', short: 'h', default: false },
  },
});

// ---------------------------------------------------------------------------------------------
// small helpers

function say(line: string): void {
  console.log(line);
}

/** The environment of every build and agent: ours without any MESHCC_* a user's shell may carry. */
function baseEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('MESHCC_')) env[k] = v;
  // The kernel writes the build's time, user and host into init/version.o: fixed, so that two
  // builds of the same tree are byte-identical.
  Object.assign(env, { KBUILD_BUILD_TIMESTAMP: 'Thu Jan  1 00:00:00 UTC 2026', KBUILD_BUILD_USER: 'meshcc', KBUILD_BUILD_HOST: 'bench' });
  return env;
}

const shq = (a: string) => (/^[\w@%+=:,./-]+$/.test(a) ? a : `'${a.replace(/'/g, `'\\''`)}'`);
const secs = (ms: number) => `${(ms / 1000).toFixed(1)} s`;
const pct = (a: number, b: number) => `${((100 * a) / b).toFixed(1)} %`;
const clock = (ms: number) => `${Math.floor(ms / 60000)}m${String(Math.floor((ms % 60000) / 1000)).padStart(2, '0')}s`;

function bytes(n: number | undefined): string {
  if (n === undefined) return 'n/a';
  if (n < 10 * 1024) return `${n} B`;
  if (n < 10 * 1024 * 1024) return `${(n / 1024).toFixed(1)} KiB`;
  return `${(n / 1048576).toFixed(1)} MiB`;
}

/** Files under dir (relative paths) whose names end in one of exts; symlinks are not followed. */
function filesUnder(dir: string, exts: string[]): string[] {
  const out: string[] = [];
  const walk = (rel: string): void => {
    let entries;
    try {
      entries = readdirSync(path.join(dir, rel), { withFileTypes: true });
    } catch {
      return; // vanished meanwhile (make removes temporaries)
    }
    for (const e of entries) {
      const r = rel ? `${rel}/${e.name}` : e.name;
      if (e.isDirectory()) walk(r);
      else if (e.isFile() && exts.some((x) => e.name.endsWith(x))) out.push(r);
    }
  };
  walk('');
  return out.sort();
}

function clkTck(): number {
  return Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
}

/** CPU seconds of a process, its reaped children (utime + stime + cutime + cstime), and of its
 *  live descendants likewise (the agent's spawner helper, which starts the scans, lives on). */
function processTreeCpuS(pid: number, tck: number): number {
  let fields: string[];
  try {
    fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  } catch {
    return 0; // exited between listing and reading
  }
  let seconds = (Number(fields[11]) + Number(fields[12]) + Number(fields[13]) + Number(fields[14])) / tck;
  let children: string[] = [];
  try {
    children = readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean);
  } catch {
    // no children file (old kernel): live helpers are missed
  }
  for (const child of children) seconds += processTreeCpuS(Number(child), tck);
  return seconds;
}

/** CPU seconds of one process alone (all its threads, no children). */
function processOwnCpuS(pid: number, tck: number): number {
  try {
    const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
    return (Number(fields[11]) + Number(fields[12])) / tck;
  } catch {
    return 0;
  }
}

/** CPU seconds of the whole machine: busy (user, nice, system, irq, softirq) and stolen by
 *  the hypervisor (a VM's neighbours: time neither build could use). */
function machineCpuS(tck: number): { busy: number; steal: number } {
  const cpu = readFileSync('/proc/stat', 'utf8').split('\n')[0]!.trim().split(/\s+/).slice(1).map(Number);
  return { busy: (cpu[0]! + cpu[1]! + cpu[2]! + cpu[5]! + cpu[6]!) / tck, steal: cpu[7]! / tck };
}

async function until(probe: () => Promise<boolean>, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await probe().catch(() => false))) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** A fresh copy of the configured tree at the build path (cp -a: timestamps kept, so make sees a configured tree). */
function freshTree(template: string, tree: string): void {
  rmSync(tree, { recursive: true, force: true });
  execFileSync('cp', ['-a', template, tree]);
}

// ---------------------------------------------------------------------------------------------
// builds

interface BuildResult {
  wallMs: number;
  /** user + sys of make and all its descendants, from bash's `times`. */
  cpuS: number;
}

/** Processes of ours to kill on SIGINT: the plain builds run in their own process group. */
const running = new Set<ChildProcess>();

/**
 * Runs `make` under bash, which prints `times` after it: the second line is the user and
 * system time of bash's reaped children, i.e. make and every process under it (each one is
 * waited for by its parent, so nothing escapes; no cgroup needed). make's output goes to log.
 */
async function runMake(
  label: string,
  tree: string,
  jobs: number,
  makeArgs: string[],
  log: string,
  start: (cmd: string, args: string[]) => ChildProcess,
  progress: () => Promise<string>,
): Promise<BuildResult> {
  const script = `make -j${jobs} ${makeArgs.map(shq).join(' ')} >>${shq(log)} 2>&1; s=$?; times; exit $s`;
  const began = performance.now();
  const child = start('bash', ['-c', script]);
  running.add(child);
  let out = '';
  child.stdout?.setEncoding('utf8').on('data', (d: string) => (out += d));
  child.stderr?.setEncoding('utf8').on('data', (d: string) => (out += d));
  const timer = setInterval(() => {
    void progress().then((p) => say(`  ${label}: ${clock(performance.now() - began)}${p}`));
  }, 15_000);
  const code = await new Promise<number | null>((resolve, reject) => {
    child.once('error', reject);
    child.once('close', (c) => resolve(c));
  }).finally(() => {
    clearInterval(timer);
    running.delete(child);
  });
  const wallMs = performance.now() - began;
  if (code !== 0) {
    const tail = existsSync(log) ? readFileSync(log, 'utf8').split('\n').slice(-30).join('\n') : '';
    throw new Error(`${label} build failed (exit ${code}) in ${tree}; last lines of ${log}:\n${tail}`);
  }
  const lines = out.trim().split('\n');
  const m = lines[lines.length - 1]?.match(/(\d+)m([\d.]+)s\s+(\d+)m([\d.]+)s/);
  if (!m) throw new Error(`cannot read bash's times: ${out}`);
  const cpuS = Number(m[1]) * 60 + Number(m[2]) + Number(m[3]) * 60 + Number(m[4]);
  return { wallMs, cpuS };
}

function startHere(tree: string, env: NodeJS.ProcessEnv) {
  return (cmd: string, args: string[]) => spawn(cmd, args, { cwd: tree, env, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
}

// ---------------------------------------------------------------------------------------------
// the -E pass: what icecream / distcc would ship

interface CompileCommand {
  cwd: string;
  argv: string[];
}

const WRAPPED = ['gcc', 'g++', 'cc', 'c++', 'clang', 'clang++'];

/** A logging compiler: writes cwd and argv (NUL-separated) to a file of its own, then execs the real one. */
function writeWrappers(dir: string): void {
  mkdirSync(dir, { recursive: true });
  const script = `#!/bin/bash
# meshcc bench: record this compiler invocation, then run the real compiler of that name.
self=\${0%/*}
p=":$PATH:"; p=\${p//":$self:"/:}; p=\${p#:}; PATH=\${p%:}
printf '%s\\0' "$(pwd -P)" "\${0##*/}" "$@" > "$MESHCC_BENCH_CMDLOG/$BASHPID.$SRANDOM"
exec "\${0##*/}" "$@"
`;
  for (const name of WRAPPED) writeFileSync(path.join(dir, name), script, { mode: 0o755 });
}

function readCommands(logDir: string): CompileCommand[] {
  const cmds: CompileCommand[] = [];
  for (const f of readdirSync(logDir)) {
    const parts = readFileSync(path.join(logDir, f), 'utf8').split('\0');
    parts.pop(); // after the last NUL
    const [cwd, ...argv] = parts;
    if (cwd === undefined || argv.length === 0) continue;
    cmds.push({ cwd, argv });
  }
  return cmds;
}

/** A compile of one unit to an object: has -c, and is neither a preprocess nor a dependency-only
 *  run, nor a build system's probe of an option (the kernel's cc-option compiles /dev/null). */
function isCompile(argv: string[]): boolean {
  return argv.includes('-c') && !argv.some((a) => a === '-E' || a === '-S' || a === '-M' || a === '-MM' || a === '/dev/null');
}

/** The same command preprocessing to stdout: -c, -o and the dependency-file options dropped, -E added. */
function preprocessArgv(argv: string[]): string[] {
  const out: string[] = [];
  for (let i = 1; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '-c' || a === '-MD' || a === '-MMD' || a === '-MP') continue;
    if (a === '-o' || a === '-MF' || a === '-MT' || a === '-MQ') {
      i++;
      continue;
    }
    if (/^-(o|MF|MT|MQ)./.test(a)) continue;
    out.push(a);
  }
  return ['-E', ...out];
}

interface GzipE {
  jobs: number;
  gzipBytes: number;
  rawBytes: number;
  /** Units whose -E output names the header (line markers). */
  includingHeader: number;
  /** Compiles whose -E failed (probes the build expects to fail): left out. */
  failed: number;
}

async function gzipPreprocessed(cmds: CompileCommand[], header: string, env: NodeJS.ProcessEnv): Promise<GzipE> {
  const result: GzipE = { jobs: 0, gzipBytes: 0, rawBytes: 0, includingHeader: 0, failed: 0 };
  const queue = [...cmds];
  const worker = async (): Promise<void> => {
    for (let c = queue.shift(); c; c = queue.shift()) {
      const cmd = c;
      const chunks: Buffer[] = [];
      const child = spawn(cmd.argv[0]!, preprocessArgv(cmd.argv), { cwd: cmd.cwd, env, stdio: ['ignore', 'pipe', 'ignore'] });
      running.add(child);
      child.stdout.on('data', (d: Buffer) => chunks.push(d));
      const code = await new Promise<number | null>((resolve, reject) => {
        child.once('error', reject);
        child.once('close', resolve);
      }).finally(() => running.delete(child));
      if (code !== 0) {
        // A compile the build expected to fail (a probe that names a real file): not a unit.
        result.failed++;
        continue;
      }
      const text = Buffer.concat(chunks);
      const done = ++result.jobs;
      result.rawBytes += text.length;
      const gzipped = (await gzipAsync(text, { level: 6 })).length; // not `x += await …`: that reads x before the await
      result.gzipBytes += gzipped;
      for (const m of text.toString('latin1').matchAll(/^# \d+ "((?:[^"\\]|\\.)*)"/gm)) {
        if (path.resolve(cmd.cwd, m[1]!) === header) {
          result.includingHeader++;
          break;
        }
      }
      if (done % 100 === 0) say(`  -E: ${done}/${cmds.length} compiles`);
    }
  };
  await Promise.all(Array.from({ length: CORES }, worker));
  return result;
}

// ---------------------------------------------------------------------------------------------
// the agent's stats (fields that do not exist yet print as n/a)

type Json = Record<string, unknown>;

function at(obj: unknown, dotted: string): unknown {
  let v: unknown = obj;
  for (const k of dotted.split('.')) v = v && typeof v === 'object' ? (v as Json)[k] : undefined;
  return v;
}

function numAt(obj: unknown, dotted: string): number | undefined {
  const v = at(obj, dotted);
  return typeof v === 'number' ? v : undefined;
}

function delta(before: unknown, after: unknown, dotted: string): number | undefined {
  const a = numAt(after, dotted);
  if (a === undefined) return undefined;
  return a - (numAt(before, dotted) ?? 0);
}

const na = (n: number | undefined) => (n === undefined ? 'n/a' : String(n));

async function statsOf(home: string): Promise<Json | undefined> {
  try {
    return (await query(path.join(home, 'agent.sock'), { t: 'stats', v: 1 })).stats as Json;
  } catch {
    return undefined;
  }
}

async function statusOf(home: string): Promise<AgentStatus[]> {
  return (await query(path.join(home, 'agent.sock'), { t: 'status', v: 1 })).agents as AgentStatus[];
}

/** Per-key differences of a {key: number} object. */
function mapDelta(before: unknown, after: unknown, dotted: string): Record<string, number> | undefined {
  const a = at(after, dotted);
  if (!a || typeof a !== 'object') return undefined;
  const out: Record<string, number> = {};
  for (const [k, v] of Object.entries(a as Json)) {
    if (typeof v !== 'number') continue;
    const d = v - (numAt(at(before, dotted), k) ?? 0);
    if (d !== 0) out[k] = d;
  }
  return out;
}

interface MeshBuildStats {
  counts: Record<'local' | 'job' | 'remote' | 'fallback', number | undefined>;
  fallbackByReason?: Record<string, number>;
  bytesSent?: number;
  bytesReceived?: number;
  /** of bytesSent, the job offers (the rest is store files); store files the jobs used, and those sent */
  offerBytes?: number;
  filesUsed?: number;
  filesSent?: number;
  /** peer id → differences of its numeric fields (jobs at least). */
  perPeer?: Record<string, Record<string, number>>;
  /** The stats of before the `counts` field: jobs by route. */
  routes?: Record<string, number>;
}

function buildStats(before: Json | undefined, after: Json | undefined): MeshBuildStats {
  const counts = {
    local: delta(before, after, 'counts.local'),
    job: delta(before, after, 'counts.job'),
    remote: delta(before, after, 'counts.remote'),
    fallback: delta(before, after, 'counts.fallback'),
  };
  let perPeer: Record<string, Record<string, number>> | undefined;
  const peers = at(after, 'perPeer');
  if (peers && typeof peers === 'object') {
    perPeer = {};
    for (const id of Object.keys(peers)) {
      const d = mapDelta(before, after, `perPeer.${id}`);
      if (d && Object.keys(d).length) perPeer[id] = d;
    }
  }
  let routes: Record<string, number> | undefined;
  const r = at(after, 'routes');
  if (r && typeof r === 'object') {
    routes = {};
    for (const k of Object.keys(r)) routes[k] = delta(before, after, `routes.${k}.jobs`) ?? 0;
  }
  return {
    counts,
    fallbackByReason: mapDelta(before, after, 'fallbackByReason'),
    bytesSent: delta(before, after, 'bytesSent'),
    bytesReceived: delta(before, after, 'bytesReceived'),
    offerBytes: delta(before, after, 'inputFiles.offerBytes'),
    filesUsed: delta(before, after, 'inputFiles.total'),
    filesSent: delta(before, after, 'inputFiles.sent'),
    perPeer,
    routes,
  };
}

function printStats(s: MeshBuildStats, peerNames: Map<string, string>): void {
  const c = s.counts;
  say(`  jobs (client agent's counts): local ${na(c.local)}, remote ${na(c.remote)}, fallback ${na(c.fallback)}, own executor ${na(c.job)}`);
  if (c.local === undefined && s.routes) {
    say(`    (no counts field yet; by route: ${Object.entries(s.routes).map(([k, v]) => `${k} ${v}`).join(', ')})`);
  }
  const reasons = s.fallbackByReason;
  say(`  fallback by reason: ${reasons === undefined ? 'n/a' : Object.keys(reasons).length ? Object.entries(reasons).map(([k, v]) => `${k} ${v}`).join(', ') : 'none'}`);
  say(`  bytes sent ${bytes(s.bytesSent)} (job offers ${bytes(s.offerBytes)}, store files the rest), received ${bytes(s.bytesReceived)}`);
  say(`  store files: ${na(s.filesUsed)} used by the jobs, ${na(s.filesSent)} sent (the peer lacked them)`);
  if (s.perPeer === undefined) say('  per peer: n/a');
  else if (Object.keys(s.perPeer).length === 0) say('  per peer: none');
  else
    for (const [id, d] of Object.entries(s.perPeer)) {
      const fields = Object.entries(d).map(([k, v]) => `${k} ${/bytes/i.test(k) ? bytes(v) : v}`);
      say(`  peer ${peerNames.get(id) ?? id}: ${fields.join(', ')}`);
    }
}

// ---------------------------------------------------------------------------------------------
// comparing the builds

function compareTrees(plainTree: string, meshTree: string, exts: string[]): { identical: number; differing: string[] } {
  const a = filesUnder(plainTree, exts);
  const b = new Set(filesUnder(meshTree, exts));
  const differing: string[] = [];
  let identical = 0;
  for (const rel of a) {
    if (!b.has(rel)) {
      differing.push(`${rel} (missing from the mesh build)`);
      continue;
    }
    b.delete(rel);
    if (readFileSync(path.join(plainTree, rel)).equals(readFileSync(path.join(meshTree, rel)))) identical++;
    else differing.push(rel);
  }
  for (const rel of b) differing.push(`${rel} (only in the mesh build)`);
  return { identical, differing };
}

// ---------------------------------------------------------------------------------------------

const tempDirs: string[] = [];
let keepTrees = false;

function cleanupSync(): void {
  for (const child of running) {
    if (child.pid === undefined || child.exitCode !== null || child.signalCode !== null) continue;
    try {
      process.kill(-child.pid, 'SIGKILL'); // the build's own process group (spawned detached)
    } catch {
      try {
        process.kill(child.pid, 'SIGKILL');
      } catch {
        // gone
      }
    }
  }
  for (const d of tempDirs.splice(0)) rmSync(d, { recursive: true, force: true });
  if (!keepTrees) rmSync(BUILD_ROOT, { recursive: true, force: true });
}

async function main(): Promise<void> {
  if (opts.help) {
    say('node dist/bench/mesh-build.js [--project git|zlib|linux] [-j N] [--far] [--no-gzip-e] [--header PATH] [--keep]');
    return;
  }
  const name = opts.project;
  const project = PROJECTS[name];
  if (!project) throw new Error(`unknown project '${name}' (known: ${Object.keys(PROJECTS).join(', ')})`);
  const meshJobs = Number(opts.jobs);
  if (!Number.isInteger(meshJobs) || meshJobs < 1) throw new Error(`-j must be a positive whole number, got '${opts.jobs}'`);
  const header = opts.header ?? project.header;
  keepTrees = opts.keep;
  const avail = netnsAvailable();
  if (!avail.ok) {
    say(`mesh-build benchmark needs network namespaces: ${avail.reason}`);
    return;
  }
  const bindir = execFileSync(process.execPath, [MESHCC_BIN, 'bindir'], { encoding: 'utf8' }).trim();
  if (!existsSync(path.join(bindir, 'gcc'))) throw new Error(`no native client in ${bindir}: run npm run build`);

  process.on('SIGINT', () => {
    cleanupSync();
    process.exit(130); // the harness destroys the namespaces on exit
  });
  process.on('exit', cleanupSync);

  say(`fetching ${name}`);
  const source = execFileSync('bash', [FETCH, name], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] }).trim();

  rmSync(BUILD_ROOT, { recursive: true, force: true });
  mkdirSync(BUILD_ROOT, { recursive: true });
  const tree = path.join(BUILD_ROOT, name);
  const template = path.join(BUILD_ROOT, `${name}.configured`);
  const plainTree = path.join(BUILD_ROOT, `${name}.plain`);
  const logs = path.join(BUILD_ROOT, 'logs');
  mkdirSync(logs);
  execFileSync('cp', ['-a', source, tree]);
  rmSync(path.join(tree, '.meshcc-fetched'), { force: true });
  say(`configuring ${name} in ${tree} (not timed)`);
  project.configure(tree);
  renameSync(tree, template);
  const env = baseEnv();
  const objectsIn = (dir: string) => async () => `, ${filesUnder(dir, project.objectExts).length} objects`;

  // --- the -E pass (not timed): capture the plain build's compiles, preprocess and gzip each
  let gz: GzipE | undefined;
  if (!opts['no-gzip-e']) {
    say(`capture pass: make -j${CORES} with logging compilers (not timed)`);
    freshTree(template, tree);
    const wrapDir = path.join(BUILD_ROOT, 'wrap');
    const cmdLog = path.join(BUILD_ROOT, 'cmdlog');
    writeWrappers(wrapDir);
    mkdirSync(cmdLog);
    const wrapEnv = { ...env, PATH: `${wrapDir}:${env.PATH ?? '/usr/bin:/bin'}`, MESHCC_BENCH_CMDLOG: cmdLog };
    await runMake('capture', tree, CORES, project.makeArgs, path.join(logs, 'capture.log'), startHere(tree, wrapEnv), objectsIn(tree));
    const all = readCommands(cmdLog);
    const compiles = all.filter((c) => isCompile(c.argv));
    say(`  ${all.length} compiler invocations, ${compiles.length} compiles; preprocessing each with -E and gzip -6`);
    gz = await gzipPreprocessed(compiles, path.join(tree, header), env);
    rmSync(tree, { recursive: true, force: true });
  }

  // --- plain
  say(`plain build: make -j${CORES}`);
  freshTree(template, tree);
  const plainMachine0 = machineCpuS(clkTck());
  const plain = await runMake('plain', tree, CORES, project.makeArgs, path.join(logs, 'plain.log'), startHere(tree, env), objectsIn(tree));
  const plainMachine1 = machineCpuS(clkTck());
  const plainMachine = { busy: plainMachine1.busy - plainMachine0.busy, steal: plainMachine1.steal - plainMachine0.steal };
  const plainObjects = filesUnder(tree, project.objectExts).length;
  say(`  plain: ${secs(plain.wallMs)} wall, ${plain.cpuS.toFixed(1)} s CPU, ${plainObjects} objects`);
  renameSync(tree, plainTree);

  // --- mesh
  say(`mesh: starting a client agent in h0 (no slots) and a peer agent in h1 (2 slots)`);
  const mesh: NetnsMesh = await createNetnsMesh({ hosts: 2, prefix: 'mcbm' });
  try {
    if (opts.far) {
      const how = await makeFar(mesh, mesh.hosts[1]!, FAR_LINK);
      say(`  h1 is far: ${2 * FAR_LINK.delayMs} ms round trip, ${FAR_LINK.rateMbit} Mbit/s (${how})`);
    }
    const homes = [0, 1].map(() => mkdtempSync(path.join(os.tmpdir(), 'meshcc-bench-home-')));
    tempDirs.push(...homes);
    const [clientHome, peerHome] = homes as [string, string];
    const key = Buffer.from(crypto.getRandomValues(new Uint8Array(32))).toString('hex');
    for (const home of homes) await setMeshKey(home, key);
    const agentLog = (i: number) => openSync(path.join(logs, `agent-h${i}.log`), 'a');
    const startAgent = (host: number, home: string, extra: NodeJS.ProcessEnv): ChildProcess => {
      const fd = agentLog(host);
      // MESHCC_BENCH_NODE_ARGS: extra node options for the agents (e.g. --cpu-prof), which NODE_OPTIONS refuses
      const nodeArgs = (process.env.MESHCC_BENCH_NODE_ARGS ?? '').split(' ').filter(Boolean);
      const child = mesh.spawn(host, process.execPath, [...nodeArgs, MESHCC_BIN, 'agent'], {
        env: { ...env, MESHCC_HOME: home, MESHCC_LOG_LEVEL: 'warn', ...extra },
        stdio: ['ignore', fd, fd],
      });
      closeSync(fd);
      return child;
    };
    const peer = startAgent(1, peerHome, { MESHCC_SLOTS: '2', MESHCC_LOCAL_SLOTS: '0' });
    const client = startAgent(0, clientHome, { MESHCC_SLOTS: '0', MESHCC_LOCAL_SLOTS: '0' });
    for (const [child, home] of [[peer, peerHome], [client, clientHome]] as const) {
      await until(
        async () => {
          if (child.exitCode !== null) throw new Error(`an agent exited (${child.exitCode}); see ${logs}`);
          return socketAnswers(path.join(home, 'agent.sock'));
        },
        30_000,
        'the agents to answer on their sockets',
      ).catch((err: Error) => {
        throw new Error(`${err.message}; agent logs in ${logs} (use --keep to keep them)`);
      });
    }
    const t0 = Date.now();
    await until(async () => (await statusOf(clientHome)).length === 2, 30_000, '`meshcc status` on the client to list 2 agents');
    // Both agents identify their host's compilers once, in the background of their first start
    // (about 2 s of hashing, then cached in MESHCC_HOME): let that finish before timing a build.
    let lastSeen = '';
    let stableSince = Date.now();
    await until(
      async () => {
        const seen = JSON.stringify((await statusOf(clientHome)).map((a) => a.toolchains.length));
        if (seen !== lastSeen) [lastSeen, stableSince] = [seen, Date.now()];
        return !seen.includes('0') && Date.now() - stableSince > 2000;
      },
      60_000,
      'both agents to identify their toolchains',
    );
    const agents = await statusOf(clientHome);
    const peerNames = new Map<string, string>();
    for (const a of agents) {
      const host = mesh.hosts.find((h) => a.addresses.some((addr) => addr.includes(`/${h.address}/`)));
      peerNames.set(a.peerId, `${host?.name ?? (a.self ? 'h0' : '?')} (${a.peerId.slice(-8)})`);
    }
    say(`  the client lists 2 agents after ${Date.now() - t0} ms: ${agents.map((a) => `${peerNames.get(a.peerId)} slots ${a.slots}`).join(', ')}`);

    const tck = clkTck();
    const meshEnv = { ...env, PATH: `${bindir}:${env.PATH ?? '/usr/bin:/bin'}`, MESHCC_HOME: clientHome };
    const inH0 = (cmd: string, args: string[]) => mesh.spawn(0, cmd, args, { cwd: tree, env: meshEnv, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
    const meshProgress = async () => {
      const s = await statsOf(clientHome);
      const c = ['local', 'remote', 'fallback'].map((k) => `${k} ${na(numAt(s, `counts.${k}`))}`).join(', ');
      return `${await objectsIn(tree)()}; client agent: ${c}`;
    };
    const clientPid = client.pid!;

    say(`mesh build: make -j${meshJobs} in h0 with ${bindir} first on PATH`);
    freshTree(template, tree);
    const stats0 = await statsOf(clientHome);
    const agentCpu0 = processTreeCpuS(clientPid, tck);
    const machineNow = () => ({ ...machineCpuS(tck), peerOwn: processOwnCpuS(peer.pid!, tck), peerTree: processTreeCpuS(peer.pid!, tck), clientOwn: processOwnCpuS(clientPid, tck) });
    const machine0 = machineNow();
    const meshRun = await runMake('mesh', tree, meshJobs, project.makeArgs, path.join(logs, 'mesh.log'), inH0, meshProgress);
    const agentCpu1 = processTreeCpuS(clientPid, tck);
    const machine1 = machineNow();
    const stats1 = await statsOf(clientHome);
    const meshAgentCpu = agentCpu1 - agentCpu0;
    const meshClientCpu = meshRun.cpuS + meshAgentCpu;
    const first = buildStats(stats0, stats1);
    say(`  mesh: ${secs(meshRun.wallMs)} wall; client side ${meshClientCpu.toFixed(1)} s CPU (make tree ${meshRun.cpuS.toFixed(1)} s + client agent ${meshAgentCpu.toFixed(1)} s)`);

    say('comparing objects with the plain build');
    const objects = compareTrees(plainTree, tree, project.objectExts);
    const deps = compareTrees(plainTree, tree, ['.d']);

    // --- incremental: one header touched
    const headerPath = path.join(tree, header);
    const headerSize = statSync(headerPath).size;
    const mtimes = new Map(filesUnder(tree, project.objectExts).map((rel) => [rel, statSync(path.join(tree, rel)).mtimeMs]));
    appendFileSync(headerPath, '/* meshcc bench */\n');
    say(`second mesh build: ${header} (${headerSize} bytes) gets a comment line; make -j${meshJobs} again`);
    const stats2 = await statsOf(clientHome);
    const agentCpu2 = processTreeCpuS(clientPid, tck);
    const incRun = await runMake('incremental', tree, meshJobs, project.makeArgs, path.join(logs, 'incremental.log'), inH0, meshProgress);
    const agentCpu3 = processTreeCpuS(clientPid, tck);
    const stats3 = await statsOf(clientHome);
    const second = buildStats(stats2, stats3);
    const rebuilt = filesUnder(tree, project.objectExts).filter((rel) => {
      const m = lstatSync(path.join(tree, rel)).mtimeMs;
      return mtimes.get(rel) !== m;
    }).length;
    const peerStats = await statsOf(peerHome);

    // --- report
    const plainCpu = plain.cpuS;
    say('');
    say(`== ${name}: ${plainObjects} objects; plain make -j${CORES}, mesh make -j${meshJobs} (client h0 without slots, peer h1 with 2 slots${opts.far ? `, ${2 * FAR_LINK.delayMs} ms away at ${FAR_LINK.rateMbit} Mbit/s` : ''}, one ${CORES}-core machine)`);
    say(`plain build            ${secs(plain.wallMs)} wall, ${plainCpu.toFixed(1)} s CPU`);
    say(`mesh build             ${secs(meshRun.wallMs)} wall: mesh/plain ${(meshRun.wallMs / plain.wallMs).toFixed(2)} (target <= 1.10)`);
    say(
      `client-side CPU        ${meshClientCpu.toFixed(1)} s = ${pct(meshClientCpu, plainCpu)} of the plain build's (target <= 35 %)` +
        `: make and below ${meshRun.cpuS.toFixed(1)} s, client agent ${meshAgentCpu.toFixed(1)} s`,
    );
    {
      // Where the machine's CPU went: on one machine every agent cycle is a cycle no compile got.
      const d = (k: keyof typeof machine0) => machine1[k] - machine0[k];
      const peerAgent = d('peerOwn');
      const peerJobs = d('peerTree') - peerAgent;
      const other = d('busy') - meshRun.cpuS - meshAgentCpu - d('peerTree');
      const agents = peerAgent + meshAgentCpu;
      const plainUse = plainMachine.busy / ((CORES * plain.wallMs) / 1000);
      say(
        `machine CPU, mesh build ${d('busy').toFixed(1)} s busy, ${d('steal').toFixed(1)} s stolen by the hypervisor, of ${((CORES * meshRun.wallMs) / 1000).toFixed(1)} s (${pct(d('busy'), (CORES * meshRun.wallMs) / 1000)} busy): ` +
          `peer's jobs ${peerJobs.toFixed(1)} s, peer agent ${peerAgent.toFixed(1)} s, client agent ${d('clientOwn').toFixed(1)} s` +
          ` (+ its children ${(meshAgentCpu - d('clientOwn')).toFixed(1)} s), make tree ${meshRun.cpuS.toFixed(1)} s, rest ${other.toFixed(1)} s (the compiles under bubblewrap's PID namespaces, kernel threads)`,
      );
      say(
        `  plain build: ${plainMachine.busy.toFixed(1)} s busy, ${plainMachine.steal.toFixed(1)} s stolen (${pct(plainMachine.busy, (CORES * plain.wallMs) / 1000)} busy); ` +
          `the mesh build's busy CPU without both agents' ${agents.toFixed(1)} s, at the plain build's use of the cores, would take ${(((d('busy') - agents) / plainUse / CORES / (plain.wallMs / 1000))).toFixed(2)} × the plain wall time`,
      );
    }
    say(`objects identical      ${objects.identical} identical, ${objects.differing.length} differing`);
    for (const d of objects.differing.slice(0, 50)) say(`  differs: ${d}`);
    if (objects.differing.length > 50) say(`  … and ${objects.differing.length - 50} more`);
    say(`dependency files (.d)  ${deps.identical} identical, ${deps.differing.length} differing${deps.differing.length ? `: ${deps.differing.slice(0, 10).join(', ')}` : ''}`);
    printStats(first, peerNames);
    const remote = first.counts.remote;
    const perRemote = first.bytesSent !== undefined && remote ? first.bytesSent / remote : undefined;
    say(`bytes sent per remote job      ${bytes(perRemote === undefined ? undefined : Math.round(perRemote))}`);
    const received = first.bytesReceived !== undefined && remote ? first.bytesReceived / remote : undefined;
    say(`bytes received per remote job  ${bytes(received === undefined ? undefined : Math.round(received))} (the outputs)`);
    if (gz) {
      const perJob = gz.gzipBytes / Math.max(1, gz.jobs);
      say(`gzip'd -E per job (icecream)   ${bytes(Math.round(perJob))} (total ${bytes(gz.gzipBytes)} for ${gz.jobs} compiles; ${bytes(gz.rawBytes)} before gzip${gz.failed ? `; ${gz.failed} compiles whose -E failed left out` : ''})`);
      const ratio = perRemote === undefined ? 'n/a' : `${(perRemote / perJob).toFixed(3)} = 1/${(perJob / perRemote).toFixed(0)}`;
      say(`bytes sent / gzip'd -E         ${ratio} (target <= 1/20)`);
    } else {
      say(`gzip'd -E per job (icecream)   skipped (--no-gzip-e)`);
    }
    const served = at(peerStats, 'served');
    if (served && typeof served === 'object') say(`peer h1 served (all builds)    ${JSON.stringify(served)}`);
    say('');
    say(
      `incremental: ${header} (${headerSize} bytes${gz ? `, included by ${gz.includingHeader} of ${gz.jobs} units` : ''}) + one comment line: ` +
        `${rebuilt} objects rebuilt in ${secs(incRun.wallMs)} wall, client side ${(incRun.cpuS + agentCpu3 - agentCpu2).toFixed(1)} s CPU`,
    );
    printStats(second, peerNames);
    // A clean stop (SIGTERM) lets the agents finish their logs and any --cpu-prof profile.
    await Promise.all(
      [client, peer].map(
        (child) =>
          new Promise<void>((resolve) => {
            if (child.exitCode !== null) return resolve();
            const timer = setTimeout(resolve, 10_000);
            child.once('exit', () => (clearTimeout(timer), resolve()));
            child.kill('SIGTERM');
          }),
      ),
    );
  } finally {
    await mesh.destroy();
  }
}

try {
  await main();
} catch (err) {
  console.error(`mesh-build: ${(err as Error).message}`);
  process.exitCode = 1;
}
