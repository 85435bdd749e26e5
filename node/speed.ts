// A speed score measured at start: a short, fixed compile, so that peers can be compared.
// 1000 / (milliseconds of the best of three runs): bigger is faster.
import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { promisify } from 'node:util';
import os from 'node:os';
import path from 'node:path';

/** A fixed C unit with enough work for the optimiser to take tens of milliseconds. */
function benchmarkSource(): string {
  const lines = ['#include <stddef.h>'];
  for (let i = 0; i < 60; i++) {
    lines.push(
      `static int f${i}(const int *a, size_t n) { int s = ${i}; for (size_t k = 0; k < n; k++) s = s * 31 + a[k] % ${i + 7}; return s; }`,
    );
  }
  lines.push('int all(const int *a, size_t n) { int s = 0;');
  for (let i = 0; i < 60; i++) lines.push(`  s ^= f${i}(a, n);`);
  lines.push('  return s; }');
  return lines.join('\n');
}

const run = promisify(execFile);

/** The score (0 when the compiler cannot compile it); the compiles run off the event loop. */
export async function measureSpeed(compiler = 'cc'): Promise<number> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'meshcc-speed-'));
  try {
    const source = path.join(dir, 'speed.c');
    await writeFile(source, benchmarkSource());
    let best = Infinity;
    for (let attempt = 0; attempt < 3; attempt++) {
      const start = process.hrtime.bigint();
      try {
        await run(compiler, ['-O2', '-c', source, '-o', path.join(dir, 'speed.o')]);
      } catch {
        return 0;
      }
      best = Math.min(best, Number(process.hrtime.bigint() - start) / 1e6);
    }
    return Math.round((1000 / best) * 100) / 100;
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
