// A valid first message for every stream protocol an agent handles, as a member would send it,
// checked against the protocol's own schema (a schema change breaks the test that uses them,
// not silently the messages).
import { randomBytes } from 'node:crypto';
import type { z } from 'zod';
import { encodeFrame } from '../../protocol/framing.js';
import { CacheRequest } from '../../node/cache/protocol.js';
import { DialbackRequest, JoinRequest, MemberList } from '../../protocol/member-messages.js';
import { JobOffer, parseMessage, PROTOCOL_VERSION, WarmOffer } from '../../protocol/messages.js';
import { MemberCard, ReportFromMember, SwimRequest } from '../../protocol/swim-messages.js';
import { PlaceRequest } from '../../protocol/schedule-messages.js';
import { ToolchainGet } from '../../protocol/toolchain-messages.js';
import { hopReserve, lengthPrefixed, stopConnect, varint } from './relay-wire.js';

export interface Sender {
  peerId: string;
  /** Its peer id as multihash bytes (relay messages carry that). */
  peerIdBytes: Uint8Array;
  addresses: string[];
  meshId: string;
}

function frameCard(sender: Sender): MemberCard {
  return parseMessage(MemberCard, cardOf(sender));
}

function frame<T>(schema: z.ZodType<T>, value: T): Buffer {
  return encodeFrame(parseMessage(schema, value));
}

export function cardOf(sender: Sender): MemberCard {
  return {
    peerId: sender.peerId, name: 'truncation-test', addresses: sender.addresses, startedAt: Date.now(), protocolVersion: PROTOCOL_VERSION, candidate: false,
    cores: 2, slots: 0, speed: 1, os: 'linux', arch: process.arch, libc: 'glibc', toolchains: [],
  };
}

/** The first message of each protocol, by protocol id. */
export function firstMessages(sender: Sender): Map<string, Buffer> {
  const toolchain = randomBytes(32).toString('hex');
  return new Map<string, Buffer>([
    // A membership request, numbered on its long-lived stream.
    ['/meshcc/swim/2', encodeFrame({ ...parseMessage(SwimRequest, { t: 'ping', leader: { term: 0, peerId: '' }, updates: [{ peerId: sender.peerId, state: 'alive', incarnation: 1, card: frameCard(sender) }] }), id: 1 })],
    ['/meshcc/report/1', frame(ReportFromMember, { t: 'hello', term: 0 })],
    ['/meshcc/members/1', frame(MemberList, { t: 'members', mesh: sender.meshId, members: [{ peerId: sender.peerId, name: 'truncation-test', addresses: sender.addresses.slice(0, 2), seenAt: Date.now() }], revoked: [] })],
    ['/meshcc/join/1', frame(JoinRequest, { t: 'join', token: 'meshcc-invite-not-a-real-one', name: 'truncation-test' })],
    ['/meshcc/dialback/1', frame(DialbackRequest, { t: 'dialback', port: 9 })],
    ['/meshcc/schedule/1', frame(PlaceRequest, { t: 'place', v: PROTOCOL_VERSION, id: 1, toolchain: { id: toolchain, arch: process.arch, os: 'linux' }, estimateMs: 100, localFree: 0, localSpeed: 1, skip: [] })],
    ['/meshcc/toolchain/1', frame(ToolchainGet, { t: 'get', v: PROTOCOL_VERSION, id: toolchain })],
    ['/meshcc/warm/1', frame(WarmOffer, { t: 'warm', files: [[toolchain, 10]] })],
    // A cache session's first request, numbered like a job's.
    ['/meshcc/cache/2', encodeFrame({ ...parseMessage(CacheRequest, { t: 'get', key: randomBytes(32).toString('hex') }), j: 0 })],
    // A job session's first message: a job's offer with its number in the session.
    ['/meshcc/job/2', encodeFrame({ ...parseMessage(JobOffer, { t: 'job', v: PROTOCOL_VERSION, toolchain, z: false, body: randomBytes(64) }), j: 0 })],
    ['/ipfs/ping/1.0.0', randomBytes(32)],
    // Identify is the agent talking, not us: streams that end before a byte.
    ['/ipfs/id/1.0.0', Buffer.alloc(0)],
    ['/libp2p/circuit/relay/0.2.0/hop', hopReserve()],
    ['/libp2p/circuit/relay/0.2.0/stop', stopConnect(sender.peerIdBytes)],
    // DCUtR's CONNECT (type 100) with no observed address.
    ['/libp2p/dcutr', lengthPrefixed(Buffer.concat([varint(1 << 3), varint(100)]))],
  ]);
}
