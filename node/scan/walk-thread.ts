// The agent's side of the walk: sends a compile to one of the walk workers (walk-worker.ts)
// and turns the catalog numbers it answers into input files, one object per file (path,
// content, mode) for the agent's life whichever worker found it (the offer tables know an
// input by that object); what a worker wrote into the store's directory is taken into the
// store's index.
//
// One worker walks a git unit in ~5-9 ms: alone it caps a client agent near 100-200 jobs a
// second, below what its event loop allows. So there are several where the machine has the
// cores for them (walkThreadsFor), each with its own caches and catalog; a scan goes to the
// one with the fewest scans waiting.
// Without worker threads (or once all have failed) the same scanner runs here: slower, never wrong.
import { existsSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import type { InputFile, OutputFile } from '../../protocol/messages.js';
import { writeOutputs } from '../outputs.js';
import { PACKAGE_ROOT } from '../paths.js';
import type { Store } from '../store.js';
import type { SearchChains } from './search-probe.js';
import { WalkScanner, type FreshFile, type WalkScanReply, type WalkScanRequest } from './walk-scan.js';
import type { WalkWorkerRequest } from './walk-worker.js';

export type WalkedInputs = { ok: true; inputs: InputFile[]; fresh: FreshFile[]; dirs: string[] } | { ok: false; reason: string };

function workerScript(): string | undefined {
  const beside = fileURLToPath(new URL('./walk-worker.js', import.meta.url));
  // Run from TypeScript sources (tests), the worker is the built one.
  const built = existsSync(beside) ? beside : path.join(PACKAGE_ROOT, 'dist', 'node', 'scan', 'walk-worker.js');
  return existsSync(built) ? built : undefined;
}

/** Walk workers for a machine of `cores`: one per four cores, one to four (MESHCC_WALK_THREADS sets it). */
export function walkThreadsFor(cores = os.availableParallelism(), env: NodeJS.ProcessEnv = process.env): number {
  const asked = Number(env.MESHCC_WALK_THREADS);
  if (Number.isInteger(asked) && asked >= 1) return Math.min(asked, 16);
  return Math.max(1, Math.min(4, Math.floor(cores / 4)));
}

interface WalkWorker {
  worker: Worker;
  pending: Map<number, (reply: WalkScanReply) => void>;
  writes: Map<number, { resolve: () => void; reject: (err: Error) => void }>;
  /** Input files by this worker's catalog numbers. */
  catalog: InputFile[];
  /** Search chains this worker holds, by number (the probe hands out one object per set of options). */
  chainNumbers: Map<SearchChains, number>;
}

export class WalkThread {
  private readonly workers: WalkWorker[] = [];
  private here?: WalkScanner;
  private nextId = 0;
  /** One object per (path, content, size, mode), whichever worker numbered it. */
  private readonly canonical = new Map<string, InputFile>();

  /** The worker script, until the workers start (at the first scan or write: an agent that
   *  never compiles for itself, a peer or a member of a large mesh, keeps their memory). */
  private script?: string;

  constructor(
    private readonly store: Store,
    useThread = true,
    private readonly threadCount = walkThreadsFor(),
  ) {
    this.script = useThread ? workerScript() : undefined;
    if (!this.script) this.here = new WalkScanner(store.dir);
  }

  get threads(): number {
    return this.script ? this.threadCount : this.workers.length;
  }

  private startWorkers(): void {
    const script = this.script;
    if (!script) return;
    this.script = undefined;
    for (let i = 0; i < this.threadCount; i++) this.startWorker(script);
  }

  private startWorker(script: string): void {
    const w: WalkWorker = {
      worker: new Worker(script, { workerData: { storeDir: this.store.dir } }),
      pending: new Map(),
      writes: new Map(),
      catalog: [],
      chainNumbers: new Map(),
    };
    w.worker.unref();
    w.worker.on('message', (m: { id: number; reply?: WalkScanReply; written?: boolean; message?: string; code?: string }) => {
      if (m.written !== undefined) {
        const write = w.writes.get(m.id);
        w.writes.delete(m.id);
        if (m.written) write?.resolve();
        else write?.reject(Object.assign(new Error(m.message), { code: m.code }));
        return;
      }
      const resolve = w.pending.get(m.id);
      w.pending.delete(m.id);
      resolve?.(m.reply!);
    });
    const failed = (why: string) => {
      // Its catalog is gone with it; the others go on, and with none left the scans run here.
      const at = this.workers.indexOf(w);
      if (at < 0) return;
      this.workers.splice(at, 1);
      if (this.workers.length === 0) this.here = new WalkScanner(this.store.dir);
      for (const resolve of w.pending.values()) resolve({ ok: false, reason: why });
      w.pending.clear();
      for (const write of w.writes.values()) write.reject(new Error(why));
      w.writes.clear();
    };
    w.worker.on('error', (err) => failed(`the walk thread failed: ${err.message}`));
    w.worker.on('exit', (code) => failed(`the walk thread exited (${code})`));
    this.workers.push(w);
  }

  /** The worker with the fewest scans and writes waiting. */
  private leastBusy(): WalkWorker | undefined {
    this.startWorkers();
    let best: WalkWorker | undefined;
    for (const w of this.workers) if (!best || w.pending.size + w.writes.size < best.pending.size + best.writes.size) best = w;
    return best;
  }

  async scan(request: WalkScanRequest): Promise<WalkedInputs> {
    const w = this.leastBusy();
    const here = w ? undefined : (this.here ??= new WalkScanner(this.store.dir));
    const catalog = w ? w.catalog : this.hereCatalog;
    const reply = here ? here.scan(request) : await this.ask(w!, request);
    if (!reply.ok) return reply;
    for (const [number, file, hash, size, executable] of reply.defined) {
      const key = `${file}\0${hash}\0${size}\0${executable ? 1 : 0}`;
      let input = this.canonical.get(key);
      if (!input) this.canonical.set(key, (input = { path: file, hash, size, executable }));
      catalog[number] = input;
    }
    for (const [hash, size] of reply.stored) await this.store.adoptWritten(hash, size);
    const inputs = new Array<InputFile>(reply.inputs.length);
    for (let i = 0; i < reply.inputs.length; i++) inputs[i] = catalog[reply.inputs[i]!]!;
    return { ok: true, inputs, fresh: reply.fresh, dirs: reply.dirs };
  }

  /** The catalog of the scanner run here. */
  private readonly hereCatalog: InputFile[] = [];

  private ask(w: WalkWorker, request: WalkScanRequest): Promise<WalkScanReply> {
    const id = ++this.nextId;
    // The chains cross once per set of options and worker, not with every job.
    let chainsId = w.chainNumbers.get(request.chains);
    const known = chainsId !== undefined;
    if (chainsId === undefined) w.chainNumbers.set(request.chains, (chainsId = w.chainNumbers.size));
    const message: WalkWorkerRequest = { id, op: 'scan', chainsId, scan: { ...request, chains: known ? undefined : request.chains } };
    return new Promise((resolve) => {
      w.pending.set(id, resolve);
      w.worker.postMessage(message);
    });
  }

  /** Writes a job's outputs where the plain command writes them (node/outputs.ts), in a worker. */
  writeOutputs(outputs: OutputFile[], umask: number): Promise<void> {
    const w = this.leastBusy();
    if (!w) return writeOutputs(outputs, umask);
    const id = ++this.nextId;
    return new Promise((resolve, reject) => {
      w.writes.set(id, { resolve, reject });
      w.worker.postMessage({ id, op: 'write', outputs, umask } satisfies WalkWorkerRequest);
    });
  }

  async stop(): Promise<void> {
    this.script = undefined;
    const workers = this.workers.splice(0);
    await Promise.all(workers.map((w) => w.worker.terminate()));
  }
}
