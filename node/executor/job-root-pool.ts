// A small pool of worker threads that build job roots and collect outputs, so that the
// thousands of small file operations of a job never block the agent's event loop. Each
// worker keeps the roots of its finished jobs for the next ones (warm-roots.ts): a root is
// taken from, collected by and released to the same worker.
import { Worker } from 'node:worker_threads';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Job } from '../../protocol/messages.js';
import { PACKAGE_ROOT } from '../paths.js';
import { rootPlan, type BuiltRoot, type CollectedOutput } from './job-root.js';
import type { JobRootRequest } from './job-root-worker.js';

type Pending = { resolve: (value: unknown) => void; reject: (err: Error) => void };
type RequestBody = Omit<JobRootRequest, 'id'>;

function workerScript(): string {
  const beside = fileURLToPath(new URL('./job-root-worker.js', import.meta.url));
  // Run from TypeScript sources (tests), the worker is the built one.
  return existsSync(beside) ? beside : path.join(PACKAGE_ROOT, 'dist', 'node', 'executor', 'job-root-worker.js');
}

export class JobRootPool {
  private readonly workers: Worker[] = [];
  private readonly pending = new Map<number, Pending>();
  private nextId = 0;
  private turn = 0;
  /** Why the pool can take no more work (a worker failed to start or died). */
  private broken?: Error;
  /** Started, and its threads not yet: they start with the first job. */
  private started = false;

  constructor(private readonly size: number) {}

  /** Ready to work; the threads start with the first job (a member that runs none keeps their memory). */
  start(): void {
    this.broken = undefined;
    this.started = true;
  }

  private ensureWorkers(): void {
    if (!this.started || this.workers.length > 0) return;
    const script = workerScript();
    for (let i = 0; i < this.size; i++) {
      const worker = new Worker(script);
      worker.unref();
      worker.on('message', (m: { id: number; ok: boolean; value?: unknown; message?: string; code?: string }) => {
        const p = this.pending.get(m.id);
        this.pending.delete(m.id);
        if (m.ok) p?.resolve(m.value);
        else p?.reject(Object.assign(new Error(m.message), m.code ? { code: m.code } : {}));
      });
      // A dead worker would leave every later call waiting for ever: fail them instead.
      worker.on('error', (err) => {
        this.broken ??= err;
        for (const p of this.pending.values()) p.reject(err);
        this.pending.clear();
      });
      worker.on('exit', (code) => {
        this.broken ??= new Error(`a job root worker ended (exit code ${code})`);
        for (const p of this.pending.values()) p.reject(this.broken);
        this.pending.clear();
      });
      this.workers.push(worker);
    }
  }

  async stop(): Promise<void> {
    this.started = false;
    this.holders.clear();
    await Promise.all(this.workers.splice(0).map((w) => w.terminate()));
  }

  /** Which worker holds each root taken and not yet released. */
  private readonly holders = new Map<string, Worker>();

  private call(body: RequestBody, worker = this.next()): Promise<unknown> {
    if (this.broken) return Promise.reject(this.broken);
    if (!worker) return Promise.reject(new Error('the job root pool is not running'));
    const id = ++this.nextId;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      worker.postMessage({ id, ...body });
    });
  }

  /** The next worker in turn (the threads start here, with the first job). */
  private next(): Worker | undefined {
    this.ensureWorkers();
    return this.workers[this.turn++ % this.workers.length];
  }

  /** A root for the job under `rootsDir` (a kept one brought up to date, or a new one). */
  async take(job: Job, storeDir: string, rootsDir: string, linkCache?: string): Promise<BuiltRoot & { root: string }> {
    const worker = this.next();
    const built = (await this.call({ op: 'take', args: [rootPlan(job), storeDir, rootsDir, linkCache] }, worker)) as BuiltRoot & { root: string };
    this.holders.set(built.root, worker!);
    return built;
  }

  collect(job: Job, root: string, before: Record<string, string[]>, maxBytes: number): Promise<CollectedOutput[]> {
    return this.call({ op: 'collect', args: [job.outputs, root, before, maxBytes] }, this.holders.get(root)) as Promise<CollectedOutput[]>;
  }

  /** The job is over: the root is kept for another job if the compile left it as it was, else removed. */
  release(root: string, sandboxMounts: string[], sandboxKept: boolean): Promise<boolean> {
    const worker = this.holders.get(root);
    this.holders.delete(root);
    return this.call({ op: 'release', args: [root, sandboxMounts, sandboxKept] }, worker) as Promise<boolean>;
  }

  /** Writes a store object (a file that came with an offer) in a worker: six file calls off the event loop. */
  async storeObject(storeDir: string, hash: string, data: Uint8Array): Promise<void> {
    await this.call({ op: 'store', args: [storeDir, hash, data] });
  }

  /** Every kept root removed (their files point into a retired link cache). */
  async drop(): Promise<void> {
    await Promise.all(this.workers.map((w) => this.call({ op: 'drop', args: [] }, w)));
  }
}
