// bench/client-overhead: what the native client costs per compiler invocation.
// An invocation that stays local (gcc -E of a small file) measures the client + agent
// round trip; it is printed next to calling the compiler directly and next to `node -e 0`.
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { cpuPerRun, median, processCpuMs, wallTimes } from './measure.js';
import { socketAnswers } from '../node/instance-lock.js';

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const client = path.join(repo, 'dist', 'client', 'meshcc-cc');
const runs = Number(process.env.RUNS ?? 300);

async function main() {
  if (!existsSync(client)) throw new Error(`build the native client first (npm run build): ${client} is missing`);
  const work = mkdtempSync(path.join(os.tmpdir(), 'meshcc-bench-'));
  const home = path.join(work, 'home');
  const socketPath = path.join(home, 'agent.sock');
  writeFileSync(path.join(work, 'small.c'), '#define N 3\nint twice(int x) { return N * x; }\n');
  const agent = spawn(process.execPath, [path.join(repo, 'bin', 'meshcc.js'), 'agent'], {
    env: { ...process.env, MESHCC_HOME: home, MESHCC_LOG_LEVEL: 'warn', MESHCC_LISTEN: '/ip4/127.0.0.1/tcp/0', MESHCC_MDNS: '0' },
    stdio: 'inherit',
  });
  try {
    while (!(await socketAnswers(socketPath))) await new Promise((r) => setTimeout(r, 50));
    const env = { ...process.env, MESHCC_HOME: home };
    const opts = { cwd: work, env };
    const direct = ['gcc', '-E', '-o', '/dev/null', 'small.c'];
    const viaClient = [client, ...direct];
    wallTimes(direct, 20, opts);
    wallTimes(viaClient, 20, opts);
    // Interleaved, so that drift in the machine's load hits both alike.
    const directTimes: number[] = [];
    const clientTimes: number[] = [];
    const agentCpuBefore = processCpuMs(agent.pid!);
    for (let i = 0; i < runs; i++) {
      directTimes.push(...wallTimes(direct, 1, opts));
      clientTimes.push(...wallTimes(viaClient, 1, opts));
    }
    const agentCpuPerRun = (processCpuMs(agent.pid!) - agentCpuBefore) / runs;
    const directWall = median(directTimes);
    const clientWall = median(clientTimes);
    const nodeWall = median(wallTimes([process.execPath, '-e', '0'], Math.min(runs, 100), opts));
    const directCpu = cpuPerRun(direct, runs, opts);
    const clientCpu = cpuPerRun(viaClient, runs, opts);
    const nodeCpu = cpuPerRun([process.execPath, '-e', '0'], Math.min(runs, 100), opts);
    const row = (name: string, wall: number, cpu: number) =>
      console.log(`${name.padEnd(44)} ${wall.toFixed(2).padStart(8)} ms ${cpu.toFixed(2).padStart(8)} ms`);
    console.log(`client overhead, ${runs} invocations of gcc -E on a small file (${os.cpus()[0]?.model ?? 'cpu'})`);
    console.log(`${''.padEnd(44)} ${'wall med'.padStart(11)} ${'cpu/run'.padStart(11)}`);
    row('gcc directly', directWall, directCpu);
    row('meshcc-cc gcc (native client + agent)', clientWall, clientCpu);
    row('node -e 0', nodeWall, nodeCpu);
    console.log(`client overhead over the direct call: ${(clientWall - directWall).toFixed(2)} ms wall (median), ` +
      `${(clientCpu - directCpu).toFixed(2)} ms client CPU, ${agentCpuPerRun.toFixed(2)} ms agent CPU per invocation`);
  } finally {
    agent.kill('SIGTERM');
    await new Promise((r) => agent.once('exit', r));
    rmSync(work, { recursive: true, force: true });
  }
}


await main();
