// deploy/kubernetes, rendered and run:
//   1. The README's block writes an overlay that sets the key, image and slots in one place and
//      runs `kubectl apply -k` on it, with a kubectl that keeps what it would send (no cluster
//      runs here: `kubectl kustomize`'s rendering); every object validates against the
//      Kubernetes API schemas (kubernetes-models' generated validators); a broken DaemonSet does not.
//   2. Three DaemonSet pods, simulated: the container's command, arguments and environment taken
//      from the rendered manifest (valueFrom resolved from the rendered Secret and ConfigMap, the
//      node name from the pod), its volume mounts as bind mounts in a mount namespace of its own,
//      each pod in its own network namespace with multicast off. They find each other only
//      through the headless Service's name, answered by a real DNS server (dnsmasq), pass the
//      readiness probe, form one mesh, and a build in a fourth namespace (`meshcc run`, as a CI
//      job in the cluster would) runs on them with objects identical to a plain build.
// The pods run as root here (the namespaces need it), not as the manifest's user 10001.
import { execFileSync, spawnSync } from 'node:child_process';
import { chmodSync, cpSync, existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DaemonSet } from 'kubernetes-models/apps/v1/DaemonSet';
import { ConfigMap } from 'kubernetes-models/v1/ConfigMap';
import { Namespace } from 'kubernetes-models/v1/Namespace';
import { Secret } from 'kubernetes-models/v1/Secret';
import { Service } from 'kubernetes-models/v1/Service';
import { ServiceAccount } from 'kubernetes-models/v1/ServiceAccount';
import { parse, parseAllDocuments } from 'yaml';
import { MESHCC_BIN, plainEnv, REPO } from './helpers/agent.js';
import { createNetnsMesh, netnsAvailable, type NetnsMesh } from './helpers/netns.js';
import { collect, differences, plainZlib } from './helpers/projects.js';
import { readmeBlock } from './helpers/readme.js';
import { tempDir } from './helpers/tmp.js';

const KEY = 'e5'.repeat(32);
const DNSMASQ = '/usr/sbin/dnsmasq';
const kubectl = spawnSync('kubectl', ['version', '--client'], { encoding: 'utf8' }).status === 0;
const avail = netnsAvailable();
const renderWhy = kubectl ? '' : 'kubectl (for `kubectl kustomize`) is missing';
const podsWhy = renderWhy || (!avail.ok ? avail.reason : !existsSync(DNSMASQ) ? `${DNSMASQ} is missing (apt-get install dnsmasq-base)` : '');
if (renderWhy) console.log(`Kubernetes manifest tests skipped: ${renderWhy}`);
else if (podsWhy) console.log(`Kubernetes pod simulation skipped: ${podsWhy}`);

type K8sObject = { apiVersion: string; kind: string; metadata: { name: string }; data?: Record<string, string>; spec?: any };

type Validated = new (data: any) => { validate(): void };
/** The model (with its schema validator) of each kind the manifests use. */
const MODELS: Record<string, Validated> = {
  'apps/v1 DaemonSet': DaemonSet,
  'v1 ConfigMap': ConfigMap,
  'v1 Namespace': Namespace,
  'v1 Secret': Secret,
  'v1 Service': Service,
  'v1 ServiceAccount': ServiceAccount,
};

async function modelOf(object: K8sObject): Promise<Validated> {
  const model = MODELS[`${object.apiVersion} ${object.kind}`];
  if (!model) throw new Error(`no model for ${object.apiVersion} ${object.kind}: add it to the test`);
  return model;
}

/** The README's Kubernetes block, run with bash in a copy of this checkout's deploy/, with a
 *  `kubectl` whose `apply -k DIR` keeps what it would send to the cluster (none runs here):
 *  the objects `kubectl kustomize DIR` renders. Also the overlay the block wrote. */
function applyReadmeBlock(): { objects: K8sObject[]; overlay: { images: { newName: string; newTag: string }[] } } {
  const dir = tempDir('meshcc-k8s-readme-');
  cpSync(path.join(REPO, 'deploy'), path.join(dir, 'deploy'), { recursive: true });
  const bin = path.join(dir, 'bin');
  mkdirSync(bin);
  const kubectlPath = execFileSync('sh', ['-c', 'command -v kubectl'], { encoding: 'utf8' }).trim();
  const applied = path.join(dir, 'applied.yaml');
  writeFileSync(
    path.join(bin, 'kubectl'),
    `#!/bin/sh\n[ "$1" = apply ] && [ "$2" = -k ] && [ $# = 3 ] || { echo "the test's kubectl takes apply -k DIR only" >&2; exit 2; }\nexec ${kubectlPath} kustomize "$3" > ${applied}\n`,
  );
  chmodSync(path.join(bin, 'kubectl'), 0o755);
  const block = readmeBlock('kubernetes', 'overlay');
  execFileSync('bash', ['-euo', 'pipefail', '-c', block], { cwd: dir, env: { ...plainEnv, PATH: `${bin}:${plainEnv.PATH}`, MESH_KEY: KEY } });
  const overlayFile = /kubectl apply -k (\S+)/.exec(block)![1]!;
  return {
    objects: parseAllDocuments(readFileSync(applied, 'utf8')).map((d) => d.toJS() as K8sObject),
    overlay: parse(readFileSync(path.join(dir, overlayFile, 'kustomization.yaml'), 'utf8')),
  };
}

describe.skipIf(renderWhy !== '')('the Kubernetes manifests', () => {
  it("the README's overlay sets the key, image and slots in one place; what it applies validates against the API schemas", async () => {
    const { objects, overlay } = applyReadmeBlock();
    expect(objects.map((o) => o.kind).sort()).toEqual(['ConfigMap', 'DaemonSet', 'Namespace', 'Secret', 'Service', 'ServiceAccount']);
    for (const object of objects) {
      const Model = await modelOf(object);
      // kustomize folds long base64 values over lines; the API server's decoder (Go's base64)
      // skips line breaks, the schema's "byte" format does not.
      if (object.data && object.kind === 'Secret') for (const k of Object.keys(object.data)) object.data[k] = object.data[k]!.replace(/\s+/g, '');
      expect(() => new Model(object).validate(), `${object.kind} ${object.metadata.name}`).not.toThrow();
    }
    const ds = objects.find((o) => o.kind === 'DaemonSet')!;
    expect(ds.spec.template.spec.containers[0].image).toBe(`${overlay.images[0]!.newName}:${overlay.images[0]!.newTag}`);
    const secret = objects.find((o) => o.kind === 'Secret')!;
    expect(Buffer.from(secret.data!.MESHCC_MESH_KEY!, 'base64').toString()).toBe(KEY);
    // The validator is real: a DaemonSet without containers, or with a bad port, is refused.
    const Model = await modelOf(ds);
    const broken = structuredClone(ds);
    broken.spec.template.spec.containers[0].ports[0].containerPort = 'seventy';
    expect(() => new Model(broken).validate()).toThrow();
    delete broken.spec.template.spec.containers;
    expect(() => new Model(broken).validate()).toThrow();
  });
});

describe.skipIf(podsWhy !== '')('three DaemonSet pods in network namespaces', () => {
  let mesh: NetnsMesh;
  const resolvDirs: string[] = [];
  const mountPoints: string[] = [];
  const pods: { host: number; http: string }[] = [];

  beforeAll(async () => {
    const { objects } = applyReadmeBlock();
    const ds = objects.find((o) => o.kind === 'DaemonSet')!;
    const podSpec = ds.spec.template.spec;
    const container = podSpec.containers[0];
    const secret = objects.find((o) => o.kind === 'Secret')!;
    const config = objects.find((o) => o.kind === 'ConfigMap')!;
    const service = objects.find((o) => o.kind === 'Service')!;
    mesh = await createNetnsMesh({ hosts: 5, prefix: 'mck' });
    const dnsHost = mesh.hosts[4]!;
    // The headless Service's name lists the three pods.
    const dnsDir = tempDir('meshcc-k8s-dns-');
    writeFileSync(path.join(dnsDir, 'hosts'), mesh.hosts.slice(0, 3).map((h) => `${h.address} ${service.metadata.name}\n`).join(''));
    mesh.spawn(dnsHost, DNSMASQ, ['--keep-in-foreground', '--no-resolv', '--no-hosts', `--addn-hosts=${path.join(dnsDir, 'hosts')}`, `--listen-address=${dnsHost.address}`, '--bind-interfaces', '--user=root', '--pid-file='], { stdio: 'ignore' });
    for (const h of mesh.hosts.slice(0, 4)) {
      const dir = path.join('/etc/netns', h.ns);
      mkdirSync(dir, { recursive: true });
      writeFileSync(path.join(dir, 'resolv.conf'), `nameserver ${dnsHost.address}\n`);
      resolvDirs.push(dir);
    }
    for (const mount of container.volumeMounts as { mountPath: string }[]) {
      if (!existsSync(mount.mountPath)) {
        mkdirSync(mount.mountPath, { recursive: true });
        mountPoints.push(mount.mountPath);
      }
    }
    for (let host = 0; host < 3; host++) {
      const podName = `node-${host}`;
      const env: Record<string, string> = { PATH: plainEnv.PATH ?? '/usr/bin:/bin', MESHCC_LOG_LEVEL: 'warn' };
      for (const e of container.env as { name: string; value?: string; valueFrom?: any }[]) {
        if (e.value !== undefined) env[e.name] = e.value;
        else if (e.valueFrom.secretKeyRef) env[e.name] = Buffer.from(secret.data![e.valueFrom.secretKeyRef.key]!, 'base64').toString();
        else if (e.valueFrom.configMapKeyRef) env[e.name] = config.data![e.valueFrom.configMapKeyRef.key]!;
        else if (e.valueFrom.fieldRef?.fieldPath === 'spec.nodeName') env[e.name] = podName;
        else throw new Error(`the simulation cannot resolve ${e.name}`);
      }
      // Each volume: an empty directory of this pod's, bind-mounted where the container has it.
      const binds = (container.volumeMounts as { mountPath: string }[]).map((m) => {
        const dir = tempDir(`meshcc-pod${host}-vol-`);
        return `mount --bind ${dir} ${m.mountPath}`;
      });
      // The image's `meshcc` is this checkout's; when a volume's mount hides it (a checkout
      // under /tmp), it is held outside first and bound back.
      const [command, ...commandArgs] = [...container.command, ...container.args] as string[];
      expect(command).toBe('meshcc');
      const hold = path.join('/var/tmp', `meshcc-pod-repo-${process.pid}-${host}`);
      mkdirSync(hold, { recursive: true });
      mountPoints.push(hold);
      const script = [`mount --bind ${REPO} ${hold}`, ...binds, `mkdir -p ${REPO}`, `mount --bind ${hold} ${REPO}`, 'exec "$@"'].join(' && ');
      mesh.spawn(host, 'unshare', ['--mount', '--propagation', 'private', 'sh', '-c', script, 'pod', process.execPath, MESHCC_BIN, ...commandArgs], { env, stdio: 'ignore' });
      const port = (container.ports as { name: string; containerPort: number }[]).find((p) => p.name === 'http')!.containerPort;
      pods.push({ host, http: `http://${mesh.hosts[host]!.address}:${port}${container.readinessProbe.httpGet.path}` });
    }
  }, 120_000);

  afterAll(async () => {
    await mesh?.destroy();
    for (const dir of resolvDirs) rmSync(dir, { recursive: true, force: true });
    for (const dir of mountPoints) rmSync(dir, { recursive: true, force: true });
  }, 60_000);

  it('find each other through the Service name, pass the readiness probe, and build a project', async () => {
    // The readiness probe, as the kubelet sends it: the pod's address, the probe's path and port.
    for (const pod of pods) {
      const deadline = Date.now() + 30_000;
      for (;;) {
        const r = await mesh.exec(4, 'curl', ['-s', '-o', '/dev/null', '-w', '%{http_code}', pod.http]);
        if (r.stdout === '200') break;
        if (Date.now() > deadline) throw new Error(`pod ${pod.host} never became ready (${r.stdout} ${r.stderr})`);
        await new Promise((res) => setTimeout(res, 200));
      }
    }
    // One mesh: every pod's monitor (beyond loopback: with the mesh key) lists the three pods, up.
    const key = KEY;
    for (const pod of pods) {
      const frameUrl = pod.http.replace(/\/healthz$/, `/frame?key=${key}`);
      const deadline = Date.now() + 30_000;
      for (;;) {
        const r = await mesh.exec(4, 'curl', ['-sf', frameUrl]);
        const names = r.code === 0 ? (JSON.parse(r.stdout) as { agents: { name: string; state: string }[] }).agents.filter((a) => a.state === 'up').map((a) => a.name).sort() : [];
        if (names.join() === 'node-0,node-1,node-2') break;
        if (Date.now() > deadline) throw new Error(`pod ${pod.host} lists ${names.join(', ') || 'nothing'} (${r.stderr})`);
        await new Promise((res) => setTimeout(res, 200));
      }
    }
    // A build from a fourth namespace, as a CI job in the cluster: `meshcc run` finds the pods by the same name.
    const make = ['make', '-j4', 'CC=gcc', 'CFLAGS=-O2', 'libz.a'];
    const { dir: zlib, objects: plainObjects } = await plainZlib(make);
    const r = await mesh.exec(3, process.execPath, [MESHCC_BIN, 'run', '--peers-dns', 'meshcc-agents:7624', '--wait', '20', '--', ...make], {
      cwd: zlib,
      env: { ...plainEnv, HOME: tempDir('meshcc-ci-home-'), MESHCC_MESH_KEY: key, MESHCC_MDNS: '0', MESHCC_LOCAL_SLOTS: '0' },
      timeoutMs: 150_000,
    });
    expect(r.code, r.stderr).toBe(0);
    expect(differences(plainObjects, collect(zlib, /\.o$/))).toEqual([]);
    const summary = r.stderr.split('\n').find((l) => l.includes(' compiles: '));
    console.log(summary);
    expect(summary).toMatch(/^meshcc: 15 compiles: 15 remote, 0 local, 0 fallback; [23] peers used/);
  }, 240_000);
});
