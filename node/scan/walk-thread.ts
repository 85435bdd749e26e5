// The agent's side of the walk: sends a compile to the walk worker (walk-worker.ts) and turns
// the catalog numbers it answers into input files, one object per number for the agent's life
// (the offer tables know an input by that object); what the worker wrote into the store's
// directory is taken into the store's index.
// Without worker threads (or once one has failed) the same scanner runs here: slower, never wrong.
import { existsSync } from 'node:fs';
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

export class WalkThread {
  private worker?: Worker;
  private here?: WalkScanner;
  private readonly pending = new Map<number, (reply: WalkScanReply) => void>();
  private readonly writes = new Map<number, { resolve: () => void; reject: (err: Error) => void }>();
  private nextId = 0;
  /** Input files by catalog number; a new catalog (a new worker) starts a new array. */
  private catalog: InputFile[] = [];
  /** Search chains the worker holds, by number (the probe hands out one object per set of options). */
  private chainNumbers = new Map<SearchChains, number>();

  constructor(
    private readonly store: Store,
    useThread = true,
  ) {
    const script = useThread ? workerScript() : undefined;
    if (script) this.startWorker(script);
    else this.here = new WalkScanner(store.dir);
  }

  private startWorker(script: string): void {
    const worker = new Worker(script, { workerData: { storeDir: this.store.dir } });
    worker.unref();
    worker.on('message', (m: { id: number; reply?: WalkScanReply; written?: boolean; message?: string; code?: string }) => {
      if (m.written !== undefined) {
        const write = this.writes.get(m.id);
        this.writes.delete(m.id);
        if (m.written) write?.resolve();
        else write?.reject(Object.assign(new Error(m.message), { code: m.code }));
        return;
      }
      const resolve = this.pending.get(m.id);
      this.pending.delete(m.id);
      resolve?.(m.reply!);
    });
    const failed = (why: string) => {
      // Its catalog is gone with it: scan here from now on, with a catalog of our own.
      if (this.worker !== worker) return;
      this.worker = undefined;
      this.here = new WalkScanner(this.store.dir);
      this.catalog = [];
      this.chainNumbers = new Map();
      for (const resolve of this.pending.values()) resolve({ ok: false, reason: why });
      this.pending.clear();
      for (const write of this.writes.values()) write.reject(new Error(why));
      this.writes.clear();
    };
    worker.on('error', (err) => failed(`the walk thread failed: ${err.message}`));
    worker.on('exit', (code) => failed(`the walk thread exited (${code})`));
    this.worker = worker;
  }

  async scan(request: WalkScanRequest): Promise<WalkedInputs> {
    const catalog = this.catalog;
    const reply = this.here ? this.here.scan(request) : await this.ask(request);
    if (!reply.ok) return reply;
    // Replies from a worker that has since failed number files in a catalog that is gone.
    if (catalog !== this.catalog) return { ok: false, reason: 'the walk thread restarted' };
    for (const [number, file, hash, size, executable] of reply.defined) catalog[number] = { path: file, hash, size, executable };
    for (const [hash, size] of reply.stored) await this.store.adoptWritten(hash, size);
    const inputs = new Array<InputFile>(reply.inputs.length);
    for (let i = 0; i < reply.inputs.length; i++) inputs[i] = catalog[reply.inputs[i]!]!;
    return { ok: true, inputs, fresh: reply.fresh, dirs: reply.dirs };
  }

  private ask(request: WalkScanRequest): Promise<WalkScanReply> {
    const id = ++this.nextId;
    // The chains cross once per set of options, not with every job.
    let chainsId = this.chainNumbers.get(request.chains);
    const known = chainsId !== undefined;
    if (chainsId === undefined) this.chainNumbers.set(request.chains, (chainsId = this.chainNumbers.size));
    const message: WalkWorkerRequest = { id, op: 'scan', chainsId, scan: { ...request, chains: known ? undefined : request.chains } };
    return new Promise((resolve) => {
      this.pending.set(id, resolve);
      this.worker!.postMessage(message);
    });
  }

  /** Writes a job's outputs where the plain command writes them (node/outputs.ts), in the worker. */
  writeOutputs(outputs: OutputFile[], umask: number): Promise<void> {
    if (!this.worker) return writeOutputs(outputs, umask);
    const id = ++this.nextId;
    return new Promise((resolve, reject) => {
      this.writes.set(id, { resolve, reject });
      this.worker!.postMessage({ id, op: 'write', outputs, umask } satisfies WalkWorkerRequest);
    });
  }

  async stop(): Promise<void> {
    const worker = this.worker;
    this.worker = undefined;
    await worker?.terminate();
  }
}
