// The toolchains a peer received from others, installed under one directory by id
// (<dir>/<id>, see toolchain/unpack.ts) and bounded in size (MESHCC_TOOLCHAIN_CACHE_MB).
//
// - A job holds a lease on its toolchain while it runs; eviction (least recently used first)
//   never takes a leased one, so the cache may exceed its bound while many are in use.
// - Concurrent installs of one id are one install: the first caller's source is read, the
//   others are not, and every caller gets a lease on the result.
// - Last-used times live in index.json (written atomically, at most once a second), so the
//   eviction order survives a restart.
// - A tree may be touched after install (an admin, a stray process, a disk error). Each entry
//   keeps a cheap signature of its tree (entry count, bytes, newest mtime or ctime, which no
//   one can set back). acquire compares it, and on a difference re-packs the tree
//   (planFromTree) and compares the sha256 with the id: a match records the new signature, a
//   mismatch removes the toolchain and acquire reports it missing.
import { lstatSync, mkdirSync, readdirSync, readFileSync, renameSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { z } from 'zod';
import { DESCRIPTION_PATH, parseDescription, ToolchainDescriptionSchema, type Platform, type ToolchainDescription } from '../toolchain/description.js';
import { AtomicJsonFile } from '../toolchain/json-file.js';
import { planFromTree, toolchainTarId } from '../toolchain/pack.js';
import { DEFAULT_UNPACK_LIMITS, installToolchain, type UnpackLimits } from '../toolchain/unpack.js';

export interface ToolchainCacheLog {
  debug(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
}

export interface ToolchainCacheOptions {
  dir: string;
  /** evict least recently used toolchains beyond this many bytes of files */
  maxBytes: number;
  limits?: Partial<UnpackLimits>;
  /** the machine toolchains must run on; this one by default */
  platform?: Platform;
  log?: ToolchainCacheLog;
  /** a toolchain was installed or removed */
  onChange?: () => void;
  /** for tests */
  now?: () => number;
}

export interface ToolchainLease {
  id: string;
  /** the directory holding the toolchain's tree (the root of a job's sandbox) */
  root: string;
  description: ToolchainDescription;
  /** Ends the lease (idempotent); an unleased toolchain may be evicted. */
  release(): void;
}

export interface CachedToolchain {
  id: string;
  description: ToolchainDescription;
  bytes: number;
  /** ms since the epoch; 0 for a tree found on disk and not used since */
  lastUsed: number;
  inUse: boolean;
}

export type ToolchainSource = Readable | (() => Readable | Promise<Readable>);

const IndexEntry = z.object({
  bytes: z.number().nonnegative(),
  lastUsed: z.number().nonnegative(),
  signature: z.string().nullable(),
  description: ToolchainDescriptionSchema,
});
type IndexEntry = z.infer<typeof IndexEntry>;
const IndexFile = z.object({ version: z.literal(1), toolchains: z.record(z.string().regex(/^[0-9a-f]{64}$/), IndexEntry) });

const INDEX = 'index.json';
const ID = /^[0-9a-f]{64}$/;
const SAVE_DELAY_MS = 1000;

/** How long a tree found intact is not walked again. */
const RECHECK_MS = 2000;

/** Count, bytes and newest time of every entry under root, never following links. */
function scanTree(root: string): { signature: string; bytes: number } {
  let count = 0;
  let bytes = 0;
  let newest = 0n;
  const walk = (dir: string): void => {
    for (const name of readdirSync(dir)) {
      const full = path.join(dir, name);
      const st = lstatSync(full, { bigint: true });
      count++;
      if (st.isFile()) bytes += Number(st.size);
      for (const t of [st.mtimeNs, st.ctimeNs]) if (t > newest) newest = t;
      if (st.isDirectory()) walk(full);
    }
  };
  walk(root);
  return { signature: `${count}:${bytes}:${newest}`, bytes };
}

function discard(source: ToolchainSource): void {
  if (typeof source !== 'function') source.destroy();
}

interface PendingInstall {
  promise: Promise<void>;
  /** callers waiting for this install; each gets a lease when it is done */
  waiters: number;
  /** the waiters' leases are taken: nobody may join any more */
  settled: boolean;
}

export class ToolchainCache {
  private readonly dir: string;
  private readonly entries = new Map<string, IndexEntry>();
  private readonly leases = new Map<string, number>();
  private readonly installs = new Map<string, PendingInstall>();
  private readonly verifications = new Map<string, Promise<boolean>>();
  /** When each tree was last found intact (not saved: a restarted agent walks it again). */
  private readonly checkedAt = new Map<string, number>();
  private readonly now: () => number;
  private saveTimer: NodeJS.Timeout | undefined;
  private readonly index: AtomicJsonFile;

  constructor(private readonly options: ToolchainCacheOptions) {
    this.dir = options.dir;
    this.now = options.now ?? Date.now;
    this.index = new AtomicJsonFile(path.join(this.dir, INDEX), (err) => options.log?.warn({ err: err.message }, 'cannot save the toolchain cache index'));
    mkdirSync(this.dir, { recursive: true });
    this.load();
  }

  has(id: string): boolean {
    return this.entries.has(id);
  }

  /** Bytes of files of all installed toolchains. */
  get totalBytes(): number {
    let total = 0;
    for (const e of this.entries.values()) total += e.bytes;
    return total;
  }

  list(): CachedToolchain[] {
    return [...this.entries].map(([id, e]) => ({ id, description: e.description, bytes: e.bytes, lastUsed: e.lastUsed, inUse: (this.leases.get(id) ?? 0) > 0 }));
  }

  /**
   * A lease on an installed toolchain (waiting for an install of it under way), verified
   * again if its tree was touched; undefined when it is not here (or failed verification).
   */
  async acquire(id: string): Promise<ToolchainLease | undefined> {
    const pending = this.installs.get(id);
    if (pending) await pending.promise.catch(() => undefined);
    if (!this.entries.has(id)) return undefined;
    this.pin(id);
    let intact: boolean;
    try {
      intact = await this.verify(id);
    } catch {
      intact = false;
    }
    if (!intact) {
      this.unpin(id);
      return undefined;
    }
    return this.lease(id);
  }

  /**
   * Installs the toolchain from `source` (a stream of its tarball, or a function opening one,
   * called only if this install is the one that reads) and leases it. Rejects with the
   * installer's ToolchainRejected, leaving the cache as it was.
   */
  async install(id: string, source: ToolchainSource): Promise<ToolchainLease> {
    for (;;) {
      const present = await this.acquire(id);
      if (present) {
        discard(source);
        return present;
      }
      let pending = this.installs.get(id);
      // Finished between acquire and now: acquire again rather than count on its leases.
      if (pending?.settled) continue;
      if (pending) discard(source);
      else {
        const created: PendingInstall = { waiters: 0, settled: false, promise: Promise.resolve() };
        created.promise = this.runInstall(id, source, created).finally(() => this.installs.delete(id));
        this.installs.set(id, created);
        pending = created;
      }
      pending.waiters++;
      await pending.promise;
      return this.lease(id);
    }
  }

  /**
   * Evicts unleased toolchains, least recently used first, until the total is at most
   * `targetBytes` (the configured bound by default). Returns the evicted ids.
   */
  async prune(targetBytes = this.options.maxBytes): Promise<string[]> {
    let total = this.totalBytes;
    const candidates = [...this.entries]
      .filter(([id]) => !this.leases.has(id) && !this.installs.has(id))
      .sort(([, a], [, b]) => a.lastUsed - b.lastUsed);
    const evicted: string[] = [];
    for (const [id, entry] of candidates) {
      if (total <= targetBytes) break;
      total -= entry.bytes;
      evicted.push(id);
    }
    await Promise.all(evicted.map((id) => this.remove(id, 'evicted')));
    return evicted;
  }

  /** Writes index.json now if anything changed since it was last written. */
  flush(): Promise<void> {
    if (this.saveTimer) {
      clearTimeout(this.saveTimer);
      this.saveTimer = undefined;
      this.save();
    }
    return this.index.settled();
  }

  private async runInstall(id: string, source: ToolchainSource, pending: PendingInstall): Promise<void> {
    const stream = typeof source === 'function' ? await source() : source;
    const limits = { ...DEFAULT_UNPACK_LIMITS, ...this.options.limits };
    // Something larger than the whole cache could only be evicted again.
    limits.maxTotalBytes = Math.min(limits.maxTotalBytes, this.options.maxBytes);
    const installed = await installToolchain({ cacheDir: this.dir, id, source: stream, limits, platform: this.options.platform });
    const scan = scanTree(installed.root);
    // A tree that was already on disk is not the one this install checked: verify it on use.
    const signature = installed.alreadyPresent ? null : scan.signature;
    this.entries.set(id, { bytes: scan.bytes, lastUsed: this.now(), signature, description: installed.description });
    // The waiters' leases start here, before anything else can run and evict it.
    this.leases.set(id, (this.leases.get(id) ?? 0) + pending.waiters);
    pending.settled = true;
    this.scheduleSave();
    this.options.log?.debug({ id, bytes: scan.bytes, entries: installed.entries }, 'toolchain installed');
    this.options.onChange?.();
    void this.prune().catch((err: Error) => this.options.log?.warn({ err: err.message }, 'toolchain cache eviction failed'));
  }

  /** A lease on a pinned, present toolchain. */
  private lease(id: string): ToolchainLease {
    const entry = this.entries.get(id);
    if (!entry) throw new Error(`toolchain ${id} vanished while it was leased`);
    entry.lastUsed = this.now();
    this.scheduleSave();
    let released = false;
    return {
      id,
      root: path.join(this.dir, id),
      description: entry.description,
      release: () => {
        if (released) return;
        released = true;
        this.unpin(id);
      },
    };
  }

  private pin(id: string): void {
    this.leases.set(id, (this.leases.get(id) ?? 0) + 1);
  }

  private unpin(id: string): void {
    const count = (this.leases.get(id) ?? 0) - 1;
    if (count > 0) {
      this.leases.set(id, count);
      return;
    }
    this.leases.delete(id);
    // Evictions that waited for this lease to end.
    if (this.totalBytes > this.options.maxBytes) void this.prune().catch((err: Error) => this.options.log?.warn({ err: err.message }, 'toolchain cache eviction failed'));
  }

  /** Whether the tree is still the one installed; removes it if not. */
  private verify(id: string): Promise<boolean> {
    const entry = this.entries.get(id)!;
    // Every job of a build asks: one walk of the tree (~1 ms for a gcc) per couple of seconds
    // is enough to catch a tree touched since its install (the cache is this agent's own).
    const checked = this.checkedAt.get(id);
    if (checked !== undefined && Math.abs(this.now() - checked) < RECHECK_MS) return Promise.resolve(true);
    const root = path.join(this.dir, id);
    let scan: ReturnType<typeof scanTree>;
    try {
      scan = scanTree(root);
    } catch (err) {
      this.options.log?.warn({ id, err: (err as Error).message }, 'installed toolchain is unreadable: forgetting it');
      return this.remove(id, 'unreadable').then(() => false);
    }
    if (scan.signature === entry.signature) {
      this.checkedAt.set(id, this.now());
      return Promise.resolve(true);
    }
    this.checkedAt.delete(id);
    let running = this.verifications.get(id);
    if (!running) {
      running = (async () => {
        this.options.log?.debug({ id }, 'toolchain tree touched since install, verifying it again');
        let digest: string | undefined;
        try {
          digest = (await toolchainTarId(await planFromTree(root))).id;
        } catch (err) {
          this.options.log?.warn({ id, err: (err as Error).message }, 'cannot re-pack an installed toolchain');
        }
        if (digest === id) {
          this.checkedAt.set(id, this.now());
          entry.signature = scan.signature;
          entry.bytes = scan.bytes;
          this.scheduleSave();
          return true;
        }
        this.options.log?.warn({ id, digest }, 'installed toolchain was modified: removing it');
        await this.remove(id, 'modified');
        return false;
      })().finally(() => this.verifications.delete(id));
      this.verifications.set(id, running);
    }
    return running;
  }

  /** Drops the entry now and its tree soon: the id's directory disappears in one rename. */
  private async remove(id: string, why: string): Promise<void> {
    if (!this.entries.delete(id)) return;
    this.checkedAt.delete(id);
    this.scheduleSave();
    this.options.onChange?.();
    const trash = path.join(this.dir, `.trash-${id}-${process.pid}-${this.now()}-${Math.random().toString(36).slice(2)}`);
    try {
      renameSync(path.join(this.dir, id), trash);
    } catch (err) {
      this.options.log?.warn({ id, err: (err as Error).message }, 'cannot remove a cached toolchain');
      return;
    }
    this.options.log?.debug({ id, why }, 'toolchain removed from the cache');
    await rm(trash, { recursive: true, force: true });
  }

  /** The index, reconciled with the directory: what a crash left half-done is cleaned up. */
  private load(): void {
    let saved: Record<string, IndexEntry> = {};
    try {
      const parsed = IndexFile.safeParse(JSON.parse(readFileSync(path.join(this.dir, INDEX), 'utf8')));
      if (parsed.success) saved = parsed.data.toolchains;
    } catch {
      // no index yet, or unreadable: the trees on disk are adopted below
    }
    for (const name of readdirSync(this.dir)) {
      const full = path.join(this.dir, name);
      if (name.startsWith('.staging-') || name.startsWith('.trash-')) {
        rm(full, { recursive: true, force: true }).catch(() => undefined);
        continue;
      }
      if (!ID.test(name) || !lstatSync(full).isDirectory()) continue;
      const known = saved[name];
      if (known) {
        this.entries.set(name, known);
        continue;
      }
      // Renamed into place but not yet indexed when the agent stopped: keep it, verify it on use.
      const parsed = (() => {
        try {
          return parseDescription(readFileSync(path.join(full, DESCRIPTION_PATH)));
        } catch {
          return undefined;
        }
      })();
      if (parsed && 'description' in parsed) {
        this.entries.set(name, { bytes: scanTree(full).bytes, lastUsed: 0, signature: null, description: parsed.description });
        this.scheduleSave();
      } else {
        rm(full, { recursive: true, force: true }).catch(() => undefined);
      }
    }
    if (Object.keys(saved).some((id) => !this.entries.has(id))) this.scheduleSave();
  }

  private scheduleSave(): void {
    if (this.saveTimer) return;
    this.saveTimer = setTimeout(() => {
      this.saveTimer = undefined;
      this.save();
    }, SAVE_DELAY_MS);
    this.saveTimer.unref();
  }

  private save(): void {
    void this.index.save({ version: 1, toolchains: Object.fromEntries(this.entries) });
  }
}
