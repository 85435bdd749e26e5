// Must-show: one elected scheduler. Agents in network namespaces on one bridge (mDNS finds
// them): in a 3-agent and a 5-agent mesh every agent's `meshcc status` names the same single
// scheduler; after SIGKILL of the scheduler the others agree on a new one within 3 s; and a
// build running across the mesh at that moment (zlib, from a client agent without slots of its
// own, the scheduler being one of its executors) ends with no failed compile and objects
// identical to a plain build.
import { execFile, type ChildProcess } from 'node:child_process';
import { rmSync } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { query } from '../node/cli/query.js';
import { socketAnswers } from '../node/instance-lock.js';
import { setMeshKey } from '../node/mesh/keys.js';
import type { AgentStatus } from '../node/mesh/mesh-service.js';
import type { StatsSnapshot } from '../node/stats.js';
import { MASQUERADE, MESHCC_BIN, plainEnv } from './helpers/agent.js';
import { createNetnsMesh, netnsAvailable, type NetnsMesh } from './helpers/netns.js';
import { collect, copyProject, differences } from './helpers/projects.js';
import { tempDir } from './helpers/tmp.js';
import { hostToolchainId } from './helpers/toolchain-id.js';
import { sleep, waitFor } from './helpers/wait.js';

const avail = netnsAvailable();
if (!avail.ok) console.log(`election tests skipped: ${avail.reason}`);

const run = promisify(execFile);
const KEY = 'e1'.repeat(32);

interface Member {
  host: number;
  home: string;
  child?: ChildProcess;
  peerId?: string;
  log: string;
}

const socketOf = (m: Member) => path.join(m.home, 'agent.sock');
const statusOf = async (m: Member) => (await query(socketOf(m), { t: 'status', v: 1 })).agents as AgentStatus[];
const statsOf = async (m: Member) => (await query(socketOf(m), { t: 'stats', v: 1 })).stats as StatsSnapshot;

/** The scheduler every one of these agents names, when they all list `count` agents and agree on exactly one. */
async function agreedScheduler(members: Member[], count: number): Promise<string | undefined> {
  const named = new Set<string>();
  for (const m of members) {
    const rows = await statusOf(m);
    if (rows.length !== count) return undefined;
    const schedulers = rows.filter((r) => r.role === 'scheduler');
    if (schedulers.length !== 1) return undefined;
    named.add(schedulers[0]!.peerId);
  }
  return named.size === 1 ? [...named][0] : undefined;
}

function electionSuite(size: number): void {
  describe.skipIf(!avail.ok)(`a ${size}-agent mesh`, () => {
    let mesh: NetnsMesh;
    const members: Member[] = [];
    /** h0: the client (no slots, started last); h1…: executors, h1 started first. */
    let client: Member;

    afterEach((ctx) => {
      if (ctx.task.result?.state === 'fail') for (const m of members) console.log(`--- h${m.host} log tail:\n${m.log.slice(-8000)}`);
    });

    async function start(m: Member, env: Record<string, string>): Promise<void> {
      m.child = mesh.spawn(m.host, process.execPath, [MESHCC_BIN, 'agent'], {
        env: { ...plainEnv, MESHCC_HOME: m.home, MESHCC_LOG_LEVEL: 'info', MESHCC_SPEED: '1', ...env },
        stdio: ['ignore', 'ignore', 'pipe'],
      });
      m.child.stderr!.setEncoding('utf8').on('data', (d: string) => (m.log = (m.log + d).slice(-50_000)));
      const self = await waitFor('an agent', async () => ((await socketAnswers(socketOf(m))) ? (await statusOf(m)).find((r) => r.self) : undefined), 30_000);
      m.peerId = self.peerId;
    }

    beforeAll(async () => {
      mesh = await createNetnsMesh({ hosts: size, prefix: `mccel${size}` });
      for (let host = 0; host < size; host++) {
        const m: Member = { host, home: tempDir('meshcc-home-'), log: '' };
        await setMeshKey(m.home, KEY);
        members.push(m);
      }
      client = members[0]!;
      // Started one after another: their uptimes rank them, h1 first.
      for (const m of members.slice(1)) await start(m, { MESHCC_SLOTS: '2', MESHCC_LOCAL_SLOTS: '0' });
      await start(client, { MESHCC_SLOTS: '0', MESHCC_LOCAL_SLOTS: '0', MESHCC_LOG_LEVEL: 'debug' });
    }, 120_000);

    afterAll(async () => {
      for (const m of members) if (m.child?.exitCode === null && m.child.signalCode === null) m.child.kill('SIGTERM');
      await sleep(300);
      await mesh?.destroy();
    });

    it('every agent names the same single scheduler: the longest-running one', async () => {
      const t0 = Date.now();
      const scheduler = await waitFor('one scheduler named by all', () => agreedScheduler(members, size), 20_000);
      console.log(`${size} agents agree on one scheduler ${Date.now() - t0} ms after the last started`);
      expect(scheduler).toBe(members[1]!.peerId);
    });

    it('SIGKILL of the scheduler while a build runs through it: a new scheduler within 3 s, the build ends with no failed compile and identical objects', async () => {
      const gcc = (await run('which', ['gcc'])).stdout.trim();
      const gccId = await hostToolchainId(gcc);
      const executors = members.slice(1);
      await waitFor(
        'the client to have packed gcc and to list the executors with it',
        async () => {
          const rows = await statusOf(client);
          return rows.find((r) => r.self)!.toolchains.includes(gccId) && executors.every((m) => rows.find((r) => r.peerId === m.peerId)?.toolchains.includes(gccId)) ? true : undefined;
        },
        90_000,
      );
      const zlib = copyProject('zlib');
      try {
        const make = ['make', '-j4', 'CC=gcc', 'CFLAGS=-O2 -g -MD', 'libz.a'];
        await run('./configure', ['--static'], { cwd: zlib, env: plainEnv });
        await run(make[0]!, make.slice(1), { cwd: zlib, env: plainEnv });
        const plain = collect(zlib, /\.(o|d)$/);
        for (const f of collect(zlib, /\.(o|d|a)$/).keys()) rmSync(path.join(zlib, f));

        const schedulerId = await agreedScheduler(members, size);
        const scheduler = members.find((m) => m.peerId === schedulerId)!;
        expect(scheduler).toBeDefined();
        const meshEnv = { ...plainEnv, MESHCC_HOME: client.home, PATH: `${MASQUERADE}:${plainEnv.PATH}` };
        const build = mesh.exec(0, make[0]!, make.slice(1), { cwd: zlib, env: meshEnv, timeoutMs: 150_000 });
        // Kill it once the scheduler has placed a job of this build.
        await waitFor('a job placed by the scheduler', async () => ((await statsOf(client)).placements.viaScheduler > 0 ? true : undefined), 60_000);
        scheduler.child!.kill('SIGKILL');
        const killedAt = Date.now();
        const survivors = members.filter((m) => m !== scheduler);
        const next = await waitFor('a new scheduler named by all survivors', async () => {
          const agreed = await agreedScheduler(survivors, size - 1);
          return agreed && agreed !== scheduler.peerId ? agreed : undefined;
        }, 10_000);
        const failoverMs = Date.now() - killedAt;
        console.log(`${size} agents: scheduler killed, ${next.slice(-8)} agreed on by all ${size - 1} survivors after ${failoverMs} ms`);
        expect(failoverMs).toBeLessThanOrEqual(3000);

        const r = await build;
        expect(r.code, `make failed: ${r.stderr.slice(-3000)}`).toBe(0);
        expect(differences(plain, collect(zlib, /\.(o|d)$/))).toEqual([]);
        const stats = await statsOf(client);
        console.log(`${size} agents: zlib built, remote ${stats.counts.remote}, fallback ${stats.counts.fallback} ${JSON.stringify(stats.fallbackByReason)}; placements via scheduler ${stats.placements.viaScheduler}, by the client ${stats.placements.bySelf}`);
        expect(stats.counts.remote + stats.counts.fallback).toBe(15);
        expect(stats.counts.remote).toBeGreaterThan(0);
        // Each placement, which peer and why, is in the stats and in the client's debug log.
        expect(stats.placements.viaScheduler).toBeGreaterThan(0);
        expect(stats.placements.recent.length).toBeGreaterThan(0);
        for (const p of stats.placements.recent) expect(p.reason).toMatch(/^(fastest-finish|fetches-toolchain|own-adverts)$/);
        expect(client.log).toMatch(/"via":"scheduler","reason":"fastest-finish","msg":"job placed"/);
      } finally {
        rmSync(zlib, { recursive: true, force: true });
      }
    }, 240_000);

    if (size === 5) {
      it('a partition ({h0, h2} | {h3, h4}): one scheduler on each side; once healed, one for all again', async () => {
        const alive = members.filter((m) => m.child?.exitCode === null && m.child.signalCode === null);
        expect(alive.map((m) => m.host)).toEqual([0, 2, 3, 4]);
        const [left, right] = [alive.filter((m) => m.host <= 2), alive.filter((m) => m.host >= 3)];
        const br = mesh.bridgeNs;
        const ip = (...args: string[]) => run('ip', ['-n', br, ...args]);
        // The right side's ports move to a bridge of their own.
        await ip('link', 'add', 'br1', 'type', 'bridge', 'mcast_snooping', '0', 'forward_delay', '0', 'stp_state', '0');
        await ip('link', 'set', 'br1', 'up');
        try {
          for (const m of right) await ip('link', 'set', mesh.hosts[m.host]!.name, 'master', 'br1');
          const [l, r] = await Promise.all([
            // Each side declares the other dead once its suspicion runs out: at most 6 × 4 probe
            // periods (48 s; less as the side's other member confirms it), then the last probe.
            waitFor('the left side to agree', () => agreedScheduler(left, left.length), 75_000),
            waitFor('the right side to agree', () => agreedScheduler(right, right.length), 75_000),
          ]);
          expect(l).not.toBe(r);
          console.log(`partitioned: ${l.slice(-8)} schedules {h0, h2}, ${r.slice(-8)} schedules {h3, h4}`);
        } finally {
          for (const m of right) await ip('link', 'set', mesh.hosts[m.host]!.name, 'master', 'br0');
          await ip('link', 'del', 'br1');
        }
        const healedAt = Date.now();
        // agreedScheduler: every agent lists the 4 and names exactly one scheduler, the same one.
        // The sides find each other again through the members they remember (one every 20 s).
        const one = await waitFor('one scheduler for all after the heal', () => agreedScheduler(alive, alive.length), 45_000);
        console.log(`healed: all 4 agree on ${one.slice(-8)} ${Date.now() - healedAt} ms after the link came back`);
      }, 180_000);
    }
  });
}

electionSuite(3);
electionSuite(5);
