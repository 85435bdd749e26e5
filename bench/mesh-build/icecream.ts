// icecream, the rival with a scheduler, set up the way its documentation describes and the way
// meshcc is measured: the scheduler and an iceccd with 2 jobs in the peer namespace h1, an
// iceccd that takes no jobs (-m 0) in the client namespace h0 (the client needs a local daemon:
// it asks it for a compile server and for the compiler environment), the client in h0 through
// /usr/lib/icecc/bin. Each daemon gets its own socket (ICECC_TEST_SOCKET: both would otherwise
// bind the same path, namespaces do not separate files) and its own environment directory
// (iceccd empties it at start). A unique network name per run keeps other schedulers out.
// What went remote is counted from h1's daemon log, fallbacks from the clients' warnings.
import { chmodSync, chownSync, existsSync, mkdirSync, mkdtempSync, rmdirSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { NetnsMesh } from '../../test/helpers/netns.js';
import { say, secs, stopChild, tempDirs, undoOnExit } from './common.js';
import { logPath, type BenchContext } from './context.js';
import { logLines, measureRivalBuild, rivalProgress, systemUser, waitForDaemons, warmUpCompile, type RivalOutcome } from './rival.js';

const WRAPPER_DIR = '/usr/lib/icecc/bin';
/** iceccd and the scheduler drop root to this user (iceccd keeps CAP_SYS_CHROOT for the compiles). */
const ICECC_USER = 'icecc';
/** Created by a root iceccd for its socket when it has none of its own; ours get their own. */
const SYSTEM_RUN_DIR = '/run/icecc';

/** h1's iceccd logs (at -vv) one line per compile it ran: `Remote compilation completed with exit code N`. */
function remoteCompiles(log: string): { ok: number; failed: number } {
  let ok = 0;
  let failed = 0;
  for (const line of logLines(log)) {
    const m = line.match(/Remote compilation completed with exit code (\d+)/);
    if (!m) continue;
    if (m[1] === '0') ok++;
    else failed++;
  }
  return { ok, failed };
}

/** The client's warnings when a compile meant for a remote host ends up compiled in h0 (icecc's main.cpp, remote.cpp). */
const FALLBACK = /recompiling locally|local build forced|got exception|no local daemon|can't determine native environment|can't read environment/;

/** A client log line without its `ICECC[pid] date time:` prefix. */
const message = (line: string) => line.replace(/^(ICECC)?\[\d+\]\s*(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d:\s*)?/, '').trim();

export async function runIcecream(ctx: BenchContext, mesh: NetnsMesh): Promise<RivalOutcome> {
  const [h0, h1] = [mesh.hosts[0]!, mesh.hosts[1]!];
  const user = systemUser(ICECC_USER);
  if (!existsSync(SYSTEM_RUN_DIR)) {
    undoOnExit.push(() => {
      if (existsSync(SYSTEM_RUN_DIR)) rmdirSync(SYSTEM_RUN_DIR); // only if still empty
    });
  }
  const work = mkdtempSync(path.join(os.tmpdir(), 'meshcc-bench-icecream-'));
  tempDirs.push(work);
  chmodSync(work, 0o755); // mkdtemp makes it 0700: the daemons, as icecc, must reach their directories below
  const dirFor = (name: string) => {
    const dir = path.join(work, name);
    mkdirSync(dir);
    chownSync(dir, user.uid, user.gid); // the daemons bind their sockets and unpack environments as icecc
    return dir;
  };
  const hostDirs = [h0, h1].map((h) => ({ socket: path.join(dirFor(`socket-${h.name}`), 'iceccd.socket'), envs: dirFor(`envs-${h.name}`) }));
  const logs = { scheduler: logPath(ctx, 'icecc-scheduler-h1.log'), h0: logPath(ctx, 'iceccd-h0.log'), h1: logPath(ctx, 'iceccd-h1.log'), client: logPath(ctx, 'icecc-client.log') };
  for (const log of [logs.scheduler, logs.h0, logs.h1]) {
    writeFileSync(log, '');
    chownSync(log, user.uid, user.gid);
  }
  const netName = `meshccbench${process.pid}x${Date.now().toString(36)}`;

  say(`icecream: starting icecc-scheduler and iceccd -m 2 in h1 (${h1.address}), iceccd -m 0 in h0 (net ${netName})`);
  const schedulerArgs = ['-n', netName, '-l', logs.scheduler, '-vv'];
  const scheduler = mesh.spawn(1, 'icecc-scheduler', schedulerArgs, { env: ctx.env, stdio: ['ignore', 'ignore', 'ignore'] });
  const daemonArgs = (host: 0 | 1) => ['-n', netName, '-s', h1.address, '-m', host === 1 ? '2' : '0', '-b', hostDirs[host]!.envs, '-l', host === 1 ? logs.h1 : logs.h0, '-N', `h${host}`, '-vv'];
  const startDaemon = (host: 0 | 1) =>
    mesh.spawn(host, 'iceccd', daemonArgs(host), { env: { ...ctx.env, ICECC_TEST_SOCKET: hostDirs[host]!.socket }, stdio: ['ignore', 'ignore', 'ignore'] });
  const serverDaemon = startDaemon(1);
  const clientDaemon = startDaemon(0);
  try {
    const began = Date.now();
    await waitForDaemons(
      [
        { child: scheduler, label: 'icecc-scheduler' },
        { child: serverDaemon, label: 'iceccd in h1' },
        { child: clientDaemon, label: 'iceccd in h0' },
      ],
      async () => [logs.h0, logs.h1].every((log) => logLines(log).some((l) => l.includes('Connected to scheduler'))),
      60_000,
      'both iceccd to connect to the scheduler',
      `logs in ${ctx.logs} (use --keep to keep them)`,
    );
    say(`  both daemons connected to the scheduler after ${Date.now() - began} ms`);

    const buildEnv: NodeJS.ProcessEnv = {
      ...ctx.env,
      PATH: `${WRAPPER_DIR}:${ctx.env.PATH ?? '/usr/bin:/bin'}`,
      ICECC_TEST_SOCKET: hostDirs[0]!.socket,
      ICECC_DEBUG: 'warning',
      ICECC_LOGFILE: logs.client,
    };
    // The first compile makes h0's iceccd build the compiler environment (icecc-create-env, no
    // ICECC_VERSION set: the daemon's native one) and h1's install it: not part of the timed build.
    const warm = await warmUpCompile(mesh, work, buildEnv);
    const afterWarmUp = remoteCompiles(logs.h1);
    if (!warm.ok || afterWarmUp.ok < 1) {
      throw new Error(`icecream's warm-up compile did not go to h1 (exit ${warm.ok ? 0 : 'non-zero'}; ${warm.output || 'no output'}); logs in ${ctx.logs} (use --keep)`);
    }
    say(`  warm-up compile went to h1 in ${secs(warm.ms)} (h0's iceccd built the compiler environment, h1's installed it)`);
    const clientLinesBefore = logLines(logs.client).length;
    const schedulerLinesBefore = logLines(logs.scheduler).length;

    say(`icecream build: make -j${ctx.jobs} in h0 with ${WRAPPER_DIR} first on PATH`);
    const measure = await measureRivalBuild(
      ctx,
      mesh,
      'icecream',
      buildEnv,
      {
        clientDaemon: { label: 'iceccd (h0)', pid: clientDaemon.pid! },
        serverDaemon: { label: 'iceccd (h1)', pid: serverDaemon.pid! },
        helpers: [{ label: 'icecc-scheduler', pid: scheduler.pid! }],
      },
      rivalProgress(ctx, () => remoteCompiles(logs.h1).ok - afterWarmUp.ok),
    );
    const afterBuild = remoteCompiles(logs.h1);

    const remote = afterBuild.ok - afterWarmUp.ok;
    const shown = (arg: string) => (Object.values(logs).includes(arg) ? '<log>' : arg.startsWith('/') ? '<dir>' : arg);
    const clientMessages = logLines(logs.client).slice(clientLinesBefore).map(message).filter(Boolean);
    const fallbackLines = clientMessages.filter((m) => FALLBACK.test(m));
    const localByReason = new Map<string, number>();
    for (const m of clientMessages) if (!FALLBACK.test(m)) localByReason.set(m, (localByReason.get(m) ?? 0) + 1);
    const toSubmitter = logLines(logs.scheduler).slice(schedulerLinesBefore).filter((l) => l.includes('assigning submitter')).length;
    return {
      tool: 'icecream',
      setup: [
        `h1: icecc-scheduler ${schedulerArgs.map(shown).join(' ')}; iceccd ${daemonArgs(1).map(shown).join(' ')} (iceccd's default: its compiles at niceness 5, the daemon at 0, as meshcc's)`,
        `h0: iceccd ${daemonArgs(0).map(shown).join(' ')}; client: ${WRAPPER_DIR} first on PATH, ICECC_TEST_SOCKET (h0's daemon), no ICECC_VERSION (h0's daemon builds the native environment), make -j${ctx.jobs}; one warm-up compile first (${secs(warm.ms)}, not timed: h0's iceccd built the compiler environment with icecc-create-env, h1's unpacked it)`,
        `icecc's default for gcc: h0 runs only -E -fdirectives-only (includes inlined, macros left for h1), h1 finishes preprocessing and compiles; the text goes zstd-compressed`,
      ],
      measure,
      clientDaemonNote: "iceccd in h0 (it asks the scheduler for compile servers; with -m 0 it lets one local job, a link or anything icecc keeps local, run at a time)",
      remote,
      fallbacks: fallbackLines.length + toSubmitter,
      countLines: [
        `h1's iceccd log: ${remote} compiles completed with exit code 0, ${afterBuild.failed - afterWarmUp.failed} with another`,
        `client warnings (ICECC_DEBUG=warning): ${fallbackLines.length} fell back to a local compile${fallbackLines.length ? ` (${[...new Set(fallbackLines)].slice(0, 3).join('; ')})` : ''}; scheduler gave ${toSubmitter} jobs back to h0 ('assigning submitter')`,
        `kept local by design: ${localByReason.size ? [...localByReason].map(([m, n]) => `${n} × '${m}'`).join(', ') : 'none logged'}`,
        `${ctx.compileUnits} compile units (${ctx.compileUnitsFrom}); ${ctx.compileUnits - remote} of them were not compiled in h1`,
      ],
    };
  } finally {
    await Promise.all([clientDaemon, serverDaemon, scheduler].map((child) => stopChild(child)));
  }
}
