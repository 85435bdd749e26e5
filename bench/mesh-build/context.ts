// What every phase of the benchmark needs to know about the run, passed as one value so that
// the meshcc, distcc and icecream phases cannot each pick a different tree, path or -j.
import path from 'node:path';
import type { Project } from './projects.js';

export interface BenchContext {
  name: string;
  project: Project;
  /** The build path (under BUILD_ROOT): every build's fresh copy of the configured tree lands here. */
  tree: string;
  /** The configured tree, copied for each build. */
  template: string;
  /** The plain build's tree, kept for the comparisons. */
  plainTree: string;
  logs: string;
  /** make's -j of the distributed builds (in h0). */
  jobs: number;
  env: NodeJS.ProcessEnv;
  /** Compiles of one build: from the capture pass where it ran, else the plain build's objects. */
  compileUnits: number;
  compileUnitsFrom: string;
}

export function logPath(ctx: BenchContext, file: string): string {
  return path.join(ctx.logs, file);
}
