// The election's moves (its rules: election.ts). A follower keeps one report stream to its
// scheduler; when that stream ends it dials once more, and only when that fails too does it
// give the scheduler up and look for the best-ranked member that answers. That member claims
// the next term (it lost the scheduler too) and the others follow it: after a SIGKILL every
// follower's connection closes at once, so the mesh agrees within a few round trips, without
// waiting for any timeout. Claims also travel with every membership message, so a partition
// that heals, or a lone agent that joins, ends with the better claim.
import type { LoadReport, Leader, MemberUpdate } from '../../protocol/swim-messages.js';
import type { Logger } from '../log.js';
import type { SwimService } from '../mesh/membership/swim-service.js';
import type { MeshNode } from '../mesh/node.js';
import { Election, type Candidate, type ElectionState } from './election.js';
import { ReportLink } from './report-link.js';
import { ReportServer } from './report-server.js';
import { LoadTable } from './load-table.js';

const SEEK_PING_MS = 1000;
const RESEEK_MS = 250;
/** How long a candidate asked during a failover waits for the election to settle before answering. */
const HELLO_SETTLE_MS = 2000;
const LINK_TIMEOUT_MS = 3000;
/** Joins and deaths are passed on in one frame per this long: more in a larger mesh, where a
 *  rollout (a DaemonSet's thousand pods) brings many joins a second and each frame goes to every
 *  follower. */
function newsCoalesceMs(followers: number): number {
  return Math.min(1000, Math.max(100, followers / 2));
}
/** A candidate whose hello failed is not asked again for this long. */
const FAILED_MS = 5000;
/** How long a candidate waits for better-ranked members that are listed but do not answer. */
const SEEK_PATIENCE_MS = 20_000;
/** Better-ranked members a candidate probes before it claims. */
const SEEK_ASKED = 3;
const STANDBY_EVERY_MS = 10_000;

export interface LeadershipOptions {
  node: MeshNode;
  swim: SwimService;
  self: Candidate;
  /** Whether this agent may claim (a member that may not only follows). */
  candidate: boolean;
  log: Logger;
  /** This agent's load now. */
  load: () => LoadReport;
  /** The scheduler or the term changed. */
  onChanged: (state: ElectionState) => void;
  /** A member's load arrived, or its report stream ended (this agent is the scheduler). */
  onLoad: (peerId: string) => void;
}

export class Leadership {
  readonly election: Election;
  readonly loads = new LoadTable();
  private readonly server: ReportServer;
  private link?: ReportLink;
  private seeking = false;
  private readonly introduced = new WeakSet<ReportLink>();
  /** Candidates whose hello failed lately (when): asked again only after FAILED_MS. */
  private readonly failed = new Map<string, number>();
  private running = false;
  private reseek?: NodeJS.Timeout;
  private lastSentLoad?: LoadReport;
  private news: MemberUpdate[] = [];
  private newsTimer?: NodeJS.Timeout;
  private standbyTimer?: NodeJS.Timeout;
  /** Bumped when the member list changes: the successor is worked out again only then. */
  private tableVersion = 0;
  private successorMemo?: { key: string; peerId?: string };

  constructor(private readonly options: LeadershipOptions) {
    const { swim } = options;
    this.election = new Election(options.self, options.candidate, () =>
      swim.table
        .live()
        .filter((m) => m.card.candidate !== false)
        .map((m) => ({ peerId: m.card.peerId, protocolVersion: m.card.protocolVersion, startedAt: m.card.startedAt })),
    );
    this.server = new ReportServer({
      node: options.node,
      log: options.log,
      answer: (hello, from) => this.answer(hello, from),
      onLoad: (peerId, report) => {
        this.loads.set(peerId, report);
        options.onLoad(peerId);
      },
      onGone: (peerId) => {
        this.loads.gone(peerId);
        options.onLoad(peerId);
        // A member that crashed refuses the probe: it leaves every view now, not after a suspicion.
        swim.check(peerId);
      },
      rows: () => this.loads.rows(),
    });
    for (const event of ['joined', 'left', 'changed'] as const) swim.table.on(event, () => this.tableVersion++);
    swim.table.on('left', (member) => {
      const state = this.election.state();
      if (member.card.peerId === state.scheduler) this.lose('the membership declared it dead');
      this.pass({ peerId: member.card.peerId, state: 'dead', incarnation: member.incarnation });
    });
    swim.table.on('joined', (member) => this.pass({ peerId: member.card.peerId, state: 'alive', incarnation: member.incarnation, card: member.card }));
  }

  async start(): Promise<void> {
    this.running = true;
    await this.server.start();
    this.reconcile();
    this.standbyTimer = setInterval(() => this.keepStandby(), STANDBY_EVERY_MS);
    this.standbyTimer.unref();
  }

  /** The member that would lead next: its connection is kept, so a failover needs no handshakes.
   *  Asked for every connection each probe period (which to keep open): ranking the whole
   *  member list each time cost the scheduler O(n² log n) a period. */
  get successor(): string | undefined {
    const key = `${this.tableVersion} ${this.election.state().scheduler ?? ''}`;
    if (this.successorMemo?.key !== key) this.successorMemo = { key, peerId: this.election.successor() };
    return this.successorMemo.peerId;
  }

  private keepStandby(): void {
    const next = this.successor;
    if (!next || next === this.options.self.peerId || !this.election.state().scheduler) return;
    if (!this.options.node.connectedPeerIds().has(next)) void this.options.swim.ping(next);
  }

  async stop(): Promise<void> {
    this.running = false;
    clearTimeout(this.reseek);
    clearTimeout(this.newsTimer);
    clearInterval(this.standbyTimer);
    this.link?.close();
    await this.server.stop();
  }

  get followers(): number {
    return this.server.followerCount;
  }

  leader(): Leader {
    return this.election.leader();
  }

  /** A claim heard with a membership message. */
  heard(claim: Leader): void {
    if (this.election.observe(claim)) this.changed();
  }

  /** This agent's load changed: the scheduler hears of it (coalesced by the caller). */
  loadChanged(): void {
    const load = this.options.load();
    if (this.election.isScheduler) {
      this.loads.set(this.options.self.peerId, load);
      return;
    }
    if (this.lastSentLoad && sameLoad(this.lastSentLoad, load)) return;
    if (this.link?.leased) {
      this.link.sendLoad(load);
      this.lastSentLoad = load;
    }
  }

  /** Every member's last load: this agent's own table when it is the scheduler, else the scheduler's. */
  async meshLoads(): Promise<ReturnType<LoadTable['rows']>> {
    if (this.election.isScheduler) {
      this.loads.set(this.options.self.peerId, this.options.load());
      return this.loads.rows();
    }
    if (!this.link?.leased) return [];
    return this.link.loads();
  }

  /** As the scheduler, passes joins and deaths to every follower, a few at a time. */
  private pass(update: MemberUpdate): void {
    if (!this.election.isScheduler) return;
    this.news.push(update);
    this.newsTimer ??= setTimeout(() => {
      this.newsTimer = undefined;
      const news = this.news.splice(0, this.news.length);
      if (this.election.isScheduler) this.server.broadcast(news);
    }, newsCoalesceMs(this.server.followerCount));
  }

  private changed(): void {
    const state = this.election.state();
    if (state.scheduler) this.unansweredSince = undefined;
    this.options.log.info({ term: state.term, scheduler: state.scheduler, self: this.election.isScheduler }, this.election.isScheduler ? 'this agent is the scheduler' : state.scheduler ? 'following a scheduler' : 'no scheduler');
    if (this.election.isScheduler) {
      this.loads.set(this.options.self.peerId, this.options.load());
      this.server.lead(state.term, () => this.leaseEveryMs());
      // A new term is told at once to every member connected here (as the successor, that is
      // all of them), rather than left to gossip (log2(n) probe periods: ~10 s for 40 members).
      this.options.swim.announce();
    } else this.server.dismiss();
    this.options.onChanged(state);
    this.reconcile();
  }

  /** Leases are rarer in a large mesh: the scheduler's writes stay bounded. */
  private leaseEveryMs(): number {
    return Math.min(5000, Math.max(2000, this.server.followerCount * 2));
  }

  private reconcile(): void {
    if (!this.running) return;
    const { scheduler } = this.election.state();
    if (this.election.isScheduler) {
      this.link?.close();
      this.link = undefined;
      return;
    }
    if (scheduler) {
      if (this.link?.target !== scheduler) this.follow(scheduler, false);
      return;
    }
    void this.seek();
  }

  /** Opens the report stream to a scheduler (or, tentatively, to the candidate that should become one). */
  private follow(target: string, tentative: boolean, retry = false): void {
    this.link?.close();
    const claim = this.election.leader();
    const member = this.options.swim.table.get(target);
    const link: ReportLink = new ReportLink(
      target,
      this.options.node,
      {
        lease: (term) => {
          if (this.link !== link) return;
          // A new link: one probe of the scheduler carries our card to it (and on to everyone).
          if (!this.introduced.has(link)) {
            this.introduced.add(link);
            void this.options.swim.ping(target);
          }
          this.lastSentLoad = undefined;
          if (this.election.observe({ term, peerId: target })) this.changed();
          else if (this.election.state().scheduler !== target) this.reconcile();
          this.loadChanged();
        },
        news: (updates) => this.options.swim.hear(updates, target),
        redirect: (leader) => {
          if (this.link !== link) return;
          this.link = undefined;
          // It reaches the scheduler we gave up: ours was a bad link, not a dead scheduler.
          if (leader.peerId && this.election.isLost(leader)) this.election.forgive(leader);
          if (leader.peerId && leader.peerId !== this.options.self.peerId && this.election.observe(leader)) this.changed();
          else this.later();
        },
        closed: (why) => {
          if (this.link !== link) return;
          this.link = undefined;
          if (tentative) this.failed.set(target, Date.now());
          if (tentative || this.election.state().scheduler !== target) return this.later();
          if (!retry) return this.follow(target, false, true);
          this.lose(why);
          this.options.swim.check(target);
        },
      },
      () => this.options.swim.health.multiplier,
      this.options.log,
    );
    this.link = link;
    const lost = tentative ? this.lostClaim : undefined;
    link.open(member?.card.addresses ?? [], { t: 'hello', term: claim.term, ...(lost ? { lost } : {}) }, Math.round(LINK_TIMEOUT_MS * this.options.swim.health.multiplier));
  }

  private lostClaim?: Leader;
  /** Since when no better-ranked member answered this agent's seek, while some are still listed. */
  private unansweredSince?: number;

  /** The scheduler cannot be reached: give it up and find the next. */
  private lose(why: string): void {
    const claim = this.election.leader();
    if (!this.election.lose(claim)) return;
    this.lostClaim = claim;
    this.options.log.info({ scheduler: claim.peerId, term: claim.term, why }, 'lost the scheduler');
    this.link?.close();
    this.link = undefined;
    this.changed();
  }

  private later(): void {
    clearTimeout(this.reseek);
    if (!this.running) return;
    this.reseek = setTimeout(() => this.reconcile(), RESEEK_MS);
    this.reseek.unref();
  }

  /** Without a scheduler. A candidate claims when no better-ranked member answers a probe, else
   *  asks the best that does; a member that may not lead asks the best-ranked candidate whose
   *  hello did not fail lately (a dead one refuses at once, and the next is asked). */
  private async seek(): Promise<void> {
    if (this.seeking || !this.running) return;
    this.seeking = true;
    try {
      const now = Date.now();
      for (const [peer, at] of this.failed) if (now - at > FAILED_MS) this.failed.delete(peer);
      const better = this.election.betterRanked().filter((c) => !this.failed.has(c.peerId));
      if (!this.options.candidate) {
        if (better[0]) this.follow(better[0].peerId, true);
        else this.later();
        return;
      }
      const asked = better.slice(0, SEEK_ASKED);
      const answers = await Promise.all(asked.map((c) => this.options.swim.ping(c.peerId, Math.max(SEEK_PING_MS, this.options.swim.health.probeTimeoutMs()))));
      if (this.election.state().scheduler || !this.running) return this.reconcile();
      const best = asked.find((_, i) => answers[i] !== undefined);
      if (best) {
        this.unansweredSince = undefined;
        return this.follow(best.peerId, true);
      }
      // A better-ranked member that did not answer in time but is still listed may only be slow
      // (every agent wakes at once after a scheduler dies, on cores that are busy): a late answer
      // is no proof. Claim only when each one asked is gone from the membership (its address
      // refused the connection: the process is gone; or its suspicion ran out); else look again.
      // A fixed 1 s here let 8 of 40 agents on one 2-core machine claim the same term at once.
      // (Members listed here that never answer from here, behind a router, say, are waited for
      // only so long: then this agent claims, and the better-ranked claim wins where they meet.)
      this.unansweredSince ??= now;
      const patient = now - this.unansweredSince < SEEK_PATIENCE_MS * this.options.swim.health.multiplier;
      if (patient && asked.some((c) => this.options.swim.table.get(c.peerId))) return this.later();
      // (changed() forgets unansweredSince: there is a scheduler now.)
      this.election.claim();
      this.changed();
    } finally {
      this.seeking = false;
    }
  }

  /** A member asks this agent to lead (or to say who does). */
  private async answer(hello: { term: number; lost?: Leader }, from: string): Promise<{ lease: number } | { redirect: Leader }> {
    const deadline = Date.now() + HELLO_SETTLE_MS;
    for (;;) {
      const state = this.election.state();
      if (this.election.isScheduler) return { lease: state.term };
      if (!this.options.candidate && !state.scheduler) return { redirect: { term: state.term, peerId: '' } };
      const lostSame = hello.lost && hello.lost.peerId === state.scheduler && hello.lost.term === state.term;
      // It lost our scheduler while our own link to it still holds: send it back there.
      if (state.scheduler && (!lostSame || this.link?.leased)) return { redirect: this.election.leader() };
      if (lostSame && state.scheduler && !this.link?.leased) this.lose(`${from} could not reach it`);
      if (!state.scheduler) void this.seek();
      if (Date.now() > deadline) return { redirect: { term: state.term, peerId: '' } };
      await new Promise((r) => setTimeout(r, 50));
    }
  }
}

function sameLoad(a: LoadReport, b: LoadReport): boolean {
  return (
    a.slots === b.slots &&
    a.slotsUsed === b.slotsUsed &&
    Math.abs(a.load - b.load) < 0.5 &&
    Math.abs(a.freeMemoryBytes - b.freeMemoryBytes) < a.freeMemoryBytes * 0.1 &&
    JSON.stringify(a.activity) === JSON.stringify(b.activity)
  );
}
