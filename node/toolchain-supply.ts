// The toolchains a peer runs jobs with, and serves to other peers. Every job runs over a tree
// in the toolchain cache, leased for the job: one shipped by another agent, or one of this
// host's own compilers installed from its tarball plan (streamed, never written as a file),
// so a job never sees the host's compiler directories.
import type { Readable } from 'node:stream';
import { planFileBytes, planFromTree, toolchainTarStream } from '../toolchain/pack.js';
import { readToolchainMounts, type ToolchainMounts } from './executor/toolchain-mounts.js';
import type { ToolchainCache } from './toolchain-cache.js';
import type { HostToolchains } from './toolchains.js';

export interface ToolchainUse {
  mounts: ToolchainMounts;
  /** the compiler path the toolchain was packed for (present in its tree) */
  compiler: string;
  /** whether another agent shipped it (not one of this host's compilers) */
  shipped: boolean;
  release(): void;
}

export interface Tarball {
  stream: Readable;
  /** bytes of the files in it (for progress and the receiver's bound) */
  fileBytes: number;
  /** call when the stream is done with, whatever happened */
  done(): void;
}

export class ToolchainSupply {
  private readonly mounts = new Map<string, ToolchainMounts>();

  constructor(
    private readonly host: HostToolchains,
    readonly cache: ToolchainCache,
  ) {}

  /** Whether a job with this toolchain can run here without fetching it. */
  holds(id: string): boolean {
    return this.cache.has(id) || this.host.planFor(id) !== undefined;
  }

  /** Every toolchain id held (for the advert): the host's first. */
  ids(): string[] {
    return [...new Set([...this.host.ids(), ...this.cache.list().map((t) => t.id)])];
  }

  /** The toolchain's tree for one job; undefined when this agent holds no such toolchain. */
  async use(id: string): Promise<ToolchainUse | undefined> {
    let lease = await this.cache.acquire(id);
    const hostPlan = this.host.planFor(id);
    if (!lease) {
      if (!hostPlan) return undefined;
      lease = await this.cache.install(id, () => toolchainTarStream(hostPlan.plan));
    }
    let mounts = this.mounts.get(id);
    if (!mounts || mounts.root !== lease.root) {
      mounts = readToolchainMounts(lease.root);
      this.mounts.set(id, mounts);
    }
    const release = lease.release;
    return { mounts, compiler: lease.description.compiler, shipped: !hostPlan, release: () => release() };
  }

  /** Installs a toolchain from a tarball stream (verified against the id as it is unpacked). */
  async install(id: string, source: () => Promise<Readable>): Promise<void> {
    const lease = await this.cache.install(id, source);
    lease.release();
  }

  /** The toolchain's tarball for another agent; undefined when it is not held here. */
  async tarball(id: string): Promise<Tarball | undefined> {
    const hostPlan = this.host.planFor(id);
    if (hostPlan) return { stream: toolchainTarStream(hostPlan.plan), fileBytes: planFileBytes(hostPlan.plan), done: () => undefined };
    const lease = await this.cache.acquire(id);
    if (!lease) return undefined;
    try {
      // Re-packing the installed tree gives the bytes it was installed from (the cache verified it).
      const plan = await planFromTree(lease.root);
      return { stream: toolchainTarStream(plan), fileBytes: planFileBytes(plan), done: () => lease.release() };
    } catch (err) {
      lease.release();
      throw err;
    }
  }
}
