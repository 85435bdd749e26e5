// The knock + pnet protector under connections that end at its edges. The regression: an
// agent died of an unhandled rejection when a relayed connection was reset right behind its
// knock (pnet's nonce read was left rejecting with nobody awaiting it). Vitest fails a file
// on any unhandled rejection or uncaught exception, so every case here also checks that.
import net from 'node:net';
import { randomBytes } from 'node:crypto';
import { generateKeyPair } from '@libp2p/crypto/keys';
import type { Connection, Stream } from '@libp2p/interface';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createMeshNode, type MeshNode } from '../node/mesh/node.js';
import { createKnock } from '../node/mesh/protector.js';
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
