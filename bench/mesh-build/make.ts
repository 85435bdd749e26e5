// One way to run and time make for every build of the benchmark (plain, meshcc, distcc,
// icecream), so that their wall and CPU figures are comparable: the CPU of make and everything
// under it comes from bash's `times`, which needs no cgroup and misses nothing that was waited for.
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { clock, running, say, shq } from './common.js';

export interface BuildResult {
  wallMs: number;
  /** user + sys of make and all its descendants, from bash's `times`. */
  cpuS: number;
}

/** Starts a command somewhere (here, or in a namespace) in a process group of its own. */
export type Starter = (cmd: string, args: string[]) => ChildProcess;

/**
 * Runs `make` under bash, which prints `times` after it: the second line is the user and
 * system time of bash's reaped children, i.e. make and every process under it (each one is
 * waited for by its parent, so nothing escapes; no cgroup needed). make's output goes to log.
 */
export async function runMake(
  label: string,
  tree: string,
  jobs: number,
  makeArgs: string[],
  log: string,
  start: Starter,
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

export function startHere(tree: string, env: NodeJS.ProcessEnv): Starter {
  return (cmd, args) => spawn(cmd, args, { cwd: tree, env, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
}
