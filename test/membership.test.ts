// Invitation tokens and the member list, without a network: what a token carries, every way a
// token is refused, and that a member list merges only revocations signed by their author.
import { generateKeyPair } from '@libp2p/crypto/keys';
import { peerIdFromPrivateKey } from '@libp2p/peer-id';
import { pack, unpack } from 'msgpackr';
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { createInvitation, parseDuration, readInvitation, TOKEN_PREFIX } from '../node/mesh/invite-token.js';
import { meshId } from '../node/mesh/keys.js';
import { Membership } from '../node/mesh/membership.js';
import { tempDir } from './helpers/tmp.js';

const log = pino({ level: 'silent' });
const key = new Uint8Array(32).fill(3);

async function token(expiresAt = Date.now() + 60_000) {
  const identity = await generateKeyPair('Ed25519');
  const inviter = peerIdFromPrivateKey(identity).toString();
  return { identity, inviter, token: await createInvitation({ meshKey: key, identity, inviter, name: 'alice', addresses: ['/ip4/10.0.0.1/tcp/7624'], expiresAt }) };
}

describe('invitation tokens', () => {
  it('carry the key, the inviter, its addresses and the expiry, on one line', async () => {
    const { token: t, inviter } = await token();
    expect(t).toMatch(/^meshcc1-[A-Za-z0-9_-]+$/);
    const invitation = await readInvitation(`  ${t}\n`);
    expect(invitation).toMatchObject({ mesh: meshId(key), inviter, name: 'alice', addresses: ['/ip4/10.0.0.1/tcp/7624'] });
    expect(Buffer.from(invitation.key)).toEqual(Buffer.from(key));
  });

  it('are refused when expired, altered, re-signed by someone else, cut or not tokens at all', async () => {
    const { token: old } = await token(Date.now() - 1000);
    await expect(readInvitation(old)).rejects.toThrow(/^the invitation expired at .*; ask alice for a new one/);

    const { token: t } = await token();
    // Change the expiry inside the signed body and re-pack it: the signature no longer matches.
    const envelope = unpack(Buffer.from(t.slice(TOKEN_PREFIX.length), 'base64url')) as { body: Buffer; signature: Buffer };
    const body = unpack(envelope.body) as Record<string, unknown>;
    const longer = TOKEN_PREFIX + Buffer.from(pack({ body: pack({ ...body, expiresAt: Date.now() + 10 ** 10 }), signature: envelope.signature })).toString('base64url');
    await expect(readInvitation(longer)).rejects.toMatchObject({ code: 'token-altered' });
    // Another identity claims to be the inviter with its own signature: still not the inviter's.
    const mallory = await generateKeyPair('Ed25519');
    const resigned = TOKEN_PREFIX + Buffer.from(pack({ body: envelope.body, signature: await mallory.sign(Buffer.concat([Buffer.from('meshcc invitation v1\0'), envelope.body])) })).toString('base64url');
    await expect(readInvitation(resigned)).rejects.toMatchObject({ code: 'token-altered' });
    await expect(readInvitation(t.slice(0, t.length - 20))).rejects.toMatchObject({ code: 'token-altered' });
    await expect(readInvitation('hello')).rejects.toMatchObject({ code: 'bad-token' });
    await expect(readInvitation(`${t.slice(0, 30)} ${t.slice(30)}`)).rejects.toMatchObject({ code: 'bad-token' });
  });

  it('durations', () => {
    expect(parseDuration('30m')).toBe(1_800_000);
    expect(parseDuration('2')).toBe(7_200_000);
    expect(parseDuration('7d')).toBe(604_800_000);
    expect(() => parseDuration('soon')).toThrow(/not a duration/);
    expect(() => parseDuration('0s')).toThrow(/between 1 s and 365 days/);
  });
});

describe('member list', () => {
  it('merges members and signed revocations, ignores forged ones, and keeps them across restarts', async () => {
    const home = tempDir('meshcc-members-');
    const mesh = meshId(key);
    const [alice, bob, carol] = await Promise.all([1, 2, 3].map(() => generateKeyPair('Ed25519')));
    const [a, b, c] = [alice!, bob!, carol!].map((k) => peerIdFromPrivateKey(k).toString()) as [string, string, string];
    const mine = await Membership.load(home, mesh, a, log);
    expect(mine.seen({ peerId: b, name: 'bob', addresses: ['/ip4/10.0.0.2/tcp/1'] })).toBe(true);
    expect(mine.seen({ peerId: b, name: 'bob', addresses: ['/ip4/10.0.0.2/tcp/1'] })).toBe(false);

    const theirs = await Membership.load(tempDir('meshcc-members-'), mesh, b, log);
    theirs.seen({ peerId: c, name: 'carol', addresses: [] });
    const merged = await mine.merge(theirs.snapshot());
    expect(merged.added).toEqual([c]);
    expect(mine.others().map((m) => m.name).sort()).toEqual(['bob', 'carol']);

    // Bob revokes carol: accepted. A revocation of bob "by carol" signed by someone else: ignored.
    const revocation = await theirs.revoke(c, bob!);
    const forged = { ...(await theirs.revoke(a, bob!)), by: c };
    const result = await mine.merge({ t: 'members', mesh, members: [], revoked: [revocation, forged] });
    expect(result.revoked).toEqual([c]);
    expect(mine.isRevoked(c)).toBe(true);
    expect(mine.isRevoked(a)).toBe(false);
    expect(mine.others().map((m) => m.name)).toEqual(['bob']);
    // A list of another mesh changes nothing.
    expect((await mine.merge({ ...theirs.snapshot(), mesh: 'ffffffffffffffff' })).changed).toBe(false);

    await mine.flush();
    const again = await Membership.load(home, mesh, a, log);
    expect(again.isRevoked(c)).toBe(true);
    expect(again.others().map((m) => m.name)).toEqual(['bob']);
    await expect(again.revoke(a, alice!)).rejects.toThrow(/cannot revoke itself/);
  });
});
