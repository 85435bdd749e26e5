// What distcc and icecream are measured with: the same fresh tree at the same path, make with
// the same -j in the client namespace h0, the same snapshots of the machine's CPU, of each
// daemon's process tree and of h0's interface counters just before and just after make, and
// the same comparison with the plain build. One function for both, so that neither tool gets a
// measurement the other (or meshcc, whose figures come from the same helpers) does not.
import { execFileSync, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { NetnsMesh } from '../../test/helpers/netns.js';
import { filesUnder, freshTree } from './common.js';
import { compareTrees, debugOnlyDifferences, type DebugOnlyCheck, type TreeComparison } from './compare.js';
import { clkTck, interfaceBytes, machineCpuS, processTreeSplitCpuS } from './cpu.js';
import { runMake, type BuildResult } from './make.js';
import { logPath, type BenchContext } from './context.js';

/** A daemon of the tool, by the PID we spawned it with (ip netns exec execs it, so it is the daemon's). */
export interface DaemonProcess {
  label: string;
  pid: number;
}

export interface RivalProcesses {
  /** The client side's daemon in h0 (icecream's iceccd -m 0); plain distcc has none. */
  clientDaemon?: DaemonProcess;
  /** The daemon that runs the compiles in h1. */
  serverDaemon: DaemonProcess;
  /** Others on the server side (icecream's scheduler). */
  helpers: DaemonProcess[];
}

export interface RivalMeasure {
  run: BuildResult;
  /** CPU of the client-side daemon and everything it reaped or still runs (0 without one). */
  clientDaemonCpuS: number;
  machine: {
    busy: number;
    steal: number;
    /** The server daemon's process tree: its processes' own CPU, and what they reaped (the compiles). */
    serverOwn: number;
    serverReaped: number;
    /** Each helper's whole tree. */
    helpers: { label: string; cpuS: number }[];
  };
  /** Bytes through h0's eth0 during the build: everything the client side sent and received. */
  wire: { sent: number; received: number };
  objects: TreeComparison;
  deps: TreeComparison;
  debugOnly: DebugOnlyCheck;
}

/** Everything a rival tool's module reports about its build, for the report and the summary. */
export interface RivalOutcome {
  tool: 'distcc' | 'icecream';
  /** How the tool was set up, one line each (printed above its figures). */
  setup: string[];
  measure: RivalMeasure;
  /** Name of the client daemon's line in the report, or why there is none. */
  clientDaemonNote: string;
  /** Compiles the server's log shows as done there during the build. */
  remote: number;
  /** Compiles that went local after trying (or failing) to go remote: the silent cost. */
  fallbacks: number;
  /** One line each: how the counts were read and what else the logs say (by reason). */
  countLines: string[];
}

export async function measureRivalBuild(
  ctx: BenchContext,
  mesh: NetnsMesh,
  tool: string,
  buildEnv: NodeJS.ProcessEnv,
  procs: RivalProcesses,
  progress: () => Promise<string>,
): Promise<RivalMeasure> {
  const tck = clkTck();
  const h0 = mesh.hosts[0]!;
  freshTree(ctx.template, ctx.tree);
  const inH0 = (cmd: string, args: string[]) => mesh.spawn(0, cmd, args, { cwd: ctx.tree, env: buildEnv, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
  const snapshot = () => ({
    machine: machineCpuS(tck),
    client: procs.clientDaemon ? processTreeSplitCpuS(procs.clientDaemon.pid, tck) : { own: 0, reaped: 0 },
    server: processTreeSplitCpuS(procs.serverDaemon.pid, tck),
    helpers: procs.helpers.map((h) => processTreeSplitCpuS(h.pid, tck)),
    wire: interfaceBytes(h0.ns, h0.iface),
  });
  const before = snapshot();
  const run = await runMake(tool, ctx.tree, ctx.jobs, ctx.project.makeArgs, logPath(ctx, `${tool}.log`), inH0, progress);
  const after = snapshot();
  const treeTotal = (t: { own: number; reaped: number }) => t.own + t.reaped;
  const objects = compareTrees(ctx.plainTree, ctx.tree, ctx.project.objectExts, tool);
  return {
    run,
    clientDaemonCpuS: treeTotal(after.client) - treeTotal(before.client),
    machine: {
      busy: after.machine.busy - before.machine.busy,
      steal: after.machine.steal - before.machine.steal,
      serverOwn: after.server.own - before.server.own,
      serverReaped: after.server.reaped - before.server.reaped,
      helpers: procs.helpers.map((h, i) => ({ label: h.label, cpuS: treeTotal(after.helpers[i]!) - treeTotal(before.helpers[i]!) })),
    },
    wire: { sent: after.wire.sent - before.wire.sent, received: after.wire.received - before.wire.received },
    objects,
    deps: compareTrees(ctx.plainTree, ctx.tree, ['.d'], tool),
    debugOnly: debugOnlyDifferences(ctx.plainTree, ctx.tree, objects.differing),
  };
}

/** Progress line of a rival build: objects so far, and what its server's log counts. */
export function rivalProgress(ctx: BenchContext, remoteSoFar: () => number): () => Promise<string> {
  return async () => `, ${filesUnder(ctx.tree, ctx.project.objectExts).length} objects, ${remoteSoFar()} compiled in h1`;
}

/** uid and gid of a system user the daemons drop to (they refuse to compile as root). */
export function systemUser(name: string): { uid: number; gid: number } {
  const entry = execFileSync('getent', ['passwd', name], { encoding: 'utf8' }).trim().split(':');
  return { uid: Number(entry[2]), gid: Number(entry[3]) };
}

/** Lines of a log file (none while it does not exist yet). */
export function logLines(file: string): string[] {
  return existsSync(file) ? readFileSync(file, 'utf8').split('\n') : [];
}

/**
 * One small compile in h0 through the tool before the timed build: it proves the set-up sends
 * compiles to h1 (the caller checks the server's log) and pays the tool's one-time costs (for
 * icecream, building the compiler environment and installing it in h1) outside the timing, as
 * meshcc's agents identify their compilers before its build is timed.
 */
export async function warmUpCompile(mesh: NetnsMesh, dir: string, env: NodeJS.ProcessEnv): Promise<{ ok: boolean; ms: number; output: string }> {
  writeFileSync(path.join(dir, 'warm-up.c'), '#include <stdio.h>\nint main(void) { puts("warm"); return 0; }\n');
  const began = performance.now();
  const r = await mesh.exec(0, 'gcc', ['-g', '-O2', '-c', 'warm-up.c', '-o', 'warm-up.o'], { cwd: dir, env, timeoutMs: 300_000 });
  return { ok: r.code === 0, ms: performance.now() - began, output: (r.stdout + r.stderr).trim() };
}

/** Waits until ready() says so, failing at once (not at the timeout) if one of the daemons exits. */
export async function waitForDaemons(daemons: { child: ChildProcess; label: string }[], ready: () => Promise<boolean>, timeoutMs: number, what: string, logsHint: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    for (const { child, label } of daemons) {
      if (child.exitCode !== null || child.signalCode !== null) throw new Error(`${label} exited (${child.exitCode ?? child.signalCode}) while waiting for ${what}; ${logsHint}`);
    }
    if (await ready().catch(() => false)) return;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}; ${logsHint}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}
