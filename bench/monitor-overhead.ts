// bench/monitor-overhead: does watching the mesh slow the agent's job path?
//
// One agent on loopback; a second process runs PEERS (default 99) real libp2p members of its
// mesh (members of the membership protocol, node/mesh/membership/bare-member.ts), so the agent
// holds a view of a 100-agent mesh. This
// process sends RATE (default 500) compile requests per second to the agent's socket, open
// loop: each is a job event on the agent (it goes through analysis, the job log, the metrics)
// and its latency (request sent → the agent's answer) is the job path measured. Phases
// alternate between nobody watching and the monitor page open in headless Chromium (an SSE
// reader when Chromium is missing), PHASE_S seconds each; the table gives latency percentiles
// and the agent's CPU per phase.
//   node dist/bench/monitor-overhead.js            (env: PEERS, RATE, PHASE_S, ROUNDS)
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { generateKeyPair } from '@libp2p/crypto/keys';
import { pino } from 'pino';
import { openSession, query } from '../node/cli/query.js';
import { socketAnswers } from '../node/instance-lock.js';
import { loadOrCreateMeshKey } from '../node/mesh/keys.js';
import { joinThrough, startBareMember } from '../node/mesh/membership/bare-member.js';
import { createMeshNode } from '../node/mesh/node.js';
import { PROTOCOL_VERSION } from '../protocol/messages.js';
import { percentile, processCpuMs } from './measure.js';

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const PEERS = Number(process.env.PEERS ?? 99);
const RATE = Number(process.env.RATE ?? 500);
const PHASE_S = Number(process.env.PHASE_S ?? 15);
const ROUNDS = Number(process.env.ROUNDS ?? 2);
const CHROMIUM = '/usr/bin/chromium';

/** Child mode: `count` members of the mesh whose adverts keep changing, dialled to the agent. */
async function simulatePeers(count: number, meshKeyHex: string, agentAddress: string, rate: number): Promise<void> {
  const log = pino({ level: 'silent' });
  const started = Date.now();
  // A connection the agent resets while it rate-limits new ones must not end the simulation.
  process.on('uncaughtException', (err: NodeJS.ErrnoException) => {
    if (err.code !== 'ECONNRESET') throw err;
  });
  for (let i = 0; i < count; i++) {
    const node = await createMeshNode({ privateKey: await generateKeyPair('Ed25519'), meshKey: Buffer.from(meshKeyHex, 'hex'), listen: ['/ip4/127.0.0.1/tcp/0'], log });
    const member = await startBareMember(
      node,
      // Busy slots, so the agent never sends them a job.
      { name: `sim-${String(i).padStart(3, '0')}`, cores: 8, slots: 0, speed: 1, os: 'linux', arch: process.arch, libc: 'glibc', toolchains: [] },
      log,
    );
    // libp2p admits a few new connections per second from one host.
    for (let attempt = 1; ; attempt++) {
      try {
        await joinThrough(member, agentAddress);
        break;
      } catch (err) {
        if (attempt >= 40) throw err;
        await new Promise((r) => setTimeout(r, 250));
      }
    }
    await new Promise((r) => setTimeout(r, 200));
    if (i % 10 === 9) process.stderr.write(`${i + 1} simulated peers up\n`);
  }
  process.stdout.write('ready\n');
  process.stderr.write(`${count} simulated peers connected\n`);
  await new Promise(() => undefined);
}

interface Phase {
  name: string;
  latencies: number[];
  agentCpuMs: number;
  seconds: number;
  errors: number;
}

/** Sends `rate` link commands (not distributable: answered at once) per second for `seconds`. */
async function load(socketPath: string, rate: number, seconds: number, cwd: string): Promise<{ latencies: number[]; errors: number }> {
  const latencies: number[] = [];
  let errors = 0;
  const request = { t: 'compile', v: PROTOCOL_VERSION, cwd, argv: ['gcc', '-o', 'prog', 'main.o'], compiler: '/usr/bin/gcc', env: { PATH: '/usr/bin:/bin' } };
  const pending: Promise<void>[] = [];
  const one = async () => {
    const t0 = performance.now();
    const session = openSession(socketPath, request);
    try {
      const reply = await session.reply;
      latencies.push(performance.now() - t0);
      if (reply.t === 'run-local') session.send({ t: 'done', exit: 0 });
    } catch {
      errors++;
    } finally {
      session.close();
    }
  };
  const tickMs = 10;
  const start = performance.now();
  let sent = 0;
  while (performance.now() - start < seconds * 1000) {
    const due = Math.floor(((performance.now() - start) / 1000) * rate);
    for (; sent < due; sent++) pending.push(one());
    await new Promise((r) => setTimeout(r, tickMs));
  }
  await Promise.all(pending);
  return { latencies, errors };
}

type Watcher = 'none' | 'events' | 'page';

async function openWatcher(url: string, kind: Watcher): Promise<(() => Promise<void>) | undefined> {
  if (kind === 'none') return undefined;
  if (kind === 'page' && existsSync(CHROMIUM)) {
    const { chromium } = await import('playwright-core');
    const browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    });
    const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
    await page.goto(url);
    await page.waitForSelector('.tile');
    return () => browser.close();
  }
  const req = http.get(new URL('events', url), (res) => res.resume());
  return async () => void req.destroy();
}

async function main(): Promise<void> {
  if (process.argv[2] === '--simulate-peers') return simulatePeers(Number(process.argv[3]), process.argv[4]!, process.argv[5]!, Number(process.argv[6]));
  const work = mkdtempSync(path.join(os.tmpdir(), 'meshcc-monitor-bench-'));
  const home = path.join(work, 'home');
  const socketPath = path.join(home, 'agent.sock');
  const children: ChildProcess[] = [];
  try {
    const agent = spawn(process.execPath, [path.join(repo, 'bin', 'meshcc.js'), 'agent'], {
      env: { ...process.env, MESHCC_HOME: home, MESHCC_LOG_LEVEL: 'warn', MESHCC_LISTEN: '/ip4/127.0.0.1/tcp/0', MESHCC_MDNS: '0', MESHCC_SPEED: '1', MESHCC_HTTP: '127.0.0.1:0' },
      stdio: ['ignore', 'ignore', 'inherit'],
    });
    children.push(agent);
    while (!(await socketAnswers(socketPath))) await new Promise((r) => setTimeout(r, 50));
    let self: { addresses: string[]; peerId: string } | undefined;
    while (!self) {
      const rows = (await query(socketPath, { t: 'status', v: PROTOCOL_VERSION })).agents as { self: boolean; addresses: string[]; peerId: string }[];
      self = rows.find((r) => r.self && r.addresses.length > 0);
      if (!self) await new Promise((r) => setTimeout(r, 100));
    }
    const keyHex = Buffer.from(await loadOrCreateMeshKey(home)).toString('hex');
    const first = self.addresses[0]!;
    const address = first.includes("/p2p/") ? first : `${first}/p2p/${self.peerId}`;
    const peers = spawn(process.execPath, [fileURLToPath(import.meta.url), '--simulate-peers', String(PEERS), keyHex, address, String(RATE)], { stdio: ['ignore', 'pipe', 'inherit'] });
    children.push(peers);
    await new Promise<void>((resolve, reject) => {
      peers.stdout!.on('data', (d: Buffer) => d.toString().includes('ready') && resolve());
      peers.once('exit', (code) => reject(new Error(`the simulated peers exited (${code})`)));
    });
    // The agent lists every simulated peer (a peer whose advert is late for a moment drops out
    // and comes back, as on a real busy mesh: the count is printed as it was).
    let seen = 0;
    for (const since = Date.now(); seen < PEERS + 1 && Date.now() - since < 60_000; ) {
      seen = ((await query(socketPath, { t: 'status', v: PROTOCOL_VERSION })).agents as unknown[]).length;
      await new Promise((r) => setTimeout(r, 200));
    }
    const { urls } = (await query(socketPath, { t: 'monitor', v: PROTOCOL_VERSION })) as unknown as { urls: { url: string }[] };
    const url = urls[0]!.url;
    const label: Record<Watcher, string> = {
      none: 'nobody watching',
      events: 'the frames read (SSE, no browser)',
      page: existsSync(CHROMIUM) ? 'the page open in Chromium' : 'the page (no Chromium: SSE)',
    };
    console.log(`monitor overhead: an agent viewing ${seen} of ${PEERS + 1} agents, ${RATE} job events/s, ${PHASE_S} s per phase, ${os.cpus().length} cores`);
    await load(socketPath, RATE, 3, work);
    const phases: Phase[] = [];
    for (let round = 0; round < ROUNDS; round++) {
      for (const kind of ['none', 'events', 'page'] as const) {
        const close = await openWatcher(url, kind);
        if (close) await new Promise((r) => setTimeout(r, 1000));
        const cpu0 = processCpuMs(agent.pid!);
        const t0 = performance.now();
        const { latencies, errors } = await load(socketPath, RATE, PHASE_S, work);
        const seconds = (performance.now() - t0) / 1000;
        phases.push({ name: label[kind], latencies, agentCpuMs: processCpuMs(agent.pid!) - cpu0, seconds, errors });
        await close?.();
      }
    }
    const row = (p: Phase) =>
      `${p.name.padEnd(36)} ${String(p.latencies.length).padStart(7)} ${[50, 90, 99].map((q) => percentile(p.latencies, q).toFixed(3).padStart(8)).join(' ')} ms ` +
      `${((p.agentCpuMs / (p.seconds * 1000)) * 100).toFixed(1).padStart(6)} %  ${p.errors ? `${p.errors} errors` : ''}`;
    console.log(`${'phase'.padEnd(36)} ${'jobs'.padStart(7)} ${'p50'.padStart(8)} ${'p90'.padStart(8)} ${'p99'.padStart(8)}    agent CPU`);
    for (const p of phases) console.log(row(p));
    const merged = (name: string) => phases.filter((p) => p.name === name).flatMap((p) => p.latencies);
    const quiet = merged(label.none);
    for (const kind of ['events', 'page'] as const) {
      const watched = merged(label[kind]);
      console.log(
        `job-path latency, nobody watching vs ${label[kind]}: p50 ${percentile(quiet, 50).toFixed(3)} vs ${percentile(watched, 50).toFixed(3)} ms, ` +
          `p90 ${percentile(quiet, 90).toFixed(3)} vs ${percentile(watched, 90).toFixed(3)} ms, p99 ${percentile(quiet, 99).toFixed(3)} vs ${percentile(watched, 99).toFixed(3)} ms`,
      );
    }
  } finally {
    for (const child of children.reverse()) child.kill('SIGTERM');
    await Promise.all(children.map((c) => (c.exitCode === null && c.signalCode === null ? new Promise((r) => c.once('exit', r)) : undefined)));
    rmSync(work, { recursive: true, force: true });
  }
}

await main();
