// bench/job-route: what the job route costs the client per compile on real projects
// (the input scan, both ways: reading include directives here vs the compiler's -M; and
// hashing into the store), next to the plain compile time and the sandboxed execution of
// the walk's input tree (its object compared with the plain one); and how much the store
// dedupes: distinct bytes stored against bytes read summed over all jobs.
// Projects: zlib (C) and googletest (C++) from Debian; git with `git` (bench/fetch-project.sh git).
//   node dist/bench/job-route.js [zlib|googletest|git] [--trace FILE]
// --trace writes each unit's plain compile time and input size (bench/traces/git.json feeds
// bench/placement-sim).
import { execFileSync, spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { pino } from 'pino';
import { analyse } from '../node/args/analyse.js';
import { Executor } from '../node/executor/executor.js';
import { InputHasher } from '../node/scan/hasher.js';
import { InputScanner } from '../node/scan/scanner.js';
import { Store } from '../node/store.js';
import { median } from './measure.js';

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const log = pino({ level: 'silent' });

/** Splits a compile_commands.json command the way sh would for CMake's quoting. */
function shellSplit(command: string): string[] {
  const args: string[] = [];
  let current = '';
  let inArg = false;
  let quote: string | undefined;
  for (let i = 0; i < command.length; i++) {
    const c = command[i]!;
    if (quote) {
      if (c === quote) quote = undefined;
      else if (c === '\\' && quote === '"' && i + 1 < command.length) current += command[++i];
      else current += c;
    } else if (c === '"' || c === "'") {
      quote = c;
      inArg = true;
    } else if (c === '\\' && i + 1 < command.length) {
      current += command[++i];
      inArg = true;
    } else if (/\s/.test(c)) {
      if (inArg) args.push(current);
      current = '';
      inArg = false;
    } else {
      current += c;
      inArg = true;
    }
  }
  if (inArg) args.push(current);
  return args;
}

interface Row {
  /** the source file, relative to the project */
  unit: string;
  plainMs: number;
  scanMs: number;
  compilerScanMs: number;
  walked: boolean;
  /** files the walk found beyond the compiler's list */
  extraFiles: number;
  hashMs: number;
  executeMs?: number;
  inputs: number;
  bytesRead: number;
}

type CompileCommand = { directory: string; command: string };

/** CMake's own list of the compile commands of a build. */
function cmakeCommands(src: string, cmakeArgs: string[]): CompileCommand[] {
  execFileSync('cmake', ['-S', '.', '-B', 'build', '-G', 'Ninja', '-DCMAKE_EXPORT_COMPILE_COMMANDS=ON', ...cmakeArgs], {
    cwd: src,
    stdio: 'ignore',
  });
  return JSON.parse(readFileSync(path.join(src, 'build', 'compile_commands.json'), 'utf8')) as CompileCommand[];
}

/** The compile lines `make -n` prints for a configure + make project. */
function makeCommands(src: string, makeArgs: string[]): CompileCommand[] {
  execFileSync('./configure', [], { cwd: src, stdio: 'ignore' });
  const lines = execFileSync('make', ['-n', ...makeArgs], { cwd: src, encoding: 'utf8' }).split('\n');
  return lines.filter((l) => / -c /.test(l)).map((command) => ({ directory: src, command }));
}

/** git's Makefile: the optional libraries off; its -n lines are `echo …;cc …`. */
function gitCommands(src: string): CompileCommand[] {
  writeFileSync(path.join(src, 'config.mak'), 'NO_CURL=1\nNO_OPENSSL=1\nNO_EXPAT=1\nNO_GETTEXT=1\nNO_TCLTK=1\nNO_PERL=1\nNO_PYTHON=1\n');
  // the generated headers some units include
  execFileSync('make', ['command-list.h', 'config-list.h', 'hook-list.h', 'GIT-CFLAGS', 'GIT-PREFIX'], { cwd: src, stdio: 'ignore' });
  const lines = execFileSync('make', ['-n'], { cwd: src, encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 }).split('\n');
  return lines
    .filter((l) => / -c /.test(l))
    .map((l) => l.slice(l.indexOf(';') + 1).replace(/ -MF \S+ -MQ \S+ -MMD -MP/, ''))
    .map((command) => ({ directory: src, command }));
}

async function benchProject(name: string, listCommands: (src: string) => CompileCommand[], tracePath?: string): Promise<void> {
  const work = mkdtempSync(path.join(os.tmpdir(), `meshcc-bench-${name}-`));
  const src = path.join(work, name);
  cpSync(path.join(repo, '.cache', 'projects', name), src, { recursive: true });
  const commands = listCommands(src);
  const store = new Store(path.join(work, 'store'), 4 * 1024 * 1024 * 1024, log);
  await store.start();
  const hasher = new InputHasher(store);
  const scanner = new InputScanner();
  const compilerScanner = new InputScanner(undefined, false);
  const executor = new Executor({ store, workDir: path.join('/dev/shm', path.basename(work)), slots: 1, timeoutMs: 600_000, log });
  await executor.start();
  const env = { PATH: process.env.PATH ?? '/usr/bin:/bin', LANG: 'C' };
  const rows: Row[] = [];
  for (const [i, entry] of commands.entries()) {
    const argv = shellSplit(entry.command);
    const cwd = entry.directory;
    const compiler = execFileSync('bash', ['-c', `command -v ${argv[0]}`], { encoding: 'utf8' }).trim();
    const analysis = analyse(argv, {
      cwd,
      env,
      readFile: (p) => readFileSync(path.resolve(cwd, p), 'utf8'),
      exists: (p) => existsSync(path.resolve(cwd, p)),
    });
    if (!analysis.distributable) continue;
    const p0 = performance.now();
    const plain = spawnSync(compiler, argv.slice(1), { argv0: argv[0], cwd, env, stdio: 'ignore' });
    const plainMs = performance.now() - p0;
    if (plain.status !== 0) throw new Error(`plain compile failed: ${entry.command}`);
    const plainObject = readFileSync(path.resolve(cwd, analysis.object));
    const scanRequest = { compiler, scanArgv: analysis.scanArgv, cwd, env, source: analysis.source, language: analysis.language };
    // Recording a trace needs the plain time and the inputs only: the -M comparison and the
    // sandboxed run would triple its time.
    const c0 = performance.now();
    const exact = tracePath ? undefined : await compilerScanner.scan(scanRequest);
    const compilerScanMs = performance.now() - c0;
    const t0 = performance.now();
    const scan = await scanner.scan(scanRequest);
    const t1 = performance.now();
    const walkedFiles = new Set(scan.files);
    const missed = (exact?.files ?? []).filter((f) => !walkedFiles.has(f));
    if (missed.length > 0) throw new Error(`the walk missed ${missed.join(', ')} of ${entry.command}`);
    const inputs = await Promise.all(scan.files.map((f) => hasher.hash(f, scan.stats.get(f))));
    const t2 = performance.now();
    let executeMs: number | undefined;
    if (executor.unavailableReason === undefined && !tracePath) {
      const outputs = analysis.outputs.map((o) => path.resolve(cwd, o));
      const result = await executor.run({ id: `b${i}`, compiler, argv: analysis.argv, cwd, env, inputs, listings: scan.listings, dirs: scan.dirs, outputs });
      if (result.exit !== 0) throw new Error(`job failed: ${result.stderr.toString()}`);
      const object = result.outputs.find((o) => o.path === path.resolve(cwd, analysis.object));
      if (!object || !plainObject.equals(object.data)) throw new Error(`the job's object differs from the plain compile's: ${entry.command}`);
      executeMs = performance.now() - t2;
    }
    rows.push({ unit: path.relative(src, path.resolve(cwd, analysis.source)), plainMs, scanMs: t1 - t0, compilerScanMs, walked: scan.method === 'walk', extraFiles: exact ? scan.files.length - exact.files.length : 0, hashMs: t2 - t1, executeMs, inputs: inputs.length, bytesRead: inputs.reduce((n, f) => n + f.size, 0) });
    process.stderr.write(`\r${name}: ${rows.length} jobs`);
  }
  process.stderr.write('\n');
  await executor.stop();
  const sum = (f: (r: Row) => number) => rows.reduce((n, r) => n + f(r), 0);
  const client = rows.map((r) => r.scanMs + r.hashMs);
  const fmt = (ms: number) => `${ms.toFixed(1)} ms`;
  const mib = (b: number) => `${(b / 1048576).toFixed(2)} MiB`;
  console.log(`\n${name}: ${rows.length} compiles, run one at a time`);
  console.log(`  plain compile            median ${fmt(median(rows.map((r) => r.plainMs))).padStart(10)}   total ${fmt(sum((r) => r.plainMs)).padStart(11)}`);
  console.log(`  job route, client side   median ${fmt(median(client)).padStart(10)}   total ${fmt(sum((r) => r.scanMs + r.hashMs)).padStart(11)}`);
  console.log(`    scan (walk)            median ${fmt(median(rows.map((r) => r.scanMs))).padStart(10)}   total ${fmt(sum((r) => r.scanMs)).padStart(11)}` +
    `   (${rows.filter((r) => r.walked).length} walked, the rest asked the compiler: ${[...scanner.counts.reasons.keys()].join('; ') || 'none'})`);
  console.log(`    scan (-M, for comparison) median ${fmt(median(rows.map((r) => r.compilerScanMs))).padStart(7)}   total ${fmt(sum((r) => r.compilerScanMs)).padStart(11)}`);
  console.log(`    files the walk adds     median ${median(rows.map((r) => r.extraFiles))} per job (a superset: nothing missed, objects identical)`);
  console.log(`    hash + store           median ${fmt(median(rows.map((r) => r.hashMs))).padStart(10)}   total ${fmt(sum((r) => r.hashMs)).padStart(11)}`);
  if (rows.every((r) => r.executeMs !== undefined)) {
    console.log(`  sandboxed execution      median ${fmt(median(rows.map((r) => r.executeMs!))).padStart(10)}   total ${fmt(sum((r) => r.executeMs!)).padStart(11)}`);
  } else {
    console.log(`  sandboxed execution      skipped: ${executor.unavailableReason}`);
  }
  console.log(`  inputs per job           median ${median(rows.map((r) => r.inputs))}`);
  console.log(`  bytes read, summed over jobs ${mib(sum((r) => r.bytesRead))}; distinct bytes stored ${mib(store.stats.bytes)} ` +
    `(${store.stats.files} files): ${(sum((r) => r.bytesRead) / Math.max(1, store.stats.bytes)).toFixed(1)}x less`);
  if (tracePath) {
    const units = rows.map((r) => ({ unit: r.unit, compileMs: Math.round(r.plainMs * 10) / 10, inputFiles: r.inputs, inputBytes: r.bytesRead }));
    const machine = `${os.cpus()[0]?.model ?? 'unknown cpu'}, ${os.cpus().length} cores`;
    writeFileSync(tracePath, `${JSON.stringify({ project: name, machine, recordedAt: new Date().toISOString(), units }, null, 1)}\n`);
    console.log(`  trace of ${units.length} units written to ${tracePath}`);
  }
  rmSync(work, { recursive: true, force: true });
}

execFileSync('bash', [path.join(repo, 'test', 'projects', 'fetch.sh')], { stdio: 'ignore' });
const { values: flags, positionals } = parseArgs({ options: { trace: { type: 'string' } }, allowPositionals: true });
const only = positionals[0];
const tracePath = flags.trace ? path.resolve(flags.trace) : undefined;
if (!only || only === 'zlib') await benchProject('zlib', (src) => makeCommands(src, ['CC=gcc', 'CFLAGS=-O2 -g', 'libz.a']));
if (!only || only === 'googletest') await benchProject('googletest', (src) => cmakeCommands(src, ['-DCMAKE_CXX_FLAGS=-O2 -g']));
if (only === 'git') {
  execFileSync('bash', [path.join(repo, 'bench', 'fetch-project.sh'), 'git'], { stdio: 'ignore' });
  await benchProject('git', gitCommands, tracePath);
}
