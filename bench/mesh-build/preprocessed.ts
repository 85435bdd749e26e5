// The untimed -E pass: every compile of a plain build, run again with -E and gzip'd, is what
// icecream and distcc would ship for it (before their own compression), the yardstick for
// meshcc's bytes sent; it also tells how many units include the header the incremental build
// touches, and how many compile units the project has (what every tool should send remote).
import { spawn } from 'node:child_process';
import { mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { gzip } from 'node:zlib';
import { BUILD_ROOT, CORES, filesUnder, freshTree, running, say } from './common.js';
import { logPath, type BenchContext } from './context.js';
import { runMake, startHere } from './make.js';

const gzipAsync = promisify(gzip);

export interface CompileCommand {
  cwd: string;
  argv: string[];
}

const WRAPPED = ['gcc', 'g++', 'cc', 'c++', 'clang', 'clang++'];

/** A logging compiler: writes cwd and argv (NUL-separated) to a file of its own, then execs the real one. */
export function writeWrappers(dir: string): void {
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

export function readCommands(logDir: string): CompileCommand[] {
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
export function isCompile(argv: string[]): boolean {
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

export interface GzipE {
  jobs: number;
  gzipBytes: number;
  rawBytes: number;
  /** Units whose -E output names the header (line markers). */
  includingHeader: number;
  /** Compiles whose -E failed (probes the build expects to fail): left out. */
  failed: number;
}

export async function gzipPreprocessed(cmds: CompileCommand[], header: string, env: NodeJS.ProcessEnv): Promise<GzipE> {
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

/**
 * A plain build with logging compilers (not timed), then each of its compiles preprocessed
 * and gzip'd. Returns the figures and the number of compile units (what every distributed
 * build should send to h1).
 */
export async function capturePass(ctx: BenchContext, header: string): Promise<{ gz: GzipE; compileUnits: number }> {
  say(`capture pass: make -j${CORES} with logging compilers (not timed)`);
  freshTree(ctx.template, ctx.tree);
  const wrapDir = path.join(BUILD_ROOT, 'wrap');
  const cmdLog = path.join(BUILD_ROOT, 'cmdlog');
  writeWrappers(wrapDir);
  mkdirSync(cmdLog);
  const wrapEnv = { ...ctx.env, PATH: `${wrapDir}:${ctx.env.PATH ?? '/usr/bin:/bin'}`, MESHCC_BENCH_CMDLOG: cmdLog };
  const objects = async () => `, ${filesUnder(ctx.tree, ctx.project.objectExts).length} objects`;
  await runMake('capture', ctx.tree, CORES, ctx.project.makeArgs, logPath(ctx, 'capture.log'), startHere(ctx.tree, wrapEnv), objects);
  const all = readCommands(cmdLog);
  const compiles = all.filter((c) => isCompile(c.argv));
  say(`  ${all.length} compiler invocations, ${compiles.length} compiles; preprocessing each with -E and gzip -6`);
  const gz = await gzipPreprocessed(compiles, path.join(ctx.tree, header), ctx.env);
  rmSync(ctx.tree, { recursive: true, force: true });
  return { gz, compileUnits: gz.jobs }; // the compiles whose -E failed are probes the build expects to fail
}
