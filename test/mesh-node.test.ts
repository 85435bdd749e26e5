import { statSync, readFileSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { generateKeyPair } from '@libp2p/crypto/keys';
import { multiaddr } from '@multiformats/multiaddr';
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { loadOrCreateIdentity, loadOrCreateMeshKey, meshId, setMeshKey } from '../node/mesh/keys.js';
import { createMeshNode, type MeshNode } from '../node/mesh/node.js';
import { tempDir } from './helpers/tmp.js';

const log = pino({ level: 'silent' });
const nodes: MeshNode[] = [];

async function node(meshKey: Uint8Array): Promise<MeshNode> {
  const n = await createMeshNode({
    privateKey: await generateKeyPair('Ed25519'),
    meshKey,
    listen: ['/ip4/127.0.0.1/tcp/0'],
    log,
  });
  nodes.push(n);
  return n;
}

afterEach(async () => {
  await Promise.all(nodes.splice(0).map((n) => n.stop()));
});

describe('mesh keys', () => {
  it('creates the mesh key once, 0600, and derives a public id from it', async () => {
    const home = tempDir();
    const key = await loadOrCreateMeshKey(home);
    expect(key).toHaveLength(32);
    const file = path.join(home, 'mesh.key');
    expect(statSync(file).mode & 0o777).toBe(0o600);
    expect(readFileSync(file, 'utf8').trim()).toBe(Buffer.from(key).toString('hex'));
    expect(await loadOrCreateMeshKey(home)).toEqual(key);
    const id = meshId(key);
    expect(id).toMatch(/^[0-9a-f]{16}$/);
    expect(Buffer.from(key).toString('hex')).not.toContain(id);
  });

  it('sets a mesh key from hex and rejects anything else in one line', async () => {
    const home = tempDir();
    const hex = randomBytes(32).toString('hex');
    await setMeshKey(home, hex.toUpperCase());
    expect(Buffer.from(await loadOrCreateMeshKey(home)).toString('hex')).toBe(hex);
    await expect(setMeshKey(home, 'abc')).rejects.toThrow(/^mesh key: a mesh key is 64 hex characters \(32 bytes\)$/);
  });

  it('keeps the identity, so the peer id survives a restart', async () => {
    const home = tempDir();
    const a = await loadOrCreateIdentity(home);
    expect(statSync(path.join(home, 'identity.key')).mode & 0o777).toBe(0o600);
    const b = await loadOrCreateIdentity(home);
    expect(a.type).toBe('Ed25519');
    expect(b.publicKey.equals(a.publicKey)).toBe(true);
    const key = await loadOrCreateMeshKey(home);
    const n1 = await createMeshNode({ privateKey: a, meshKey: key, listen: ['/ip4/127.0.0.1/tcp/0'], log });
    const id1 = n1.peerId.toString();
    await n1.stop();
    const n2 = await createMeshNode({
      privateKey: await loadOrCreateIdentity(home),
      meshKey: key,
      listen: ['/ip4/127.0.0.1/tcp/0'],
      log,
    });
    nodes.push(n2);
    expect(n2.peerId.toString()).toBe(id1);
  });
});

describe('mesh node', () => {
  it('connects members and measures the rtt', async () => {
    const key = randomBytes(32);
    const a = await node(key);
    const b = await node(key);
    expect(a.addresses()[0]).toMatch(/^\/ip4\/127\.0\.0\.1\/tcp\/\d+\/p2p\//);
    const remote = await b.dial(a.addresses()[0]!);
    expect(remote.toString()).toBe(a.peerId.toString());
    expect(b.connectedPeers().map(String)).toEqual([a.peerId.toString()]);
    const rtt = await b.rtt(a.peerId);
    expect(rtt).toBeGreaterThanOrEqual(0);
    expect(rtt).toBeLessThan(1000);
    await expect.poll(() => a.connectedPeers().map(String)).toEqual([b.peerId.toString()]);
  });

  it('refuses a node with another mesh key', async () => {
    const a = await node(randomBytes(32));
    const stranger = await node(randomBytes(32));
    await expect(stranger.dial(a.addresses()[0]!, { signal: AbortSignal.timeout(5000) })).rejects.toThrow();
    expect(stranger.connectedPeers()).toEqual([]);
    expect(a.connectedPeers()).toEqual([]);
    // And the other way round.
    await expect(a.dial(stranger.addresses()[0]!, { signal: AbortSignal.timeout(5000) })).rejects.toThrow();
    expect(a.connectedPeers()).toEqual([]);
  });

  it('answers a plain TCP client with nothing but a closed connection', async () => {
    const key = randomBytes(32);
    const a = await node(key);
    const port = Number(/\/tcp\/(\d+)/.exec(a.addresses()[0]!)![1]);
    const received = await new Promise<{ bytes: number; closed: boolean }>((resolve, reject) => {
      let bytes = 0;
      const socket = net.connect(port, '127.0.0.1', () => {
        socket.write('GET / HTTP/1.1\r\nHost: x\r\n\r\n' + 'junk'.repeat(64));
      });
      socket.on('data', (d) => (bytes += d.length));
      socket.on('error', () => {}); // a reset counts as closed
      socket.on('close', () => resolve({ bytes, closed: true }));
      setTimeout(() => reject(new Error('the node kept the junk connection open')), 8000).unref();
    });
    expect(received).toEqual({ bytes: 0, closed: true });
    // A silent client is closed too, after the knock timeout (2 s).
    const silent = await new Promise<number>((resolve, reject) => {
      let bytes = 0;
      const socket = net.connect(port, '127.0.0.1');
      socket.on('data', (d) => (bytes += d.length));
      socket.on('error', () => {});
      socket.on('close', () => resolve(bytes));
      setTimeout(() => reject(new Error('the node kept the silent connection open')), 8000).unref();
    });
    expect(silent).toBe(0);
    // The node still works for members.
    const b = await node(key);
    expect((await b.dial(a.addresses()[0]!)).toString()).toBe(a.peerId.toString());
  });

  it('opens a stream to an unconnected member at the addresses it advertises, not only at those the peer store heard', async () => {
    const key = randomBytes(32);
    const [a, b] = [await node(key), await node(key)];
    await b.libp2p.handle('/meshcc-test/hello/1', (stream) => void stream.close());
    // Behind a router, identify tells only a member's private addresses: here, one that refuses.
    await a.libp2p.peerStore.merge(b.peerId, { multiaddrs: [multiaddr('/ip4/127.0.0.1/tcp/9')] });
    await expect(a.openStream(b.peerId, '/meshcc-test/hello/1', { signal: AbortSignal.timeout(5000) })).rejects.toThrow();
    a.addressBook = (peer) => (peer === b.peerId.toString() ? { addresses: b.addresses(), reachable: true } : undefined);
    const stream = await a.openStream(b.peerId.toString(), '/meshcc-test/hello/1', { signal: AbortSignal.timeout(5000) });
    expect(stream.protocol).toBe('/meshcc-test/hello/1');
    expect(a.links().get(b.peerId.toString())).toBe('direct');
  });
});
