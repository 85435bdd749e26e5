// Anti-entropy that costs next to nothing when the tables agree. A full sync sends the whole
// table both ways (every member's card: over a megabyte at 1000 members with their toolchain
// ids); in a settled mesh the two tables are the same, so the periodic sync first compares a
// hash of them. Only when they differ does the other side send its (peer, incarnation, state)
// entries, and then each side sends the rows the other lacks or has older. Joins still send
// the whole table: a newcomer knows nobody.
import { createHash } from 'node:crypto';
import type { MemberUpdate } from '../../../protocol/swim-messages.js';
import { supersedes, type MemberState, type SwimTable } from './table.js';

export type DigestEntry = [peerId: string, incarnation: number, state: 0 | 1 | 2];

const STATES: MemberState[] = ['alive', 'suspect', 'dead'];

/** A hash of who this table lists (ourselves included), at which incarnation and state. Graves
 *  are left out: each agent forgets them on its own clock, which says nothing of the mesh. */
export function tableDigest(table: SwimTable): string {
  const rows: string[] = [];
  for (const [peerId, incarnation, state] of table.known()) if (state !== 'dead') rows.push(`${peerId} ${incarnation} ${state}\n`);
  rows.sort();
  const hash = createHash('sha256');
  for (const row of rows) hash.update(row);
  return hash.digest('base64url').slice(0, 32);
}

/** Everything this table knows, graves included (a grave that beats a listing must travel). */
export function digestEntries(table: SwimTable): DigestEntry[] {
  return Array.from(table.known(), ([peerId, incarnation, state]) => [peerId, incarnation, STATES.indexOf(state) as 0 | 1 | 2]);
}

export interface Reconciliation {
  /** Rows the other side lacks or has older (with their cards). */
  send: MemberUpdate[];
  /** Peers whose rows the other side has newer, cards needed. */
  want: string[];
  /** News that needs no card (a death, a suspicion of ourselves): apply as heard. */
  apply: MemberUpdate[];
}

/** What to exchange with a member whose entries are `theirs`. */
export function reconcile(table: SwimTable, theirs: DigestEntry[]): Reconciliation {
  const out: Reconciliation = { send: [], want: [], apply: [] };
  const seen = new Set<string>();
  for (const [peerId, incarnation, code] of theirs) {
    seen.add(peerId);
    const heard = { incarnation, state: STATES[code]! };
    const mine = table.knowledge(peerId);
    if (mine && supersedes(mine, heard)) {
      const row = table.row(peerId);
      if (row) out.send.push(row);
    } else if (!mine || supersedes(heard, mine)) {
      // A death, or news of ourselves (the table refutes it), needs no card.
      if (heard.state === 'dead' || peerId === table.selfId) out.apply.push({ peerId, ...heard });
      else out.want.push(peerId);
    }
  }
  // Members it does not know at all; not graves (it may have forgotten them, as it should).
  for (const [peerId, , state] of table.known()) {
    if (state === 'dead' || seen.has(peerId)) continue;
    const row = table.row(peerId);
    if (row) out.send.push(row);
  }
  return out;
}
