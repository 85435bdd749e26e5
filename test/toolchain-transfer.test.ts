// Shipping toolchains between real libp2p nodes on loopback (/meshcc/toolchain/1): a holder
// serves a toolchain from its cache, a fetcher installs it once however many jobs ask, a
// source that sends other bytes is caught by the hash and the next source is tried, and a
// failed fetch leaves the fetcher's cache as it was.
import { brotliCompressSync } from 'node:zlib';
import { readdirSync } from 'node:fs';
import path from 'node:path';
import { Readable } from 'node:stream';
import { generateKeyPair } from '@libp2p/crypto/keys';
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { FramedStream } from '../node/mesh/framed-stream.js';
import { createMeshNode, type MeshNode } from '../node/mesh/node.js';
import { ToolchainTransfer } from '../node/remote/toolchain-transfer.js';
import { Stats } from '../node/stats.js';
import { ToolchainCache } from '../node/toolchain-cache.js';
import { ToolchainSupply } from '../node/toolchain-supply.js';
import { HostToolchains } from '../node/toolchains.js';
import { TOOLCHAIN_LIMITS, TOOLCHAIN_PROTOCOL } from '../protocol/toolchain-messages.js';
import { planFromTree, toolchainTarId } from '../toolchain/pack.js';
import { makeToolchainTree, tarOfTree } from './helpers/toolchain-tars.js';
import { tempDir } from './helpers/tmp.js';

const log = pino({ level: 'silent' });
const KEY = Buffer.alloc(32, 7);
const nodes: MeshNode[] = [];
const transfers: ToolchainTransfer[] = [];

afterEach(async () => {
  await Promise.all(transfers.splice(0).map((t) => t.stop()));
  await Promise.all(nodes.splice(0).map((n) => n.stop()));
});

async function meshNode(): Promise<MeshNode> {
  const node = await createMeshNode({ privateKey: await generateKeyPair('Ed25519'), meshKey: KEY, listen: ['/ip4/127.0.0.1/tcp/0'], log });
  nodes.push(node);
  return node;
}

/** An agent's toolchain parts around a real mesh node, with an empty cache and no host compilers. */
async function member(platform?: { arch: string; os: string }) {
  const home = tempDir('meshcc-transfer-');
  const node = await meshNode();
  const cacheDir = path.join(home, 'toolchains');
  const cache = new ToolchainCache({ dir: cacheDir, maxBytes: 1 << 30, platform });
  const supply = new ToolchainSupply(new HostToolchains(log, home), cache);
  const stats = new Stats();
  let installs = 0;
  const transfer = new ToolchainTransfer({ node, supply, stats, log, onInstalled: () => installs++ });
  await transfer.start();
  transfers.push(transfer);
  return { node, cache, cacheDir, supply, stats, transfer, peerId: node.peerId.toString(), installs: () => installs };
}

/** A fake toolchain's tarball installed into a member's cache (as if shipped to it earlier). */
async function holding(m: Awaited<ReturnType<typeof member>>, seed: string, description?: { arch: string }) {
  const tar = await tarOfTree(makeToolchainTree(tempDir('meshcc-tree-'), seed, { driverBytes: 300_000, description }));
  await m.supply.install(tar.id, async () => Readable.from([tar.bytes]));
  return tar;
}

async function connect(a: MeshNode, b: MeshNode): Promise<void> {
  await a.dial(b.addresses()[0]!);
}

/** A member of the mesh that answers every toolchain request with another toolchain's bytes. */
async function liar(bytes: Buffer): Promise<MeshNode> {
  const node = await meshNode();
  await node.libp2p.handle(TOOLCHAIN_PROTOCOL, async (stream) => {
    const framed = new FramedStream(stream, TOOLCHAIN_LIMITS.frameBytes);
    const get = (await framed.receive(5000)) as { id: string };
    await framed.send({ t: 'tarball', id: get.id, size: bytes.length, z: 'br' });
    await framed.send({ t: 'chunk', data: brotliCompressSync(bytes), last: true });
    await framed.close();
  });
  return node;
}

describe('toolchain transfer', () => {
  it('concurrent requests make one fetch; a source that sends other bytes is caught and the next one serves it', async () => {
    const holder = await member();
    const fetcher = await member();
    const wanted = await holding(holder, 'wanted');
    const other = await tarOfTree(makeToolchainTree(tempDir('meshcc-tree-'), 'impostor'));
    const impostor = await liar(other.bytes);
    await connect(fetcher.node, holder.node);
    await connect(fetcher.node, impostor);

    const sources = [impostor.peerId.toString(), holder.peerId];
    const results = await Promise.all([1, 2, 3].map(() => fetcher.transfer.obtain(wanted.id, sources)));
    expect(results).toEqual([true, true, true]);
    expect(fetcher.stats.toolchains).toMatchObject({ fetched: 1, fetchFailures: 1 });
    expect(fetcher.stats.toolchains.fetchedBytes).toBeGreaterThan(0);
    expect(holder.stats.toolchains.served).toBe(1);
    expect(fetcher.installs()).toBe(1);
    expect(fetcher.cache.list().map((t) => t.id)).toEqual([wanted.id]);
    expect(fetcher.supply.ids()).toEqual([wanted.id]);
    // What was installed is the toolchain the id names, byte for byte.
    const lease = (await fetcher.cache.acquire(wanted.id))!;
    expect((await toolchainTarId(await planFromTree(lease.root))).id).toBe(wanted.id);
    lease.release();
    // And it is here now: asking again fetches nothing.
    expect(fetcher.supply.holds(wanted.id)).toBe(true);
  });

  it('a fetch nobody can serve, or of a toolchain for another machine, fails and leaves the cache as it was', async () => {
    const holder = await member();
    const fetcher = await member();
    const kept = await holding(fetcher, 'kept');
    const elsewhere = await member({ arch: 'riscv64', os: 'linux' });
    const foreign = await holding(elsewhere, 'foreign', { arch: 'riscv64' });
    await connect(fetcher.node, holder.node);
    await connect(fetcher.node, elsewhere.node);
    await fetcher.cache.flush();
    const before = readdirSync(fetcher.cacheDir).sort();

    expect(await fetcher.transfer.obtain('ab'.repeat(32), [holder.peerId])).toBe(false);
    expect(await fetcher.transfer.obtain(foreign.id, [elsewhere.peerId])).toBe(false);
    expect(fetcher.stats.toolchains).toMatchObject({ fetched: 0, fetchFailures: 2 });
    expect(fetcher.cache.list().map((t) => t.id)).toEqual([kept.id]);
    await fetcher.cache.flush();
    // Nothing half-installed: no staging or trash directory, the same entries as before.
    expect(readdirSync(fetcher.cacheDir).sort()).toEqual(before);
  });
});
