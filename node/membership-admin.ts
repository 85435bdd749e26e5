// `meshcc invite|join|members|revoke`, carried out by the agent: it holds the identity that
// signs, the mesh key, the member list, and the mesh node that must start again under another
// key when this machine joins another mesh.
import { MeshccError } from '../protocol/errors.js';
import type { MembersQuery } from '../protocol/messages.js';
import type { Logger } from './log.js';
import { setMeshKey } from './mesh/keys.js';
import { readInvitation } from './mesh/invite-token.js';
import { writeInitialMembers } from './mesh/membership.js';
import type { MeshService } from './mesh/mesh-service.js';

const DEFAULT_VALID_MS = 24 * 3_600_000;

export interface MembershipAdminOptions {
  home: string;
  mesh: () => MeshService | undefined;
  /** Stops the mesh, runs `change` (files of the home), starts the mesh again. */
  restartMesh: (change: () => Promise<void>) => Promise<void>;
  log: Logger;
}

export class MembershipAdmin {
  constructor(private readonly options: MembershipAdminOptions) {}

  private running(): MeshService {
    const mesh = this.options.mesh();
    if (!mesh?.membership) throw new MeshccError('mesh-not-started', 'the mesh is not running');
    return mesh;
  }

  async run(request: MembersQuery): Promise<Record<string, unknown>> {
    switch (request.op) {
      case 'list': {
        const mesh = this.running();
        const { members, revoked } = mesh.membership!.list();
        const status = mesh.status();
        const self = status.find((r) => r.self);
        // This agent is a member too, even before another member's list named it.
        if (self && !members.some((m) => m.peerId === self.peerId)) members.unshift({ peerId: self.peerId, name: self.name, addresses: self.addresses, seenAt: Date.now() });
        return { mesh: mesh.membership!.mesh, self: mesh.peerId, members, revoked, status };
      }
      case 'invite': {
        const validMs = request.validMs ?? DEFAULT_VALID_MS;
        const expiresAt = Date.now() + validMs;
        return { token: await this.running().invite(expiresAt), expiresAt };
      }
      case 'revoke': {
        if (!request.peer) throw new MeshccError('usage', 'revoke needs the peer id of the member to remove (meshcc members lists them)');
        await this.running().revoke(request.peer);
        return { revoked: request.peer };
      }
      case 'join':
        if (!request.token) throw new MeshccError('usage', 'join needs the invitation token (meshcc invite prints one)');
        return this.join(request.token, request.leave ?? false);
    }
  }

  private async join(token: string, leave: boolean): Promise<Record<string, unknown>> {
    const invitation = await readInvitation(token);
    const mesh = this.running();
    const current = mesh.membership!;
    const others = current.others().length;
    if (current.mesh !== invitation.mesh) {
      if (others > 0 && !leave) {
        throw new MeshccError(
          'token-other-mesh',
          `the invitation is for mesh ${invitation.mesh}, but this agent belongs to mesh ${current.mesh} with ${others} other member(s); add --leave to leave it and join the other`,
        );
      }
      this.options.log.info({ from: current.mesh, to: invitation.mesh }, 'joining another mesh');
      await this.options.restartMesh(async () => {
        await setMeshKey(this.options.home, Buffer.from(invitation.key).toString('hex'));
        await writeInitialMembers(this.options.home, invitation.mesh, [
          { peerId: invitation.inviter, name: invitation.name, addresses: invitation.addresses, seenAt: 0 },
        ]);
      });
    }
    const joined = this.running();
    let pending: string | undefined;
    try {
      await joined.presentInvitation(token, invitation);
    } catch (err) {
      // The membership is stored: the agent keeps dialling the inviter's addresses.
      if (!(err instanceof MeshccError) || err.code !== 'inviter-unreachable') throw err;
      pending = err.message;
    }
    return { mesh: invitation.mesh, inviter: invitation.inviter, inviterName: invitation.name, members: joined.membership!.list().members.length, ...(pending ? { pending } : {}) };
  }
}
