// Where a compile goes next. Top-down: not distributable → the client runs it; a local
// slot is free → the client runs it; a peer (or this agent's executor) can take it → the
// job route (scan, hash, store, run remotely or in the sandbox, write outputs); any failure
// of the job route → the client runs it (fallback). A build never fails because of meshcc,
// and never differs from a plain one.
import { existsSync, readFileSync, statSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import path from 'node:path';
import { MeshccError } from '../protocol/errors.js';
import type { AgentReply, CompileRequest, InputFile, Job, JobResult, OutputFile } from '../protocol/messages.js';
import { analyse } from './args/analyse.js';
import type { AnalysisContext, DistributableJob } from './args/types.js';
import type { Logger } from './log.js';
import type { RemoteRunner } from './remote/remote-runner.js';
import { SELF, type Placement } from './remote/placement.js';
import { inOutputDirs, writeOutputs, writeOutputsSync } from './outputs.js';
import type { InputHasher } from './scan/hasher.js';
import { ScanFailed, type InputScanner } from './scan/scanner.js';
import type { Slots } from './slots.js';
import type { Stats } from './stats.js';
import type { ToolchainRef } from './toolchains.js';
import type { JobMonitor, JobWatch } from './monitor/monitor.js';
import type { CachedResult } from './cache/local-entries.js';
import type { ResultCache } from './cache/result-cache.js';
import type { CommandIdentity } from './cache/key.js';
import { sourceOf } from './monitor/job-log.js';

export interface ClientConnection {
  reply(message: AgentReply): void;
  readonly closed: boolean;
  /** The exit code the client reports after running a command itself, or undefined if it just closed. */
  readonly finished: Promise<number | undefined>;
}

export interface CompileServiceParts {
  localSlots: Slots;
  placement: Placement;
  remote: RemoteRunner;
  /** The toolchain of a compiler, or undefined when it is not identified (yet). */
  toolchainOf: (compiler: string) => Promise<ToolchainRef | undefined>;
  scanner: InputScanner;
  hasher: InputHasher;
  /** Writes a remote job's outputs (off the event loop where it can); node/outputs.ts by default. */
  writeOutputs?: (outputs: OutputFile[], umask: number) => Promise<void>;
  stats: Stats;
  log: Logger;
  monitor?: JobMonitor;
  /** The mesh-wide result cache (node/cache/): looked up before a job is placed. */
  cache?: ResultCache;
}

const UNWATCHED: JobWatch = { placed() {}, ranHere() {}, phase() {}, verified() {}, end() {} };

let jobCounter = 0;

function analysisContext(req: CompileRequest): AnalysisContext {
  const resolve = (p: string) => path.resolve(req.cwd, p);
  return {
    cwd: req.cwd,
    env: req.env,
    readFile: (p) => readFileSync(resolve(p), 'utf8'),
    exists: (p) => existsSync(resolve(p)),
  };
}

/** Colour as gcc and clang would choose it for the client's terminal, since a job's stderr is a pipe. */
function withClientColour(argv: string[], req: CompileRequest): string[] {
  const decided = argv.some((a) => /^-f(no-)?(diagnostics-color|color-diagnostics)/.test(a));
  if (decided || !req.tty || req.env.TERM === 'dumb' || req.env.GCC_COLORS === '' || 'NO_COLOR' in req.env) return argv;
  return [...argv, '-fdiagnostics-color=always'];
}

/** A cache hit's outputs up to this size are written on the event loop (see replyCached). */
const SYNC_WRITE_BYTES = 2 * 1024 * 1024;
/** A client of this uid can read the agent's store (see CompileRequest.uid). */
const AGENT_UID = process.getuid?.();

/** gcc records $PWD as the compilation directory when it names the cwd through a symlink;
 *  a job root has only the physical path, so such a compile stays local. */
function reachedThroughSymlink(req: CompileRequest): boolean {
  const pwd = req.env.PWD;
  if (!pwd || pwd === req.cwd) return false;
  try {
    const a = statSync(pwd);
    const b = statSync(req.cwd);
    return a.dev === b.dev && a.ino === b.ino;
  } catch {
    return false;
  }
}

function isSchedulerLocal(err: unknown): boolean {
  return err instanceof MeshccError && err.code === 'scheduler-local';
}

export class CompileService {
  constructor(private readonly parts: CompileServiceParts) {}

  async handle(req: CompileRequest, conn: ClientConnection): Promise<void> {
    const { localSlots, placement, stats, log } = this.parts;
    const started = performance.now();
    const id = `${process.pid.toString(36)}-${(++jobCounter).toString(36)}`;
    const analysis = analyse(req.argv, analysisContext(req));
    const monitor = this.parts.monitor;
    if (!analysis.distributable) {
      log.debug({ job: id, reason: analysis.reason, detail: analysis.detail }, 'not distributable: runs locally');
      const watch = monitor?.compile(id, sourceOf(req.argv)) ?? UNWATCHED;
      watch.ranHere();
      conn.reply({ t: 'run-local', reason: analysis.reason });
      await conn.finished;
      const ms = performance.now() - started;
      stats.record('local', analysis.reason, ms);
      watch.end('local', analysis.reason, ms);
      return;
    }
    const watch = monitor?.compile(id, analysis.source) ?? UNWATCHED;
    const cache = this.parts.cache?.active ? this.parts.cache : undefined;
    if (!cache && localSlots.tryAcquire()) return this.runLocally(conn, 'local', 'local-slot', started, watch);
    const toolchain = await this.parts.toolchainOf(req.compiler);
    // With the cache, a unit is looked up first; a miss a local slot could take is compiled in
    // this agent's sandbox (so that its result can be kept), holding that slot.
    const cached = cache && toolchain && this.outputDirsExist(analysis, req.cwd) && !reachedThroughSymlink(req);
    const here = cached && localSlots.tryAcquire();
    if (!cached && cache && localSlots.tryAcquire()) return this.runLocally(conn, 'local', 'local-slot', started, watch);
    // Offload only when a candidate could take the job now, or when nothing local ever could.
    const offload = cached || placement.hasCandidates(toolchain, new Set(), localSlots.total === 0);
    if (offload && this.outputDirsExist(analysis, req.cwd) && !reachedThroughSymlink(req)) {
      try {
        const where = await this.viaJobRoute(id, req, analysis, toolchain, conn, watch, here || undefined);
        if (here) localSlots.release();
        const ms = performance.now() - started;
        if (where === 'cache') return watch.end('cache', 'hit', ms);
        const [route, reason] = where === SELF ? (['job', 'executed'] as const) : where === 'hedge' ? (['job', 'hedged-straggler'] as const) : where === 'here' ? (['job', 'cache-miss'] as const) : (['remote', 'peer'] as const);
        stats.record(route, reason, ms);
        watch.end(route, reason, ms);
        return;
      } catch (err) {
        const code = err instanceof MeshccError ? err.code : err instanceof ScanFailed ? 'scan-failed' : 'internal-error';
        const level = code === 'scan-failed' || code === 'scheduler-local' || code === 'cache-miss' ? 'debug' : 'warn';
        log[level]({ job: id, reason: code, err: (err as Error).message }, 'job route failed: compiling locally');
        if (conn.closed) {
          if (here) localSlots.release();
          return;
        }
        if (!here) await localSlots.acquire();
        // The scheduler's choice, not a failure: a local slot would finish it first.
        if (code === 'scheduler-local' || code === 'cache-miss') return this.runLocally(conn, 'local', code, started, watch);
        return this.runLocally(conn, 'fallback', code, started, watch);
      }
    }
    await localSlots.acquire();
    return this.runLocally(conn, 'local', 'local-slot', started, watch);
  }

  private async runLocally(conn: ClientConnection, route: 'local' | 'fallback', reason: string, started: number, watch: JobWatch) {
    watch.ranHere();
    const compileStarted = performance.now();
    try {
      conn.reply({ t: 'run-local', reason });
      await conn.finished;
    } finally {
      this.parts.localSlots.release();
      const now = performance.now();
      this.parts.stats.record(route, reason, now - started);
      watch.phase('compile', now - compileStarted);
      watch.end(route, reason, now - started);
    }
  }

  /** The scheduler placed a miss on this machine: compiled in the sandbox so that it can be kept. */
  private async compileHere(job: Job): Promise<{ result: JobResult; where: string }> {
    await this.parts.localSlots.acquire();
    try {
      return { result: await this.parts.cache!.runHere(job), where: 'here' };
    } finally {
      this.parts.localSlots.release();
    }
  }

  /** Answers from a cache entry: its outputs written where the command writes them, its diagnostics and exit code. */
  private async replyCached({ entry, outputs, objects }: CachedResult, req: CompileRequest, conn: ClientConnection): Promise<string> {
    if (conn.closed) return 'cache';
    // A client of this agent's uid writes them itself, from the store (node/client/copy-outputs.c).
    if (objects) {
      const copy = outputs.map((o, i): [string, string, number, boolean] => [objects[i]!, o.path, entry.outputs[i]!.size, o.executable]);
      conn.reply({ t: 'result', exit: entry.exit, stdout: entry.stdout, stderr: entry.stderr, copy });
      return 'cache';
    }
    // Small outputs are written here, synchronously: handing their bytes to the writer thread
    // cost a direct-mode hit 0.5 ms of copying (postMessage), the write itself about 0.1 ms.
    const bytes = outputs.reduce((n, o) => n + o.data.length, 0);
    if (bytes <= SYNC_WRITE_BYTES) writeOutputsSync(outputs, req.umask ?? 0o022);
    else await (this.parts.writeOutputs ?? writeOutputs)(outputs, req.umask ?? 0o022);
    conn.reply({ t: 'result', exit: entry.exit, stdout: entry.stdout, stderr: entry.stderr });
    return 'cache';
  }

  /** The inputs with every object in the store: one the store evicted since its file was
   *  hashed is read and stored again (the file may have changed meanwhile: hashed anew). */
  private async inStore(inputs: InputFile[]): Promise<InputFile[]> {
    const { hasher } = this.parts;
    const store = hasher.store;
    let result = inputs;
    for (let i = 0; i < inputs.length; i++) {
      if (store.touch(inputs[i]!.hash)) continue;
      if (result === inputs) result = [...inputs];
      result[i] = await hasher.hash(inputs[i]!.path);
    }
    return result;
  }

  /** The compiler refuses to write into a directory that does not exist; so must the job. */
  private outputDirsExist(analysis: DistributableJob, cwd: string): boolean {
    return analysis.outputs.every((o) => {
      try {
        return statSync(path.dirname(path.resolve(cwd, o))).isDirectory();
      } catch {
        return false;
      }
    });
  }

  private async viaJobRoute(
    id: string,
    req: CompileRequest,
    analysis: DistributableJob,
    toolchain: ToolchainRef | undefined,
    conn: ClientConnection,
    watch: JobWatch,
    /** A local slot is held for it: a miss is compiled in this agent's sandbox. */
    here?: true,
  ): Promise<string> {
    const { scanner, hasher, remote, stats, cache } = this.parts;
    const argv = withClientColour(analysis.argv, req);
    const identity: CommandIdentity | undefined = cache?.active && toolchain ? { toolchain: toolchain.id, argv, cwd: req.cwd, env: req.env } : undefined;
    const source = path.resolve(req.cwd, analysis.source);
    // A hit's outputs go where the command writes them, as a peer's do: an entry naming a file
    // elsewhere (a member that lies) is not used.
    const inPlace = (hit: CachedResult) => {
      const allowed = inOutputDirs(analysis.outputs.map((o) => path.resolve(req.cwd, o)));
      const ok = hit.outputs.every((o) => allowed(o.path));
      if (!ok) this.parts.log.warn({ writer: hit.entry.writer, outputs: hit.outputs.map((o) => o.path) }, 'cache: an entry names outputs outside the command\'s output directories; not used');
      return ok;
    };
    const direct = identity && (await cache!.direct(identity, source, req.startedUs, req.uid === AGENT_UID));
    if (direct && inPlace(direct.hit)) return this.replyCached(direct.hit, req, conn);
    const scanStartedMs = Date.now();
    const t0 = performance.now();
    const scan = await scanner.scanHashed(
      { compiler: req.compiler, scanArgv: analysis.scanArgv, cwd: req.cwd, env: req.env, source: analysis.source, language: analysis.language },
      hasher,
    );
    const t1 = performance.now();
    const inputs = await this.inStore(scan.inputs);
    const t2 = performance.now();
    const job: Job = {
      id,
      compiler: req.compiler,
      argv,
      cwd: req.cwd,
      env: req.env,
      inputs,
      listings: scan.listings,
      dirs: scan.dirs,
      outputs: analysis.outputs.map((o) => path.resolve(req.cwd, o)),
    };
    watch.phase('scan', t2 - t0);
    const looked = identity && (await cache!.lookup(identity, job));
    const probe = { compiler: req.compiler, scanArgv: analysis.scanArgv, cwd: req.cwd, env: req.env, source: analysis.source, language: analysis.language };
    if (looked) cache!.remember(identity!, source, looked, job, probe, scanStartedMs);
    if (looked && looked.hit && inPlace(looked.hit)) return this.replyCached(looked.hit, req, conn);
    // A miss this agent may not publish (read-only) is compiled by the client, as without the cache.
    if (here && !cache!.canRunHere) throw new MeshccError('cache-miss', 'not in the cache: compiled by the client');
    // A miss no executor anywhere could take (no peer, no executor slots here) waits for a local
    // slot and is compiled in the sandbox, so that it is kept; without the cache it would wait the same.
    const alone = looked && cache!.canRunHere && this.parts.localSlots.total > 0 && !this.parts.placement.hasCandidates(toolchain, new Set(), true);
    const { result, where } = here
      ? { result: await cache!.runHere(job), where: 'here' }
      : alone
        ? await this.compileHere(job)
        : await remote.run(job, toolchain, watch, scan.fresh).catch((err: unknown) => (looked && isSchedulerLocal(err) && cache!.canRunHere ? this.compileHere(job) : Promise.reject(err)));
    if (looked) cache!.publish(looked.key, result);
    const t3 = performance.now();
    stats.jobRoute.scanMs += t1 - t0;
    stats.jobRoute.hashMs += t2 - t1;
    stats.jobRoute.executeMs += t3 - t2;
    stats.jobRoute.inputFiles += inputs.length;
    stats.jobRoute.inputBytes += inputs.reduce((n, f) => n + f.size, 0);
    if (conn.closed) return where;
    await (this.parts.writeOutputs ?? writeOutputs)(result.outputs, req.umask ?? 0o022);
    conn.reply({ t: 'result', exit: result.exit, stdout: result.stdout, stderr: result.stderr });
    return where;
  }
}
