// A member's end of /meshcc/report/1: one stream to the scheduler it follows (or to the
// candidate it asks to become one). It says hello, then sends its load when it changed and
// asks for the mesh's loads when someone looks; the scheduler answers with leases. A lease
// that is late is not a reason to leave: the link gives up only after several of the longest
// gaps seen so far, times the agent's own health (a busy member reads late, too).
import { MeshccError } from '../../protocol/errors.js';
import { parseMessage } from '../../protocol/messages.js';
import { REPORT_PROTOCOL, ReportFromScheduler, SWIM_LIMITS, type Leader, type LoadReport, type LoadRow, type MemberUpdate, type ReportFromMember } from '../../protocol/swim-messages.js';
import type { Logger } from '../log.js';
import { FramedStream } from '../mesh/framed-stream.js';
import type { MeshNode } from '../mesh/node.js';

/** A lease is overdue after LATE_FACTOR × the longest gap seen (at least LATE_FACTOR × its period). */
const LATE_FACTOR = 4;
const MIN_OVERDUE_MS = 4_000;

export interface ReportLinkEvents {
  lease: (term: number) => void;
  redirect: (leader: Leader) => void;
  /** Members that joined or died, from the scheduler. */
  news: (updates: MemberUpdate[]) => void;
  /** The stream ended (how: the peer closed it, a dial failed, or its leases stopped). */
  closed: (why: string) => void;
}

export class ReportLink {
  private framed?: FramedStream;
  private closed = false;
  private lastLease = 0;
  private longestGap = 0;
  private everyMs = 1000;
  private watchdog?: NodeJS.Timeout;
  private nextId = 1;
  /** Questions for the mesh's loads still unanswered: each gets the rows, or the link's end. */
  private readonly waiting = new Map<number, (answer: LoadRow[] | Error) => void>();
  /** Whether the target answered with a lease (it is the scheduler). */
  leased = false;

  constructor(
    readonly target: string,
    private readonly node: MeshNode,
    private readonly events: ReportLinkEvents,
    private readonly healthMultiplier: () => number,
    private readonly log: Logger,
  ) {}

  /** Opens the stream and says hello; events follow. */
  open(addresses: string[], hello: Extract<ReportFromMember, { t: 'hello' }>, timeoutMs: number): void {
    void (async () => {
      const signal = AbortSignal.timeout(timeoutMs);
      try {
        const stream = await this.node.openStream(this.target, REPORT_PROTOCOL, { signal, addresses });
        if (this.closed) {
          stream.abort(new MeshccError('closed', 'no longer wanted'));
          return;
        }
        this.framed = new FramedStream(stream, SWIM_LIMITS.frameBytes);
        await this.framed.send(hello);
        // The first answer must come in time; later ones are leases, judged by the watchdog.
        this.handle(parseMessage(ReportFromScheduler, await this.framed.receive(timeoutMs)));
        for (;;) {
          const { value } = await this.framed.read();
          if (this.closed) return;
          this.handle(parseMessage(ReportFromScheduler, value));
        }
      } catch (err) {
        this.end((err as Error).message);
      }
    })();
  }

  /** This member's load (when it changed). */
  sendLoad(report: LoadReport): void {
    if (!this.leased || !this.framed || this.closed) return;
    this.framed.sendSoon({ t: 'load', ...report }).catch(() => undefined);
  }

  /** Every member's last load, from the scheduler. */
  loads(timeoutMs = 3000): Promise<LoadRow[]> {
    if (!this.leased || !this.framed || this.closed) return Promise.reject(new MeshccError('no-scheduler', 'no link to the scheduler'));
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiting.delete(id);
        reject(new MeshccError('timeout', 'the scheduler did not answer'));
      }, timeoutMs);
      this.waiting.set(id, (answer) => {
        clearTimeout(timer);
        if (answer instanceof Error) reject(answer);
        else resolve(answer);
      });
      this.framed!.sendSoon({ t: 'loads?', id }).catch(() => undefined);
    });
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    clearTimeout(this.watchdog);
    this.giveUpWaiting('report link closed');
    this.framed?.abort(new MeshccError('closed', 'report link closed'));
  }

  private handle(message: ReportFromScheduler): void {
    if (message.t === 'lease') {
      const now = Date.now();
      if (this.lastLease) this.longestGap = Math.max(this.longestGap * 0.99, now - this.lastLease);
      this.lastLease = now;
      this.everyMs = message.everyMs;
      this.leased = true;
      this.arm();
      this.events.lease(message.term);
    } else if (message.t === 'redirect') {
      this.closed = true;
      this.giveUpWaiting('redirected to another scheduler');
      this.framed?.close().catch(() => undefined);
      this.events.redirect(message.leader);
    } else if (message.t === 'news') {
      this.events.news(message.updates);
    } else {
      this.waiting.get(message.id)?.(message.rows);
      this.waiting.delete(message.id);
    }
  }

  private arm(): void {
    clearTimeout(this.watchdog);
    const overdue = Math.max(MIN_OVERDUE_MS, LATE_FACTOR * Math.max(this.everyMs, this.longestGap)) * this.healthMultiplier();
    this.watchdog = setTimeout(() => {
      this.log.info({ scheduler: this.target, overdueMs: Math.round(overdue), health: this.healthMultiplier() - 1 }, 'no lease from the scheduler for too long');
      this.framed?.abort(new MeshccError('timeout', 'leases stopped'));
      this.end('leases stopped');
    }, Math.round(overdue));
    this.watchdog.unref();
  }

  /** A question the link can no longer answer fails now, not at its timeout: `meshcc status`
   *  waited 3 s for the loads of a scheduler that had just been killed. */
  private giveUpWaiting(why: string): void {
    const waiting = [...this.waiting.values()];
    this.waiting.clear();
    for (const answer of waiting) answer(new MeshccError('no-scheduler', why));
  }

  private end(why: string): void {
    if (this.closed) return;
    this.closed = true;
    clearTimeout(this.watchdog);
    this.giveUpWaiting(why);
    this.events.closed(why);
  }
}
