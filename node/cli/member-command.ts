// `meshcc invite`, `meshcc join TOKEN`, `meshcc members`, `meshcc revoke PEER`: membership,
// carried out by the running agent. `join` without an agent checks the token and stores the
// membership, so the agent joins when it starts.
import type { Command } from 'commander';
import { MeshccError } from '../../protocol/errors.js';
import type { MemberRecord, Revocation } from '../../protocol/member-messages.js';
import { PROTOCOL_VERSION } from '../../protocol/messages.js';
import { meshccHome, socketPath } from '../config.js';
import type { AgentStatus } from '../mesh/mesh-service.js';
import { query } from './query.js';

async function members(request: Record<string, unknown>): Promise<Record<string, unknown>> {
  const reply = await query(socketPath(), { t: 'members', v: PROTOCOL_VERSION, ...request });
  if (reply.t === 'error') throw new MeshccError(String(reply.code), String(reply.message));
  return reply;
}

function reachability(reachable: boolean | undefined): string {
  return reachable === undefined ? '?' : reachable ? 'yes' : 'no';
}

function formatMembers(reply: { self: string; members: MemberRecord[]; revoked: Revocation[]; status: AgentStatus[] }): string {
  const live = new Map(reply.status.map((s) => [s.peerId, s]));
  const header = ['', 'name', 'peer', 'link', 'reachable', 'last seen', 'invited by'];
  const rows = reply.members.map((m) => [
    m.peerId === reply.self ? '*' : '',
    m.name || '?',
    m.peerId,
    live.get(m.peerId)?.link ?? 'none',
    reachability(live.get(m.peerId)?.reachable ?? m.reachable),
    m.seenAt ? new Date(m.seenAt).toISOString().replace(/\.\d+Z$/, 'Z') : '-',
    m.invitedBy ? `…${m.invitedBy.slice(-8)}` : '-',
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: string[]) => cells.map((c, i) => c.padEnd(widths[i]!)).join('  ').trimEnd();
  const revoked = reply.revoked.map((r) => `revoked ${r.peerId} by …${r.by.slice(-8)} at ${new Date(r.at).toISOString()}`);
  return `${[line(header), ...rows.map(line), ...revoked].join('\n')}\n`;
}

async function joinWithoutAgent(token: string): Promise<void> {
  const [{ readInvitation }, { setMeshKey }, { writeInitialMembers }] = await Promise.all([
    import('../mesh/invite-token.js'),
    import('../mesh/keys.js'),
    import('../mesh/membership.js'),
  ]);
  const invitation = await readInvitation(token);
  const home = meshccHome();
  await setMeshKey(home, Buffer.from(invitation.key).toString('hex'));
  await writeInitialMembers(home, invitation.mesh, [{ peerId: invitation.inviter, name: invitation.name, addresses: invitation.addresses, seenAt: 0 }]);
  process.stdout.write(`stored the membership of mesh ${invitation.mesh} (invited by ${invitation.name}); the agent joins it when it starts (meshcc agent, or meshcc service install)\n`);
}

export function addMemberCommands(program: Command): void {
  program
    .command('invite')
    .description('print a one-line token that lets another machine join this mesh (meshcc join TOKEN)')
    .option('--valid <duration>', 'how long the token works: 30m, 12h, 7d', '24h')
    .action(async (opts: { valid: string }) => {
      const { parseDuration } = await import('../mesh/invite-token.js');
      const reply = await members({ op: 'invite', validMs: parseDuration(opts.valid) });
      process.stdout.write(`${String(reply.token)}\n`);
      process.stderr.write(`valid until ${new Date(Number(reply.expiresAt)).toISOString()}; on the other machine: meshcc join <token>\n`);
    });

  program
    .command('join')
    .description('join the mesh of an invitation token; the agent rejoins by itself after restarts')
    .argument('<token>', 'the token printed by meshcc invite')
    .option('--leave', 'leave the mesh this agent belongs to now')
    .action(async (token: string, opts: { leave?: boolean }) => {
      let reply: Record<string, unknown>;
      try {
        reply = await members({ op: 'join', token, leave: opts.leave ?? false });
      } catch (err) {
        if (err instanceof MeshccError && err.code === 'no-agent') return joinWithoutAgent(token);
        throw err;
      }
      if (reply.pending) {
        process.stdout.write(`stored the membership of mesh ${String(reply.mesh)}, but ${String(reply.inviterName)} did not answer yet (${String(reply.pending)}); the agent keeps trying\n`);
        return;
      }
      process.stdout.write(`joined mesh ${String(reply.mesh)} through ${String(reply.inviterName)}; ${Number(reply.members)} member(s) known\n`);
    });

  program
    .command('members')
    .description('the members of this mesh (also those not connected now) and the revoked ones')
    .option('--json', 'machine-readable output')
    .action(async (opts: { json?: boolean }) => {
      const reply = await members({ op: 'list' });
      process.stdout.write(opts.json ? `${JSON.stringify({ mesh: reply.mesh, self: reply.self, members: reply.members, revoked: reply.revoked }, null, 2)}\n` : formatMembers(reply as never));
    });

  program
    .command('revoke')
    .description('remove a member for everyone: no member accepts its connections any more')
    .argument('<peer>', 'its peer id (meshcc members)')
    .action(async (peer: string) => {
      await members({ op: 'revoke', peer });
      process.stdout.write(`revoked ${peer}; every member refuses it from now on (if its token may have leaked further, rotate the key: see the README)\n`);
    });
}
