// LAN discovery over multicast DNS between real network namespaces: three agents of one mesh
// find each other, an agent of another mesh is never reported, garbage packets break nothing.
import { execFileSync, type ChildProcess } from 'node:child_process';
import { existsSync, statSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseTxt } from '../node/mesh/discovery.js';
import { createNetnsMesh, netnsAvailable, type NetnsHost, type NetnsMesh } from './helpers/netns.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const runner = path.join(root, 'test/helpers/discovery-runner.mjs');
const built = path.join(root, 'dist/node/mesh/discovery.js');
const source = path.join(root, 'node/mesh/discovery.ts');

const avail = netnsAvailable();
if (!avail.ok) console.log(`discovery netns tests skipped: ${avail.reason}`);

/** The runner imports dist/: rebuild when it is missing or older than the source. */
function ensureBuilt(): void {
  if (existsSync(built) && statSync(built).mtimeMs >= statSync(source).mtimeMs) return;
  try {
    execFileSync(process.execPath, [path.join(root, 'node_modules/typescript/bin/tsc'), '-p', 'tsconfig.build.json'], {
      cwd: root,
      stdio: 'pipe',
    });
  } catch (err) {
    // tsc still emits when some other file of the tree fails to type-check; only our output matters.
    if (!existsSync(built) || statSync(built).mtimeMs < statSync(source).mtimeMs) throw err;
  }
}

interface Event {
  event: 'started' | 'peer';
  at: number;
  peerId?: string;
  addresses?: string[];
}

interface Runner {
  host: NetnsHost;
  peerId: string;
  meshId: string;
  child: ChildProcess;
  events: Event[];
  stderr: string;
  started: Promise<number>;
}

function startRunner(mesh: NetnsMesh, host: NetnsHost, meshId: string, peerId: string): Runner {
  const child = mesh.spawn(
    host,
    process.execPath,
    [runner, meshId, peerId, `/ip4/${host.address}/tcp/7700`, `/ip4/127.0.0.1/tcp/7700`],
    { stdio: ['ignore', 'pipe', 'pipe'], cwd: root },
  );
  const r: Runner = { host, peerId, meshId, child, events: [], stderr: '', started: Promise.resolve(0) };
  let buf = '';
  r.started = new Promise((resolve, reject) => {
    child.once('exit', (code) => reject(new Error(`runner ${peerId} exited with ${code}: ${r.stderr}`)));
    child.stdout?.setEncoding('utf8').on('data', (d: string) => {
      buf += d;
      let nl: number;
      while ((nl = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        if (!line.trim()) continue;
        const ev = JSON.parse(line) as Event;
        r.events.push(ev);
        if (ev.event === 'started') resolve(ev.at);
      }
    });
  });
  r.started.catch(() => {});
  child.stderr?.setEncoding('utf8').on('data', (d: string) => (r.stderr += d));
  return r;
}

function peersOf(r: Runner): string[] {
  return r.events.filter((e) => e.event === 'peer').map((e) => e.peerId ?? '');
}

const sleep = (ms: number) => new Promise((res) => setTimeout(res, ms));

describe('parseTxt', () => {
  it('reads peer, mesh and addr entries and ignores junk', () => {
    const txt = parseTxt([
      Buffer.from('peer=abc'),
      Buffer.from('mesh=m1'),
      Buffer.from('addr=/ip4/10.0.0.1/tcp/1'),
      Buffer.from('addr=notamultiaddr'),
      Buffer.from('novalue'),
      Buffer.from('=x'),
      'addr=/ip4/10.0.0.2/tcp/2',
    ]);
    expect(txt).toEqual({ peer: 'abc', mesh: 'm1', addrs: ['/ip4/10.0.0.1/tcp/1', '/ip4/10.0.0.2/tcp/2'] });
    expect(parseTxt(undefined)).toEqual({ addrs: [] });
    expect(parseTxt(42)).toEqual({ addrs: [] });
  });
});

describe.skipIf(!avail.ok)('LAN discovery across namespaces', () => {
  let mesh: NetnsMesh;
  const runners: Runner[] = [];

  beforeAll(async () => {
    ensureBuilt();
    mesh = await createNetnsMesh({ hosts: 5, prefix: 'mccdisc' });
  });
  afterAll(async () => {
    await mesh?.destroy();
  });

  it('three agents of one mesh find each other within 2 s; another mesh is never reported', async () => {
    const hosts = mesh.hosts;
    const [h0, h1, h2, h3, h4] = hosts;
    if (!h0 || !h1 || !h2 || !h3 || !h4) throw new Error('expected 5 hosts');

    // Garbage and half-formed meshcc records on the mDNS group while discovery runs (from h4).
    const noise = mesh.spawn(
      h4,
      process.execPath,
      [
        '-e',
        `const s = require('node:dgram').createSocket('udp4');
         const bad = [Buffer.from('not dns at all'), Buffer.alloc(12, 0xff), Buffer.from([0,0,0x84,0,0,0,0,1,0,0,0,0, 7])];
         setInterval(() => { for (const b of bad) s.send(b, 5353, '224.0.0.251'); }, 50);`,
      ],
      { stdio: 'ignore' },
    );

    const meshA = 'mesh-a-7f3c';
    const meshB = 'mesh-b-19e2';
    const t0 = Date.now();
    runners.push(startRunner(mesh, h0, meshA, 'peerA0'));
    runners.push(startRunner(mesh, h1, meshA, 'peerA1'));
    runners.push(startRunner(mesh, h2, meshA, 'peerA2'));
    const other = startRunner(mesh, h3, meshB, 'peerB0');
    const starts = await Promise.all([...runners, other].map((r) => r.started));
    const lastStart = Math.max(...starts);

    const deadline = lastStart + 2000;
    const complete = (): boolean =>
      runners.every((r) => runners.filter((o) => o !== r).every((o) => peersOf(r).includes(o.peerId)));
    while (!complete() && Date.now() < deadline) await sleep(10);

    const timings = runners.map((r, i) => {
      const needed = runners.filter((o) => o !== r).map((o) => o.peerId);
      const ats = needed.map((id) => r.events.find((e) => e.event === 'peer' && e.peerId === id)?.at);
      const done = ats.every((a) => a !== undefined) ? Math.max(...(ats as number[])) - (starts[i] ?? 0) : undefined;
      return `${r.peerId}: ${done === undefined ? 'INCOMPLETE' : `${done} ms`}`;
    });
    const total = complete() ? `${Math.max(...runners.flatMap((r) => r.events.map((e) => e.at))) - lastStart} ms after the last start` : 'not within 2 s';
    console.log(`LAN discovery (mDNS across namespaces): ${timings.join(', ')}; all converged ${total}; runner boot took ${lastStart - t0} ms`);

    for (const r of runners) {
      expect(peersOf(r).sort(), `${r.peerId} stderr: ${r.stderr}`).toEqual(
        runners.filter((o) => o !== r).map((o) => o.peerId).sort(),
      );
    }
    // Addresses come through from the TXT record.
    const a0 = runners[0]!.events.find((e) => e.peerId === 'peerA1');
    expect(a0?.addresses).toEqual([`/ip4/${h1.address}/tcp/7700`, '/ip4/127.0.0.1/tcp/7700']);

    // Several more query rounds (interval 1 s in the runner): the other mesh stays invisible both ways.
    await sleep(2500);
    for (const r of runners) expect(peersOf(r)).not.toContain('peerB0');
    expect(peersOf(other)).toEqual([]);
    // Garbage never killed anybody.
    for (const r of [...runners, other]) expect(r.child.exitCode, r.stderr).toBeNull();
    noise.kill();
  });
});
