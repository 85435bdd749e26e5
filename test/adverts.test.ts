import { randomBytes } from 'node:crypto';
import { Writable } from 'node:stream';
import { generateKeyPair } from '@libp2p/crypto/keys';
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { encodeFrame } from '../protocol/framing.js';
import { PROTOCOL_VERSION, type Advert } from '../protocol/messages.js';
import { ADVERT_PROTOCOL, AdvertService } from '../node/mesh/adverts.js';
import { createMeshNode, type MeshNode } from '../node/mesh/node.js';

interface Member {
  node: MeshNode;
  adverts: AdvertService;
  state: { slotsUsed: number };
  lines: string[];
}

const running: Member[] = [];

function capture(): { log: pino.Logger; lines: string[] } {
  const lines: string[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, done) {
      lines.push(...chunk.toString().split('\n').filter(Boolean));
      done();
    },
  });
  return { log: pino({ level: 'info' }, sink), lines };
}

async function member(meshKey: Uint8Array, name: string): Promise<Member> {
  const { log, lines } = capture();
  const node = await createMeshNode({
    privateKey: await generateKeyPair('Ed25519'),
    meshKey,
    listen: ['/ip4/127.0.0.1/tcp/0'],
    log,
  });
  const state = { slotsUsed: 0 };
  const localAdvert = (): Advert => ({
    t: 'advert',
    nodeName: name,
    peerId: node.peerId.toString(),
    addresses: node.addresses(),
    cores: 4,
    slots: 4,
    slotsUsed: state.slotsUsed,
    load: 0.5,
    freeMemoryBytes: 1 << 30,
    speed: 1,
    os: 'linux',
    arch: 'x64',
    libc: 'glibc',
    toolchains: [],
    protocolVersion: PROTOCOL_VERSION,
    sentAt: Date.now(),
  });
  const adverts = new AdvertService({ node, localAdvert, log });
  await adverts.start();
  const m = { node, adverts, state, lines };
  running.push(m);
  return m;
}

async function stop(m: Member): Promise<void> {
  const i = running.indexOf(m);
  if (i >= 0) running.splice(i, 1);
  await m.adverts.stop();
  await m.node.stop();
}

afterEach(async () => {
  await Promise.all([...running].map(stop));
});

const names = (m: Member) => m.adverts.view().map((e) => e.advert.nodeName).sort();

describe('adverts', () => {
  it('three members see each other within 2 s, and changes arrive quickly', async () => {
    const key = randomBytes(32);
    const [a, b, c] = await Promise.all([member(key, 'a'), member(key, 'b'), member(key, 'c')]);
    const t0 = Date.now();
    await b.node.dial(a.node.addresses()[0]!);
    await c.node.dial(a.node.addresses()[0]!);
    await c.node.dial(b.node.addresses()[0]!);
    await expect.poll(() => names(a), { timeout: 2000, interval: 20 }).toEqual(['b', 'c']);
    await expect.poll(() => names(b), { timeout: 2000, interval: 20 }).toEqual(['a', 'c']);
    await expect.poll(() => names(c), { timeout: 2000, interval: 20 }).toEqual(['a', 'b']);
    expect(Date.now() - t0).toBeLessThan(2000);
    const entry = a.adverts.view().find((e) => e.advert.nodeName === 'b')!;
    expect(entry.peerId).toBe(b.node.peerId.toString());
    expect(entry.advert).toMatchObject({ cores: 4, slots: 4, os: 'linux', protocolVersion: PROTOCOL_VERSION });
    await expect.poll(() => a.adverts.view().find((e) => e.peerId === entry.peerId)?.rttMs).toBeTypeOf('number');

    b.state.slotsUsed = 3;
    b.adverts.notifyChanged();
    const changed = Date.now();
    await expect
      .poll(() => a.adverts.view().find((e) => e.peerId === entry.peerId)?.advert.slotsUsed, { interval: 10 })
      .toBe(3);
    expect(Date.now() - changed).toBeLessThan(500);
  });

  it('sends changes at most 4 times a second however often they happen, plus the heartbeat', async () => {
    const key = randomBytes(32);
    const [a, b] = await Promise.all([member(key, 'a'), member(key, 'b')]);
    await b.node.dial(a.node.addresses()[0]!);
    await expect.poll(() => names(a), { timeout: 2000, interval: 20 }).toEqual(['b']);
    let received = 0;
    a.adverts.peerView.on('updated', () => received++);
    const storm = setInterval(() => {
      b.state.slotsUsed = (b.state.slotsUsed + 1) % 4;
      b.adverts.notifyChanged();
    }, 2);
    await new Promise((r) => setTimeout(r, 2000));
    clearInterval(storm);
    // About 1000 changes in 2 s; the throttle lets through one per 250 ms (8), heartbeats add ≤ 2.
    expect(received).toBeGreaterThanOrEqual(6);
    expect(received).toBeLessThanOrEqual(11);
  });

  it('drops a member that stops within about 3 s', async () => {
    const key = randomBytes(32);
    const [a, b] = await Promise.all([member(key, 'a'), member(key, 'b')]);
    await b.node.dial(a.node.addresses()[0]!);
    await expect.poll(() => names(a), { timeout: 2000, interval: 20 }).toEqual(['b']);
    const t0 = Date.now();
    await stop(b);
    await expect.poll(() => names(a), { timeout: 4000, interval: 50 }).toEqual([]);
    expect(Date.now() - t0).toBeLessThan(4000);
  });

  it('drops a member that goes silent but stays connected', async () => {
    const key = randomBytes(32);
    const [a, b] = await Promise.all([member(key, 'a'), member(key, 'b')]);
    await b.node.dial(a.node.addresses()[0]!);
    await expect.poll(() => names(a), { timeout: 2000, interval: 20 }).toEqual(['b']);
    await b.adverts.stop(); // b's node stays up and connected, but says nothing
    const t0 = Date.now();
    await expect.poll(() => names(a), { timeout: 5000, interval: 50 }).toEqual([]);
    expect(Date.now() - t0).toBeLessThan(3600);
    expect(a.lines.some((l) => l.includes('peer left the view (silent)'))).toBe(true);
  });

  it('shows nothing of a node with another key', async () => {
    const a = await member(randomBytes(32), 'a');
    const stranger = await member(randomBytes(32), 'stranger');
    await expect(stranger.node.dial(a.node.addresses()[0]!, { signal: AbortSignal.timeout(5000) })).rejects.toThrow();
    await new Promise((r) => setTimeout(r, 1200));
    expect(a.adverts.view()).toEqual([]);
    expect(stranger.adverts.view()).toEqual([]);
  });

  it('rejects a malformed advert frame with one warn line and keeps working', async () => {
    const key = randomBytes(32);
    const [a, b] = await Promise.all([member(key, 'a'), member(key, 'b')]);
    await b.node.dial(a.node.addresses()[0]!);
    await expect.poll(() => names(a), { timeout: 2000, interval: 20 }).toEqual(['b']);

    const bad = await b.node.libp2p.dialProtocol(a.node.peerId, ADVERT_PROTOCOL);
    bad.send(encodeFrame({ t: 'advert', nodeName: 'evil', cores: -1 }));
    await expect
      .poll(() => a.lines.filter((l) => l.includes('malformed advert')), { timeout: 2000, interval: 20 })
      .toHaveLength(1);
    const warn = JSON.parse(a.lines.find((l) => l.includes('malformed advert'))!);
    expect(warn.level).toBe(40);
    expect(warn.err).toMatch(/^invalid [^\n]+$/);
    await expect.poll(() => bad.status, { timeout: 2000, interval: 20 }).not.toBe('open');

    // A frame that claims to be huge is refused from its header alone.
    const huge = await b.node.libp2p.dialProtocol(a.node.peerId, ADVERT_PROTOCOL);
    const header = Buffer.alloc(4);
    header.writeUInt32BE(50 * 1024 * 1024);
    huge.send(header);
    await expect
      .poll(() => a.lines.filter((l) => l.includes('malformed advert')), { timeout: 2000, interval: 20 })
      .toHaveLength(2);
    expect(a.lines.at(-1)).toMatch(/exceeds the 64 KiB limit/);

    // An advert that claims another peer's id is refused too.
    const liar = await b.node.libp2p.dialProtocol(a.node.peerId, ADVERT_PROTOCOL);
    liar.send(encodeFrame({ ...a.adverts.view()[0]!.advert, peerId: a.node.peerId.toString() }));
    await expect
      .poll(() => a.lines.filter((l) => l.includes('malformed advert')), { timeout: 2000, interval: 20 })
      .toHaveLength(3);

    // The connection and both nodes keep working: b's real adverts still arrive.
    expect(a.node.connectedPeers().map(String)).toEqual([b.node.peerId.toString()]);
    const seen = a.adverts.view()[0]!.lastSeen;
    await expect.poll(() => a.adverts.view()[0]?.lastSeen ?? 0, { timeout: 2500, interval: 50 }).toBeGreaterThan(seen);
    expect(names(a)).toEqual(['b']);
    expect(await a.node.rtt(b.node.peerId)).toBeLessThan(1000);
  });
});
