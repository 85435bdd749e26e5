// Warming a far peer, with two real mesh nodes on loopback, real stores and the peer's real job
// server: the files the client's recent jobs used at least twice reach the peer's store in one
// stream (compressed, each checked against its hash); files used once stay home; a second
// warm-up sends only what became hot since.
import { randomBytes } from 'node:crypto';
import { generateKeyPair } from '@libp2p/crypto/keys';
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { createMeshNode, type MeshNode } from '../node/mesh/node.js';
import { JobServer } from '../node/remote/job-server.js';
import { WarmUp } from '../node/remote/warm-up.js';
import { sha256, Store } from '../node/store.js';
import { tempDir } from './helpers/tmp.js';
import { waitFor } from './helpers/wait.js';

const log = pino({ level: 'silent' });
const key = new Uint8Array(32).fill(9);

describe('warming a far peer', () => {
  const stops: (() => Promise<unknown>)[] = [];
  afterEach(async () => {
    for (const stop of stops.splice(0).reverse()) await stop();
  });

  async function member(): Promise<{ node: MeshNode; store: Store }> {
    const node = await createMeshNode({ privateKey: await generateKeyPair('Ed25519'), meshKey: key, listen: ['/ip4/127.0.0.1/tcp/0'], log, relay: false });
    stops.push(() => node.stop());
    const store = new Store(tempDir('meshcc-warm-store-'), 64 * 1024 * 1024, log);
    await store.start();
    return { node, store };
  }

  it('sends the files recent jobs used twice or more, once, and then only what became hot since', async () => {
    const client = await member();
    const peer = await member();
    const server = new JobServer({
      node: peer.node,
      store: peer.store,
      executor: undefined as never, // the warm-up never runs a job
      toolchains: undefined as never,
      obtainToolchain: () => undefined,
      holdersOf: () => [],
      log,
    });
    await server.start();
    stops.push(() => server.stop());
    await client.node.dial(peer.node.addresses()[0]!);

    const files = await Promise.all(
      Array.from({ length: 40 }, async (_, i) => {
        // Compressible like a header: random hex text, each line twice.
        const line = randomBytes(32).toString('hex');
        const data = Buffer.from(`/* header ${i} */\n${`${line}\n${line}\n`.repeat(60)}`);
        const hash = sha256(data);
        await client.store.put(hash, data);
        return { hash, size: data.length };
      }),
    );
    const warm = new WarmUp({ node: () => client.node, store: client.store, log, quality: 5 });
    // Three jobs share the first 20 files; each also reads a file of its own.
    for (let job = 0; job < 3; job++) warm.noteJob([...files.slice(0, 20), files[20 + job]!]);
    const peerId = peer.node.peerId.toString();
    warm.warm(peerId);
    await waitFor('the peer to hold the shared files', async () => (files.slice(0, 20).every((f) => peer.store.has(f.hash)) ? true : undefined), 10_000);
    expect(files.slice(20).filter((f) => peer.store.has(f.hash))).toEqual([]);

    // Later jobs make more files hot: after enough jobs to the peer, only those are sent.
    for (let job = 0; job < 2; job++) warm.noteJob(files.slice(30, 35));
    for (let job = 0; job < 25; job++) warm.warm(peerId);
    await waitFor('the newly hot files', async () => (files.slice(30, 35).every((f) => peer.store.has(f.hash)) ? true : undefined), 10_000);
    expect(files.slice(20, 30).filter((f) => peer.store.has(f.hash))).toEqual([]);

    // Jobs that come while a warm-up is on its way count: the next one follows it.
    for (let job = 0; job < 2; job++) warm.noteJob(files.slice(35, 38));
    for (let job = 0; job < 2; job++) warm.noteJob(files.slice(38, 40));
    for (let job = 0; job < 25; job++) warm.warm(peerId);
    for (let job = 0; job < 2; job++) warm.noteJob(files.slice(20, 22));
    for (let job = 0; job < 25; job++) warm.warm(peerId);
    await waitFor('the files hot during a warm-up', async () => (files.slice(20, 22).every((f) => peer.store.has(f.hash)) ? true : undefined), 10_000);
  }, 30_000);
});
