// Membership: who belongs to the mesh, where they were last seen, and who was removed.
//
//   /meshcc/members/1   agent → peer   members   the sender's whole member list and revocations
//                                      (on every new connection and whenever it changes; the
//                                      receiver merges, so every member learns every member)
//   /meshcc/join/1      joiner → member  join     the invitation token, once, on first contact
//                       member → joiner  admitted / refused
//   /meshcc/dialback/1  agent → peer   dialback   "dial me back at the address you see me from,
//                                      on this port"; the peer answers reachable or not
import { z } from 'zod';

export const MEMBERS_PROTOCOL = '/meshcc/members/1';
export const JOIN_PROTOCOL = '/meshcc/join/1';
export const DIALBACK_PROTOCOL = '/meshcc/dialback/1';

export const MEMBER_LIMITS = {
  frameBytes: 4 * 1024 * 1024,
  members: 4096,
  revoked: 4096,
  addresses: 32,
  addressBytes: 512,
} as const;

const peerId = z.string().min(1).max(128);
const time = z.number().int().nonnegative();
const address = z.string().min(1).max(MEMBER_LIMITS.addressBytes);

export const MemberRecord = z.object({
  peerId,
  name: z.string().max(255),
  addresses: z.array(address).max(MEMBER_LIMITS.addresses),
  /** When the record's addresses were last confirmed by an advert (ms since the epoch). */
  seenAt: time,
  /** Whether this agent was reachable from other members without a relay, as last seen. */
  reachable: z.boolean().optional(),
  /** The member that admitted it with an invitation, if it joined with one. */
  invitedBy: peerId.optional(),
});
export type MemberRecord = z.infer<typeof MemberRecord>;

/** A member removed for everyone, signed by the member that removed it. */
export const Revocation = z.object({
  peerId,
  by: peerId,
  at: time,
  /** Ed25519 signature of revocationBytes(mesh, peerId, at) by `by` (base64). */
  signature: z.string().max(256),
});
export type Revocation = z.infer<typeof Revocation>;

export const MemberList = z.object({
  t: z.literal('members'),
  mesh: z.string().max(64),
  members: z.array(MemberRecord).max(MEMBER_LIMITS.members),
  revoked: z.array(Revocation).max(MEMBER_LIMITS.revoked),
});
export type MemberList = z.infer<typeof MemberList>;

export const JoinRequest = z.object({ t: z.literal('join'), token: z.string().max(16 * 1024), name: z.string().max(255) });
export const JoinAnswer = z.discriminatedUnion('t', [
  z.object({ t: z.literal('admitted'), members: MemberList }),
  z.object({ t: z.literal('refused'), message: z.string().max(1024) }),
]);
export type JoinAnswer = z.infer<typeof JoinAnswer>;

export const DialbackRequest = z.object({ t: z.literal('dialback'), port: z.number().int().min(1).max(65535) });
export const DialbackAnswer = z.object({ t: z.literal('dialed'), ok: z.boolean(), address: z.string().max(MEMBER_LIMITS.addressBytes) });
export type DialbackAnswer = z.infer<typeof DialbackAnswer>;

/** What a revocation signature covers. */
export function revocationBytes(mesh: string, peer: string, at: number): Uint8Array {
  return new TextEncoder().encode(`meshcc revocation v1\0${mesh}\0${peer}\0${at}`);
}
