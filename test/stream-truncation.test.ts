// Issue 21, must-show 3 (second half): every stream protocol a real agent handles (its own and
// libp2p's, as identify lists them) fed streams that end, by FIN or by reset, after each byte
// prefix of a valid first message. The agent stays up, closes each such stream (none left
// half-open to count against the protocol's stream limit), writes at most one log line for
// each and no stack trace, and then answers the whole message as it should.
import { randomBytes } from 'node:crypto';
import { generateKeyPair } from '@libp2p/crypto/keys';
import type { Connection, Stream } from '@libp2p/interface';
import { peerIdFromString } from '@libp2p/peer-id';
import { multiaddr } from '@multiformats/multiaddr';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { query } from '../node/cli/query.js';
import { startBareMember } from '../node/mesh/membership/bare-member.js';
import type { SwimService } from '../node/mesh/membership/swim-service.js';
import { FramedStream } from '../node/mesh/framed-stream.js';
import { meshId } from '../node/mesh/keys.js';
import { createMeshNode, type MeshNode } from '../node/mesh/node.js';
import type { AgentProcess } from './helpers/agent.js';
import { cardOf, firstMessages } from './helpers/first-messages.js';
import { startMeshAgent, statusOf } from './helpers/mesh-agents.js';
import { inPool } from './helpers/raw-connections.js';
import { LengthPrefixedReader, RelayStatus, statusOf as relayStatus } from './helpers/relay-wire.js';
import { waitFor } from './helpers/wait.js';

const KEY = randomBytes(32);
let agent: AgentProcess;
let agentId: string;
let member: MeshNode;
let swim: SwimService;
let connection: Connection;
let messages: Map<string, Buffer>;
/** Log lines each protocol's truncated streams cost the agent. */
const linesPerProtocol: Record<string, string> = {};

function logLines(): string[] {
  return agent.logs().split('\n').filter((line) => line.trim() !== '');
}

/** Waits until the agent has written nothing for `ms` (what other exchanges cause is logged by then). */
async function quiet(ms: number): Promise<void> {
  const deadline = Date.now() + 15_000;
  for (let seen = logLines().length; Date.now() < deadline; ) {
    await new Promise((r) => setTimeout(r, ms));
    const now = logLines().length;
    if (now === seen) return;
    seen = now;
  }
}

function expectAgentUp(): void {
  expect(agent.child.exitCode, agent.logs().slice(-4000)).toBeNull();
  expect(agent.child.signalCode).toBeNull();
}

/** Resolves true once the stream is closed both ways, false if the agent kept its end open. */
function closedWithin(stream: Stream, ms: number): Promise<boolean> {
  return new Promise((resolve) => {
    if (stream.status !== 'open' && stream.status !== 'closing') return resolve(true);
    const timer = setTimeout(() => resolve(false), ms);
    stream.addEventListener('close', () => {
      clearTimeout(timer);
      resolve(true);
    });
  });
}

beforeAll(async () => {
  const started = await startMeshAgent(Buffer.from(KEY).toString('hex'), { MESHCC_LOG_LEVEL: 'debug', MESHCC_SLOTS: '1' });
  agent = started.agent;
  agentId = started.peerId;
  // A proper member: it answers probes and takes the member lists the agent sends it. (It
  // does not answer dial-back requests: the agent's one probe fails at once, not 10 s into
  // some protocol's count of log lines.)
  member = await createMeshNode({ privateKey: await generateKeyPair('Ed25519'), meshKey: KEY, listen: ['/ip4/127.0.0.1/tcp/0'], log: pino({ level: 'silent' }), relay: false });
  const { peerId: _p, addresses: _a, startedAt: _s, protocolVersion: _v, candidate: _c, ...card } = cardOf(sender());
  swim = await startBareMember(member, card, pino({ level: 'silent' }));
  await member.libp2p.handle('/meshcc/members/1', async (stream) => {
    for await (const _ of stream) void _;
    await stream.close();
  });
  connection = await member.libp2p.dial(multiaddr(started.address));
  await swim.join(agentId, [started.address]);
  messages = firstMessages(sender());
  await waitFor('the agent to list the member', async () => ((await statusOf(agent)).some((r) => r.peerId === member.peerId.toString()) ? true : undefined), 10_000);
  // Its start-up (compilers identified, first exchanges with the member) is logged before the streams begin.
  await waitFor('the agent to identify its compilers', () => (agent.logs().includes('host toolchains identified') ? true : undefined), 60_000);
}, 60_000);

afterAll(async () => {
  await swim?.stop();
  await member?.stop();
  await agent?.stop();
  console.log(`log lines per protocol (lines/truncated streams): ${JSON.stringify(linesPerProtocol)}`);
});

function sender() {
  return { peerId: member.peerId.toString(), peerIdBytes: member.peerId.toMultihash().bytes, addresses: member.addresses(), meshId: meshId(KEY) };
}

describe('stream protocols fed streams that end early', () => {
  it('every protocol the agent handles has a first message here', async () => {
    const identified = (await member.libp2p.peerStore.get(peerIdFromString(agentId))).protocols;
    expect([...identified].sort()).toEqual([...messages.keys()].sort());
  });

  for (const protocol of [...firstMessages({ peerId: 'x', peerIdBytes: new Uint8Array(), addresses: [], meshId: 'x' }).keys()]) {
    it(`${protocol}: ended after every byte of its first message, the agent stays up, logs at most a line each, and answers the whole`, async () => {
      const message = messages.get(protocol)!;
      const prefixes = Array.from({ length: Math.max(1, message.length) }, (_, k) => k);
      const plans = prefixes.flatMap((k) => [{ k, reset: false }, { k, reset: true }]);
      await quiet(300);
      const before = logLines().length;
      let refused = 0;
      let leftOpen = 0;
      await inPool(plans, 1, async ({ k, reset }) => {
        const stream = await openStream(protocol);
        if (!stream) return void refused++;
        stream.addEventListener('message', () => undefined);
        if (k && stream.writeStatus === 'writable') stream.send(message.subarray(0, k));
        if (reset) return stream.abort(new Error('the member went away'));
        await stream.close().catch(() => undefined);
        if (!(await closedWithin(stream, 3000))) {
          leftOpen++;
          stream.abort(new Error('the agent never closed its end'));
        }
      });
      await new Promise((r) => setTimeout(r, 200));
      expectAgentUp();
      const lines = logLines().slice(before);
      linesPerProtocol[protocol] = `${lines.length}/${plans.length}`;
      expect(refused).toBe(0);
      expect(leftOpen).toBe(0);
      expect(lines.length).toBeLessThanOrEqual(plans.length);
      for (const line of lines) expect(line).not.toContain('"stack"');
      await expectAnswered(protocol, message);
    });
  }

  it('after all that, the agent answers its socket and still lists the member', async () => {
    expectAgentUp();
    expect(await query(agent.socketPath, { t: 'ping', v: 1 })).toMatchObject({ t: 'pong' });
    expect((await statusOf(agent)).some((r) => r.peerId === member.peerId.toString())).toBe(true);
    expect(await member.rtt(agentId)).toBeLessThan(2000);
  });
});

/**
 * A new stream; a few retries, as a stream just reset here may still count against the
 * protocol's limit of inbound streams (ping's is 2) until the agent hears of the reset.
 */
async function openStream(protocol: string): Promise<Stream | undefined> {
  for (let attempt = 0; attempt < 10; attempt++) {
    const stream = await connection.newStream(protocol, { runOnLimitedConnection: true, signal: AbortSignal.timeout(5000) }).catch(() => undefined);
    if (stream) return stream;
    await new Promise((r) => setTimeout(r, 20));
  }
  return undefined;
}

/** The whole first message gets the agent's proper answer. */
async function expectAnswered(protocol: string, message: Buffer): Promise<void> {
  const stream = await connection.newStream(protocol, { runOnLimitedConnection: true, signal: AbortSignal.timeout(5000) });
  if (message.length) stream.send(message);
  try {
    if (protocol.startsWith('/meshcc/')) {
      const framed = new FramedStream(stream, 1 << 20);
      const expected: Record<string, string | undefined> = {
        '/meshcc/join/1': 'refused', '/meshcc/dialback/1': 'dialed', '/meshcc/swim/2': 'ack', '/meshcc/report/1': 'lease', '/meshcc/toolchain/1': 'refused', '/meshcc/warm/1': 'need', '/meshcc/job/2': 'refused',
      };
      if (protocol === '/meshcc/schedule/1') expect(['placed', 'not-scheduler']).toContain((await framed.receive(5000) as { t: string }).t);
      else if (expected[protocol]) expect(await framed.receive(10_000)).toMatchObject({ t: expected[protocol] });
      else {
        // Member lists are taken without an answer: the agent keeps or closes the stream.
        await stream.close();
      }
    } else if (protocol === '/ipfs/ping/1.0.0') {
      const reader = stream[Symbol.asyncIterator]();
      const echoed = (await reader.next()).value as Uint8Array | { subarray(): Uint8Array };
      expect(Buffer.from(echoed instanceof Uint8Array ? echoed : echoed.subarray()).subarray(0, 32).equals(message)).toBe(true);
    } else if (protocol === '/libp2p/circuit/relay/0.2.0/hop' || protocol === '/libp2p/circuit/relay/0.2.0/stop') {
      const answer = await new LengthPrefixedReader(stream).next();
      expect(relayStatus(answer!, protocol.endsWith('hop') ? 5 : 4)).toBe(RelayStatus.OK);
    } else if (protocol === '/ipfs/id/1.0.0') {
      expect((await new LengthPrefixedReader(stream).next())?.length).toBeGreaterThan(0);
    }
  } finally {
    stream.abort(new Error('done'));
  }
}
