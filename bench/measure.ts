// Small measuring helpers shared by the benchmarks: wall time per run, CPU time of a batch.
import { execFileSync, spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';

export function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

export function percentile(values: number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

/** Wall milliseconds of each of `runs` executions of a command. */
export function wallTimes(command: string[], runs: number, options: { cwd?: string; env?: NodeJS.ProcessEnv } = {}): number[] {
  const times: number[] = [];
  for (let i = 0; i < runs; i++) {
    const start = process.hrtime.bigint();
    const r = spawnSync(command[0]!, command.slice(1), { ...options, stdio: 'ignore' });
    times.push(Number(process.hrtime.bigint() - start) / 1e6);
    if (r.status !== 0) throw new Error(`${command.join(' ')} exited with ${r.status}`);
  }
  return times;
}

/** CPU milliseconds (user + system) per execution, of `runs` executions run by one shell. */
export function cpuPerRun(command: string[], runs: number, options: { cwd?: string; env?: NodeJS.ProcessEnv } = {}): number {
  const quoted = command.map((a) => `'${a.replace(/'/g, `'\\''`)}'`).join(' ');
  const script = `for i in $(seq ${runs}); do ${quoted} >/dev/null 2>&1; done; times`;
  const out = execFileSync('bash', ['-c', script], { ...options, encoding: 'utf8' });
  // `times` prints the shell's own user/sys, then its children's: "0m0.123s 0m0.045s".
  const lines = out.trim().split('\n');
  const children = lines[lines.length - 1]!.match(/(\d+)m([\d.]+)s\s+(\d+)m([\d.]+)s/);
  if (!children) throw new Error(`cannot read times: ${out}`);
  const ms = (m: string, s: string) => (Number(m) * 60 + Number(s)) * 1000;
  return (ms(children[1]!, children[2]!) + ms(children[3]!, children[4]!)) / runs;
}

/** CPU milliseconds a process has used so far (user + system), from /proc. */
export function processCpuMs(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  const ticks = Number(fields[11]) + Number(fields[12]);
  return (ticks * 1000) / 100;
}

/** Node options for the processes a benchmark starts, from an environment variable
 *  (MESHCC_BENCH_NODE_ARGS and the like: NODE_OPTIONS refuses --cpu-prof and V8's flags). */
export function nodeArgsFrom(variable: string): string[] {
  return (process.env[variable] ?? '').split(/\s+/).filter(Boolean);
}
