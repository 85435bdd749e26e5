// What the agent tells its monitor as jobs happen: one watch per compile (and per job run for
// a peer) that feeds the job log (page, terminal view) and the latency histograms (/metrics).
import { JobLog, type JobOutcome, type JobRecord } from './job-log.js';
import type { JobPhase, Metrics } from './metrics.js';

/** One compile's way through the agent, as the monitor wants to hear of it. */
export interface JobWatch {
  /** It starts running on that peer now, or on this machine. */
  placed(executor: string): void;
  ranHere(): void;
  phase(phase: JobPhase, ms: number): void;
  /** A remote result was compared with a local compile and matched. */
  verified(): void;
  end(route: JobOutcome, reason: string, ms: number): void;
}

export class JobMonitor {
  readonly log = new JobLog();

  constructor(
    private readonly metrics: Metrics | undefined,
    private readonly selfId: () => string | undefined,
  ) {}

  /** A compile of this agent's, not placed yet. */
  compile(id: string, source: string): JobWatch {
    return this.watch(this.log.start(id, source, this.selfId() ?? ''));
  }

  /** A job this agent runs for a peer. */
  served(id: string, source: string, client: string): JobWatch {
    return this.watch(this.log.start(id, source, client, this.selfId() ?? ''));
  }

  private watch(record: JobRecord): JobWatch {
    const { log, metrics } = this;
    let verified = false;
    return {
      placed: (executor) => log.placed(record, executor),
      ranHere: () => log.placed(record, this.selfId() ?? ''),
      phase: (phase, ms) => metrics?.phase(phase, ms),
      verified: () => (verified = true),
      end: (route, reason, ms) => {
        log.end(record, route, reason, verified);
        metrics?.job(route, ms);
      },
    };
  }
}
