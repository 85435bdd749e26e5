// The toolchains this agent holds: the C/C++ compilers of its host, each named by its toolchain
// id (the sha256 of its deterministic tarball, toolchain/pack.ts). Peers advertise these ids;
// a job names one, and the peer runs it only with that toolchain, installed from the tarball
// into its toolchain cache, so a job never sees anything of a host but the toolchain's files.
import { ToolchainPacker } from '../toolchain/pack-cache.js';
import { type ToolchainTarPlan } from '../toolchain/pack.js';
import { findHostCompilers, ToolchainIdentifier } from '../toolchain/identify.js';
import type { Logger } from './log.js';

export class HostToolchains {
  private readonly byId = new Map<string, { compiler: string; plan: ToolchainTarPlan }>();
  private readonly identifier: ToolchainIdentifier;
  private readonly packer: ToolchainPacker;

  constructor(
    private readonly log: Logger,
    cacheFile: string,
    packsFile: string,
    private readonly onChange: () => void = () => undefined,
  ) {
    this.identifier = new ToolchainIdentifier({ log, cacheFile });
    this.packer = new ToolchainPacker({ cacheFile: packsFile, log });
  }

  /** Identifies and packs the compilers on PATH, one after another, in the background of the agent. */
  async discover(pathEnv = process.env.PATH ?? ''): Promise<void> {
    for (const compiler of findHostCompilers(pathEnv)) await this.idOf(compiler);
    await this.packer.flush();
    this.log.info({ toolchains: this.byId.size }, 'host toolchains identified');
  }

  ids(): string[] {
    return [...this.byId.keys()];
  }

  compilerFor(id: string): string | undefined {
    return this.byId.get(id)?.compiler;
  }

  /** The tarball plan of a host toolchain: what a cache installs it from, without a copy on disk. */
  planFor(id: string): ToolchainTarPlan | undefined {
    return this.byId.get(id)?.plan;
  }

  /** The id of a compiler of this host (identified and packed once, cached by its files' stats),
   *  or undefined if it is not one we know how to identify. */
  async idOf(compiler: string): Promise<string | undefined> {
    try {
      const toolchain = await this.identifier.identify(compiler);
      const packed = await this.packer.pack(toolchain, compiler);
      if (!this.byId.has(packed.id)) {
        this.byId.set(packed.id, { compiler, plan: packed.plan });
        this.onChange();
      }
      return packed.id;
    } catch (err) {
      this.log.debug({ compiler, err: (err as Error).message }, 'not an identifiable toolchain');
      return undefined;
    }
  }
}
