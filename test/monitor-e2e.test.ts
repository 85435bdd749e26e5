// Must-show of the monitor, as a person sees it, against real agents in network namespaces:
// h0 runs the client agent (no slots of its own: every compile goes to a peer), h1 and h2 run
// peers with 2 slots each. While zlib builds in h0 through the mesh:
//   - the monitor page, in headless Chromium (Debian's, driven by playwright-core, itself run
//     inside h0 so that it reaches the agent's loopback), lists the three agents, shows slots
//     filling, is saved as docs/monitor.png, and shows h2, killed mid-build, as a lost tile;
//     at the end its job count is what `meshcc stats --json` says;
//   - `meshcc top`, in a real terminal (tmux), shows the agents and the running jobs;
//   - /metrics parses with the Prometheus client's own parser (python3-prometheus-client) and
//     its job counters equal `meshcc stats --json`.
import { execFile, spawnSync, type ChildProcess } from 'node:child_process';
import { chmodSync, copyFileSync, existsSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { Browser, Page } from 'playwright-core';
import { query } from '../node/cli/query.js';
import { socketAnswers } from '../node/instance-lock.js';
import { setMeshKey } from '../node/mesh/keys.js';
import type { AgentStatus } from '../node/mesh/mesh-service.js';
import type { StatsSnapshot } from '../node/stats.js';
import { MASQUERADE, MESHCC_BIN, plainEnv, REPO } from './helpers/agent.js';
import { createNetnsMesh, netnsAvailable, type NetnsMesh } from './helpers/netns.js';
import { collect, copyProject, differences } from './helpers/projects.js';
import { tempDir } from './helpers/tmp.js';
import { sleep, waitFor } from './helpers/wait.js';

const CHROMIUM = '/usr/bin/chromium';
const SYSTEM_PYTHON = '/usr/bin/python3';
const netns = netnsAvailable();
const chromium = existsSync(CHROMIUM);
const parser = existsSync(SYSTEM_PYTHON) && spawnSync(SYSTEM_PYTHON, ['-c', 'import prometheus_client.parser']).status === 0;
const tmux = spawnSync('tmux', ['-V']).status === 0;
const why = !netns.ok ? netns.reason : !chromium ? `${CHROMIUM} is missing (apt-get install chromium)` : !parser ? 'python3-prometheus-client is missing' : !tmux ? 'tmux is missing' : '';
if (why) console.log(`monitor end-to-end tests skipped: ${why}`);

const run = promisify(execFile);
const KEY = 'c4'.repeat(32);
const SCREENSHOT = path.join(REPO, 'docs', 'monitor.png');
const TMUX_SOCKET = `meshcc-top-${process.pid}`;
const LOG_LEVEL = process.env.MESHCC_TEST_LOG_LEVEL ?? 'warn';

interface Member {
  name: string;
  host: number;
  home: string;
  env: Record<string, string>;
  child?: ChildProcess;
  log: string;
  peerId: string;
}

const socketOf = (m: Member) => path.join(m.home, 'agent.sock');
const statsOf = async (m: Member) => (await query(socketOf(m), { t: 'stats', v: 1 })).stats as StatsSnapshot;
const statusOf = async (m: Member) => (await query(socketOf(m), { t: 'status', v: 1 })).agents as AgentStatus[];

describe.skipIf(why !== '')('the monitor during a build through a mesh of three namespaces', () => {
  let mesh: NetnsMesh;
  let h0: Member;
  let h1: Member;
  let h2: Member;
  let zlib: string;
  let plainObjects: Map<string, Buffer>;
  let browser: Browser | undefined;
  let page: Page;
  let monitorUrl: string;
  const members: Member[] = [];
  const make = ['make', '-j6', 'CC=gcc', 'CFLAGS=-O2 -g -MD', 'libz.a'];

  function start(m: Member): Promise<void> {
    const child = mesh.spawn(m.host, process.execPath, [MESHCC_BIN, 'agent'], {
      env: { ...plainEnv, MESHCC_HOME: m.home, MESHCC_NAME: m.name, MESHCC_LOG_LEVEL: LOG_LEVEL, MESHCC_SPEED: '1', ...m.env },
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    m.child = child;
    child.stderr!.setEncoding('utf8').on('data', (d: string) => (m.log = (m.log + d).slice(-100_000)));
    return waitFor(`${m.name}'s agent`, async () => ((await socketAnswers(socketOf(m))) ? (await statusOf(m)).find((r) => r.self) : undefined), 20_000).then((self) => {
      m.peerId = self.peerId;
    });
  }

  /** A command in h0 with the client's agent. */
  const inH0 = (cmd: string, args: string[], cwd = REPO) =>
    mesh.exec(0, cmd, args, { cwd, env: { ...plainEnv, MESHCC_HOME: h0.home, PATH: `${MASQUERADE}:${plainEnv.PATH ?? '/usr/bin:/bin'}` }, timeoutMs: 150_000 });

  beforeAll(async () => {
    mesh = await createNetnsMesh({ hosts: 3, prefix: 'mcm' });
    const member = (name: string, host: number, env: Record<string, string>): Member => ({ name, host, home: tempDir(`meshcc-${name}-`), env, log: '', peerId: '' });
    h0 = member('h0', 0, { MESHCC_SLOTS: '0', MESHCC_LOCAL_SLOTS: '0', MESHCC_BACKOFF_S: '2' });
    h1 = member('h1', 1, { MESHCC_SLOTS: '2', MESHCC_LOCAL_SLOTS: '0' });
    h2 = member('h2', 2, { MESHCC_SLOTS: '2', MESHCC_LOCAL_SLOTS: '0' });
    members.push(h0, h1, h2);
    for (const m of members) await setMeshKey(m.home, KEY);
    const agents = Promise.all(members.map((m) => start(m)));
    agents.catch(() => undefined);
    zlib = copyProject('zlib');
    await run('./configure', ['--static'], { cwd: zlib, env: plainEnv });
    await run(make[0]!, make.slice(1), { cwd: zlib, env: plainEnv });
    plainObjects = collect(zlib, /\.(o|d)$/);
    await agents;
    // The toolchain packed and both peers ready: one compile through the mesh shows it.
    await waitFor(
      'h0 to list h1 and h2 with slots and the gcc toolchain',
      async () => {
        const rows = await statusOf(h0);
        const gcc = rows.find((r) => r.self)?.toolchains ?? [];
        const ready = [h1, h2].every((p) => rows.some((r) => r.peerId === p.peerId && r.slots === 2 && gcc.length > 0 && r.toolchains.some((t) => gcc.includes(t))));
        if (!ready) await inH0('gcc', ['-c', 'adler32.c', '-o', '/dev/null'], zlib);
        return ready || undefined;
      },
      60_000,
    );
    const printed = await inH0(process.execPath, [MESHCC_BIN, 'monitor', '--no-open']);
    expect(printed.code, printed.stderr).toBe(0);
    monitorUrl = printed.stdout.trim().split('\n')[0]!;
    expect(monitorUrl).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/$/);

    // Chromium runs in h0's namespace: the page is on h0's loopback.
    const wrapperDir = tempDir('meshcc-chromium-');
    const wrapper = path.join(wrapperDir, 'chromium-in-h0');
    writeFileSync(wrapper, `#!/bin/sh\nexec ip netns exec ${mesh.hosts[0]!.ns} ${CHROMIUM} "$@"\n`);
    chmodSync(wrapper, 0o755);
    const { chromium: launcher } = await import('playwright-core');
    browser = await launcher.launch({
      executablePath: wrapper,
      args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    });
    page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
    await page.goto(monitorUrl);
  }, 180_000);

  afterEach((ctx) => {
    if (ctx.task.result?.state !== 'fail') return;
    for (const m of members) console.log(`--- ${m.name} (${m.peerId}) log tail:\n${m.log.slice(-6000)}`);
  });

  afterAll(async () => {
    await browser?.close().catch(() => undefined);
    spawnSync('tmux', ['-L', TMUX_SOCKET, 'kill-server']);
    await mesh?.destroy();
  }, 60_000);

  const tile = (m: Member) => page.locator(`[data-peer="${m.peerId}"]`);

  it('page, terminal view and metrics follow a build; a peer killed mid-build turns into a lost tile', async () => {
    // All three agents, up, before the build.
    for (const m of [h0, h1, h2]) await expect.poll(() => tile(m).getAttribute('data-state'), { timeout: 15_000 }).toBe('up');
    expect(await page.locator('.tile').count()).toBe(3);

    // `meshcc top` in a real terminal, in h0.
    const top = `ip netns exec ${mesh.hosts[0]!.ns} env MESHCC_HOME=${h0.home} ${process.execPath} ${MESHCC_BIN} top`;
    expect(spawnSync('tmux', ['-L', TMUX_SOCKET, 'new-session', '-d', '-x', '200', '-y', '50', top]).status).toBe(0);
    const pane = () => spawnSync('tmux', ['-L', TMUX_SOCKET, 'capture-pane', '-p'], { encoding: 'utf8' }).stdout;

    for (const f of collect(zlib, /\.(o|d|a)$/).keys()) rmSync(path.join(zlib, f));
    const before = await statsOf(h0);
    const build = inH0(make[0]!, make.slice(1), zlib);

    // Slots fill on the page while jobs run; the screenshot is taken then.
    await page.waitForFunction(() => document.querySelectorAll('.slot.busy').length >= 2, undefined, { timeout: 30_000 });
    mkdirSync(path.dirname(SCREENSHOT), { recursive: true });
    const shot = path.join(tempDir('meshcc-shot-'), 'monitor.png');
    await page.screenshot({ path: shot, fullPage: true });
    copyFileSync(shot, SCREENSHOT);

    // The terminal shows the agents and jobs running on the peers.
    const screen = await waitFor('meshcc top to show running jobs', () => {
      const text = pane();
      return /RUNNING \([1-9]/.test(text) && /h0 → h[12]/.test(text) ? text : undefined;
    }, 20_000);
    for (const name of ['h0 *', 'h1', 'h2']) expect(screen).toContain(name);
    expect(screen).toMatch(/THIS AGENT\s+jobs \d+/);
    console.log(`meshcc top during the build:\n${screen.split('\n').slice(0, 16).join('\n')}`);

    // h2 dies while it holds one of our jobs.
    await waitFor('h2 to hold a job', async () => ((await statsOf(h2)).slots.executorInUse > 0 ? true : undefined), 30_000);
    h2.child!.kill('SIGKILL');
    const result = await build;
    expect(result.code, result.stderr).toBe(0);
    expect(differences(plainObjects, collect(zlib, /\.(o|d)$/))).toEqual([]);
    await expect.poll(() => tile(h2).getAttribute('data-state'), { timeout: 30_000 }).toBe('lost');
    expect(await tile(h2).isVisible()).toBe(true);
    expect(await tile(h1).getAttribute('data-state')).toBe('up');

    // The page's job count is the agent's.
    const after = await statsOf(h0);
    const total = (s: StatsSnapshot) => s.counts.local + s.counts.job + s.counts.remote + s.counts.fallback;
    expect(total(after) - total(before)).toBeGreaterThanOrEqual(15);
    await expect.poll(() => page.locator('#self-jobs').textContent(), { timeout: 5_000 }).toBe(String(total(after)));

    // /metrics: Prometheus text that the Prometheus client parses, with the stats' counters.
    const metrics = await inH0('curl', ['-sf', `${monitorUrl}metrics`]);
    expect(metrics.code, metrics.stderr).toBe(0);
    const parsed = spawnSync(
      SYSTEM_PYTHON,
      ['-c', 'import sys,json\nfrom prometheus_client.parser import text_string_to_metric_families as p\nprint(json.dumps([[s.name,s.labels,s.value] for f in p(sys.stdin.read()) for s in f.samples]))'],
      { input: metrics.stdout, encoding: 'utf8' },
    );
    expect(parsed.status, parsed.stderr).toBe(0);
    const samples = JSON.parse(parsed.stdout) as [string, Record<string, string>, number][];
    const stats = await statsOf(h0);
    const jobs = samples.filter(([name]) => name === 'meshcc_jobs_total');
    const expected = Object.entries(stats.routes).flatMap(([route, r]) => Object.entries(r.byReason).map(([reason, n]) => [route, reason, n] as const));
    expect(jobs.map(([, l, v]) => [l.route, l.reason, v]).sort()).toEqual(expected.map((e) => [...e]).sort());
    const sample = (name: string, labels: Record<string, string>) => samples.find(([n, l]) => n === name && Object.entries(labels).every(([k, v]) => l[k] === v))?.[2];
    expect(sample('meshcc_bytes_total', { direction: 'sent', role: 'client' })).toBe(stats.bytesSent);
    expect(sample('meshcc_job_phase_seconds_count', { phase: 'compile' })).toBeGreaterThan(0);
    expect(sample('meshcc_election_term', {})).toBeGreaterThan(0);

    // q leaves top, and its terminal with it.
    spawnSync('tmux', ['-L', TMUX_SOCKET, 'send-keys', 'q']);
    await waitFor('meshcc top to exit on q', () => (spawnSync('tmux', ['-L', TMUX_SOCKET, 'has-session']).status !== 0 ? true : undefined), 5_000);
  }, 240_000);
});
