import path from 'node:path';
import { defineConfig } from 'vitest/config';
import { BaseSequencer, type TestSpecification } from 'vitest/node';

/** The files that take longest (builds of real projects, namespaces, containers), longest first. */
const SLOWEST = [
  'readme-quickstarts',
  'identical-builds',
  'container-image',
  'internet',
  'mesh-builds',
  'run-and-dns',
  'home-routers',
  'election',
  'remote',
  'service-quickstart',
  'kubernetes',
  'connection-chaos',
  'stream-truncation',
  'toolchain-shipping',
].map((name) => `${name}.test.ts`);

/** Starts the slowest files first, so that the workers end together. Without a record of
 *  earlier runs (a fresh clone, CI) vitest starts the biggest files first, and most of the
 *  slowest are small files that then start late (on the per-file durations of one full run,
 *  replayed on two workers: 1390 s in vitest's order, 1302 s in this one). */
class SlowestFirst extends BaseSequencer {
  override async sort(files: TestSpecification[]): Promise<TestSpecification[]> {
    const rank = (f: TestSpecification) => {
      const i = SLOWEST.indexOf(path.basename(f.moduleId));
      return i < 0 ? SLOWEST.length : i;
    };
    const sorted = await super.sort(files);
    return sorted.map((f, i) => ({ f, i })).sort((a, b) => rank(a.f) - rank(b.f) || a.i - b.i).map(({ f }) => f);
  }
}

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 120_000,
    hookTimeout: 120_000,
    pool: 'forks',
    // Two files at a time on 2 cores: one at a time takes over 15 minutes (a file alone keeps
    // 0.6-1.3 cores busy). Three were faster (fresh clone: 526 s against 567 s) but starved
    // the agents: the election test's failover, 0.1-0.2 s otherwise, took 3.03-3.08 s.
    maxWorkers: 2,
    sequence: { sequencer: SlowestFirst },
  },
});
