// The knock + pnet protector under connections that end at its edges. The regression: an
// agent died of an unhandled rejection when a relayed connection was reset right behind its
// knock (pnet's nonce read was left rejecting with nobody awaiting it). Vitest fails a file
// on any unhandled rejection or uncaught exception, so every case here also checks that.
import net from 'node:net';
import { createRequire } from 'node:module';
import { randomBytes } from 'node:crypto';
import { generateKeyPair } from '@libp2p/crypto/keys';
import type { Connection, Stream } from '@libp2p/interface';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createMeshNode, type MeshNode } from '../node/mesh/node.js';
import { createKnock } from '../node/mesh/protector.js';
import { createLegacyNode } from './helpers/legacy-node.js';
import { prefixPlans, runRawPlans } from './helpers/raw-connections.js';
import { LengthPrefixedReader, RELAY_STOP, RelayStatus, statusOf, stopConnect } from './helpers/relay-wire.js';
import { LoopbackHosts, startTcpProxy, type TcpProxy } from './helpers/tcp-proxy.js';

const log = pino({ level: 'silent' });
const meshKey = randomBytes(32);
let agent: MeshNode;
let member: MeshNode;
let proxy: TcpProxy;
const hosts = new LoopbackHosts(77);

beforeAll(async () => {
  agent = await createMeshNode({ privateKey: await generateKeyPair('Ed25519'), meshKey, listen: ['/ip4/127.0.0.1/tcp/0'], log });
  member = await createMeshNode({ privateKey: await generateKeyPair('Ed25519'), meshKey, listen: ['/ip4/127.0.0.1/tcp/0'], log, relay: false });
  await member.dial(agent.addresses()[0]!);
  proxy = await startTcpProxy(portOf(agent), hosts);
});
afterAll(async () => {
  await proxy?.close();
  await member?.stop();
  await agent?.stop();
});

function portOf(node: MeshNode): number {
  return Number(/\/tcp\/(\d+)/.exec(node.addresses()[0]!)![1]);
}

let relayedSoFar = 0;
let carrier: Connection | undefined;

/**
 * A relay's STOP stream to the agent, answered OK: what follows is a relayed connection.
 * The agent admits 5 relayed connections a second per relay host, so every few of them
 * travel over a new connection from another loopback host.
 */
async function relayedConnection(): Promise<Stream> {
  if (relayedSoFar++ % 4 === 0 || !carrier) carrier = await member.dialNew(`/ip4/127.0.0.1/tcp/${proxy.port}/p2p/${agent.peerId.toString()}`);
  const stream = await carrier.newStream(RELAY_STOP, { runOnLimitedConnection: true, signal: AbortSignal.timeout(5000) });
  stream.send(stopConnect(member.peerId.toMultihash().bytes));
  const answer = await new LengthPrefixedReader(stream).next();
  expect(statusOf(answer!, 4)).toBe(RelayStatus.OK);
  return stream;
}

describe('mesh protector', () => {
  it('a relayed connection reset right behind its knock costs that connection only', async () => {
    for (let i = 0; i < 60; i++) {
      const stream = await relayedConnection();
      // Knock and reset leave in one write, so they are handled in one turn of the agent's loop.
      stream.send(createKnock(meshKey));
      stream.abort(new Error('gone right after the knock'));
    }
    for (let i = 0; i < 30; i++) {
      const stream = await relayedConnection();
      stream.send(Buffer.concat([createKnock(meshKey), randomBytes(i % 24)]));
      await stream.close();
    }
    expect(await member.rtt(agent.peerId)).toBeLessThan(1000);
    expect(agent.connectedPeers().map(String)).toEqual([member.peerId.toString()]);
  }, 60_000);

  it('a TCP connection ended or reset anywhere in the knock or the nonce costs that connection only', async () => {
    const port = portOf(agent);
    for (let k = 0; k <= 56; k++) {
      for (const reset of [false, true]) {
        await new Promise<void>((resolve) => {
          // One source address per connection: the agent admits 5 connections a second per host.
          const socket = net.connect({ port, host: '127.0.0.1', localAddress: hosts.next() }, () => {
            socket.write(Buffer.concat([createKnock(meshKey), randomBytes(24)]).subarray(0, k), () => (reset ? socket.resetAndDestroy() : socket.end()));
          });
          socket.on('error', () => undefined);
          socket.resume(); // reads the agent's nonce and its FIN
          socket.on('close', () => resolve());
        });
      }
    }
    expect(await member.rtt(agent.peerId)).toBeLessThan(1000);
    const newcomer = await createMeshNode({ privateKey: await generateKeyPair('Ed25519'), meshKey, listen: ['/ip4/127.0.0.1/tcp/0'], log, relay: false });
    try {
      expect((await newcomer.dial(agent.addresses()[0]!)).toString()).toBe(agent.peerId.toString());
    } finally {
      await newcomer.stop();
    }
  });
});

const ECHO = '/meshcc-test/echo/1';

/** Sends `data` on a new echo stream and resolves with what came back. */
async function echoed(stream: Stream, data: Buffer): Promise<Buffer> {
  const back: Buffer[] = [];
  const reading = (async () => {
    for await (const chunk of stream) back.push(Buffer.from(chunk instanceof Uint8Array ? chunk : chunk.subarray()));
  })();
  for (let offset = 0; offset < data.length; offset += 100_000) {
    if (!stream.send(data.subarray(offset, offset + 100_000))) await stream.onDrain();
  }
  await stream.close();
  await reading;
  return Buffer.concat(back);
}

async function echo(stream: Stream): Promise<void> {
  for await (const chunk of stream) if (!stream.send(chunk)) await stream.onDrain();
  await stream.close();
}

describe('the private network stream', () => {
  it('talks with members that still run @libp2p/pnet, both ways, megabytes intact', async () => {
    const legacy = await createLegacyNode(meshKey);
    try {
      await legacy.handle(ECHO, echo);
      await agent.libp2p.handle(ECHO, echo);
      const data = randomBytes(3 << 20);
      const toLegacy = await agent.libp2p.dialProtocol(legacy.getMultiaddrs()[0]!, ECHO);
      expect((await echoed(toLegacy, data)).equals(data)).toBe(true);
      await agent.hangUp(legacy.peerId);
      await expect.poll(() => legacy.getConnections().length).toBe(0);
      const fromLegacy = await legacy.dialProtocol(agent.libp2p.getMultiaddrs()[0]!, ECHO);
      expect((await echoed(fromLegacy, data)).equals(data)).toBe(true);
    } finally {
      await agent.libp2p.unhandle(ECHO);
      await legacy.stop();
    }
  });

  it('releases its ciphers when a connection ends, even after their shared memory grew meanwhile', async () => {
    const newcomer = await createMeshNode({ privateKey: await generateKeyPair('Ed25519'), meshKey, listen: ['/ip4/127.0.0.1/tcp/0'], log, relay: false });
    await newcomer.dial(agent.addresses()[0]!);
    // One large update grows the memory every cipher shares, leaving the views of the
    // connection's four ciphers stale; releasing them then threw out of a 'close' listener.
    const xsalsa20 = createRequire(import.meta.url)('xsalsa20') as (nonce: Uint8Array, key: Uint8Array) => { update(input: Uint8Array): Uint8Array; finalize(): void };
    const [grower, bystander] = [xsalsa20(randomBytes(24), randomBytes(32)), xsalsa20(randomBytes(24), randomBytes(32))];
    grower.update(randomBytes(4 << 20));
    grower.finalize();
    expect(() => bystander.finalize()).not.toThrow();
    await newcomer.stop();
    await expect.poll(() => agent.connectedPeers().length).toBe(1);
    expect(await member.rtt(agent.peerId)).toBeLessThan(1000);
  });

  it('gives back its ciphers\' slots of the shared memory, however many connections come and go', async () => {
    // That memory gives each cipher a 64-byte slot until it is released: a free one if there is
    // one, else a new one past all the others. Where a new cipher's slot lies shows how many
    // were ever held at once. @libp2p/pnet took two per connection and never gave them back.
    const xsalsa20 = createRequire(import.meta.url)('xsalsa20') as (nonce: Uint8Array, key: Uint8Array) => { _xor: { _pointer: number }; finalize(): void };
    const slot = () => {
      const cipher = xsalsa20(new Uint8Array(24), new Uint8Array(32));
      const pointer = cipher._xor._pointer;
      cipher.finalize();
      return pointer;
    };
    const before = slot();
    const handshake = Buffer.concat([createKnock(meshKey), randomBytes(24)]);
    // The whole knock and nonce, then an end or a reset: the agent builds the stream each time.
    const plans = prefixPlans(handshake, [{ how: 'end', wait: 'reply', writes: 'one' }, { how: 'reset', wait: 'reply', writes: 'halves' }]).filter((p) => p.bytes.length === handshake.length);
    let answered = 0;
    for (let round = 0; round < 300; round++) {
      for (const outcome of await runRawPlans(portOf(agent), hosts, plans, 2)) if (outcome.received >= 24) answered++;
    }
    expect(answered).toBeGreaterThan(500);
    expect((slot() - before) / 64).toBeLessThan(10);
  });
});
