// Forty agents on this machine's two cores (issue 21): started one after another, each told one
// address (MESHCC_PEERS, mDNS off, loopback), they settle within 60 s (every agent lists all 40
// and all name one scheduler); then, for 60 s with a build running through the mesh, no agent
// leaves any view and the scheduler does not change. The cores are shared with the build and
// with every other agent: members that answer late must not be declared dead.
import { spawnSync } from 'node:child_process';
import { afterAll, describe, expect, it } from 'vitest';
import { startAgentProcess, type AgentProcess } from './helpers/agent.js';
import { compileThrough, statsOf, statusOf } from './helpers/mesh-agents.js';
import { tempDir } from './helpers/tmp.js';
import { waitFor } from './helpers/wait.js';

const COUNT = 40;
// Forty agents starting on two cores take minutes (each identifies and packs the host's
// compilers), more than the whole suite's budget: the test runs when asked.
const RUN = process.env.MESHCC_TEST_FORTY === '1';
if (!RUN) console.log('test/mesh-forty: skipped (set MESHCC_TEST_FORTY=1 to run forty agents, several minutes on two cores)');
const agents: AgentProcess[] = [];

interface LogLine {
  time: number;
  msg: string;
  peer?: string;
  scheduler?: string;
}

function lines(agent: AgentProcess): LogLine[] {
  const out: LogLine[] = [];
  for (const line of agent.logs().split('\n')) {
    if (!line.startsWith('{')) continue;
    try {
      out.push(JSON.parse(line) as LogLine);
    } catch {
      // a line being written
    }
  }
  return out;
}

/** Whom an agent lists and follows, from its own log. */
function viewOf(agent: AgentProcess): { listed: Set<string>; scheduler?: string } {
  const listed = new Set<string>();
  let scheduler: string | undefined;
  for (const l of lines(agent)) {
    if (l.msg === 'peer joined the view' && l.peer) listed.add(l.peer);
    else if (l.msg === 'peer left the view' && l.peer) listed.delete(l.peer);
    else if (l.msg === 'this agent is the scheduler' || l.msg === 'following a scheduler') scheduler = l.scheduler;
    else if (l.msg === 'no scheduler') scheduler = undefined;
  }
  return { listed, scheduler };
}

afterAll(async () => {
  await Promise.all(agents.map((a) => a.stop()));
});

describe.skipIf(!RUN)('forty agents on two cores', () => {
  it('settle within 60 s, then stay whole and keep their scheduler for 60 s of a build', async () => {
    const env = { MESHCC_LOG_LEVEL: 'info', MESHCC_SLOTS: '1', MESHCC_HTTP: 'off', MESHCC_PORT_MAPPING: '0', MESHCC_MESH_KEY: 'ab'.repeat(32) };
    // Forty starting on two shared cores: an agent may take a while to answer its socket.
    const first = await startAgentProcess(env, tempDir('meshcc-home-'), 180_000);
    agents.push(first);
    const self = await waitFor('the first agent in the mesh', async () => (await statusOf(first)).find((r) => r.self && r.addresses.length > 0), 15_000);
    const address = self.addresses.find((a) => a.startsWith('/ip4/127.0.0.1/'))!;
    for (let i = 1; i < COUNT; i++) agents.push(await startAgentProcess({ ...env, MESHCC_PEERS: address }, tempDir('meshcc-home-'), 180_000));
    const lastStarted = Date.now();
    // An agent answers its socket before its mesh node is up.
    const ids = await Promise.all(agents.map((a) => waitFor('its peer id', async () => (await statusOf(a)).find((r) => r.self)?.peerId, 120_000)));

    const scheduler = await waitFor(
      'every agent to list all 40 and name one scheduler',
      () => {
        const named = new Set<string>();
        for (const agent of agents) {
          const view = viewOf(agent);
          if (view.listed.size !== COUNT - 1 || !view.scheduler) return undefined;
          named.add(view.scheduler);
        }
        return named.size === 1 ? [...named][0] : undefined;
      },
      60_000,
    );
    const settledMs = Date.now() - lastStarted;
    console.log(`${COUNT} agents settled ${settledMs} ms after the last started; scheduler ${scheduler.slice(-8)}`);
    expect(ids).toContain(scheduler);
    const before = agents.map((a) => lines(a).length);

    // A build through the mesh for 60 s: small compiles from the first agent, four at a time.
    const client = first;
    const gcc = spawnSync('which', ['gcc'], { encoding: 'utf8' }).stdout.trim();
    expect(gcc).not.toBe('');
    const until = Date.now() + 60_000;
    let compiled = 0;
    let failed = 0;
    await Promise.all(
      Array.from({ length: 4 }, async () => {
        while (Date.now() < until) {
          const r = await compileThrough(client);
          if (r.status === 0) compiled++;
          else failed++;
        }
      }),
    );
    const stats = await statsOf(client);
    console.log(`60 s of build: ${compiled} compiles (${failed} failed), ${stats.counts.remote} run on peers, ${stats.placements.viaScheduler} placed by the scheduler`);
    expect(failed).toBe(0);
    expect(stats.counts.remote).toBeGreaterThan(0);

    // Nobody left anybody's view, and nobody changed scheduler, during the build.
    const churn = agents.flatMap((a, i) => lines(a).slice(before[i]).filter((l) => ['peer left the view', 'lost the scheduler', 'no scheduler', 'this agent is the scheduler', 'following a scheduler'].includes(l.msg)));
    expect(churn.map((l) => `${l.msg} ${l.peer ?? l.scheduler ?? ''}`)).toEqual([]);
    for (const agent of agents) {
      const view = viewOf(agent);
      expect(view.listed.size).toBe(COUNT - 1);
      expect(view.scheduler).toBe(scheduler);
    }
    const suspected = agents.reduce((n, a) => n + lines(a).filter((l) => l.msg.startsWith('member suspected')).length, 0);
    console.log(`suspicions raised over the whole run (all refuted): ${suspected}`);
  }, 900_000);
});
