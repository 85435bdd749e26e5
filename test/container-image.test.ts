// The agent's container image, built and run by a real engine (Debian's podman; see
// helpers/podman.ts for its configuration):
//   1. The README's build block (deploy/container/build.sh) builds deploy/container/Containerfile
//      from this checkout's package (packed here, installed with npm install -g into the build
//      context) on a base image this test makes (debootstrap of bookworm plus this process's
//      Node, cached in .cache/container-base): no registry is reachable here, and the build
//      fetches nothing. The agent's start-up probe in the image tells a masked /proc apart.
//   2. Three containers of the image, run as the DaemonSet runs its pods (its arguments, its
//      environment with the mesh key as the Secret gives it, read-only root, no capabilities,
//      seccomp unconfined, /proc unmasked for bubblewrap), on a podman network, find each other
//      through one DNS name (a real DNS server, dnsmasq, on the network's bridge) and form a mesh.
//   3. A fourth container, from a build image made as the README's CI block makes one (the
//      image's /opt/meshcc copied into an image with gcc and make), runs `meshcc run -- make` on
//      zlib: every compile runs on the three agents (their metrics count the jobs), and the
//      objects are identical to a plain build in the same build image.
import { spawn, type ChildProcess } from 'node:child_process';
import { chownSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { plainEnv, REPO } from './helpers/agent.js';
import { debianBases, Podman, podmanUnavailable } from './helpers/podman.js';
import { collect, copyProject, differences, removeOutputs } from './helpers/projects.js';
import { readmeBlock } from './helpers/readme.js';
import { tempDir } from './helpers/tmp.js';
import { waitFor } from './helpers/wait.js';

const KEY = 'c4'.repeat(32);
const DNSMASQ = '/usr/sbin/dnsmasq';
const AGENTS = ['agent-0', 'agent-1', 'agent-2'];
/** The agents' image: the name the README's CI block copies /opt/meshcc from. */
const IMAGE = 'localhost/meshcc:latest';
const why = podmanUnavailable();
if (why) console.log(`container image test skipped: ${why}`);

const mb = (bytes: number) => `${(bytes / 1e6).toFixed(0)} MB`;

/** A free /24 in 10.214.0.0/16 that the machine routes nowhere yet (the network is in the root namespace). */
function freeSubnet(): string {
  const routes = readFileSync('/proc/net/route', 'utf8');
  for (let n = process.pid % 200; ; n = (n + 1) % 250) {
    // /proc/net/route holds destinations as little-endian hex: 10.214.n.0 → 00 n D6 0A
    const hex = `00${n.toString(16).padStart(2, '0')}D60A`.toUpperCase();
    if (!routes.includes(hex)) return `10.214.${n}`;
  }
}

/** The DaemonSet's container: its arguments and environment, with valueFrom resolved as the cluster would. */
function daemonSetPod(name: string, slots: string): { args: string[]; env: Record<string, string> } {
  const ds = parse(readFileSync(path.join(REPO, 'deploy', 'kubernetes', 'daemonset.yaml'), 'utf8'));
  const container = ds.spec.template.spec.containers[0];
  expect(container.command).toEqual(['meshcc', 'agent']);
  const env: Record<string, string> = {};
  for (const e of container.env as { name: string; value?: string; valueFrom?: any }[]) {
    if (e.value !== undefined) env[e.name] = e.value;
    else if (e.valueFrom.secretKeyRef?.key === 'MESHCC_MESH_KEY') env[e.name] = KEY;
    else if (e.valueFrom.configMapKeyRef?.key === 'MESHCC_SLOTS') env[e.name] = slots;
    else if (e.valueFrom.fieldRef?.fieldPath === 'spec.nodeName') env[e.name] = name;
    else throw new Error(`the test cannot resolve ${e.name}`);
  }
  return { args: container.args, env };
}

describe.skipIf(why !== '')('the container image, built and run with podman', () => {
  let podman: Podman;
  let dnsmasq: ChildProcess | undefined;
  let subnet: string;
  const network = `meshcc-test-${process.pid}`;
  const figures: string[] = [];

  beforeAll(async () => {
    podman = new Podman();
    const started = Date.now();
    // The package, packed from this checkout's dist/ (`npm test` builds it; prepack would
    // rebuild it under the other test files), while the bases are made.
    const pack = tempDir('meshcc-image-pack-');
    const packed = run('npm', ['pack', '--ignore-scripts', '--json', '--pack-destination', pack], { cwd: REPO });
    packed.catch(() => undefined); // awaited below
    // The two bases, the agents' and the build image's (one debootstrap for both).
    const { images, debootstrapSeconds } = await debianBases(podman, [
      { image: 'localhost/meshcc-test-base:bookworm', packages: ['bubblewrap', 'ca-certificates'] },
      { image: 'localhost/meshcc-test-build-base:bookworm', packages: ['bubblewrap', 'ca-certificates', 'gcc', 'libc6-dev', 'make'] },
    ]);
    const [agentBase, buildBase] = images as [string, string];
    figures.push(`base images: ${debootstrapSeconds ? `debootstrap ${debootstrapSeconds.toFixed(0)} s` : 'from .cache/container-base'}, ${((Date.now() - started) / 1000).toFixed(0)} s in all`);
    const tarball = path.join(pack, (JSON.parse(await packed) as { filename: string }[])[0]!.filename);
    const buildStarted = Date.now();
    // The README's build block as it stands (its tag then also named as the CI block copies from).
    const build = readmeBlock('container', 'build');
    await run('bash', ['-euo', 'pipefail', '-c', build], {
      cwd: REPO,
      env: { ...podman.env, CONTAINER_ENGINE: 'podman', BASE: agentBase, MESHCC_TARBALL: tarball, npm_config_update_notifier: 'false' },
    });
    await podman.ok(['tag', /-t (\S+)/.exec(build)![1]!, IMAGE]);
    const size = await podman.imageSize(IMAGE);
    const baseSize = await podman.imageSize(agentBase);
    figures.push(`image: ${mb(size)} (base ${mb(baseSize)}, meshcc ${mb(size - baseSize)}), built in ${((Date.now() - buildStarted) / 1000).toFixed(0)} s`);
    // The package's layer: compiled JavaScript and production dependencies (without their
    // sources, declarations and source maps); no compiler, no dev dependency.
    expect(size - baseSize).toBeLessThan(50e6);

    // The network, its DNS name for the agents (a headless Service's, in a cluster), the agents.
    subnet = freeSubnet();
    await podman.ok(['network', 'create', '--subnet', `${subnet}.0/24`, '--gateway', `${subnet}.1`, network]);
    const bridge = await podman.ok(['network', 'inspect', '--format', '{{.NetworkInterface}}', network]);
    const dns = tempDir('meshcc-image-dns-');
    writeFileSync(path.join(dns, 'hosts'), AGENTS.map((_, i) => `${subnet}.${10 + i} meshcc-agents\n`).join(''));
    // --bind-dynamic: the bridge appears with the first container.
    dnsmasq = spawn(DNSMASQ, ['--keep-in-foreground', '--no-resolv', '--no-hosts', `--addn-hosts=${path.join(dns, 'hosts')}`, `--interface=${bridge}`, '--bind-dynamic', '--user=root', '--pid-file='], { stdio: 'ignore' });
    for (const [i, name] of AGENTS.entries()) {
      const pod = daemonSetPod(name, '2');
      // The pod's emptyDir volumes: state owned by the image's user (fsGroup), /tmp and /dev/shm fresh.
      const state = tempDir(`meshcc-${name}-state-`);
      chownSync(state, 10001, 10001);
      const envArgs = Object.entries({ ...pod.env, MESHCC_LOG_LEVEL: 'info' }).flatMap(([k, v]) => ['-e', `${k}=${v}`]);
      await podman.ok([
        'run', '--detach', '--name', name, '--hostname', name, '--network', network, '--ip', `${subnet}.${10 + i}`, '--dns', `${subnet}.1`,
        '--read-only', '-v', `${state}:/var/lib/meshcc`, '--tmpfs', '/tmp', '--tmpfs', '/dev/shm',
        '--cap-drop', 'ALL', '--security-opt', 'no-new-privileges', '--security-opt', 'seccomp=unconfined',
        // bubblewrap mounts a fresh /proc for each job, which the kernel refuses under a masked one.
        '--security-opt', 'unmask=/proc/*',
        ...envArgs, IMAGE, 'agent', ...pod.args,
      ]);
    }

    // While the agents start, the build image, as the README's CI block makes one: /opt/meshcc from the agents' image into one with the compilers.
    const recipe = readmeBlock('ci', 'docker').split('\n').filter((l) => /^(COPY --from=meshcc|RUN ln -s)/.test(l));
    expect(recipe).toHaveLength(2);
    const buildContext = tempDir('meshcc-build-image-');
    writeFileSync(path.join(buildContext, 'Containerfile'), [`FROM ${buildBase}`, ...recipe, ''].join('\n'));
    await podman.ok(['build', '--pull=never', '--quiet', '-t', 'localhost/meshcc-test-build:latest', buildContext]);
  }, 900_000);

  afterAll(async () => {
    if (podman) {
      for (const name of AGENTS) {
        const logs = await podman.run(['logs', name]);
        if (/"level":(50|60)/.test(logs.stdout + logs.stderr)) console.log(`${name} logged errors:\n${(logs.stdout + logs.stderr).split('\n').filter((l) => /"level":(50|60)/.test(l)).slice(0, 5).join('\n')}`);
      }
      await podman.destroy();
    }
    dnsmasq?.kill();
    console.log(figures.join('\n'));
  }, 120_000);

  /** An agent's metric, summed over its labels matching `labels`. */
  async function metric(agent: number, name: string, labels = ''): Promise<number> {
    const text = await (await fetch(`http://${subnet}.${10 + agent}:7625/metrics?key=${KEY}`)).text();
    return text.split('\n').filter((l) => l.startsWith(name) && l.includes(labels)).reduce((sum, l) => sum + Number(l.split(' ').pop()), 0);
  }

  it("an agent in a container with /proc masked (the engines' default) says at start that it cannot sandbox jobs", async () => {
    // The agent's own start-up probe, as the image runs it: without the unmask, bubblewrap cannot
    // mount the fresh /proc every job gets, so the agent must take no jobs rather than fail each.
    const probe = 'import("/opt/meshcc/dist/node/executor/sandbox.js").then((m) => console.log(JSON.stringify(m.probeBubblewrap({ cpuSoftSeconds: 60, cpuHardSeconds: 61, addressSpaceBytes: 2 ** 33, fileSizeBytes: 2 ** 30, coreBytes: 0 }))))';
    const masked = await podman.run(['run', '--rm', '--network', 'none', '--security-opt', 'seccomp=unconfined', '--entrypoint', 'node', IMAGE, '-e', probe]);
    expect(masked.code, masked.stderr).toBe(0);
    expect(JSON.parse(masked.stdout)).toEqual({ ok: false, reason: expect.stringMatching(/^bubblewrap cannot create a sandbox here: bwrap: Can't mount proc/) });
    const unmasked = await podman.run(['run', '--rm', '--network', 'none', '--security-opt', 'seccomp=unconfined', '--security-opt', 'unmask=/proc/*', '--entrypoint', 'node', IMAGE, '-e', probe]);
    expect(JSON.parse(unmasked.stdout)).toEqual({ ok: true });
  });

  it('three agents of the image form one mesh, and a fourth container builds zlib on them: objects identical to a plain build', async () => {
    // One mesh: each agent's monitor (beyond loopback: with the mesh key) lists the three, up.
    for (const [i] of AGENTS.entries()) {
      await waitFor(
        `${AGENTS[i]} to list the three agents up`,
        async () => {
          const r = await fetch(`http://${subnet}.${10 + i}:7625/frame?key=${KEY}`).catch(() => undefined);
          if (!r?.ok) return undefined;
          const up = ((await r.json()) as { agents: { name: string; state: string }[] }).agents.filter((a) => a.state === 'up').map((a) => a.name);
          return up.sort().join() === AGENTS.join() ? true : undefined;
        },
        60_000,
      );
    }

    // The plain build and the mesh build of the same tree, at the same path, in the build image.
    const zlib = copyProject('zlib');
    const make = ['make', '-j4', 'CC=gcc', 'CFLAGS=-O2', 'libz.a'];
    // A script for the build image: waits until every agent but the caller's advertises a toolchain.
    const scripts = tempDir('meshcc-image-scripts-');
    writeFileSync(
      path.join(scripts, 'wait-for-toolchains.sh'),
      `until meshcc status --json | node -e 'const a = JSON.parse(require("fs").readFileSync(0, "utf8")); process.exit(a.filter((x) => !x.self && x.toolchains.length > 0).length >= ${AGENTS.length} ? 0 : 1)'; do sleep 0.3; done\n`,
    );
    const inBuildImage = (command: string[], env: Record<string, string> = {}) =>
      podman.run(['run', '--rm', '--network', network, '--dns', `${subnet}.1`, '-v', `${zlib}:/build/zlib`, '-v', `${scripts}:/meshcc-test:ro`, '-w', '/build/zlib', ...Object.entries(env).flatMap(([k, v]) => ['-e', `${k}=${v}`]), 'localhost/meshcc-test-build:latest', ...command], 300_000);
    const plain = await inBuildImage(['sh', '-euc', `./configure --static >/dev/null && ${make.join(' ')} >/dev/null`]);
    expect(plain.code, plain.stderr).toBe(0);
    const plainObjects = collect(zlib, /\.o$/);
    expect(plainObjects.size).toBe(15);
    removeOutputs(zlib);

    // The first build of a new compiler ships it: a peer offered a job whose toolchain it lacks
    // refuses it and fetches the toolchain from the client. This build waits, inside `meshcc run`
    // (so that its agent can still serve gcc), until all three agents hold it.
    const meshEnv = { MESHCC_MESH_KEY: KEY, MESHCC_MDNS: '0', MESHCC_LOCAL_SLOTS: '0' };
    const meshRun = ['meshcc', 'run', '--peers-dns', 'meshcc-agents:7624', '--wait', '30', '--'];
    const first = await inBuildImage([...meshRun, 'sh', '-euc', `${make.join(' ')} && timeout 120 sh /meshcc-test/wait-for-toolchains.sh`], meshEnv);
    expect(first.code, first.stderr).toBe(0);
    expect(differences(plainObjects, collect(zlib, /\.o$/))).toEqual([]);
    figures.push(`first build (ships gcc): ${first.stderr.split('\n').find((l) => l.includes(' compiles: '))}`);
    removeOutputs(zlib);

    const servedBefore = await Promise.all(AGENTS.map((_, i) => metric(i, 'meshcc_jobs_served_total', 'outcome="result"')));
    const meshBuild = await inBuildImage([...meshRun, ...make], meshEnv);
    expect(meshBuild.code, meshBuild.stderr).toBe(0);
    expect(differences(plainObjects, collect(zlib, /\.o$/))).toEqual([]);
    const summary = meshBuild.stderr.split('\n').find((l) => l.includes(' compiles: '));
    figures.push(`second build: ${summary ?? '(no summary line)'}`);
    expect(summary).toMatch(/^meshcc: 15 compiles: 15 remote, 0 local, 0 fallback; [23] peers used/);
    // The jobs ran in the agents' containers: their own counts of jobs served add up to the build's.
    const served = await Promise.all(AGENTS.map(async (_, i) => (await metric(i, 'meshcc_jobs_served_total', 'outcome="result"')) - servedBefore[i]!));
    const failed = await Promise.all(AGENTS.map((_, i) => metric(i, 'meshcc_jobs_served_total', 'outcome="failed"')));
    figures.push(`jobs served by ${AGENTS.join(', ')}: ${served.join(', ')}`);
    expect(served.reduce((a, b) => a + b, 0)).toBe(15);
    expect(served.filter((n) => n > 0).length).toBeGreaterThanOrEqual(2);
    expect(failed).toEqual([0, 0, 0]);
  }, 300_000);
});

/** Runs a command to completion; throws with its output when it fails. */
function run(command: string, args: string[], options: { cwd?: string; env?: Record<string, string> } = {}): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { cwd: options.cwd, env: options.env ?? plainEnv, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (c: Buffer) => (out += c.toString()));
    child.stderr.on('data', (c: Buffer) => (err += c.toString()));
    child.on('error', reject);
    child.on('close', (code) => (code === 0 ? resolve(out) : reject(new Error(`${command} exited ${code}: ${(err || out).slice(-3000)}`))));
  });
}
