// Identifies a C/C++ compiler by the content of its files: the driver, gcc's internal
// programs, and every shared library and the loader they need. The id (toolchain-id.ts) is
// what jobs, adverts and caches call a toolchain; a peer runs a job only with the same id.
//
// Two cache levels, both re-validated on every call by stats alone (no reads, no spawns):
// per invoked path, the Toolchain (one `-v` spawn made it: clang's mode and target follow the
// name);
// per real driver, the collected and hashed files (gcc, gcc-12, cc and x86_64-linux-gnu-gcc
// share them). Under both, file hashes are cached by signature, so after a change only the
// changed files are read again.
import { realpathSync } from 'node:fs';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { cacheContent, loadCache, type CachedEntry } from './cache-file.js';
import { AtomicJsonFile } from './json-file.js';
import { collectFiles, unchanged, type CollectedFiles } from './collect.js';
import { FileHasher, fileState, isElf } from './files.js';
import { probeDriver } from './probe.js';
import { toolchainId } from './toolchain-id.js';
import type { Toolchain, ToolchainLog } from './types.js';

export type { Toolchain, ToolchainFamily, ToolchainFile, ToolchainLog } from './types.js';
export { findHostCompilers } from './find-compilers.js';
export { toolchainId } from './toolchain-id.js';

export interface ToolchainIdentifierOptions {
  log?: ToolchainLog;
  /** Keep results in this JSON file across restarts (each entry is re-validated before use). */
  cacheFile?: string;
}

/** Real binaries that stand in for a compiler and run the real one: not a toolchain themselves. */
const WRAPPERS = new Set(['meshcc-cc', 'ccache', 'sccache', 'distcc', 'icecc', 'buildcache']);
/** A failure is remembered this long (a non-compiler stays one; a timeout under load may not). */
const FAILURE_TTL_MS = 60_000;

interface Driver {
  real: string;
  /** real path and signature: retargeting a symlink (update-alternatives) is a change too */
  key: string;
}

interface Entry {
  driverKey: string;
  promise: Promise<Toolchain>;
  done?: { toolchain: Toolchain; collected: CollectedFiles };
  failedAt?: number;
}

interface Collection {
  driverKey: string;
  promise: Promise<CollectedFiles>;
  done?: CollectedFiles;
}

function oneLine(compilerPath: string, err: unknown): Error {
  const reason = (err instanceof Error ? err.message : String(err)).replace(/\s+/g, ' ').trim().slice(0, 300);
  return new Error(`cannot identify ${compilerPath}: ${reason}`);
}

function driverOf(compilerPath: string): Driver {
  if (!path.isAbsolute(compilerPath)) throw new Error('not an absolute path');
  let real: string;
  try {
    real = realpathSync(compilerPath);
  } catch {
    throw new Error('no such file');
  }
  const state = fileState(real);
  if (!state) throw new Error('not a regular file');
  return { real, key: `${real}\0${state.signature}` };
}

export class ToolchainIdentifier {
  /** by the path as invoked */
  private readonly entries = new Map<string, Entry>();
  /** by the real path of the driver */
  private readonly collections = new Map<string, Collection>();
  private readonly hasher = new FileHasher();
  private readonly log: ToolchainLog | undefined;
  private readonly cacheFile: string | undefined;
  private readonly writer: AtomicJsonFile | undefined;
  private loaded = false;
  private identifications = 0;

  constructor(options: ToolchainIdentifierOptions = {}) {
    this.log = options.log;
    this.cacheFile = options.cacheFile;
    if (options.cacheFile) {
      this.writer = new AtomicJsonFile(options.cacheFile, (err) => this.log?.debug({ err: err.message }, 'cannot save the toolchain cache'));
    }
  }

  /** How many identifications ran (not answered from the cache), and how many files were read to hash them. */
  get stats(): { identifications: number; filesHashed: number } {
    return { identifications: this.identifications, filesHashed: this.hasher.hashed };
  }

  /**
   * Identify the compiler at this absolute path (as invoked, may be a symlink like
   * /usr/bin/cc). Concurrent calls for the same path share one computation. Rejects with a
   * one-line Error for something that is not a gcc/clang driver.
   */
  identify(compilerPath: string): Promise<Toolchain> {
    let driver: Driver;
    try {
      driver = driverOf(compilerPath);
    } catch (err) {
      return Promise.reject(oneLine(compilerPath, err));
    }
    this.loadCacheFile();
    const cached = this.entries.get(compilerPath);
    if (cached && cached.driverKey === driver.key && this.stillValid(cached)) return cached.promise;
    if (cached?.done) this.log?.debug({ compiler: compilerPath }, 'toolchain changed on disk, identifying it again');

    const entry: Entry = {
      driverKey: driver.key,
      promise: this.compute(compilerPath, driver).then(
        (done) => {
          entry.done = done;
          this.persist();
          return done.toolchain;
        },
        (err: unknown) => {
          entry.failedAt = Date.now();
          throw oneLine(compilerPath, err);
        },
      ),
    };
    this.entries.set(compilerPath, entry);
    return entry.promise;
  }

  private stillValid(entry: Entry): boolean {
    if (entry.done) return unchanged(entry.done.collected);
    if (entry.failedAt !== undefined) return Date.now() - entry.failedAt < FAILURE_TTL_MS;
    return true; // under way
  }

  private async compute(compilerPath: string, driver: Driver): Promise<{ toolchain: Toolchain; collected: CollectedFiles }> {
    this.identifications++;
    const started = performance.now();
    const name = path.basename(driver.real);
    if (WRAPPERS.has(name)) throw new Error(`it runs ${name}, a compiler wrapper, not a compiler driver`);
    // Checked before running it: a script or data file is never a gcc/clang driver.
    if (!(await isElf(driver.real))) throw new Error('not an ELF executable, so not a gcc or clang driver');
    const probe = await probeDriver(compilerPath);
    const collected = await this.collect(driver, () => collectFiles(driver.real, probe, this.hasher, this.log));
    const { files } = collected;
    const described = { driver: driver.real, family: probe.family, mode: probe.mode, version: probe.version, target: probe.target, files };
    const toolchain: Toolchain = { id: toolchainId(described), ...described };
    this.log?.debug(
      { compiler: compilerPath, id: toolchain.id, family: toolchain.family, mode: toolchain.mode, version: toolchain.version, files: files.length, ms: Math.round(performance.now() - started) },
      'toolchain identified',
    );
    return { toolchain, collected };
  }

  /** The files of this real driver: shared by every name it is invoked by, and by concurrent calls. */
  private collect(driver: Driver, run: () => Promise<CollectedFiles>): Promise<CollectedFiles> {
    const cached = this.collections.get(driver.real);
    if (cached && cached.driverKey === driver.key && (!cached.done || unchanged(cached.done))) return cached.promise;
    const collection: Collection = { driverKey: driver.key, promise: run() };
    this.collections.set(driver.real, collection);
    collection.promise.then(
      (done) => {
        collection.done = done;
      },
      () => {
        if (this.collections.get(driver.real) === collection) this.collections.delete(driver.real);
      },
    );
    return collection.promise;
  }

  private loadCacheFile(): void {
    if (this.loaded) return;
    this.loaded = true;
    if (!this.cacheFile) return;
    for (const e of loadCache(this.cacheFile)) {
      if (this.entries.has(e.compiler)) continue;
      const collected = { files: e.toolchain.files, signatures: e.signatures };
      this.entries.set(e.compiler, { driverKey: e.driverKey, promise: Promise.resolve(e.toolchain), done: { toolchain: e.toolchain, collected } });
    }
  }

  private persist(): void {
    if (!this.writer) return;
    const entries: CachedEntry[] = [];
    for (const [compiler, e] of this.entries) {
      if (e.done) entries.push({ compiler, driverKey: e.driverKey, signatures: e.done.collected.signatures, toolchain: e.done.toolchain });
    }
    void this.writer.save(cacheContent(entries));
  }
}
