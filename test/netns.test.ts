// The multi-host harness itself: namespaces on a bridge can reach each other, multicast crosses
// the bridge, and destroy() leaves nothing behind.
import { execFileSync } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createNetnsMesh, listNamespaces, netnsAvailable, type NetnsMesh } from './helpers/netns.js';

const avail = netnsAvailable();
if (!avail.ok) console.log(`netns tests skipped: ${avail.reason}`);

function hasPing(): boolean {
  try {
    execFileSync('ping', ['-V'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

// Listens on a multicast group inside a namespace, prints "ready", then one line per datagram.
const RECEIVER = `
const dgram = require('node:dgram');
const [group, port] = [process.argv[1], Number(process.argv[2])];
const s = dgram.createSocket({ type: 'udp4', reuseAddr: true });
s.on('message', (m, r) => { console.log('got ' + m.toString() + ' from ' + r.address); });
s.bind(port, () => { s.addMembership(group); console.log('ready'); });
`;

// Sends one datagram to the group every 100 ms, 30 times.
const SENDER = `
const dgram = require('node:dgram');
const [group, port, text] = [process.argv[1], Number(process.argv[2]), process.argv[3]];
const s = dgram.createSocket('udp4');
let n = 0;
const t = setInterval(() => { s.send(text, port, group); if (++n >= 30) { clearInterval(t); s.close(); } }, 100);
`;

describe.skipIf(!avail.ok)('netns harness', () => {
  let mesh: NetnsMesh;
  beforeAll(async () => {
    mesh = await createNetnsMesh({ hosts: 3, prefix: 'mcc' });
    console.log(`netns mesh ${mesh.base}: ${mesh.hosts.map((h) => `${h.ns}=${h.address}`).join(', ')} (subnet ${mesh.subnet})`);
  });
  afterAll(async () => {
    await mesh?.destroy();
  });

  it('hosts reach each other across the bridge', async () => {
    const [a, b, c] = mesh.hosts;
    if (!a || !b || !c) throw new Error('expected 3 hosts');
    for (const [from, to] of [[a, b], [b, c], [c, a]] as const) {
      if (hasPing()) {
        const r = await mesh.exec(from, 'ping', ['-c', '1', '-W', '2', to.address]);
        expect(r.code, r.stdout + r.stderr).toBe(0);
      } else {
        // No ping binary: a TCP connection proves the same reachability.
        const server = mesh.spawn(to, process.execPath, [
          '-e',
          `require('node:net').createServer((s)=>s.end('hi')).listen(7000, () => console.log('ready'))`,
        ]);
        await new Promise<void>((resolve) => server.stdout?.once('data', () => resolve()));
        const r = await mesh.exec(from, process.execPath, [
          '-e',
          `require('node:net').connect(7000, '${to.address}').on('data', (d) => { console.log(String(d)); process.exit(0); }).on('error', () => process.exit(1))`,
        ]);
        expect(r.stdout.trim()).toBe('hi');
        server.kill();
      }
    }
  });

  it('a UDP multicast packet from one host reaches the others', async () => {
    const group = '239.213.0.7';
    const port = 47913;
    const [a, ...others] = mesh.hosts;
    if (!a) throw new Error('no hosts');
    const received = others.map((h) => {
      const child = mesh.spawn(h, process.execPath, ['-e', RECEIVER, group, String(port)], { stdio: ['ignore', 'pipe', 'pipe'] });
      let buf = '';
      const ready = new Promise<void>((resolve) => {
        child.stdout?.setEncoding('utf8').on('data', (d: string) => {
          buf += d;
          if (buf.includes('ready')) resolve();
        });
      });
      const got = new Promise<string>((resolve, reject) => {
        const t = setTimeout(() => reject(new Error(`${h.name} received nothing; output: ${buf}`)), 5000);
        child.stdout?.on('data', () => {
          const line = buf.split('\n').find((l) => l.startsWith('got '));
          if (line) {
            clearTimeout(t);
            resolve(line);
          }
        });
      });
      got.catch(() => {});
      return { child, ready, got };
    });
    await Promise.all(received.map((r) => r.ready));
    const sender = mesh.spawn(a, process.execPath, ['-e', SENDER, group, String(port), 'hello-mesh'], { stdio: 'ignore' });
    const lines = await Promise.all(received.map((r) => r.got));
    for (const line of lines) expect(line).toBe(`got hello-mesh from ${a.address}`);
    for (const r of received) r.child.kill();
    sender.kill();
  });

  it('destroy removes every namespace and link and is idempotent', async () => {
    const m = await createNetnsMesh({ hosts: 2, prefix: 'mccd' });
    const sleeper = m.spawn(0, 'sleep', ['600']);
    expect(listNamespaces().filter((n) => n.startsWith(m.base))).toHaveLength(3);
    await Promise.all([m.destroy(), m.destroy()]);
    await m.destroy();
    expect(listNamespaces().filter((n) => n.startsWith(m.base))).toEqual([]);
    const links = execFileSync('ip', ['-o', 'link', 'show'], { encoding: 'utf8' });
    expect(links).not.toContain(m.base);
    // The spawned process was killed by PID.
    expect(sleeper.exitCode !== null || sleeper.signalCode !== null).toBe(true);
    expect(() => m.spawn(0, 'true')).toThrow();
  });
});
