// The executor: runs jobs in bubblewrap over a job root built from the store, bounded by
// this agent's slots. Capacity is enforced here, by the one who does the work.
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import pLimit, { type LimitFunction } from 'p-limit';
import { MeshccError } from '../../protocol/errors.js';
import { LIMITS, type Job, type JobResult } from '../../protocol/messages.js';
import type { Logger } from '../log.js';
import type { Store } from '../store.js';
import { LeanSpawner } from '../spawner/lean-spawn.js';
import { JobRootPool } from './job-root-pool.js';
import { PLACEHOLDER_MARK } from './job-root.js';
import { DEFAULT_JOB_MEMORY_BYTES, DEFAULT_JOB_OUTPUT_FILE_BYTES, programLimits, resourceLimitHit, type ResourceLimits } from './resource-limits.js';
import { HostCopies } from './host-copies.js';
import { KeptSandboxes } from './kept-sandboxes.js';
import { detectHostBinds, jobEnvironment, jobTail, mountDestinations, probeBubblewrap, sandboxMounts, symlinkDestinations, type HostBinds, type SandboxMounts } from './sandbox.js';
import type { ToolchainMounts } from './toolchain-mounts.js';

/** Bound of the link cache (on the job roots' tmpfs, so memory): a big build's headers fit. */
const LINK_CACHE_BYTES = 256 << 20;

/** A job the executor could not run faithfully: the caller falls back, never fails the build. */
export class JobFailure extends MeshccError {}

/** What a compiler says when it opens a file that the job root lacks (an input -M did not list). */
const MISSING_INPUT = /No such file or directory|file not found|cannot open|can't open|cannot find|could not (find|open)|not found/i;

/** What a compiler says when the job root's file system fills up (its outputs and temporaries are written there). */
const DISK_FULL = /No space left on device|Disk quota exceeded/i;

export interface ExecutorOptions {
  store: Store;
  workDir: string;
  slots: number;
  timeoutMs: number;
  /** CPU seconds per process of a job; by default the job's timeout. */
  cpuSeconds?: number;
  /** Address space per process of a job (8 GiB by default). */
  memoryBytes?: number;
  /** Largest file a job may write (1 GiB by default). */
  outputFileBytes?: number;
  log: Logger;
  /** Starts bubblewrap and rm for us, cheaper than forking the agent (shared with the scanner). */
  spawner?: LeanSpawner;
  /** Called when a job starts or ends (adverts carry slots in use). */
  onRunningChanged?: () => void;
  /** How long a job held one of the slots offered to peers (their use, in `meshcc stats`). */
  onSlotTime?: (ms: number) => void;
}

export class Executor {
  private limit: LimitFunction;
  private binds: HostBinds = { bound: [], links: [] };
  /** Why bubblewrap cannot run here, if it cannot. */
  private sandboxUnusable?: string;
  private readonly roots: JobRootPool;
  private readonly spawner: LeanSpawner;
  private readonly keptSandboxes: KeptSandboxes;
  private readonly hostCopies = new HostCopies();
  /** Slots promised to jobs (a peer's accepted job, or one of our own) before they run. */
  private reserved = 0;
  /** Where job roots link store objects from when the store is on another file system. */
  private linkCache?: string;
  private linkCacheBytes = 0;
  private linkCacheGeneration = 0;

  constructor(private readonly options: ExecutorOptions) {
    this.spawner = options.spawner ?? new LeanSpawner();
    this.keptSandboxes = new KeptSandboxes(this.spawner.nativePath, this.spawner.niceness, options.log);
    this.limit = pLimit(Math.max(1, options.slots));
    this.roots = new JobRootPool(Math.min(4, Math.max(1, options.slots)));
  }

  async start(): Promise<void> {
    await fs.rm(this.options.workDir, { recursive: true, force: true });
    await fs.mkdir(this.options.workDir, { recursive: true });
    await fs.mkdir(this.options.store.dir, { recursive: true });
    const [storeDev, workDev] = await Promise.all([fs.stat(this.options.store.dir), fs.stat(this.options.workDir)]).then((s) => s.map((st) => st.dev));
    if (storeDev !== workDev) this.linkCache = path.join(this.options.workDir, '.link-cache');
    // The sandbox also serves this agent's own hedged and verifying compiles, even with 0 slots.
    const probe = probeBubblewrap(programLimits(this.limitsFor(this.options.timeoutMs)), this.spawner.nativePath);
    if (!probe.ok) {
      this.sandboxUnusable = probe.reason;
      this.options.log.warn({ reason: probe.reason }, 'executor disabled: this agent will not execute jobs');
      return;
    }
    this.binds = detectHostBinds();
    this.roots.start();
  }

  async stop(): Promise<void> {
    this.limit.clearQueue();
    this.keptSandboxes.stopAll();
    await this.roots.stop();
    this.spawner.stop();
    await fs.rm(this.options.workDir, { recursive: true, force: true });
  }

  /** Undefined when jobs can run here; otherwise why not, in words for `meshcc status`. */
  get unavailableReason(): string | undefined {
    return this.sandboxUnusable ?? (this.options.slots === 0 ? 'MESHCC_SLOTS is 0' : undefined);
  }

  /** Slots this agent offers (0 when it cannot sandbox). */
  get slots(): number {
    return this.unavailableReason ? 0 : this.options.slots;
  }

  /** Jobs it would still admit now (LIMITS.jobsPerSlot per slot: some wait their turn). */
  get freeSlots(): number {
    return this.slots * LIMITS.jobsPerSlot - this.reserved;
  }

  /** Slots promised or running: what adverts call slots in use. */
  get slotsUsed(): number {
    return this.reserved;
  }

  /** Promises a slot to a job about to come (false when all are promised); release() after. */
  tryReserve(): boolean {
    if (this.reserved >= this.slots * LIMITS.jobsPerSlot) return false;
    this.reserved++;
    this.options.onRunningChanged?.();
    return true;
  }

  release(): void {
    this.reserved = Math.max(0, this.reserved - 1);
    this.options.onRunningChanged?.();
  }

  /** Keeps a file a job brought (its hash checked by the caller) in the store, written by a
   *  job root worker where they run. */
  async keep(hash: string, data: Uint8Array): Promise<void> {
    const { store } = this.options;
    if (store.touch(hash)) return;
    if (this.sandboxUnusable) {
      await store.put(hash, data);
      return;
    }
    try {
      await this.roots.storeObject(store.dir, hash, data);
    } catch {
      await store.put(hash, data);
      return;
    }
    await store.adoptWritten(hash, data.length);
  }

  /** Undefined when this agent can sandbox its own compiles (hedging, verification). */
  get sandboxUnavailableReason(): string | undefined {
    return this.sandboxUnusable;
  }

  /** Runs a job in one of this agent's slots (bounded); abort kills it. */
  run(job: Job, signal?: AbortSignal, toolchain?: ToolchainMounts): Promise<JobResult> {
    const unavailable = this.unavailableReason;
    if (unavailable) return Promise.reject(new JobFailure('no-executor', unavailable));
    return this.runNow(job, signal, toolchain, (compile) =>
      this.limit(async () => {
        signal?.throwIfAborted();
        const start = performance.now();
        try {
          return await compile();
        } finally {
          const ms = performance.now() - start;
          this.options.onSlotTime?.(ms);
          this.options.log.debug({ job: job.id, slotMs: Math.round(ms) }, 'a slot compiled a job');
        }
      }),
    );
  }

  /** Runs one of this agent's own compiles in the sandbox, outside the slots offered to peers
   *  (the caller holds a local slot): a hedge against a straggler, or a verification. */
  runOwn(job: Job, signal?: AbortSignal, toolchain?: ToolchainMounts): Promise<JobResult> {
    if (this.sandboxUnusable) return Promise.reject(new JobFailure('no-executor', this.sandboxUnusable));
    return this.runNow(job, signal, toolchain, (compile) => compile());
  }

  /**
   * `toolchain`: a shipped toolchain's tree to run the job with, instead of the host's compiler.
   * `inSlot` bounds the compile alone: the root is built before and the outputs collected after
   * it, outside the slot, so that a slot's core goes from one compile to the next without
   * waiting for file work (git's mesh build left a 2-core peer up to 11 % idle before).
   */
  private async runNow(job: Job, signal: AbortSignal | undefined, toolchain: ToolchainMounts | undefined, inSlot: <T>(compile: () => Promise<T>) => Promise<T>): Promise<JobResult> {
    const { store, workDir, log } = this.options;
    const hashes = job.inputs.map((f) => f.hash);
    try {
      store.pin(hashes);
    } catch (err) {
      throw new JobFailure('missing-store-object', (err as Error).message);
    }
    let root: string | undefined;
    let mounts: string[] = [];
    try {
      const t0 = performance.now();
      const built = await this.roots.take(job, store.dir, path.join(workDir, 'roots'), this.linkCache);
      const { before, cachedBytes, root: taken } = built;
      root = taken;
      this.boundLinkCache(cachedBytes);
      const t1 = performance.now();
      signal?.throwIfAborted();
      const sandbox = sandboxMounts(job, taken, this.binds, toolchain, this.hostCopies);
      mounts = mountDestinations(sandbox.args);
      const keep = !sandbox.jobOwn && this.keptSandboxes.usable;
      // A bubblewrap of its own would not make the links a kept sandbox of this root made.
      if (!keep) this.keptSandboxes.stop(taken);
      const run = await inSlot(() => this.sandboxed(job, taken, sandbox, keep, signal));
      const t2 = performance.now();
      // Not the compile's own failure: another executor (or the client) must run it.
      if (run.exit !== 0 && DISK_FULL.test(run.stderr.toString())) {
        throw new JobFailure('disk-full', `the job directory ran out of space: ${lineMatching(run.stderr, DISK_FULL)}`);
      }
      if (run.exit !== 0 && (MISSING_INPUT.test(run.stderr.toString()) || run.stderr.includes(PLACEHOLDER_MARK))) {
        throw new JobFailure('missing-input', `the compile read a file the scan did not list: ${lineMatching(run.stderr, MISSING_INPUT, PLACEHOLDER_MARK)}`);
      }
      const outputs = await this.roots.collect(job, taken, before, LIMITS.outputBytes);
      const ms = (a: number, b: number) => Math.round(b - a);
      log.debug(
        { job: job.id, exit: run.exit, outputs: outputs.length, rootMs: ms(t0, t1), runMs: ms(t1, t2), collectMs: ms(t2, performance.now()) },
        'job executed',
      );
      return { id: job.id, exit: run.exit, stdout: run.stdout, stderr: run.stderr, outputs };
    } finally {
      store.unpin(hashes);
      const taken = root;
      if (taken) {
        this.roots.release(taken, mounts, this.keptSandboxes.has(taken)).then(
          (kept) => kept || this.keptSandboxes.stop(taken),
          () => {
            this.keptSandboxes.stop(taken);
            this.removeTree(taken);
          },
        );
      }
    }
  }

  /** Runs the job's command in its sandbox: the root's kept one when `keep` (and it can), else
   *  a bubblewrap of its own with these mounts. */
  private async sandboxed(job: Job, root: string, mounts: SandboxMounts, keep: boolean, signal?: AbortSignal): Promise<{ exit: number; stdout: Buffer; stderr: Buffer }> {
    const timeoutMs = job.timeoutMs ?? this.options.timeoutMs;
    const limits = this.limitsFor(timeoutMs);
    const common = { limits: programLimits(limits), outputLimit: LIMITS.diagnosticsBytes, timeoutMs, signal };
    let exit: number | undefined;
    let run = keep
      ? await this.keptSandboxes.run(root, mounts.args, mounts.identity, symlinkDestinations(mounts.args), {
          file: job.compiler,
          args: job.argv.slice(1),
          cwd: job.cwd,
          env: jobEnvironment(job),
          ...common,
        })
      : undefined;
    if (run) {
      // As bubblewrap reports it: 128 + the signal when the command itself was killed.
      exit = run.code ?? 128 + (run.signal ? os.constants.signals[run.signal] : 0);
    } else {
      // (A kept sandbox that could not run it has been stopped by keptSandboxes.run.)
      if (signal?.aborted) throw new JobFailure('cancelled', 'the job was cancelled');
      run = await this.spawner.run({ file: 'bwrap', args: [...mounts.args, ...jobTail(job, 3)], captureFd3: true, ...common });
      if (!signal?.aborted && run.error && run.code === null && !run.signal) throw new JobFailure('sandbox-failed', `cannot start bubblewrap: ${run.error}`);
      exit = exitCodeFromStatus(Buffer.from(run.fd3).toString());
    }
    if (signal?.aborted) throw new JobFailure('cancelled', 'the job was cancelled');
    if (run.timedOut) throw new JobFailure('timeout', `the job ran longer than ${timeoutMs} ms`);
    if (run.overLimit) throw new JobFailure('output-too-large', 'the job printed more than the diagnostics limit');
    const stderr = Buffer.from(run.stderr);
    if (exit === undefined) throw new JobFailure('sandbox-failed', `bubblewrap could not run the job: ${firstLine(stderr)}`);
    // Not the compile's own failure: a local compile, which has no such limits, must run it.
    const limitHit = resourceLimitHit(exit, stderr.toString(), limits);
    if (limitHit) throw new JobFailure('resource-limit', limitHit);
    return { exit, stdout: Buffer.from(run.stdout), stderr };
  }

  private limitsFor(timeoutMs: number): ResourceLimits {
    const { cpuSeconds, memoryBytes, outputFileBytes } = this.options;
    return {
      cpuSeconds: cpuSeconds ?? Math.ceil(timeoutMs / 1000),
      memoryBytes: memoryBytes ?? DEFAULT_JOB_MEMORY_BYTES,
      outputFileBytes: outputFileBytes ?? DEFAULT_JOB_OUTPUT_FILE_BYTES,
    };
  }

  /** Past its bound the link cache starts again empty (jobs building meanwhile copy what they miss). */
  private boundLinkCache(added: number): void {
    this.linkCacheBytes += added;
    if (!this.linkCache || this.linkCacheBytes <= LINK_CACHE_BYTES) return;
    const retired = `${this.linkCache}-retired-${++this.linkCacheGeneration}`;
    this.linkCacheBytes = 0;
    // Kept roots link into the retired cache: they would keep its space.
    void this.roots.drop().catch(() => undefined);
    fs.rename(this.linkCache, retired).then(
      () => this.removeTree(retired),
      () => undefined,
    );
  }

  /** `rm -rf` in the background: several times faster than fs.rm on a tree of small files. */
  private removeTree(dir: string): void {
    void this.spawner.run({ file: 'rm', args: ['-rf', '--', dir], outputLimit: 65_536 }).then((r) => {
      if (r.code !== 0) return fs.rm(dir, { recursive: true, force: true }).catch(() => undefined);
    });
  }
}

function exitCodeFromStatus(text: string): number | undefined {
  for (const line of text.split('\n')) {
    if (!line.trim()) continue;
    try {
      const parsed = JSON.parse(line) as { 'exit-code'?: number };
      if (typeof parsed['exit-code'] === 'number') return parsed['exit-code'];
    } catch {
      // bwrap writes one JSON object per line; anything else is not a status
    }
  }
  return undefined;
}

/** The line that says what went wrong ("Assembler messages:" or "In file included from" come first). */
function lineMatching(data: Buffer, ...patterns: (RegExp | string)[]): string {
  const lines = data.toString().split('\n');
  const found = lines.find((line) => patterns.some((p) => (typeof p === 'string' ? line.includes(p) : p.test(line))));
  return (found ?? firstLine(data)).trim();
}

function firstLine(data: Buffer): string {
  return data.toString().trim().split('\n')[0] ?? '';
}
