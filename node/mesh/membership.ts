// Who belongs to this agent's mesh: every member seen (name, last addresses, reachability)
// and every member removed. Kept in $MESHCC_HOME/members.json so an agent rejoins by itself
// after a restart, merged with what peers send so the mesh stays whole without its inviter.
import { randomBytes } from 'node:crypto';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import type { PrivateKey } from '@libp2p/interface';
import { peerIdFromString } from '@libp2p/peer-id';
import { z } from 'zod';
import { MeshccError } from '../../protocol/errors.js';
import { MEMBER_LIMITS, MemberList, MemberRecord, revocationBytes, type Revocation } from '../../protocol/member-messages.js';
import type { Logger } from '../log.js';

export const MEMBERS_FILE = 'members.json';
/** Saves are delayed to gather changes: longer in a larger mesh, where the file is larger and
 *  joins come in bursts (the list on disk is only for finding the mesh again after a restart). */
function saveDelayMs(members: number): number {
  return Math.min(10_000, Math.max(500, members * 5));
}
/** A member not seen for this long is forgotten (short-lived agents of `meshcc run` come and go). */
const FORGET_AFTER_MS = 30 * 86_400_000;
/** Members are dialled while they were seen this recently (or never: an inviter just stored). */
export const DIAL_WITHIN_MS = 7 * 86_400_000;

const MembersFile = z.object({ mesh: z.string(), members: z.array(MemberRecord), revoked: z.array(z.unknown()) });

export interface MergeResult {
  /** Members this agent did not know before. */
  added: string[];
  /** Peers revoked by the merge that were not revoked before. */
  revoked: string[];
  /** Whether anything changed (a reason to tell the other peers). */
  changed: boolean;
}

function sameAddresses(a: string[], b: string[]): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}

async function verifyRevocation(mesh: string, revocation: Revocation): Promise<boolean> {
  try {
    const key = peerIdFromString(revocation.by).publicKey;
    if (!key) return false;
    return await key.verify(revocationBytes(mesh, revocation.peerId, revocation.at), Buffer.from(revocation.signature, 'base64'));
  } catch {
    return false;
  }
}

export class Membership {
  private readonly members = new Map<string, MemberRecord>();
  private readonly revoked = new Map<string, Revocation>();
  private saveTimer?: NodeJS.Timeout;
  private saving: Promise<void> = Promise.resolve();

  private constructor(
    readonly mesh: string,
    private readonly self: string,
    private readonly file: string,
    private readonly log: Logger,
  ) {}

  /** The membership of `mesh` stored in `home` (empty when the file is missing or of another mesh). */
  static async load(home: string, mesh: string, self: string, log: Logger): Promise<Membership> {
    const membership = new Membership(mesh, self, path.join(home, MEMBERS_FILE), log);
    let text: string | undefined;
    try {
      text = await fs.readFile(membership.file, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    }
    if (text === undefined) return membership;
    let stored: z.infer<typeof MembersFile>;
    try {
      stored = MembersFile.parse(JSON.parse(text));
    } catch (err) {
      log.warn({ file: membership.file, err: (err as Error).message }, 'the member list is unreadable: starting a new one');
      return membership;
    }
    if (stored.mesh !== mesh) return membership;
    const recent = stored.members.filter((m) => m.seenAt === 0 || Date.now() - m.seenAt < FORGET_AFTER_MS);
    // What the file holds needs no saving back.
    await membership.mergeList({ t: 'members', mesh, members: recent, revoked: stored.revoked as Revocation[] }, false);
    return membership;
  }

  isRevoked(peerId: string): boolean {
    return this.revoked.has(peerId);
  }

  isMember(peerId: string): boolean {
    return this.members.has(peerId) && !this.revoked.has(peerId);
  }

  /** Members worth dialling: seen within a week (or an inviter not met yet). */
  dialable(now = Date.now()): MemberRecord[] {
    return this.others().filter((m) => m.seenAt === 0 || now - m.seenAt < DIAL_WITHIN_MS);
  }

  /** One member's record (not a revoked one). */
  get(peerId: string): MemberRecord | undefined {
    return this.revoked.has(peerId) ? undefined : this.members.get(peerId);
  }

  /** Members other than this agent, most recently seen first. */
  others(): MemberRecord[] {
    return [...this.members.values()].filter((m) => m.peerId !== this.self && !this.revoked.has(m.peerId)).sort((a, b) => b.seenAt - a.seenAt);
  }

  list(): { members: MemberRecord[]; revoked: Revocation[] } {
    return { members: [...this.members.values()].filter((m) => !this.revoked.has(m.peerId)), revoked: [...this.revoked.values()] };
  }

  snapshot(): MemberList {
    const { members, revoked } = this.list();
    return { t: 'members', mesh: this.mesh, members: members.slice(0, MEMBER_LIMITS.members), revoked: revoked.slice(0, MEMBER_LIMITS.revoked) };
  }

  /** A member showed itself (an advert): remember where. True when something worth telling changed. */
  seen(record: Omit<MemberRecord, 'seenAt'>, now = Date.now()): boolean {
    if (this.revoked.has(record.peerId)) return false;
    const known = this.members.get(record.peerId);
    const addresses = record.addresses.slice(0, MEMBER_LIMITS.addresses);
    const next: MemberRecord = { ...known, ...record, addresses, seenAt: now };
    this.members.set(record.peerId, next);
    const changed = !known || known.name !== next.name || known.reachable !== next.reachable || !sameAddresses(known.addresses, addresses);
    // A heartbeat's only news is the time: save it now and then, tell nobody.
    if (changed || now - (known?.seenAt ?? 0) > 60_000) this.scheduleSave();
    return changed;
  }

  /** Merges what a peer knows. Revocations need a valid signature. */
  merge(list: MemberList): Promise<MergeResult> {
    return this.mergeList(list, true);
  }

  private async mergeList(list: MemberList, save: boolean): Promise<MergeResult> {
    const result: MergeResult = { added: [], revoked: [], changed: false };
    if (list.mesh !== this.mesh) return result;
    for (const revocation of list.revoked) {
      if (this.revoked.has(revocation.peerId)) continue;
      if (!(await verifyRevocation(this.mesh, revocation))) {
        this.log.warn({ peer: revocation.peerId, by: revocation.by }, 'ignored a revocation whose signature does not verify');
        continue;
      }
      if (revocation.peerId === this.self) this.log.error({ by: revocation.by }, 'this agent was removed from the mesh');
      this.revoked.set(revocation.peerId, revocation);
      result.revoked.push(revocation.peerId);
      result.changed = true;
    }
    for (const record of list.members) {
      if (this.revoked.has(record.peerId)) continue;
      const known = this.members.get(record.peerId);
      if (known && known.seenAt >= record.seenAt) continue;
      if (record.peerId === this.self && known) continue;
      this.members.set(record.peerId, { ...known, ...record });
      if (!known) result.added.push(record.peerId);
      result.changed = true;
    }
    if (result.changed && save) this.scheduleSave();
    return result;
  }

  /** Removes a member for everyone: signed with this agent's identity so peers accept it. */
  async revoke(peerId: string, identity: PrivateKey): Promise<Revocation> {
    if (peerId === this.self) throw new MeshccError('usage', 'an agent cannot revoke itself; revoke it from another member');
    try {
      peerIdFromString(peerId);
    } catch {
      throw new MeshccError('usage', `'${peerId}' is not a peer id (meshcc members lists them)`);
    }
    const existing = this.revoked.get(peerId);
    if (existing) return existing;
    const at = Date.now();
    const signature = Buffer.from(await identity.sign(revocationBytes(this.mesh, peerId, at))).toString('base64');
    const revocation: Revocation = { peerId, by: this.self, at, signature };
    this.revoked.set(peerId, revocation);
    this.scheduleSave();
    return revocation;
  }

  private scheduleSave(): void {
    if (this.saveTimer) return;
    this.saveTimer = setTimeout(() => {
      this.saveTimer = undefined;
      this.saving = this.saving.then(() => this.save()).catch((err: Error) => this.log.warn({ err: err.message }, 'could not save the member list'));
    }, saveDelayMs(this.members.size));
    this.saveTimer.unref();
  }

  private async save(): Promise<void> {
    const data = JSON.stringify({ mesh: this.mesh, members: [...this.members.values()], revoked: [...this.revoked.values()] }, null, 1);
    const tmp = `${this.file}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
    await fs.writeFile(tmp, data, { mode: 0o600 });
    await fs.rename(tmp, this.file);
  }

  /** Writes what is pending now (on stop, and before the agent switches meshes). */
  async flush(): Promise<void> {
    if (this.saveTimer) {
      clearTimeout(this.saveTimer);
      this.saveTimer = undefined;
      this.saving = this.saving.then(() => this.save());
    }
    await this.saving;
  }
}

/** Stores a first member record for a mesh about to be joined (the inviter), replacing the old list. */
export async function writeInitialMembers(home: string, mesh: string, members: MemberRecord[], revoked: Revocation[] = []): Promise<void> {
  const file = path.join(home, MEMBERS_FILE);
  const tmp = `${file}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
  await fs.mkdir(home, { recursive: true, mode: 0o700 });
  await fs.writeFile(tmp, JSON.stringify({ mesh, members, revoked }, null, 1), { mode: 0o600 });
  await fs.rename(tmp, file);
}
