// Issue 21, must-show 3: no connection event can end an agent. Over 10,000 connections to a
// real agent process, each ended (FIN or RST) at another point of the handshake: before the
// knock, inside it, inside pnet's nonce exchange, inside Noise, after yamux is up, and
// through the relay (STOP streams carrying a relayed connection, HOP streams, whole circuits).
// Then the agent still answers its socket and runs a job for a proper member of its mesh.
//
// Most connections are raw sockets replaying the first bytes a real member sent (recorded by
// a proxy), so they cost the test almost nothing; the rest are real libp2p dials by members
// in this process, cut by the proxy or closed once up. Every connection comes from its own
// loopback host: libp2p admits 5 a second per host, and one host would only test that limit.
import { randomBytes } from 'node:crypto';
import { generateKeyPair } from '@libp2p/crypto/keys';
import { peerIdFromPrivateKey, peerIdFromString } from '@libp2p/peer-id';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { query } from '../node/cli/query.js';
import { createMeshNode, type MeshNode } from '../node/mesh/node.js';
import type { AgentProcess } from './helpers/agent.js';
import { compileThrough, startMeshAgent, statsOf, statusOf, untilPeerHasGcc } from './helpers/mesh-agents.js';
import { allEndings, inPool, KNOCK_END, NONCE_END, prefixLengths, prefixPlans, runRawPlans, type RawPlan } from './helpers/raw-connections.js';
import { hopConnect, hopReserve, LengthPrefixedReader, RELAY_HOP, RELAY_STOP, RelayStatus, statusOf as relayStatus, stopConnect } from './helpers/relay-wire.js';
import { LoopbackHosts, startTcpProxy, type Cut, type TcpProxy } from './helpers/tcp-proxy.js';

const KEY = randomBytes(32).toString('hex');
const log = pino({ level: 'silent' });
/** pnet's plaintext after the knock and the nonces: multistream-select for /noise (28 bytes),
 *  Noise's first message (2 + 32) and its third (2 + 184 for an Ed25519 member). */
const HANDSHAKE_BYTES = 32 + 24 + 28 + 34 + 186;
const NOISE_FIRST_MESSAGE_END = 32 + 24 + 28 + 34;
const RAW_CONCURRENCY = 6;

const hosts = new LoopbackHosts(40);
let agent: AgentProcess;
let agentId: string;
let agentPort: number;
let client: AgentProcess;
let member: MeshNode;
/** Members that dial at once: one node joins concurrent dials to a peer into one connection. */
let dialers: MeshNode[] = [];
let proxy: TcpProxy;
/** Connections opened, by the point where they ended. */
const opened: Record<string, number> = {};
let handshake: Buffer;
let relayedRejected = 0;
/** What failed on this side (the agent may close anything at any time; the count is a sanity check). */
const failures = new Map<string, number>();

function failed(err: Error): undefined {
  const what = err.message.slice(0, 80);
  failures.set(what, (failures.get(what) ?? 0) + 1);
  return undefined;
}

function count(what: string, n = 1): void {
  opened[what] = (opened[what] ?? 0) + n;
}

function viaProxy(): string {
  return `/ip4/127.0.0.1/tcp/${proxy.port}/p2p/${agentId}`;
}

function expectAgentUp(): void {
  expect(agent.child.exitCode, agent.logs()).toBeNull();
  expect(agent.child.signalCode).toBeNull();
}

async function newMember(): Promise<MeshNode> {
  return createMeshNode({ privateKey: await generateKeyPair('Ed25519'), meshKey: Buffer.from(KEY, 'hex'), listen: ['/ip4/127.0.0.1/tcp/0'], log, relay: false });
}

beforeAll(async () => {
  const started = await startMeshAgent(KEY, { MESHCC_SLOTS: '2' });
  agent = started.agent;
  agentId = started.peerId;
  agentPort = Number(/\/tcp\/(\d+)\//.exec(started.address)![1]);
  // A proper member that joins before the chaos and compiles through the agent after it.
  client = (await startMeshAgent(KEY, { MESHCC_SLOTS: '0', MESHCC_LOCAL_SLOTS: '0', MESHCC_PEERS: started.address })).agent;
  member = await newMember();
  dialers = [member, ...(await Promise.all(Array.from({ length: 3 }, () => newMember())))];
  proxy = await startTcpProxy(agentPort, hosts, { record: true });
  // What a real member sends first: the replayed prefixes below are cut from it.
  const first = await member.dialNew(viaProxy());
  count('a real dial, closed once up');
  while ((proxy.recorded[0]?.length ?? 0) < HANDSHAKE_BYTES) await new Promise((r) => setTimeout(r, 10));
  await first.close().catch(failed);
  handshake = proxy.recorded[0]!.subarray(0, HANDSHAKE_BYTES);
  expect(handshake.length).toBe(HANDSHAKE_BYTES);
}, 60_000);

afterAll(async () => {
  await proxy?.close();
  await Promise.all(dialers.map((d) => d.stop()));
  await client?.stop();
  await agent?.stop();
  console.log(`connections opened: ${JSON.stringify(opened)}, total ${Object.values(opened).reduce((a, b) => a + b, 0)}`);
  console.log(`failed on the test's side: ${JSON.stringify(Object.fromEntries(failures))}`);
});

describe('an agent under connection chaos', () => {
  it('raw connections ended at every byte of the knock, the nonce and Noise, in many ways', async () => {
    const endings = allEndings();
    const basic = endings.filter((e) => e.writes !== 'bytewise' && e.wait !== 'pause');
    const rounds: RawPlan[][] = [
      prefixPlans(handshake, basic),
      // The last byte sent is wrong: a bad knock, a nonce, or Noise bytes that do not decrypt.
      prefixPlans(handshake, basic.filter((e) => e.writes === 'one'), true),
      // Every ending, at every byte up to Noise's first message and every third past it (once
      // it has that message the agent answers with its own, the costly part of a connection).
      prefixPlans(handshake, endings, false, prefixLengths(handshake, { from: NOISE_FIRST_MESSAGE_END, step: 3 })),
      prefixPlans(handshake, endings, true, prefixLengths(handshake, { from: NOISE_FIRST_MESSAGE_END, step: 3 })),
    ];
    let leftOpen = 0;
    let nonces = 0;
    let knocked = 0;
    for (const plans of rounds) {
      const outcomes = await runRawPlans(agentPort, hosts, plans, RAW_CONCURRENCY);
      for (const [i, outcome] of outcomes.entries()) {
        const plan = plans[i]!;
        count(plan.bytes.length < KNOCK_END ? 'raw: before or inside the knock' : plan.bytes.length < NONCE_END ? 'raw: inside the nonce exchange' : 'raw: inside Noise');
        if (outcome.leftOpen) leftOpen++;
        if (plan.wait === 'reply' && plan.bytes.length >= KNOCK_END && plan.bytes.subarray(0, KNOCK_END).equals(handshake.subarray(0, KNOCK_END))) {
          knocked++;
          if (outcome.received >= NONCE_END - KNOCK_END) nonces++;
        }
      }
      expectAgentUp();
    }
    // Connections the agent was still holding open 5 s after they ended: none.
    expect(leftOpen).toBe(0);
    // Those that waited for the agent's nonce got it (a few may meet the pending-upgrade limit).
    expect(nonces).toBeGreaterThan(knocked * 0.9);
  });

  it('real dials cut by the proxy at every stage, from either side', async () => {
    const diallerBytes = proxy.recorded[0]!.length;
    const agentBytes = proxy.replies[0]!.length;
    const cuts: Cut[] = [];
    for (let k = 0; k <= diallerBytes; k += 7) cuts.push({ afterDiallerBytes: k, how: k % 14 ? 'end' : 'reset' });
    for (let k = 0; k <= agentBytes; k += 9) cuts.push({ afterAgentBytes: k, how: k % 18 ? 'end' : 'reset' });
    await inPool(cuts, dialers.length, async (cut, _, worker) => {
      proxy.plan.push(cut);
      count('a real dial cut by the proxy');
      const connection = await dialers[worker]!.dialNew(viaProxy(), { signal: AbortSignal.timeout(5000) }).catch(() => undefined);
      // A cut past the handshake ends the connection soon after it is up.
      if (connection) await new Promise<void>((resolve) => {
        const timer = setTimeout(() => resolve(connection.abort(new Error('the cut point was not reached'))), 1000);
        connection.addEventListener('close', () => resolve(clearTimeout(timer)));
        if (connection.status !== 'open') resolve(clearTimeout(timer));
      });
    });
    expect(proxy.cuts).toBeGreaterThan(cuts.length * 0.9);
    expectAgentUp();
  });

  it('real connections closed or reset once yamux is up: at once, during identify, inside streams', async () => {
    // The protocols the agent registers, as identify tells a member.
    const probe = await member.dialNew(viaProxy());
    count('a real connection, ended after yamux');
    const meshcc = async () => (await member.libp2p.peerStore.get(peerIdFromString(agentId))).protocols.filter((p) => p.startsWith('/meshcc/'));
    await expect.poll(async () => (await meshcc()).length, { timeout: 10_000 }).toBeGreaterThanOrEqual(5);
    await probe.close().catch(failed);
    const protocols = (await member.libp2p.peerStore.get(peerIdFromString(agentId))).protocols.filter((p) => !p.includes('/circuit/'));
    const endings = ['abort', 'close', 'stream then abort', 'bytes then abort', 'identify then abort', 'stream reset then close'] as const;
    const plans = Array.from({ length: 180 }, (_, i) => ({ ending: endings[i % endings.length]!, protocol: protocols[i % protocols.length]! }));
    await inPool(plans, dialers.length, async ({ ending, protocol }, _, worker) => {
      const connection = await dialers[worker]!.dialNew(viaProxy(), { signal: AbortSignal.timeout(5000) }).catch(failed);
      if (!connection) return;
      count('a real connection, ended after yamux');
      const gone = new Error('the member went away');
      if (ending === 'abort') return connection.abort(gone);
      if (ending === 'close') return connection.close().catch(() => undefined);
      if (ending === 'identify then abort') {
        await new Promise((r) => setTimeout(r, 30));
        return connection.abort(gone);
      }
      const stream = await connection.newStream(protocol, { signal: AbortSignal.timeout(5000), runOnLimitedConnection: true }).catch(failed);
      if (stream?.writeStatus === 'writable' && ending === 'bytes then abort') stream.send(randomBytes(7));
      if (stream && ending === 'stream reset then close') {
        stream.abort(gone);
        return connection.close().catch(() => undefined);
      }
      connection.abort(gone);
    });
    expectAgentUp();
  });

  it('relayed connections to the agent (STOP streams) ended at every byte of their handshake', async () => {
    const plans: { bytes: Buffer; reset: boolean }[] = [];
    // Every byte of the knock and the nonce, every third of Noise's handshake.
    for (let k = 0; k <= handshake.length; k += k < 56 ? 1 : 3) for (const reset of [false, true]) plans.push({ bytes: handshake.subarray(0, k), reset });
    // A relay host may bring 5 relayed connections a second: 4 per carrier connection.
    const batches = Array.from({ length: Math.ceil(plans.length / 4) }, (_, i) => plans.slice(i * 4, i * 4 + 4));
    await inPool(batches, dialers.length, async (batch, _, worker) => {
      const dialer = dialers[worker]!;
      const from = dialer.peerId.toMultihash().bytes;
      const carrier = await dialer.dialNew(viaProxy(), { signal: AbortSignal.timeout(5000) }).catch(failed);
      if (!carrier) return;
      count('a carrier connection for relayed ones');
      for (const { bytes, reset } of batch) {
        const stream = await carrier.newStream(RELAY_STOP, { runOnLimitedConnection: true, signal: AbortSignal.timeout(5000) }).catch(failed);
        if (!stream) {
          relayedRejected++;
          continue;
        }
        stream.send(stopConnect(from));
        const answer = await new LengthPrefixedReader(stream).next().catch(failed);
        count('a relayed connection, ended in its handshake');
        if (!answer || relayStatus(answer, 4) !== RelayStatus.OK || stream.writeStatus !== 'writable') {
          relayedRejected++;
          continue;
        }
        if (bytes.length) stream.send(bytes);
        if (reset) stream.abort(new Error('the relayed dialler went away'));
        else await stream.close().catch(() => undefined);
      }
      await carrier.close().catch(() => undefined);
    });
    expect(relayedRejected).toBeLessThan(plans.length * 0.1);
    expectAgentUp();
  });

  it('the agent as a relay: HOP streams and whole circuits ended early', async () => {
    // Members behind the relay, each with a reservation on the agent.
    const destinations = await Promise.all(Array.from({ length: 8 }, () => newMember()));
    try {
      for (const destination of destinations) {
        await destination.listenOnRelay(viaProxy());
        count('a reservation connection');
      }
      const carrier = await member.dialNew(viaProxy());
      count('a carrier connection for relayed ones');
      const unknownPeer = peerIdFromPrivateKey(await generateKeyPair('Ed25519')).toMultihash().bytes;
      // HOP requests cut at every byte.
      for (const request of [hopReserve(), hopConnect(unknownPeer)]) {
        for (let k = 0; k <= request.length; k++) {
          const stream = await carrier.newStream(RELAY_HOP, { runOnLimitedConnection: true, signal: AbortSignal.timeout(5000) }).catch(failed);
          if (!stream) continue;
          if (k && stream.writeStatus === 'writable') stream.send(request.subarray(0, k));
          if (k % 2) stream.abort(new Error('hop dialler went away'));
          else await stream.close().catch(() => undefined);
        }
      }
      // Circuits to a member behind the relay, ended inside the relayed handshake.
      const circuits = [];
      for (let k = 0; k <= handshake.length; k += 4) circuits.push(k);
      await inPool(circuits, destinations.length, async (k, i) => {
        const destination = destinations[i % destinations.length]!;
        const stream = await carrier.newStream(RELAY_HOP, { runOnLimitedConnection: true, signal: AbortSignal.timeout(5000) }).catch(failed);
        if (!stream) return;
        stream.send(hopConnect(destination.peerId.toMultihash().bytes));
        await new LengthPrefixedReader(stream).next().catch(failed);
        count('a circuit through the agent, ended in its handshake');
        if (stream.writeStatus === 'writable' && k) stream.send(handshake.subarray(0, k));
        if (k % 8) stream.abort(new Error('circuit dialler went away'));
        else await stream.close().catch(() => undefined);
        // The destinations admit 5 relayed connections a second from the relay's host.
        await new Promise((r) => setTimeout(r, 250));
      });
      await carrier.close().catch(() => undefined);
    } finally {
      await Promise.all(destinations.map((d) => d.stop()));
    }
    expectAgentUp();
  });

  it('after all that: the agent answers its socket and runs a job for a proper member', async () => {
    const total = Object.values(opened).reduce((a, b) => a + b, 0);
    expect(total).toBeGreaterThanOrEqual(10_000);
    expectAgentUp();
    expect(await query(agent.socketPath, { t: 'ping', v: 1 })).toMatchObject({ t: 'pong' });
    // The member that joined before the chaos still lists the agent, and a member can still connect.
    await untilPeerHasGcc(client, agentId);
    expect((await statusOf(client)).some((r) => r.peerId === agentId)).toBe(true);
    const before = await statsOf(client);
    const compiled = await compileThrough(client);
    expect(compiled.stderr).toBe('');
    expect(compiled.status).toBe(0);
    const after = await statsOf(client);
    expect(after.perPeer[agentId]?.jobs ?? 0).toBe((before.perPeer[agentId]?.jobs ?? 0) + 1);
    const newcomer = await newMember();
    try {
      expect((await newcomer.dial(viaProxy())).toString()).toBe(agentId);
    } finally {
      await newcomer.stop();
    }
    // Nothing above left a stack trace in the agent's log.
    expect(agent.logs()).not.toMatch(/\n\s+at /);
  }, 120_000);
});
