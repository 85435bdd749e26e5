// Invitation tokens: one copy-pasteable line that carries what a new machine needs to join
// a mesh (its key, the inviter's peer id and dialable addresses, an expiry), signed with the
// inviter's identity key so that a changed byte is noticed before anything is dialled.
import { randomBytes } from 'node:crypto';
import type { PrivateKey } from '@libp2p/interface';
import { peerIdFromString } from '@libp2p/peer-id';
import { pack, unpack } from 'msgpackr';
import { z } from 'zod';
import { MeshccError } from '../../protocol/errors.js';
import { MESH_KEY_BYTES, meshId } from './keys.js';

export const TOKEN_PREFIX = 'meshcc1-';
const MAX_TOKEN_CHARS = 16 * 1024;
const SIGNED_CONTEXT = 'meshcc invitation v1\0';

const InvitationSchema = z.strictObject({
  mesh: z.string().regex(/^[0-9a-f]{16}$/),
  key: z.instanceof(Uint8Array).refine((k) => k.length === MESH_KEY_BYTES, 'a mesh key is 32 bytes'),
  inviter: z.string().min(1).max(128),
  name: z.string().max(255),
  addresses: z.array(z.string().max(512)).max(32),
  expiresAt: z.number().int().nonnegative(),
  nonce: z.string().regex(/^[0-9a-f]{16}$/),
});
export type Invitation = z.infer<typeof InvitationSchema>;

const EnvelopeSchema = z.strictObject({
  body: z.instanceof(Uint8Array),
  signature: z.instanceof(Uint8Array).refine((s) => s.length === 64, 'an Ed25519 signature is 64 bytes'),
});

function signedBytes(body: Uint8Array): Uint8Array {
  return Buffer.concat([Buffer.from(SIGNED_CONTEXT), body]);
}

function asBytes(value: unknown): unknown {
  return Buffer.isBuffer(value) ? new Uint8Array(value.buffer, value.byteOffset, value.length) : value;
}

export interface InviteInput {
  meshKey: Uint8Array;
  identity: PrivateKey;
  inviter: string;
  name: string;
  addresses: string[];
  expiresAt: number;
}

/** A signed invitation token for this mesh. */
export async function createInvitation(input: InviteInput): Promise<string> {
  const invitation: Invitation = {
    mesh: meshId(input.meshKey),
    key: new Uint8Array(input.meshKey),
    inviter: input.inviter,
    name: input.name.slice(0, 255),
    addresses: input.addresses.slice(0, 32),
    expiresAt: input.expiresAt,
    nonce: randomBytes(8).toString('hex'),
  };
  const body = new Uint8Array(pack(invitation));
  const signature = await input.identity.sign(signedBytes(body));
  return TOKEN_PREFIX + Buffer.from(pack({ body, signature })).toString('base64url');
}

function damaged(why: string): MeshccError {
  return new MeshccError('bad-token', `this is not a usable meshcc invitation: ${why}`);
}

/**
 * Reads a token and checks everything that can be checked without the mesh: its form, the
 * inviter's signature, that the key belongs to the mesh it names, and the expiry.
 */
export async function readInvitation(token: string, now = Date.now()): Promise<Invitation> {
  const text = token.trim();
  if (!text.startsWith(TOKEN_PREFIX)) throw damaged(`a token starts with '${TOKEN_PREFIX}'`);
  if (text.length > MAX_TOKEN_CHARS) throw damaged(`it is longer than ${MAX_TOKEN_CHARS} characters`);
  const encoded = text.slice(TOKEN_PREFIX.length);
  if (!/^[A-Za-z0-9_-]+$/.test(encoded)) throw damaged('it has characters base64url does not use (was it cut or wrapped?)');
  let envelope: z.infer<typeof EnvelopeSchema>;
  let invitation: Invitation;
  try {
    const raw = unpack(Buffer.from(encoded, 'base64url')) as Record<string, unknown>;
    envelope = EnvelopeSchema.parse({ body: asBytes(raw?.body), signature: asBytes(raw?.signature) });
    const body = unpack(Buffer.from(envelope.body)) as Record<string, unknown>;
    invitation = InvitationSchema.parse({ ...body, key: asBytes(body?.key) });
  } catch {
    throw new MeshccError('token-altered', 'the invitation was altered or cut: its contents do not decode; ask for a new one (meshcc invite)');
  }
  let signed = false;
  try {
    const publicKey = peerIdFromString(invitation.inviter).publicKey;
    signed = publicKey !== undefined && (await publicKey.verify(signedBytes(envelope.body), envelope.signature));
  } catch {
    signed = false;
  }
  if (!signed || meshId(invitation.key) !== invitation.mesh) {
    throw new MeshccError('token-altered', 'the invitation was altered after it was issued: its signature does not match; ask for a new one (meshcc invite)');
  }
  if (invitation.expiresAt <= now) {
    throw new MeshccError(
      'token-expired',
      `the invitation expired at ${new Date(invitation.expiresAt).toISOString()}; ask ${invitation.name || 'the inviter'} for a new one (meshcc invite)`,
    );
  }
  return invitation;
}

/** Parses durations like 30m, 12h, 7d (default unit: hours). */
export function parseDuration(text: string): number {
  const match = /^(\d+(?:\.\d+)?)\s*(s|m|h|d)?$/.exec(text.trim());
  if (!match) throw new MeshccError('usage', `'${text}' is not a duration (examples: 30m, 12h, 7d)`);
  const unit = { s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 }[(match[2] ?? 'h') as 's' | 'm' | 'h' | 'd'];
  const ms = Number(match[1]) * unit;
  if (ms <= 0 || ms > 365 * 86_400_000) throw new MeshccError('usage', `an invitation lasts between 1 s and 365 days, not ${text}`);
  return ms;
}
