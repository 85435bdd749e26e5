// What the agent did with every compile, for `meshcc stats`.

export type Route = 'local' | 'job' | 'fallback';

interface RouteStats {
  jobs: number;
  ms: number;
  byReason: Record<string, number>;
}

export interface StatsSnapshot {
  startedAt: string;
  routes: Record<Route, RouteStats>;
  jobRoute: { scanMs: number; hashMs: number; executeMs: number; inputFiles: number; inputBytes: number };
  hashing: { filesHashed: number; bytesHashed: number; cacheHits: number };
  store: { files: number; bytes: number; maxBytes: number };
  slots: { local: number; localInUse: number; executor: number; executorInUse: number; executorUnavailable?: string };
}

export class Stats {
  readonly startedAt = new Date().toISOString();
  readonly routes: Record<Route, RouteStats> = {
    local: { jobs: 0, ms: 0, byReason: {} },
    job: { jobs: 0, ms: 0, byReason: {} },
    fallback: { jobs: 0, ms: 0, byReason: {} },
  };
  readonly jobRoute = { scanMs: 0, hashMs: 0, executeMs: 0, inputFiles: 0, inputBytes: 0 };

  record(route: Route, reason: string, ms: number): void {
    const r = this.routes[route];
    r.jobs++;
    r.ms += ms;
    r.byReason[reason] = (r.byReason[reason] ?? 0) + 1;
  }
}
