// Which agent is the scheduler: the rules every agent applies alike (the moves that carry them
// out, over the report stream and the membership protocol, are in leadership.ts).
//
// - Rank: the highest protocol version first, then the longest-running agent (its card's
//   startedAt), then the smallest peer id. Every member may become scheduler.
// - A claim is (term, peer). Everyone follows the claim with the highest term; between equal
//   terms (a partition healing, two lone agents meeting) the better-ranked claimant wins and
//   the other steps down. Claims travel with every membership message and every lease.
// - A scheduler is deposed only by one who could not reach it: its connection closed and a
//   fresh dial failed, its leases stopped for far longer than they usually take, or the
//   membership declared it dead. That claim is then remembered as lost, so old news of it
//   is not followed again.
// - Without a scheduler, the best-ranked member that answers claims the next term; the
//   others follow it. Terms only go up; a claim is never preempted by a better-ranked newcomer.
import type { Leader } from '../../protocol/swim-messages.js';

export interface Candidate {
  peerId: string;
  protocolVersion: number;
  startedAt: number;
}

export interface ElectionState {
  term: number;
  /** the scheduler's peer id, undefined while there is none */
  scheduler?: string;
}

/** Orders candidates: better first. */
export function compareRank(a: Candidate, b: Candidate): number {
  if (a.protocolVersion !== b.protocolVersion) return b.protocolVersion - a.protocolVersion;
  if (a.startedAt !== b.startedAt) return a.startedAt - b.startedAt;
  return a.peerId < b.peerId ? -1 : a.peerId > b.peerId ? 1 : 0;
}

const LOST_REMEMBERED = 64;

export class Election {
  private term = 0;
  private scheduler: string | undefined;
  private readonly lost: string[] = [];

  /** `candidates`: the members listed now (this agent not included). */
  constructor(
    private readonly self: Candidate,
    /** whether this agent may claim; one that may not ranks below everyone */
    private readonly eligible: boolean,
    private readonly candidates: () => Candidate[],
  ) {}

  state(): ElectionState {
    return { term: this.term, ...(this.scheduler ? { scheduler: this.scheduler } : {}) };
  }

  leader(): Leader {
    return { term: this.term, peerId: this.scheduler ?? '' };
  }

  get isScheduler(): boolean {
    return this.scheduler === this.self.peerId;
  }

  /** A claim heard from someone; true when this agent now follows it. */
  observe(claim: Leader): boolean {
    if (!claim.peerId || claim.term < this.term || this.lost.includes(key(claim))) return false;
    if (claim.peerId === this.scheduler) {
      if (claim.term === this.term) return false;
    } else if (claim.term === this.term && this.scheduler) {
      const claimant = this.candidate(claim.peerId);
      const current = this.candidate(this.scheduler);
      // A claimant we know nothing of yet cannot be ranked: wait for its card.
      if (!claimant || (current && compareRank(claimant, current) >= 0)) return false;
    }
    this.term = claim.term;
    this.scheduler = claim.peerId;
    return true;
  }

  /** The scheduler we followed cannot be reached: forget it (and never follow that claim again). */
  lose(claim: Leader): boolean {
    if (!claim.peerId || claim.peerId === this.self.peerId) return false;
    this.lost.push(key(claim));
    if (this.lost.length > LOST_REMEMBERED) this.lost.shift();
    if (this.scheduler !== claim.peerId || this.term !== claim.term) return false;
    this.scheduler = undefined;
    return true;
  }

  /** Someone who reaches that scheduler vouches for it: it may be followed again. */
  forgive(claim: Leader): void {
    const k = key(claim);
    for (let i = this.lost.indexOf(k); i >= 0; i = this.lost.indexOf(k)) this.lost.splice(i, 1);
  }

  /** Whether a claim was given up as lost. */
  isLost(claim: Leader): boolean {
    return this.lost.includes(key(claim));
  }

  /** Takes the next term. */
  claim(): void {
    this.term += 1;
    this.scheduler = this.self.peerId;
  }

  /** A claim with a higher term, or an equal one by a better-ranked member, exists: step down to it. */
  stepDown(claim: Leader): boolean {
    return this.isScheduler && this.observe(claim);
  }

  /** Members ranked above this agent, best first, except the one whose claim at this term was lost. */
  betterRanked(): Candidate[] {
    const lostNow = new Set(this.lost.filter((k) => Number(k.slice(0, k.indexOf(' '))) >= this.term).map((k) => k.slice(k.indexOf(' ') + 1)));
    return this.candidates()
      .filter((c) => (!this.eligible || compareRank(c, this.self) < 0) && !lostNow.has(c.peerId))
      .sort(compareRank);
  }

  /** Who would lead next: the best-ranked member other than the scheduler (this agent included). */
  successor(): string | undefined {
    const all = this.eligible ? [this.self, ...this.candidates()] : this.candidates();
    return all.filter((c) => c.peerId !== this.scheduler).sort(compareRank)[0]?.peerId;
  }

  private candidate(peerId: string): Candidate | undefined {
    if (peerId === this.self.peerId) return this.self;
    return this.candidates().find((c) => c.peerId === peerId);
  }
}

function key(claim: Leader): string {
  return `${claim.term} ${claim.peerId}`;
}
