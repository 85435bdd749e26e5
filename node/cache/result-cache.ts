// The mesh-wide result cache, as the compile service sees it: look a compile up (direct mode
// first, then by the scanned input tree: this agent's entries, then the owners in the mesh),
// and publish what was compiled. Entries live in the agents' stores (local-entries.ts), each
// on the few members its key chooses (owners.ts), reached over /meshcc/cache/2 (mesh-cache.ts).
// A compile error is never cached: a failing unit is usually being edited, its compile is
// cheap, and a failure can come from the machine (out of memory, a killed compiler) in ways
// no exit code tells apart from the code's own errors.
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import type { Job, JobResult } from '../../protocol/messages.js';
import type { Executor } from '../executor/executor.js';
import type { Logger } from '../log.js';
import type { MeshNode } from '../mesh/node.js';
import { sameResult } from '../remote/verify.js';
import type { ProbeRequest } from '../scan/search-probe.js';
import { SearchProbe } from '../scan/search-probe.js';
import type { LeanSpawner } from '../spawner/lean-spawn.js';
import type { Store } from '../store.js';
import { sha256 } from '../store.js';
import { ClockMacros } from './clock-macros.js';
import { MAX_DIAGNOSTIC_BYTES, type CacheEntry } from './entry.js';
import { manifestKey, resultKey, type CommandIdentity } from './key.js';
import { LocalEntries, type CachedResult } from './local-entries.js';
import { Manifests, type Manifest } from './manifests.js';
import { manifestEntry, manifestOf } from './shared-manifests.js';
import { MeshCache } from './mesh-cache.js';
import { ownersOf } from './owners.js';
import type { CacheConfig } from './policy.js';

export interface ResultCacheOptions {
  config: CacheConfig;
  /** <home>/cache */
  dir: string;
  store: Store;
  executor: Executor;
  spawner: LeanSpawner;
  log: Logger;
  verifyRate: number;
  /** This agent's peer id (the writer of what it publishes), once the mesh runs. */
  selfId: () => string | undefined;
  /** The members that may hold entries now, this agent included or not. */
  members: () => string[];
  /** Whether a peer is a member that may read and write (not revoked). */
  admitted: (peerId: string) => boolean;
  /** Whether a hit from the mesh is kept here too (not by an agent whose home goes with it). */
  keepsMeshHits: boolean;
  /** A writer whose results differed from a compile here: no jobs either. */
  exclude: (peerId: string, why: string) => void;
}

export interface CacheStats {
  mode: string;
  hits: number;
  directHits: number;
  /** members' manifests fetched (a client without its own, a fresh CI runner's) */
  sharedManifests: number;
  meshHits: number;
  misses: number;
  /** compiles whose result depends on the time they run (__DATE__, __TIME__, __TIMESTAMP__): never cached */
  uncacheable: number;
  /** bytes of outputs and diagnostics handed to this agent's clients from the cache */
  hitBytes: number;
  published: number;
  publishedBytes: number;
  /** entries members handed this agent, and hits and misses it answered for them */
  stored: number;
  storedBytes: number;
  served: number;
  servedMisses: number;
  servedBytes: number;
  lookupMs: number;
  verified: number;
  verifyMismatches: number;
  droppedWriters: number;
  entries: number;
  bytes: number;
  maxBytes: number;
  manifests: { checked: number; matched: number; rehashed: number };
}

export interface Lookup {
  key: string;
  hit?: CachedResult;
}

const REVOCATION_SWEEP_MS = 1000;
/** Manifest keys of commands answered by a hit once, without a manifest recorded. */
const SEEN_KEPT = 100_000;

export class ResultCache {
  private readonly entries: LocalEntries;
  private readonly manifests: Manifests;
  private readonly probe: SearchProbe;
  private readonly clock: ClockMacros;
  private mesh?: MeshCache;
  private sweepTimer?: NodeJS.Timeout;
  /** Writers caught with results that differ from a compile here. */
  private readonly liars = new Set<string>();
  private readonly seen = new Set<string>();
  /** Whether the last member's manifest asked for was there (see direct()). */
  private membersHaveManifests = true;
  /** Manifests being recorded for misses, by result key: shared once the result is published. */
  private readonly recording = new Map<string, Promise<{ mkey: string; manifest: Manifest } | undefined>>();
  private readonly counts = {
    hits: 0, directHits: 0, sharedManifests: 0, uncacheable: 0, meshHits: 0, misses: 0, hitBytes: 0, published: 0, publishedBytes: 0,
    stored: 0, storedBytes: 0, served: 0, servedMisses: 0, servedBytes: 0, lookupMs: 0, verified: 0, verifyMismatches: 0, droppedWriters: 0,
  };

  constructor(private readonly options: ResultCacheOptions) {
    this.entries = new LocalEntries(path.join(options.dir, 'entries'), options.store, options.config.maxBytes, options.log);
    this.manifests = new Manifests(path.join(options.dir, 'manifests'));
    this.probe = new SearchProbe(options.spawner);
    this.clock = new ClockMacros((hash) => options.store.pathOf(hash));
  }

  /** Whether compiles are looked up at all (read-write or read-only). */
  get active(): boolean {
    return this.options.config.mode !== 'off';
  }

  async start(): Promise<void> {
    await this.entries.start();
    this.sweepTimer = setInterval(() => void this.sweep(), REVOCATION_SWEEP_MS);
    this.sweepTimer.unref();
  }

  async stop(): Promise<void> {
    clearInterval(this.sweepTimer);
    await this.manifests.flush();
  }

  /** Serves and takes entries over the mesh (started with each mesh node). */
  async startMesh(node: MeshNode): Promise<void> {
    this.mesh = new MeshCache({
      node,
      entries: this.entries,
      admitted: this.options.admitted,
      trustedWriter: (peer) => this.trusted(peer),
      // A read-only agent (a CI runner building untrusted code) holds no one's entries: what
      // it served could not be trusted more than what it compiled.
      holds: this.options.config.mode === 'read-write',
      log: this.options.log,
      onServed: (hit, bytes) => {
        if (hit) this.counts.served++;
        else this.counts.servedMisses++;
        this.counts.servedBytes += bytes;
      },
      onStored: (bytes) => {
        this.counts.stored++;
        this.counts.storedBytes += bytes;
      },
    });
    await this.mesh.start();
  }

  async stopMesh(): Promise<void> {
    await this.mesh?.stop();
    this.mesh = undefined;
  }

  /** Direct mode: the result named by this agent's manifest of this command, if nothing it
   *  lists changed, else by a member's (one round trip); `startedUs`: when the command started. */
  /** `objects`: a hit held here may name its outputs' objects instead of reading them (local-entries.ts). */
  async direct(id: CommandIdentity, source: string, startedUs?: number, objects = false): Promise<(Lookup & { hit: CachedResult }) | undefined> {
    const started = performance.now();
    const mkey = manifestKey(id, source);
    let key = this.manifests.check(mkey, startedUs);
    // A member's manifest costs a round trip before the scan. While members have none (a cold
    // mesh: every unit a miss) it is asked for beside the scan instead, only to notice when
    // they start having some.
    if (!key && this.membersHaveManifests) key = await this.fromMembersManifest(mkey, startedUs);
    else if (!key) void this.fromMembersManifest(mkey, startedUs);
    const found = key ? await this.fetch(key, objects) : undefined;
    this.counts.lookupMs += performance.now() - started;
    if (!key || !found) return undefined;
    this.counts.directHits++;
    this.hit(found);
    return { key, hit: found };
  }

  /** The result key a member's manifest names, if the files it lists are as it says. Not when
   *  hits are verified: a result found without a scan could not be compiled here to compare. */
  private async fromMembersManifest(mkey: string, startedUs?: number): Promise<string | undefined> {
    if (!this.mesh || this.options.verifyRate > 0) return undefined;
    const found = await this.fromOwners(mkey);
    const manifest = found && manifestOf(found);
    this.membersHaveManifests = manifest !== undefined;
    if (!manifest) return undefined;
    this.counts.sharedManifests++;
    return this.manifests.matches(manifest, startedUs);
  }

  /** The result of this compile from the cache (this agent, then the owners), or the key to
   *  publish it under; undefined when its result depends on the time it runs (never cached). */
  async lookup(id: CommandIdentity, job: Job): Promise<Lookup | undefined> {
    const started = performance.now();
    if (this.clock.dependsOnClock(id.argv, id.env, job.inputs)) {
      this.counts.uncacheable++;
      return undefined;
    }
    const key = resultKey(id, job);
    const found = await this.fetch(key);
    this.counts.lookupMs += performance.now() - started;
    if (!found) {
      this.counts.misses++;
      return { key };
    }
    const checked = await this.verified(found, job);
    if (!checked) {
      this.counts.misses++;
      return { key };
    }
    this.hit(checked);
    return { key, hit: checked };
  }

  /** Records what direct mode needs to find `key` again without a scan (after the client has its
   *  answer). A miss is recorded at once (a compile costs far more); a hit only when the same
   *  command comes again: a client that lives for one build (a CI runner) records nothing. */
  remember(id: CommandIdentity, source: string, lookup: Lookup, job: Job, probe: ProbeRequest, scanStartedMs: number): void {
    const mkey = manifestKey(id, source);
    if (lookup.hit && !this.seen.has(mkey)) {
      if (this.seen.size >= SEEN_KEPT) this.seen.clear();
      this.seen.add(mkey);
      return;
    }
    const key = lookup.key;
    const recorded = this.probe
      .chains(probe)
      .then((chains) => {
        const manifest = this.manifests.record(mkey, key, job.inputs, { searchDirs: chains.all, missingDirs: chains.ignored }, scanStartedMs);
        return manifest && { mkey, manifest };
      })
      .catch((err: Error) => {
        this.options.log.debug({ err: err.message }, 'cache: no manifest recorded');
        return undefined;
      });
    if (this.recording.size >= SEEN_KEPT) this.recording.clear();
    if (!lookup.hit) this.recording.set(key, recorded);
  }

  /** Keeps a compile's result here and on its owners (read-write agents, successful compiles only). */
  publish(key: string, result: JobResult): void {
    const recorded = this.recording.get(key);
    this.recording.delete(key);
    const writer = this.options.selfId();
    if (this.options.config.mode !== 'read-write' || !writer || result.exit !== 0) return;
    if (result.outputs.length === 0 || result.stdout.length > MAX_DIAGNOSTIC_BYTES || result.stderr.length > MAX_DIAGNOSTIC_BYTES) return;
    const entry: CacheEntry = {
      key,
      writer,
      writtenAt: Date.now(),
      exit: result.exit,
      stdout: result.stdout,
      stderr: result.stderr,
      outputs: result.outputs.map((o) => ({ path: o.path, hash: sha256(o.data), size: o.data.length, executable: o.executable })),
    };
    const data = result.outputs.map((o) => o.data);
    const bytes = data.reduce((n, d) => n + d.length, 0);
    this.counts.published++;
    this.counts.publishedBytes += bytes;
    // The writer keeps its own copy, and hands one to each of the highest-ranked others: the
    // owners any other member asks (ownersOf over the members but itself) overlap these.
    void this.entries.put(entry, data).catch((err: Error) => this.options.log.warn({ err: err.message }, 'cache: could not keep an entry'));
    for (const owner of ownersOf(key, this.options.members().filter((m) => m !== writer))) void this.mesh?.put(owner, entry, data, 30_000);
    // Its manifest goes to the owners of the manifest's key, for members that have none.
    void recorded?.then((r) => {
      if (!r) return;
      const shared = manifestEntry(r.mkey, writer, r.manifest);
      for (const owner of ownersOf(r.mkey, this.options.members().filter((m) => m !== writer))) void this.mesh?.put(owner, shared.entry, shared.data, 30_000);
    });
  }

  /** Runs a job in this agent's sandbox under a local slot the caller holds (a miss to publish). */
  runHere(job: Job): Promise<JobResult> {
    return this.options.executor.runOwn(job);
  }

  /** Whether this agent can compile misses itself so that their results can be published. */
  get canRunHere(): boolean {
    return this.options.config.mode === 'read-write' && !this.options.executor.sandboxUnavailableReason;
  }

  async clear(): Promise<{ entries: number; manifests: number }> {
    return { entries: await this.entries.clear(), manifests: this.manifests.clear() };
  }

  stats(): CacheStats {
    return { mode: this.options.config.mode, ...this.counts, ...this.entries.stats, manifests: { ...this.manifests.counts } };
  }

  private hit(found: CachedResult): void {
    this.counts.hits++;
    this.counts.hitBytes += found.entry.outputs.reduce((n, o) => n + o.size, 0) + found.entry.stdout.length + found.entry.stderr.length;
  }

  private trusted(writer: string): boolean {
    return !this.liars.has(writer) && this.options.admitted(writer);
  }

  /** This agent's entry, else the first owner's that has it (asked all at once). */
  private async fetch(key: string, objects = false): Promise<CachedResult | undefined> {
    const here = await this.entries.get(key, objects);
    if (here && this.trusted(here.entry.writer)) return here;
    const found = await this.fromOwners(key);
    if (!found) return undefined;
    this.counts.meshHits++;
    // Kept here too: the next lookup of this key is answered without the mesh.
    // A copy that lands after its writer was caught lying (this very hit failed verification
    // meanwhile) goes with the writer's other entries.
    const writer = found.entry.writer;
    if (this.options.keepsMeshHits)
      void this.entries
        .put(found.entry, found.outputs.map((o) => o.data))
        .then(() => (this.trusted(writer) ? undefined : this.dropWriter(writer)))
        .catch(() => undefined);
    return found;
  }

  /** The entry of `key` from the highest-ranked other members, asked at once: one round trip.
   *  When this agent is itself an owner (it joined after the entry was written, say), the next
   *  one is asked in its place. */
  private async fromOwners(key: string): Promise<CachedResult | undefined> {
    const self = this.options.selfId();
    const mesh = this.mesh;
    if (!mesh) return undefined;
    const owners = ownersOf(key, this.options.members().filter((m) => m !== self));
    if (owners.length === 0) return undefined;
    return firstDefined(owners.map((o) => mesh.get(o, key, this.options.config.lookupTimeoutMs)));
  }

  /** MESHCC_VERIFY_RATE applies to hits written by others: compiled here too and compared. */
  private async verified(found: CachedResult, job: Job): Promise<CachedResult | undefined> {
    const { verifyRate, executor, log } = this.options;
    const writer = found.entry.writer;
    if (verifyRate <= 0 || writer === this.options.selfId() || Math.random() >= verifyRate || executor.sandboxUnavailableReason) return found;
    const local = await executor.runOwn(job).catch(() => undefined);
    if (!local) return found;
    const cached: JobResult = { id: job.id, exit: found.entry.exit, stdout: found.entry.stdout, stderr: found.entry.stderr, outputs: found.outputs };
    const difference = sameResult(cached, local);
    if (difference === undefined) {
      this.counts.verified++;
      return found;
    }
    this.counts.verifyMismatches++;
    log.error({ writer, key: found.entry.key.slice(0, 12), difference }, 'CACHE VERIFICATION FAILED: a cached result differs from a compile here; every entry of its writer is dropped and the writer excluded');
    this.liars.add(writer);
    this.options.exclude(writer, `cached result differs: ${difference}`);
    await this.dropWriter(writer);
    return undefined;
  }

  private async dropWriter(writer: string): Promise<void> {
    const dropped = await this.entries.dropWriter(writer);
    if (dropped) {
      this.counts.droppedWriters++;
      this.options.log.warn({ writer, entries: dropped }, 'cache: dropped every entry of a writer');
    }
  }

  /** Entries of writers revoked since (or caught lying) go. */
  private async sweep(): Promise<void> {
    for (const writer of this.entries.writers()) {
      if (writer === this.options.selfId()) continue;
      if (!this.trusted(writer)) await this.dropWriter(writer);
    }
  }
}

/** The first promise to resolve to something defined, or undefined once all have resolved. */
function firstDefined<T>(promises: Promise<T | undefined>[]): Promise<T | undefined> {
  return new Promise((resolve) => {
    let left = promises.length;
    for (const p of promises) {
      p.then(
        (v) => {
          if (v !== undefined) resolve(v);
          else if (--left === 0) resolve(undefined);
        },
        () => {
          if (--left === 0) resolve(undefined);
        },
      );
    }
  });
}
