// Where a peer's job gets its toolchain: a lease on the installed tree in the toolchain cache,
// installed on first use from this host's own compiler when the id is one of ours (packed as
// a stream, never written as a tarball). Ids this agent cannot produce are refused for now;
// fetching them from the client comes with toolchain shipping.
import { readToolchainMounts, type ToolchainMounts } from './executor/toolchain-mounts.js';
import { toolchainTarStream } from '../toolchain/pack.js';
import type { ToolchainCache } from './toolchain-cache.js';
import type { HostToolchains } from './toolchains.js';

export interface ToolchainUse {
  mounts: ToolchainMounts;
  release(): void;
}

export class ToolchainSupply {
  private readonly mounts = new Map<string, ToolchainMounts>();

  constructor(
    private readonly host: HostToolchains,
    private readonly cache: ToolchainCache,
  ) {}

  /** Whether a job with this toolchain can run here. */
  holds(id: string): boolean {
    return this.cache.has(id) || this.host.planFor(id) !== undefined;
  }

  /** The toolchain's tree for one job, undefined when this agent holds no such toolchain. */
  async use(id: string): Promise<ToolchainUse | undefined> {
    let lease = await this.cache.acquire(id);
    if (!lease) {
      const plan = this.host.planFor(id);
      if (!plan) return undefined;
      lease = await this.cache.install(id, () => toolchainTarStream(plan));
      this.mounts.delete(id);
    }
    let mounts = this.mounts.get(id);
    if (!mounts || mounts.root !== lease.root) {
      mounts = readToolchainMounts(lease.root);
      this.mounts.set(id, mounts);
    }
    return { mounts, release: () => lease.release() };
  }
}
