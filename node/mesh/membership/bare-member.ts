// A member of the mesh that is only listed: a libp2p node, a card, the membership protocol.
// It answers probes and gossip like any agent but never becomes the scheduler (its card says
// so) and reports no load (the scheduler takes the card's slots). Test peers that misbehave
// on purpose are these, so an agent lists them the way it lists any member.
import type { Logger } from '../../log.js';
import { PROTOCOL_VERSION } from '../../../protocol/messages.js';
import type { MemberCard } from '../../../protocol/swim-messages.js';
import type { MeshNode } from '../node.js';
import { SwimService } from './swim-service.js';

export type BareCard = Omit<MemberCard, 'peerId' | 'addresses' | 'startedAt' | 'protocolVersion' | 'candidate'>;

export async function startBareMember(node: MeshNode, card: BareCard, log: Logger, probeIntervalMs?: number): Promise<SwimService> {
  const startedAt = Date.now();
  const swim = new SwimService({
    node,
    card: () => ({ ...card, peerId: node.peerId.toString(), addresses: node.addresses(), startedAt, protocolVersion: PROTOCOL_VERSION, candidate: false }),
    leader: () => ({ term: 0, peerId: '' }),
    onLeader: () => undefined,
    admit: () => true,
    keep: () => false,
    log,
    ...(probeIntervalMs ? { probeIntervalMs } : {}),
  });
  await swim.start();
  return swim;
}

/** Joins the mesh of the agent at `address` (a multiaddr ending in /p2p/<peer id>). */
export async function joinThrough(swim: SwimService, address: string): Promise<void> {
  const peerId = /\/p2p\/([^/]+)$/.exec(address)?.[1];
  if (!peerId) throw new Error(`${address} does not end in /p2p/<peer id>`);
  await swim.join(peerId, [address]);
}
