// bench/mesh-build: a real project built several ways on this one machine, from fresh copies of
// one configured tree at one absolute path (so objects are comparable), because a
// distributed build is only worth its machinery if it beats, or at least matches, both the
// plain build and the tools people already use, measured side by side in the same run:
//   plain     `make -j<cores>` with the plain compilers;
//   meshcc    two network namespaces: a client agent in h0 that runs nothing itself and a peer
//             agent in h1 with 2 slots; `make -j<N>` in h0; every object must be byte-identical
//             to the plain build's; then one header is touched and make runs again (meshcc.ts);
//   distcc    distccd in h1 with 2 jobs, the client in h0 (distcc.ts);
//   icecream  scheduler and iceccd -m 2 in h1, iceccd -m 0 in h0, the client in h0 (icecream.ts);
//   and, in a separate untimed pass, every compile of the plain build is run again with -E and
//   gzip'd: what icecream and distcc would send for it, next to meshcc's bytes sent.
// Client-side CPU = make and everything under it (the compiler clients, their preprocessing,
// local fallback compiles, links, generator scripts; from bash's `times`) + the client-side
// daemon's process tree (meshcc's client agent, icecream's iceccd in h0; plain distcc has none),
// /proc/<pid>/stat read just before and just after the build (start-up is not counted).
// The server side's CPU is not client side. Numbers are printed, nothing passes or fails.
// Where the machine's CPU went during each distributed build is printed too (/proc/stat and
// each daemon's /proc/<pid>/stat): busy, stolen by the hypervisor (a VM's neighbours: wall
// time no build could use, the main reason the ratios vary between runs), each daemon, and
// what the build would take if its daemons cost nothing.
//
// With --far, the peer is far: 50 ms each way (100 ms round trip) and 20 Mbit/s on its link
// (tc netem + tbf on both directions), what bench/wire-bytes runs; all three tools see it.
//
//   node dist/bench/mesh-build.js [--project git|zlib|linux] [-j N] [--far] [--no-gzip-e]
//                                 [--no-distcc] [--no-icecream] [--header PATH] [--keep] [--cache [--no-ccache]]
//   --cache: the result cache's three builds (cache.ts) after the plain one, instead of the rest,
//            and ccache's direct-mode rebuild beside the third (not with --no-ccache)
//   env: MESHCC_BENCH_PROJECT, MESHCC_BENCH_JOBS, MESHCC_BENCH_SKIP_E=1 (same meanings),
//        MESHCC_BENCH_NODE_ARGS (node options for both agents, e.g. "--cpu-prof --cpu-prof-dir=/tmp/p"),
//        MESHCC_BENCH_LOG_LEVEL (the agents' log level, warn by default; with debug and --keep, their logs
//        say when each job was placed, when its slot compiled it and when it was reported done)
// Needs root (network namespaces). The project is fetched by bench/fetch-project.sh;
// distcc and icecream are Debian's packages (apt-get install distcc icecc).
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, renameSync, rmSync } from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { FAR_LINK, makeFar } from '../../test/helpers/link-shape.js';
import { createNetnsMesh, netnsAvailable } from '../../test/helpers/netns.js';
import { baseEnv, BUILD_ROOT, claimBuildRoot, cleanupOptions, cleanupSync, CORES, FETCH, filesUnder, freshTree, MESHCC_BIN, say, secs } from './common.js';
import { logPath, type BenchContext } from './context.js';
import { clkTck, machineCpuS } from './cpu.js';
import { runDistcc } from './distcc.js';
import { runIcecream } from './icecream.js';
import { runMake, startHere } from './make.js';
import { runMeshcc } from './meshcc.js';
import { CCACHE_LINKS_GCC, runCacheBench } from './cache.js';
import { capturePass, type GzipE } from './preprocessed.js';
import { PROJECTS } from './projects.js';
import { printMeshReport, printRivalReport, printSideBySide, type PlainOutcome } from './report.js';
import type { RivalOutcome } from './rival.js';

const USAGE = 'node dist/bench/mesh-build.js [--project git|zlib|linux] [-j N] [--far] [--no-gzip-e] [--no-distcc] [--no-icecream] [--header PATH] [--keep] [--cache [--no-ccache]]';

const { values: opts } = parseArgs({
  args: process.env.MESHCC_BENCH_ARGS !== undefined ? process.env.MESHCC_BENCH_ARGS.split(' ').filter(Boolean) : process.argv.slice(2),
  options: {
    far: { type: 'boolean', default: false },
    project: { type: 'string', default: process.env.MESHCC_BENCH_PROJECT ?? 'git' },
    jobs: { type: 'string', short: 'j', default: process.env.MESHCC_BENCH_JOBS ?? '8' },
    'no-gzip-e': { type: 'boolean', default: process.env.MESHCC_BENCH_SKIP_E === '1' },
    'no-distcc': { type: 'boolean', default: false },
    'no-icecream': { type: 'boolean', default: false },
    'no-ccache': { type: 'boolean', default: false },
    header: { type: 'string' },
    keep: { type: 'boolean', default: false },
    cache: { type: 'boolean', default: false },
    help: { type: 'boolean', short: 'h', default: false },
  },
});

/** A program on PATH, or undefined. */
function onPath(name: string): string | undefined {
  for (const dir of (process.env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin').split(':')) {
    if (dir && existsSync(path.join(dir, name))) return path.join(dir, name);
  }
  return undefined;
}

/** Which rivals run: asked for and installed (a missing one is said, not fatal). */
function rivalsToRun(): { distcc: boolean; icecream: boolean } {
  const want = { distcc: !opts['no-distcc'], icecream: !opts['no-icecream'] };
  const needs = { distcc: ['distcc', 'distccd'], icecream: ['icecc', 'iceccd', 'icecc-scheduler'] };
  for (const tool of ['distcc', 'icecream'] as const) {
    const missing = needs[tool].filter((p) => !onPath(p));
    if (want[tool] && missing.length) {
      say(`${tool}: skipped, not installed (${missing.join(', ')} not on PATH; apt-get install ${tool === 'distcc' ? 'distcc' : 'icecc'})`);
      want[tool] = false;
    }
  }
  return want;
}

async function main(): Promise<void> {
  if (opts.help) {
    say(USAGE);
    return;
  }
  const name = opts.project;
  const project = PROJECTS[name];
  if (!project) throw new Error(`unknown project '${name}' (known: ${Object.keys(PROJECTS).join(', ')})`);
  const jobs = Number(opts.jobs);
  if (!Number.isInteger(jobs) || jobs < 1) throw new Error(`-j must be a positive whole number, got '${opts.jobs}'`);
  const header = opts.header ?? project.header;
  cleanupOptions.keepTrees = opts.keep;
  const avail = netnsAvailable();
  if (!avail.ok) {
    say(`mesh-build benchmark needs network namespaces: ${avail.reason}`);
    return;
  }
  const bindir = execFileSync(process.execPath, [MESHCC_BIN, 'bindir'], { encoding: 'utf8' }).trim();
  if (!existsSync(path.join(bindir, 'gcc'))) throw new Error(`no native client in ${bindir}: run npm run build`);
  const rivals = rivalsToRun();

  for (const [signal, code] of [['SIGINT', 130], ['SIGTERM', 143]] as const) {
    process.on(signal, () => {
      cleanupSync();
      process.exit(code); // the harness destroys the namespaces (and every daemon in them) on exit
    });
  }
  process.on('exit', cleanupSync);

  claimBuildRoot();
  say(`fetching ${name}`);
  const source = execFileSync('bash', [FETCH, name], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] }).trim();

  rmSync(BUILD_ROOT, { recursive: true, force: true });
  mkdirSync(BUILD_ROOT, { recursive: true });
  const ctx: BenchContext = {
    name,
    project,
    tree: path.join(BUILD_ROOT, name),
    template: path.join(BUILD_ROOT, `${name}.configured`),
    plainTree: path.join(BUILD_ROOT, `${name}.plain`),
    logs: path.join(BUILD_ROOT, 'logs'),
    jobs,
    env: baseEnv(),
    compileUnits: 0,
    compileUnitsFrom: '',
  };
  mkdirSync(ctx.logs);
  execFileSync('cp', ['-a', source, ctx.tree]);
  rmSync(path.join(ctx.tree, '.meshcc-fetched'), { force: true });
  say(`configuring ${name} in ${ctx.tree} (not timed)`);
  project.configure(ctx.tree);
  renameSync(ctx.tree, ctx.template);

  // --- the -E pass (not timed): capture the plain build's compiles, preprocess and gzip each
  let gz: GzipE | undefined;
  if (!opts['no-gzip-e']) {
    const captured = await capturePass(ctx, header);
    gz = captured.gz;
    [ctx.compileUnits, ctx.compileUnitsFrom] = [captured.compileUnits, 'compiles of the capture pass'];
  }

  // --- plain
  say(`plain build: make -j${CORES}`);
  freshTree(ctx.template, ctx.tree);
  const objectsIn = async () => `, ${filesUnder(ctx.tree, project.objectExts).length} objects`;
  const plainMachine0 = machineCpuS(clkTck());
  const plainRun = await runMake('plain', ctx.tree, CORES, project.makeArgs, logPath(ctx, 'plain.log'), startHere(ctx.tree, ctx.env), objectsIn);
  const plainMachine1 = machineCpuS(clkTck());
  const plain: PlainOutcome = {
    run: plainRun,
    machine: { busy: plainMachine1.busy - plainMachine0.busy, steal: plainMachine1.steal - plainMachine0.steal },
    objects: filesUnder(ctx.tree, project.objectExts).length,
  };
  if (!gz) [ctx.compileUnits, ctx.compileUnitsFrom] = [plain.objects, "the plain build's objects"];
  say(`  plain: ${secs(plainRun.wallMs)} wall, ${plainRun.cpuS.toFixed(1)} s CPU, ${plain.objects} objects`);
  renameSync(ctx.tree, ctx.plainTree);

  // --- the distributed builds, one after the other in the same two namespaces
  const mesh = await createNetnsMesh({ hosts: 2, prefix: 'mcbm' });
  try {
    if (opts.far) {
      const how = await makeFar(mesh, mesh.hosts[1]!, FAR_LINK);
      say(`  h1 is far: ${2 * FAR_LINK.delayMs} ms round trip, ${FAR_LINK.rateMbit} Mbit/s (${how})`);
    }
    // --cache: the result cache's builds (cache.ts) instead of the mesh build and the rivals.
    if (opts.cache) {
      const ccache = opts['no-ccache'] ? undefined : existsSync(CCACHE_LINKS_GCC) ? path.dirname(CCACHE_LINKS_GCC) : undefined;
      if (!opts['no-ccache'] && !ccache) say(`ccache: skipped, not installed (${CCACHE_LINKS_GCC} missing; apt-get install ccache)`);
      return await runCacheBench(ctx, mesh, plain, ccache);
    }
    const meshOutcome = await runMeshcc(ctx, mesh, bindir, header);
    const rivalOutcomes: RivalOutcome[] = [];
    const rivalFailures: string[] = [];
    for (const [tool, run] of [['distcc', runDistcc], ['icecream', runIcecream]] as const) {
      if (!rivals[tool]) continue;
      try {
        rivalOutcomes.push(await run(ctx, mesh));
      } catch (err) {
        // One tool's failure should not cost the figures of the others: said, and in the report.
        rivalFailures.push(`${tool}: FAILED: ${(err as Error).message}`);
        say(`${tool}: FAILED: ${(err as Error).message}`);
      }
    }

    printMeshReport(ctx, plain, meshOutcome, gz, header, opts.far);
    for (const r of rivalOutcomes) printRivalReport(plain, meshOutcome, r, gz);
    for (const failure of rivalFailures) say(`\n-- ${failure}`);
    printSideBySide(ctx, plain, meshOutcome, rivalOutcomes, opts.far);
    if (rivalFailures.length) process.exitCode = 1;
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
