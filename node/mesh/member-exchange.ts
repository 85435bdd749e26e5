// Peer exchange of the member list (/meshcc/members/1) and admission with an invitation
// (/meshcc/join/1). Who is alive travels with the membership protocol (membership/); this list
// is what an agent remembers to find its way back, and the revocations: it goes to the peers
// connected now when it changes (the scheduler is connected to every member, so a change
// reaches everyone through it), and what arrives is merged and passed on.
import type { Connection, PeerId } from '@libp2p/interface';
import { ZodError } from 'zod';
import { MeshccError, ProtocolError } from '../../protocol/errors.js';
import { JOIN_PROTOCOL, JoinAnswer, JoinRequest, MEMBER_LIMITS, MEMBERS_PROTOCOL, MemberList } from '../../protocol/member-messages.js';
import type { Logger } from '../log.js';
import { FramedStream } from './framed-stream.js';
import { readInvitation, type Invitation } from './invite-token.js';
import type { MergeResult, Membership } from './membership.js';
import type { MeshNode } from './node.js';
import { dialOrder } from './reachability.js';

const EXCHANGE_TIMEOUT_MS = 10_000;
const BROADCAST_DELAY_MS = 200;

/** A member sent something that is not a valid message (worth a warning), as opposed to a
 *  stream that ended or broke before the message was in (peers come and go: debug). */
function malformed(err: unknown): boolean {
  return err instanceof ProtocolError || err instanceof ZodError;
}

/** A zod error's message is its issues as indented JSON: the first issue is enough for a log line. */
function oneLine(err: unknown): string {
  if (err instanceof ZodError) {
    const issue = err.issues[0];
    return issue ? `invalid ${issue.path.join('.') || 'message'}: ${issue.message}` : 'invalid message';
  }
  return (err as Error).message;
}

export interface MemberExchangeOptions {
  node: MeshNode;
  membership: Membership;
  log: Logger;
  /** A merge or an admission changed the list (revocations included). */
  onChanged: (result: MergeResult) => void;
}

export class MemberExchange {
  private broadcastTimer?: NodeJS.Timeout;

  constructor(private readonly options: MemberExchangeOptions) {}

  async start(): Promise<void> {
    const libp2p = this.options.node.libp2p;
    await libp2p.handle(MEMBERS_PROTOCOL, (stream) => void this.receive(new FramedStream(stream, MEMBER_LIMITS.frameBytes)), { runOnLimitedConnection: true });
    await libp2p.handle(JOIN_PROTOCOL, (stream, connection) => void this.admit(new FramedStream(stream, 64 * 1024), connection), { runOnLimitedConnection: true });
  }

  stop(): void {
    clearTimeout(this.broadcastTimer);
  }

  /** Tells every connected peer soon (changes arrive in bursts). */
  broadcast(): void {
    if (this.broadcastTimer) return;
    this.broadcastTimer = setTimeout(() => {
      this.broadcastTimer = undefined;
      for (const peer of this.options.node.connectedPeers()) void this.sendTo(peer);
    }, BROADCAST_DELAY_MS);
    this.broadcastTimer.unref();
  }

  private async sendTo(peer: PeerId): Promise<void> {
    const { node, membership, log } = this.options;
    if (membership.isRevoked(peer.toString())) return;
    let framed: FramedStream | undefined;
    try {
      framed = new FramedStream(await node.openStream(peer, MEMBERS_PROTOCOL, { signal: AbortSignal.timeout(EXCHANGE_TIMEOUT_MS) }), 16);
      await framed.send(membership.snapshot());
    } catch (err) {
      log.debug({ peer: peer.toString(), err: (err as Error).message }, 'could not send the member list');
    } finally {
      await framed?.close();
    }
  }

  private async receive(framed: FramedStream): Promise<void> {
    try {
      const list = MemberList.parse(await framed.receive(EXCHANGE_TIMEOUT_MS));
      const result = await this.options.membership.merge(list);
      if (result.changed) {
        this.options.onChanged(result);
        this.broadcast();
      }
    } catch (err) {
      const level = malformed(err) ? 'warn' : 'debug';
      this.options.log[level]({ err: oneLine(err) }, malformed(err) ? 'refused a member list' : 'a member list did not arrive');
    } finally {
      await framed.close();
    }
  }

  /** A newcomer presents its invitation: admitted when it is one of this mesh's, signed, unexpired. */
  private async admit(framed: FramedStream, connection: Connection): Promise<void> {
    const { membership, log } = this.options;
    const joiner = connection.remotePeer.toString();
    try {
      const request = JoinRequest.parse(await framed.receive(EXCHANGE_TIMEOUT_MS));
      let invitation: Invitation | undefined;
      let refusal: string | undefined;
      try {
        invitation = await readInvitation(request.token);
        if (invitation.mesh !== membership.mesh) refusal = `the invitation is for mesh ${invitation.mesh}; this agent belongs to mesh ${membership.mesh}`;
        else if (membership.isRevoked(invitation.inviter)) refusal = 'the member who issued the invitation was removed from the mesh';
      } catch (err) {
        refusal = (err as Error).message;
      }
      if (refusal || !invitation) {
        log.warn({ peer: joiner, why: refusal }, 'refused a join');
        await framed.send({ t: 'refused', message: refusal ?? 'refused' });
        return;
      }
      membership.seen({ peerId: joiner, name: request.name, addresses: [], invitedBy: invitation.inviter });
      log.info({ peer: joiner, name: request.name, invitedBy: invitation.inviter }, 'admitted a new member');
      await framed.send({ t: 'admitted', members: membership.snapshot() });
      this.options.onChanged({ added: [joiner], revoked: [], changed: true });
      this.broadcast();
    } catch (err) {
      log[malformed(err) ? 'warn' : 'debug']({ peer: joiner, err: oneLine(err) }, 'a join failed');
    } finally {
      await framed.close();
    }
  }

  /** Presents an invitation to its inviter (or any address it lists); merges the member list it
   *  gets back. Resolves with the address that answered. */
  async presentInvitation(token: string, invitation: Invitation, name: string): Promise<string> {
    const { node, membership, log } = this.options;
    const errors: string[] = [];
    for (const raw of dialOrder(invitation.addresses, undefined)) {
      const address = raw.includes('/p2p/') ? raw : `${raw}/p2p/${invitation.inviter}`;
      let framed: FramedStream | undefined;
      try {
        const peer = await node.dial(address, { signal: AbortSignal.timeout(5_000) });
        framed = new FramedStream(await node.openStream(peer, JOIN_PROTOCOL, { signal: AbortSignal.timeout(EXCHANGE_TIMEOUT_MS) }), MEMBER_LIMITS.frameBytes);
        await framed.send({ t: 'join', token, name });
        const answer = JoinAnswer.parse(await framed.receive(EXCHANGE_TIMEOUT_MS));
        if (answer.t === 'refused') throw new MeshccError('join-refused', `the mesh refused this invitation: ${answer.message}`);
        const result = await membership.merge(answer.members);
        this.options.onChanged(result);
        log.info({ inviter: invitation.inviter, address, members: answer.members.members.length }, 'admitted to the mesh');
        return address;
      } catch (err) {
        if (err instanceof MeshccError && err.code === 'join-refused') throw err;
        errors.push(`${address}: ${(err as Error).message}`);
      } finally {
        await framed?.close();
      }
    }
    throw new MeshccError('inviter-unreachable', `none of the invitation's addresses answered (${errors.join('; ') || 'it lists none'})`);
  }
}
