// distcc, the oldest rival, set up the way its manual describes and the way meshcc is measured:
// distccd in the peer namespace h1 with 2 jobs, the client in h0 through the masquerade
// directory with DISTCC_HOSTS naming only h1 (plain mode: h0 preprocesses, h1 compiles).
// distcc falls back to a local compile silently when it cannot distribute, so what went remote
// is counted from distccd's own log and the fallbacks from the client's warnings, both printed.
import { chmodSync, chownSync, mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { NetnsMesh } from '../../test/helpers/netns.js';
import { say, stopChild, tempDirs } from './common.js';
import { logPath, type BenchContext } from './context.js';
import { logLines, measureRivalBuild, rivalProgress, systemUser, waitForDaemons, warmUpCompile, type RivalOutcome } from './rival.js';

const MASQUERADE_DIR = '/usr/lib/distcc';
const DISTCCD_PORT = 3632;
/** distccd drops root to this user (it will not run compilers as root). */
const DISTCCD_USER = 'nobody';

/** distccd logs one job summary per compile at its default level (notice): `... COMPILE_OK exit:0 ...`. */
function jobResults(log: string): Map<string, number> {
  const counts = new Map<string, number>();
  for (const line of logLines(log)) {
    const m = line.match(/\(dcc_job_summary\) client: \S+ (\w+) /);
    if (m) counts.set(m[1]!, (counts.get(m[1]!) ?? 0) + 1);
  }
  return counts;
}

const compiledOk = (counts: Map<string, number>) => counts.get('COMPILE_OK') ?? 0;

/** The client's warnings when it gives up on h1 and compiles in h0 instead (distcc's compile.c). */
const FALLBACK = /failed to distribute|retrying locally|retried locally|failed to get includes/;

export async function runDistcc(ctx: BenchContext, mesh: NetnsMesh): Promise<RivalOutcome> {
  const [h0, h1] = [mesh.hosts[0]!, mesh.hosts[1]!];
  const work = mkdtempSync(path.join(os.tmpdir(), 'meshcc-bench-distcc-'));
  tempDirs.push(work);
  chmodSync(work, 0o755); // mkdtemp makes it 0700: distccd, as nobody, must reach its temporaries below
  // distccd writes its temporaries (the received preprocessed text, the objects) as nobody.
  const serverTmp = path.join(work, 'server-tmp');
  const clientDir = path.join(work, 'client'); // DISTCC_DIR: the client's slot locks and state
  mkdirSync(serverTmp);
  chmodSync(serverTmp, 0o1777);
  mkdirSync(clientDir);
  // The log in the run's log directory (kept with --keep); distccd opens it after dropping root.
  const serverLog = logPath(ctx, 'distccd-h1.log');
  writeFileSync(serverLog, '');
  const user = systemUser(DISTCCD_USER);
  chownSync(serverLog, user.uid, user.gid);

  const serverArgs = ['--daemon', '--no-detach', '--listen', h1.address, '--port', String(DISTCCD_PORT), '--allow', mesh.subnet, '--jobs', '2', '--user', DISTCCD_USER, '--log-file', serverLog];
  say(`distcc: starting distccd in h1 (${h1.address}:${DISTCCD_PORT}, --jobs 2)`);
  const distccd = mesh.spawn(1, 'distccd', serverArgs, { env: { ...ctx.env, TMPDIR: serverTmp }, stdio: ['ignore', 'ignore', 'ignore'] });
  try {
    await waitForDaemons(
      [{ child: distccd, label: 'distccd' }],
      async () => (await mesh.exec(1, 'ss', ['-Hltn', `sport = :${DISTCCD_PORT}`])).stdout.trim().length > 0,
      30_000,
      'distccd to listen in h1',
      `see ${serverLog} (use --keep to keep it)`,
    );

    const buildEnv: NodeJS.ProcessEnv = {
      ...ctx.env,
      PATH: `${MASQUERADE_DIR}:${ctx.env.PATH ?? '/usr/bin:/bin'}`,
      DISTCC_HOSTS: `${h1.address}/2`,
      DISTCC_DIR: clientDir,
    };
    const warm = await warmUpCompile(mesh, work, buildEnv);
    const afterWarmUp = jobResults(serverLog);
    if (!warm.ok || compiledOk(afterWarmUp) < 1) {
      throw new Error(`distcc's warm-up compile did not go to h1 (exit ${warm.ok ? 0 : 'non-zero'}; ${warm.output || 'no output'}); see ${serverLog}`);
    }
    say(`  warm-up compile went to h1 in ${Math.round(warm.ms)} ms`);

    say(`distcc build: make -j${ctx.jobs} in h0 with ${MASQUERADE_DIR} first on PATH, DISTCC_HOSTS=${buildEnv.DISTCC_HOSTS}`);
    const measure = await measureRivalBuild(
      ctx,
      mesh,
      'distcc',
      buildEnv,
      { serverDaemon: { label: 'distccd', pid: distccd.pid! }, helpers: [] },
      rivalProgress(ctx, () => compiledOk(jobResults(serverLog)) - compiledOk(afterWarmUp)),
    );
    const afterBuild = jobResults(serverLog);
    const byResult = [...afterBuild].map(([result, n]) => [result, n - (afterWarmUp.get(result) ?? 0)] as const).filter(([, n]) => n > 0);
    const remote = compiledOk(afterBuild) - compiledOk(afterWarmUp);
    const clientWarnings = logLines(logPath(ctx, 'distcc.log')).filter((l) => /^distcc\[\d+\]/.test(l));
    const fallbacks = clientWarnings.filter((l) => FALLBACK.test(l)).length;
    return {
      tool: 'distcc',
      setup: [
        `distccd in h1: ${['distccd', ...serverArgs.map((a) => (a === serverLog ? '<log>' : a))].join(' ')} (distccd's default niceness, +5, as meshcc's jobs run at MESHCC_JOB_NICE 5)`,
        `client in h0: ${MASQUERADE_DIR} first on PATH (gcc, cc → distcc), DISTCC_HOSTS=${buildEnv.DISTCC_HOSTS} (plain mode; h0 is not in the list, so it compiles nothing unless a compile falls back), make -j${ctx.jobs}; one warm-up compile first (${Math.round(warm.ms)} ms, not timed)`,
      ],
      measure,
      clientDaemonNote: 'no client-side daemon (plain distcc has none: the distcc processes under make are all of it)',
      remote,
      fallbacks,
      countLines: [
        `distccd's log (one summary per job): ${byResult.length ? byResult.map(([r, n]) => `${r} ${n}`).join(', ') : 'no jobs'}`,
        `client warnings in make's output: ${fallbacks} fell back to a local compile ('failed to distribute … running locally instead' and the like), ${clientWarnings.length - fallbacks} other`,
        `${ctx.compileUnits} compile units (${ctx.compileUnitsFrom}); ${ctx.compileUnits - remote} of them were not compiled in h1`,
      ],
    };
  } finally {
    await stopChild(distccd);
  }
}
