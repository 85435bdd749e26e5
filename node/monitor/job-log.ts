// Every compile this agent sees, as it happens, for the monitor page and `meshcc top`: its own
// compiles (wherever they run) and the jobs it runs for peers. Recording is on the job path,
// so it only allocates one record and appends it; everything else (frames, rates, lanes) is
// done later by whoever reads, and only while someone reads.
import type { BuildWindow } from './frame.js';

/** Where a job ended up: the client ran it (local), this agent's executor (job), a peer
 *  (remote), the client after a failure (fallback), or this agent for a peer (served). */
export type JobOutcome = 'local' | 'job' | 'remote' | 'fallback' | 'served' | 'cache';

export interface JobRecord {
  /** Changes whenever the record does: a reader asks for what changed after the last seq it saw. */
  seq: number;
  id: string;
  source: string;
  /** peer id of the agent whose build it is, and of the one running it (empty until placed) */
  client: string;
  executor: string;
  /** ms since the epoch: when the agent got it, when it started running where it runs, when it ended */
  startedAt: number;
  ranAt?: number;
  endedAt?: number;
  route?: JobOutcome;
  reason?: string;
  /** a remote result that was compared with a local compile */
  verified?: boolean;
}

/** A build is a run of jobs with no pause longer than this between them. */
export const BUILD_GAP_MS = 5_000;
/** Jobs kept for the timeline of a build; a longer build keeps its latest ones. */
const BUILD_JOBS = 20_000;
/** Records changed since a reader last looked, kept for a reader that looks rarely. */
const CHANGED_KEPT = 50_000;


export class JobLog {
  private seq = 0;
  private running = 0;
  private lastActivity = 0;
  private buildNumber = 0;
  private buildStartedAt = 0;
  private buildJobs: JobRecord[] = [];
  private changed: JobRecord[] = [];
  /** jobs ended since the agent started: started, and by outcome */
  readonly totals: Record<JobOutcome, number> = { local: 0, job: 0, remote: 0, fallback: 0, served: 0, cache: 0 };

  constructor(private readonly now: () => number = Date.now) {}

  start(id: string, source: string, client: string, executor = ''): JobRecord {
    const at = this.now();
    if (this.running === 0 && (this.buildNumber === 0 || at - this.lastActivity > BUILD_GAP_MS)) {
      this.buildNumber++;
      this.buildStartedAt = at;
      this.buildJobs = [];
    }
    this.running++;
    this.lastActivity = at;
    const record: JobRecord = { seq: ++this.seq, id, source, client, executor, startedAt: at, ranAt: executor ? at : undefined };
    if (this.buildJobs.length >= BUILD_JOBS) this.buildJobs.splice(0, BUILD_JOBS / 4);
    this.buildJobs.push(record);
    this.touch(record);
    return record;
  }

  /** It starts running on `executor` now (again, after a retry elsewhere). */
  placed(record: JobRecord, executor: string): void {
    record.executor = executor;
    record.ranAt = this.now();
    this.touch(record);
  }

  end(record: JobRecord, route: JobOutcome, reason: string, verified?: boolean): void {
    if (record.endedAt !== undefined) return;
    record.endedAt = this.lastActivity = this.now();
    record.route = route;
    record.reason = reason;
    if (verified) record.verified = true;
    record.ranAt ??= record.startedAt;
    this.running--;
    this.totals[route]++;
    this.touch(record);
  }

  get runningCount(): number {
    return this.running;
  }

  build(): BuildWindow | undefined {
    if (this.buildNumber === 0) return undefined;
    return { number: this.buildNumber, startedAt: this.buildStartedAt, endedAt: this.running === 0 ? this.lastActivity : undefined };
  }

  /** The current (or last) build's jobs, oldest first. */
  buildRecords(): readonly JobRecord[] {
    return this.buildJobs;
  }

  /** Records changed since the last call (each once), for a reader that pushes changes on. */
  takeChanged(): JobRecord[] {
    const taken = this.changed;
    this.changed = [];
    if (taken.length < 2) return taken;
    const seen = new Set<JobRecord>();
    const unique: JobRecord[] = [];
    for (let i = taken.length - 1; i >= 0; i--) {
      const r = taken[i]!;
      if (!seen.has(r)) {
        seen.add(r);
        unique.push(r);
      }
    }
    return unique.reverse();
  }

  private touch(record: JobRecord): void {
    record.seq = ++this.seq;
    if (this.changed.length >= CHANGED_KEPT) this.changed.splice(0, CHANGED_KEPT / 2);
    this.changed.push(record);
  }
}

const SOURCE_SUFFIX = /\.(c|cc|cp|cpp|cxx|c\+\+|C|m|mm|i|ii|s|S|sx)$/;

/** The source file named in a compiler's arguments, for display. */
export function sourceOf(argv: readonly string[]): string {
  for (let i = argv.length - 1; i > 0; i--) {
    const arg = argv[i]!;
    if (!arg.startsWith('-') && SOURCE_SUFFIX.test(arg) && argv[i - 1] !== '-o') return arg;
  }
  return argv[0] ?? '';
}
