// Meshes without multicast and builds without an agent, across network namespaces: h3 runs a
// real DNS server (dnsmasq) that answers one name with the addresses of h0, h1 and h2 (like
// a Kubernetes headless Service); h1 and h2 run agents with multicast off that find each
// other only through `--peers-dns`; h0 runs no agent at all:
//   - h1 and h2 form one mesh from the name alone; `meshcc jobs` counts the other's free slots;
//   - `meshcc run -- make` in h0 builds zlib on both peers (objects identical to a plain
//     build), prints its one-line summary, exits with make's code, and leaves no process and
//     no file behind;
//   - with both peers gone it still builds, locally, and says so in one line.
import { execFile, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { query } from '../node/cli/query.js';
import { socketAnswers } from '../node/instance-lock.js';
import { setMeshKey } from '../node/mesh/keys.js';
import type { AgentStatus } from '../node/mesh/mesh-service.js';
import { MESHCC_BIN, plainEnv } from './helpers/agent.js';
import { createNetnsMesh, netnsAvailable, type NetnsMesh } from './helpers/netns.js';
import { collect, differences, plainZlib, removeOutputs } from './helpers/projects.js';
import { tempDir } from './helpers/tmp.js';
import { sleep, waitFor } from './helpers/wait.js';

const DNSMASQ = '/usr/sbin/dnsmasq';
const avail = netnsAvailable();
const why = !avail.ok ? avail.reason : !existsSync(DNSMASQ) ? `${DNSMASQ} is missing (apt-get install dnsmasq-base)` : '';
if (why) console.log(`meshcc run / --peers-dns tests skipped: ${why}`);

const run = promisify(execFile);
const KEY = 'd9'.repeat(32);
const NAME = 'meshcc-agents.build.test';

describe.skipIf(why !== '')('builds with meshcc run, and a mesh found through DNS', () => {
  let mesh: NetnsMesh;
  const homes: string[] = [];
  const agents: ChildProcess[] = [];
  const logs: string[] = ['', ''];
  const resolvDirs: string[] = [];
  let zlib: string;
  let plainObjects: Map<string, Buffer>;
  const make = ['make', '-j4', 'CC=gcc', 'CFLAGS=-O2 -g', 'libz.a'];

  const statusOf = async (i: number) => (await query(path.join(homes[i]!, 'agent.sock'), { t: 'status', v: 1 })).agents as AgentStatus[];

  beforeAll(async () => {
    mesh = await createNetnsMesh({ hosts: 4, prefix: 'mcr' });
    const [h0, h1, h2, h3] = mesh.hosts as [typeof mesh.hosts[0], typeof mesh.hosts[0], typeof mesh.hosts[0], typeof mesh.hosts[0]];
    // The name's records, served by dnsmasq in h3; `ip netns exec` gives each host this resolv.conf.
    const dnsDir = tempDir('meshcc-dns-');
    writeFileSync(path.join(dnsDir, 'hosts'), [h0, h1, h2].map((h) => `${h.address} ${NAME}\n`).join(''));
    mesh.spawn(h3, DNSMASQ, ['--keep-in-foreground', '--no-resolv', '--no-hosts', `--addn-hosts=${path.join(dnsDir, 'hosts')}`, `--listen-address=${h3.address}`, '--bind-interfaces', '--user=root', '--pid-file=', '--local-ttl=1'], { stdio: 'ignore' });
    for (const h of [h0, h1, h2]) {
      const dir = path.join('/etc/netns', h.ns);
      mkdirSync(dir, { recursive: true });
      writeFileSync(path.join(dir, 'resolv.conf'), `nameserver ${h3.address}\n`);
      resolvDirs.push(dir);
    }
    for (const i of [1, 2]) {
      const home = tempDir(`meshcc-dns-h${i}-`);
      homes[i] = home;
      await setMeshKey(home, KEY);
      const child = mesh.spawn(i, process.execPath, [MESHCC_BIN, 'agent', '--peers-dns', NAME], {
        env: { ...plainEnv, MESHCC_HOME: home, MESHCC_MDNS: '0', MESHCC_LISTEN: '/ip4/0.0.0.0/tcp/7624', MESHCC_SLOTS: '2', MESHCC_LOCAL_SLOTS: '0', MESHCC_SPEED: '1', MESHCC_LOG_LEVEL: 'warn' },
        stdio: ['ignore', 'ignore', 'pipe'],
      });
      child.stderr!.setEncoding('utf8').on('data', (d: string) => (logs[i - 1] = (logs[i - 1]! + d).slice(-50_000)));
      agents[i] = child;
    }
    ({ dir: zlib, objects: plainObjects } = await plainZlib(make));
    for (const i of [1, 2]) await waitFor(`h${i}'s agent`, async () => ((await socketAnswers(path.join(homes[i]!, 'agent.sock'))) ? true : undefined), 20_000);
  }, 120_000);

  afterEach((ctx) => {
    if (ctx.task.result?.state === 'fail') logs.forEach((l, i) => console.log(`--- h${i + 1} log tail:\n${l.slice(-5000)}`));
  });

  afterAll(async () => {
    await mesh?.destroy();
    for (const dir of resolvDirs) rmSync(dir, { recursive: true, force: true });
  }, 60_000);

  it('agents with multicast off find each other through a DNS name', async () => {
    for (const [me, other] of [[1, 2], [2, 1]] as const) {
      await waitFor(`h${me} to list h${other}`, async () => ((await statusOf(me)).some((r) => !r.self && r.slots === 2 && r.link === 'direct') ? true : undefined), 30_000);
    }
    // `meshcc jobs` in h1: its cores plus h2's two free slots.
    const jobs = await mesh.exec(1, process.execPath, [MESHCC_BIN, 'jobs', '--verbose'], { env: { ...plainEnv, MESHCC_HOME: homes[1]! } });
    expect(jobs.code, jobs.stderr).toBe(0);
    expect(jobs.stderr).toMatch(/local cores \+ 2 free slots on 1 other agent/);
    expect(Number(jobs.stdout.trim())).toBeGreaterThanOrEqual(3);
  }, 60_000);

  it('meshcc run -- make in a namespace without an agent: both peers used, a summary, nothing left behind', async () => {
    const tmp = tempDir('meshcc-run-tmp-');
    removeOutputs(zlib);
    const home = tempDir('meshcc-run-home-');
    const r = await mesh.exec(0, process.execPath, [MESHCC_BIN, 'run', '--peers-dns', NAME, '--wait', '20', '--', ...make], {
      cwd: zlib,
      env: { ...plainEnv, HOME: home, TMPDIR: tmp, MESHCC_MESH_KEY: KEY, MESHCC_MDNS: '0', MESHCC_LOCAL_SLOTS: '0', MESHCC_JOBS_DIR: path.join(tmp, 'jobs') },
      timeoutMs: 150_000,
    });
    expect(r.code, r.stderr).toBe(0);
    expect(differences(plainObjects, collect(zlib, /\.o$/))).toEqual([]);
    const summary = r.stderr.split('\n').find((l) => l.startsWith('meshcc: ') && l.includes('compiles'));
    console.log(summary);
    expect(summary).toMatch(/^meshcc: 15 compiles: 15 remote, 0 local, 0 fallback; 2 peers used; /);
    // Nothing left: no process in h0, and the temporary home (socket included) is gone.
    expect(spawnSync('ip', ['netns', 'pids', mesh.hosts[0]!.ns], { encoding: 'utf8' }).stdout.trim()).toBe('');
    expect(readdirSync(tmp).filter((f) => f !== 'jobs')).toEqual([]);
  }, 180_000);

  it('with every peer gone it still builds, locally, and says so in one line', async () => {
    for (const child of agents.filter(Boolean)) child.kill('SIGTERM');
    await Promise.all(agents.filter(Boolean).map((c) => (c.exitCode === null ? new Promise((r) => c.once('exit', r)) : undefined)));
    removeOutputs(zlib);
    const r = await mesh.exec(0, process.execPath, [MESHCC_BIN, 'run', '--peers-dns', NAME, '--wait', '2', '--', ...make], {
      cwd: zlib,
      env: { ...plainEnv, HOME: tempDir('meshcc-run-home-'), MESHCC_MESH_KEY: KEY, MESHCC_MDNS: '0' },
      timeoutMs: 150_000,
    });
    expect(r.code, r.stderr).toBe(0);
    expect(differences(plainObjects, collect(zlib, /\.o$/))).toEqual([]);
    expect(r.stderr).toContain('meshcc: no peer of the mesh answered within 2.0 s: compiling locally\n');
    expect(r.stderr).toMatch(/meshcc: 15 compiles: 0 remote, 15 local, 0 fallback; 0 peers used/);
  }, 180_000);
});
