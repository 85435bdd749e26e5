// Meshes without multicast and builds without an agent, across network namespaces: h3 runs a
// real DNS server (dnsmasq) that answers the README's agents name with the addresses of h0, h1
// and h2 (like a Kubernetes headless Service); h1 and h2 run agents that find each other only
// through `--peers-dns` (h2 has multicast off, so h1's multicast finds nobody); h0 runs no
// agent at all. The README's CI blocks run in h0 as they stand (the key and token as the CI
// secrets they name):
//   - h1 and h2 form one mesh from the name alone; `meshcc jobs` counts the other's free slots;
//   - `ci: dns` builds zlib on both peers (objects identical to a plain build), prints its
//     one-line summary, exits with make's code, and leaves no process and no file behind;
//   - `ci: mdns` (h1 found by multicast), `ci: join` (a token from `meshcc invite` on h1) and
//     `ci: docker` (its RUN lines in a mount namespace shaped like the build step: meshcc
//     copied to /opt/meshcc, the secret at /run/secrets) build it on the mesh as well;
//   - with both peers gone it still builds, locally, and says so in one line.
import { execFile, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { query } from '../node/cli/query.js';
import { socketAnswers } from '../node/instance-lock.js';
import { setMeshKey } from '../node/mesh/keys.js';
import type { AgentStatus } from '../node/mesh/mesh-service.js';
import { MESHCC_BIN, plainEnv, REPO } from './helpers/agent.js';
import { createNetnsMesh, netnsAvailable, type NetnsMesh } from './helpers/netns.js';
import { collect, differences, plainZlib, removeOutputs } from './helpers/projects.js';
import { readmeBlock } from './helpers/readme.js';
import { tempDir } from './helpers/tmp.js';
import { sleep, waitFor } from './helpers/wait.js';

const DNSMASQ = '/usr/sbin/dnsmasq';
const avail = netnsAvailable();
const why = !avail.ok ? avail.reason : !existsSync(DNSMASQ) ? `${DNSMASQ} is missing (apt-get install dnsmasq-base)` : '';
if (why) console.log(`meshcc run / --peers-dns tests skipped: ${why}`);

const run = promisify(execFile);
const shellQuoted = (text: string) => `'${text.replace(/'/g, `'\\''`)}'`;
const KEY = 'd9'.repeat(32);
/** The agents' name as the README's CI block has it. */
const NAME = /--peers-dns (\S+)/.exec(readmeBlock('ci', 'dns'))![1]!;

describe.skipIf(why !== '')('builds with meshcc run, and a mesh found through DNS', () => {
  let mesh: NetnsMesh;
  const homes: string[] = [];
  const agents: ChildProcess[] = [];
  const logs: string[] = ['', ''];
  const resolvDirs: string[] = [];
  let zlib: string;
  let plainObjects: Map<string, Buffer>;
  /** What the README's blocks run (the tree is configured by the test). */
  const make = ['make', '-j16'];
  /** `meshcc` on PATH, as the README assumes. */
  const bin = tempDir('meshcc-run-bin-');

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
        env: { ...plainEnv, MESHCC_HOME: home, MESHCC_MDNS: i === 1 ? '1' : '0', MESHCC_LISTEN: '/ip4/0.0.0.0/tcp/7624', MESHCC_SLOTS: '2', MESHCC_LOCAL_SLOTS: '0', MESHCC_SPEED: '1', MESHCC_LOG_LEVEL: 'warn' },
        stdio: ['ignore', 'ignore', 'pipe'],
      });
      child.stderr!.setEncoding('utf8').on('data', (d: string) => (logs[i - 1] = (logs[i - 1]! + d).slice(-50_000)));
      agents[i] = child;
    }
    writeFileSync(path.join(bin, 'meshcc'), `#!/bin/sh\nexec ${process.execPath} ${MESHCC_BIN} "$@"\n`);
    chmodSync(path.join(bin, 'meshcc'), 0o755);
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

  /** Runs a README block with bash in h0 (no agent there), as a CI job with the mesh's secrets. */
  const runBlock = async (script: string, extraEnv: Record<string, string> = {}, tmp = tempDir('meshcc-run-tmp-')) => {
    removeOutputs(zlib);
    const r = await mesh.exec(0, 'bash', ['-euo', 'pipefail', '-c', script], {
      cwd: zlib,
      env: { ...plainEnv, PATH: `${bin}:${plainEnv.PATH}`, HOME: tempDir('meshcc-run-home-'), TMPDIR: tmp, MESH_KEY: KEY, MESHCC_LOCAL_SLOTS: '0', MESHCC_JOBS_DIR: path.join(tmp, 'jobs'), ...extraEnv },
      timeoutMs: 150_000,
    });
    expect(r.code, r.stderr).toBe(0);
    expect(differences(plainObjects, collect(zlib, /\.o$/))).toEqual([]);
    const said = r.stderr.split('\n').filter((l) => l.startsWith('meshcc: '));
    console.log(said.join('\n'));
    const summary = said.find((l) => l.includes(' compiles: ')) ?? '';
    return summary;
  };

  it("the README's `ci: dns` block in a namespace without an agent: both peers used, a summary, nothing left behind", async () => {
    const tmp = tempDir('meshcc-run-tmp-');
    const summary = await runBlock(readmeBlock('ci', 'dns'), {}, tmp);
    expect(summary).toMatch(new RegExp(`^meshcc: \\d+ compiles: ${plainObjects.size} remote, \\d+ local \\(link \\d+\\), 0 fallback; 2 peers used; `));
    // Nothing left: no process in h0, and the temporary home (socket included) is gone.
    expect(spawnSync('ip', ['netns', 'pids', mesh.hosts[0]!.ns], { encoding: 'utf8' }).stdout.trim()).toBe('');
    expect(readdirSync(tmp).filter((f) => f !== 'jobs')).toEqual([]);
  }, 180_000);

  it("the README's `ci: mdns` block: the mesh found by multicast", async () => {
    const summary = await runBlock(readmeBlock('ci', 'mdns'));
    expect(summary).toMatch(new RegExp(`^meshcc: \\d+ compiles: ${plainObjects.size} remote, .*, 0 fallback; [12] peers? used; `));
  }, 180_000);

  it("the README's `ci: join` block: the mesh of a token from `meshcc invite`", async () => {
    const invite = await mesh.exec(1, process.execPath, [MESHCC_BIN, 'invite'], { env: { ...plainEnv, MESHCC_HOME: homes[1]! } });
    expect(invite.code, invite.stderr).toBe(0);
    const summary = await runBlock(readmeBlock('ci', 'join'), { MESH_KEY: '', MESHCC_TOKEN: invite.stdout.trim() });
    expect(summary).toMatch(new RegExp(`^meshcc: \\d+ compiles: ${plainObjects.size} remote, .*, 0 fallback; [12] peers? used; `));
  }, 180_000);

  it("the README's `ci: docker` block: its RUN lines as the build step runs them", async () => {
    const secrets = tempDir('meshcc-run-secrets-');
    const setup: string[] = ['mount -t tmpfs meshcc-step /usr/local/bin', 'mount -t tmpfs meshcc-step /run', 'mkdir /run/secrets'];
    const steps: string[] = [];
    for (const line of readmeBlock('ci', 'docker').split('\n').filter(Boolean)) {
      const copy = /^COPY --from=meshcc \/opt\/meshcc (\S+)$/.exec(line);
      const run = /^RUN (?:--mount=type=secret,id=(\w+) )?(.*)$/.exec(line);
      if (copy) {
        // The image's /opt/meshcc is this checkout, built.
        setup.push(`mount -t tmpfs meshcc-step ${path.dirname(copy[1]!)}`, `mkdir -p ${copy[1]}`, `mount --bind ${REPO} ${copy[1]}`);
      } else if (run) {
        if (run[1]) {
          writeFileSync(path.join(secrets, run[1]), KEY);
          setup.push(`cp ${path.join(secrets, run[1])} /run/secrets/${run[1]}`);
        }
        steps.push(run[2]!);
      } else throw new Error(`the test cannot run this line of the docker block: ${line}`);
    }
    const script = [...setup, ...steps.map((step) => `sh -c ${shellQuoted(step)}`)].join(' && ');
    const summary = await runBlock(`exec unshare --mount --propagation private sh -c ${shellQuoted(script)}`, { MESH_KEY: '' });
    expect(summary).toMatch(new RegExp(`^meshcc: \\d+ compiles: ${plainObjects.size} remote, .*, 0 fallback; 2 peers used; `));
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
    expect(r.stderr).toMatch(/meshcc: \d+ compiles: 0 remote, \d+ local \(link \d+\), 0 fallback; 0 peers used/);
  }, 180_000);
});
