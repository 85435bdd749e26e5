// A speed score measured at start: a short, fixed compile, so that peers can be compared.
// 1000 / (milliseconds of the best of three runs): bigger is faster.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
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

export function measureSpeed(compiler = 'cc'): number {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'meshcc-speed-'));
  try {
    const source = path.join(dir, 'speed.c');
    writeFileSync(source, benchmarkSource());
    let best = Infinity;
    for (let run = 0; run < 3; run++) {
      const start = process.hrtime.bigint();
      const r = spawnSync(compiler, ['-O2', '-c', source, '-o', path.join(dir, 'speed.o')], { stdio: 'ignore' });
      if (r.status !== 0) return 0;
      best = Math.min(best, Number(process.hrtime.bigint() - start) / 1e6);
    }
    return Math.round((1000 / best) * 100) / 100;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
