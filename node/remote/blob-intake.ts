// A peer's intake of store files sent by clients. Concurrent jobs that need the same file
// make one transfer: the first job to need it asks its client; the others wait for that
// transfer and ask their own client only if it fails. Each file is written to a temporary
// file as its chunks arrive (never held whole in memory), its sha256 checked, then adopted
// into the store atomically.
import { createHash, type Hash } from 'node:crypto';
import { promises as fs } from 'node:fs';
import { ProtocolError } from '../../protocol/errors.js';
import { unpackChunk } from '../../protocol/compression.js';
import { MESH_JOB_LIMITS, type BlobChunk } from '../../protocol/messages.js';
import type { Store } from '../store.js';

interface Pending {
  promise: Promise<void>;
  resolve: () => void;
  reject: (err: Error) => void;
}

interface OpenFile {
  hash: string;
  temp: string;
  handle: fs.FileHandle;
  digest: Hash;
  size: number;
  expectedSize: number;
}

export class BlobIntake {
  private readonly inflight = new Map<string, Pending>();

  constructor(private readonly store: Store) {}

  /** Splits the files a job lacks into those this job must fetch itself and transfers to await. */
  claim(hashes: Iterable<string>): { mine: string[]; others: Promise<void>[] } {
    const mine: string[] = [];
    const others: Promise<void>[] = [];
    for (const hash of new Set(hashes)) {
      if (this.store.has(hash)) continue;
      const pending = this.inflight.get(hash);
      if (pending) {
        others.push(pending.promise);
        continue;
      }
      let resolve!: () => void;
      let reject!: (err: Error) => void;
      const promise = new Promise<void>((res, rej) => {
        resolve = res;
        reject = rej;
      });
      promise.catch(() => undefined);
      this.inflight.set(hash, { promise, resolve, reject });
      mine.push(hash);
    }
    return { mine, others };
  }

  /** Receives the files claimed as `mine`, in any order, each as consecutive chunks. */
  async receive(mine: string[], sizes: Map<string, number>, next: () => Promise<BlobChunk>): Promise<number> {
    const wanted = new Set(mine);
    let open: OpenFile | undefined;
    let bytes = 0;
    try {
      while (wanted.size > 0) {
        const chunk = await next();
        if (!open) {
          if (!wanted.has(chunk.hash)) throw new ProtocolError('unexpected-blob', `blob ${chunk.hash.slice(0, 12)} was not asked for`);
          const temp = this.store.tempPath();
          open = { hash: chunk.hash, temp, handle: await fs.open(temp, 'wx', 0o600), digest: createHash('sha256'), size: 0, expectedSize: sizes.get(chunk.hash) ?? 0 };
        } else if (chunk.hash !== open.hash) {
          throw new ProtocolError('unexpected-blob', `blob ${chunk.hash.slice(0, 12)} started before ${open.hash.slice(0, 12)} ended`);
        }
        const data = await unpackChunk(chunk, MESH_JOB_LIMITS.chunkBytes);
        open.size += data.length;
        bytes += chunk.data.length;
        if (open.size > open.expectedSize) throw new ProtocolError('blob-size', `blob ${open.hash.slice(0, 12)} is larger than the job said`);
        open.digest.update(data);
        await open.handle.write(data);
        if (!chunk.last) continue;
        const file = open;
        open = undefined;
        await file.handle.close();
        if (file.digest.digest('hex') !== file.hash || file.size !== file.expectedSize) {
          await fs.rm(file.temp, { force: true });
          throw new ProtocolError('blob-hash', `blob ${file.hash.slice(0, 12)} does not match its hash`);
        }
        await this.store.adopt(file.hash, file.temp, file.size);
        wanted.delete(file.hash);
        this.settle(file.hash);
      }
      return bytes;
    } catch (err) {
      if (open) {
        await open.handle.close().catch(() => undefined);
        await fs.rm(open.temp, { force: true });
      }
      for (const hash of wanted) this.settle(hash, err as Error);
      throw err;
    }
  }

  /** Gives up on claimed files (the job ended before receiving them). */
  abandon(hashes: Iterable<string>, reason: Error): void {
    for (const hash of hashes) this.settle(hash, reason);
  }

  private settle(hash: string, err?: Error): void {
    const pending = this.inflight.get(hash);
    if (!pending) return;
    this.inflight.delete(hash);
    if (err) pending.reject(err);
    else pending.resolve();
  }
}
