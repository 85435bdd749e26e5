// bench/nat-mapping: how an agent behind a home router gets its port mapped, by each way we
// could do it, against a real miniupnpd (Debian's package; UPnP IGD and NAT-PMP on) in a router
// namespace: time to a mapping and the external address, the CPU it took, whether stopping
// removes the mapping, and what a killed process leaves on the router (the lease's lifetime).
//   meshcc-pmp   node/nat/nat-pmp.ts (our RFC 6886 client) through node/nat/port-mapper.ts
//   meshcc-upnp  @achingbrain/nat-port-mapper's UPnP IGD through node/nat/port-mapper.ts
//                (the very code @libp2p/upnp-nat runs, less its libp2p wiring)
//   lib-pmp      @achingbrain/nat-port-mapper's NAT-PMP client, used as its README shows
// Each probe is a process of its own in the home namespace; figures are medians of RUNS runs
// measured side by side on this machine (whose other load they share).
// Needs root, iproute2, nftables and miniupnpd; run: node dist/bench/nat-mapping.js
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { pmpNat } from '@achingbrain/nat-port-mapper';
import { pino } from 'pino';
import { PortMapper } from '../node/nat/port-mapper.js';
import { defaultGateway } from '../node/nat/nat-pmp.js';
import { addHomeBehindNat } from '../test/helpers/nat.js';
import { createNetnsMesh, netnsAvailable } from '../test/helpers/netns.js';
import { publicWan, upnpRouter, type UpnpRouter } from '../test/helpers/upnp-router.js';
import { median } from './measure.js';

const RUNS = Number(process.env.RUNS ?? 5);
const PORT = 7624;
const METHODS = ['meshcc-pmp', 'meshcc-upnp', 'lib-pmp'] as const;
type Method = (typeof METHODS)[number];

interface ProbeReport {
  mapped: boolean;
  ms: number;
  cpuMs: number;
  external?: string;
  error?: string;
}

/** In the home: map, print a report, wait for a line on stdin ("stop" or nothing), unmap. */
async function probe(method: Method): Promise<void> {
  const log = pino({ level: 'silent' });
  const cpu = process.cpuUsage();
  const started = performance.now();
  let report: ProbeReport;
  let stop: () => Promise<void>;
  if (method === 'lib-pmp') {
    const gateway = pmpNat((await defaultGateway())!);
    try {
      const mapping = await gateway.map(PORT, '0.0.0.0', { protocol: 'tcp', description: 'bench', signal: AbortSignal.timeout(10_000) });
      report = { mapped: true, ms: 0, cpuMs: 0, external: `${mapping.externalHost}:${mapping.externalPort}` };
    } catch (err) {
      report = { mapped: false, ms: 0, cpuMs: 0, error: (err as Error).message };
    }
    stop = () => gateway.stop({ signal: AbortSignal.timeout(5_000) });
  } else {
    const mapper = new PortMapper({ port: PORT, log, onChange: () => undefined, methods: [method === 'meshcc-pmp' ? 'nat-pmp' : 'upnp'] });
    mapper.start();
    while (!mapper.mapping && performance.now() - started < 15_000) await new Promise((r) => setTimeout(r, 2));
    const m = mapper.mapping;
    report = m ? { mapped: true, ms: 0, cpuMs: 0, external: `${m.externalAddress}:${m.externalPort}` } : { mapped: false, ms: 0, cpuMs: 0, error: 'no mapping in 15 s' };
    stop = () => mapper.stop();
  }
  const used = process.cpuUsage(cpu);
  report.ms = performance.now() - started;
  report.cpuMs = (used.user + used.system) / 1000;
  console.log(JSON.stringify(report));
  const line = await new Promise<string>((resolve) => {
    let text = '';
    process.stdin.setEncoding('utf8').on('data', (d: string) => (text += d)).on('end', () => resolve(text.trim()));
  });
  if (line !== 'stop') process.exit(0);
  const stopping = performance.now();
  await stop().catch((err: Error) => console.log(JSON.stringify({ stopError: err.message })));
  console.log(JSON.stringify({ stopMs: performance.now() - stopping }));
  process.exit(0);
}

interface RunResult extends ProbeReport {
  leftAfterStop: number;
  stopMs?: number;
  /** Seconds the router would keep a mapping of a process killed right after mapping. */
  leftAfterKillS?: number;
}

async function oneRun(router: UpnpRouter, homeNs: string, method: Method, kill: boolean): Promise<RunResult> {
  const self = fileURLToPath(import.meta.url);
  const child = spawn('ip', ['netns', 'exec', homeNs, process.execPath, self, 'probe', method], { stdio: ['pipe', 'pipe', 'inherit'] });
  let out = '';
  child.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
  const lines = async (n: number) => {
    while (out.split('\n').filter(Boolean).length < n) {
      if (child.exitCode !== null) break;
      await new Promise((r) => setTimeout(r, 5));
    }
    return out.split('\n').filter(Boolean).map((l) => JSON.parse(l) as Record<string, unknown>);
  };
  const [report] = (await lines(1)) as unknown as [ProbeReport];
  const result: RunResult = { ...report, leftAfterStop: 0 };
  const exited = new Promise((r) => child.once('exit', r));
  if (kill) {
    child.kill('SIGKILL');
    await exited;
    const leases = readFileSync(path.join(router.dir, 'leases'), 'utf8').split('\n').filter(Boolean);
    // TCP:<ext port>:<host>:<port>:<expiry (s since the epoch)>:<description>
    const expiry = Math.max(0, ...leases.map((l) => Number(l.split(':')[4])));
    result.leftAfterKillS = expiry ? Math.round(expiry - Date.now() / 1000) : 0;
    if (process.env.VERBOSE) console.log(leases);
    await router.stop();
    await router.start(); // forget what the killed probe left
  } else {
    child.stdin.end('stop\n');
    const after = await lines(2);
    result.stopMs = after.map((r) => r.stopMs as number | undefined).find((v) => v !== undefined);
    await exited;
    result.leftAfterStop = (await router.mappings()).length;
  }
  return result;
}

async function main(): Promise<void> {
  const avail = netnsAvailable();
  if (!avail.ok) {
    console.log(`nat-mapping benchmark needs network namespaces: ${avail.reason}`);
    return;
  }
  const mesh = await createNetnsMesh({ hosts: 1, prefix: 'mcbn' });
  const dir = mkdtempSync(path.join(os.tmpdir(), 'meshcc-bench-nat-'));
  try {
    await publicWan(mesh);
    const home = await addHomeBehindNat(mesh, mesh.hosts[0]!, 'h10', { lan: 10 });
    const router = await upnpRouter(mesh, mesh.hosts[0]!, 10, dir);
    await router.start();
    console.log(`nat-mapping: miniupnpd on a router namespace, a probe process in the home behind it; ${RUNS} runs each, medians (figures are ratios measured side by side on a shared machine)`);
    for (const method of METHODS) {
      const runs: RunResult[] = [];
      for (let i = 0; i < RUNS; i++) runs.push(await oneRun(router, home.ns, method, false));
      const killed = await oneRun(router, home.ns, method, true);
      const mapped = runs.filter((r) => r.mapped);
      const fmt = (values: number[]) => (values.length ? median(values).toFixed(1) : '-');
      console.log(
        `${method.padEnd(12)} mapped ${mapped.length}/${runs.length} (${mapped[0]?.external ?? runs[0]?.error})  time to mapping ${fmt(mapped.map((r) => r.ms))} ms  CPU ${fmt(mapped.map((r) => r.cpuMs))} ms  ` +
          `stop ${fmt(runs.flatMap((r) => (r.stopMs === undefined ? [] : [r.stopMs])))} ms, mappings left after stop ${Math.max(...runs.map((r) => r.leftAfterStop))}  ` +
          `killed: the router keeps its mapping ${killed.leftAfterKillS ?? '-'} s`,
      );
    }
  } finally {
    await mesh.destroy();
    rmSync(dir, { recursive: true, force: true });
  }
}

if (process.argv[2] === 'probe') await probe(process.argv[3] as Method);
else await main();
