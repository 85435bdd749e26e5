import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll } from 'vitest';
import { defaultJobsDir } from '../../node/config.js';

const made: string[] = [];

/** A fresh temporary directory, removed when the test file is done (agents started in beforeAll live in them). */
export function tempDir(prefix = 'meshcc-test-'): string {
  const dir = mkdtempSync(path.join(os.tmpdir(), prefix));
  made.push(dir);
  return dir;
}

const removeAll = () => {
  for (const dir of made.splice(0)) {
    rmSync(dir, { recursive: true, force: true });
    // An agent whose home this was kept its job roots in tmpfs, outside it: one that was killed
    // (or never stopped) left them there.
    const jobs = defaultJobsDir(dir);
    if (!jobs.startsWith(`${dir}/`)) rmSync(jobs, { recursive: true, force: true });
  }
};

// The benchmarks share these helpers and run outside vitest, where afterAll throws.
if (process.env.VITEST) afterAll(removeAll);
else process.once('exit', removeAll);
