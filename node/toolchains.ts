// The toolchains this agent holds: the C/C++ compilers of its host, each named by its toolchain
// id (the sha256 of its deterministic tarball, toolchain/pack.ts). Peers advertise these ids;
// a job names one, and the peer runs it only with that toolchain, installed from the tarball
// into its toolchain cache, so a job never sees anything of a host but the toolchain's files.
//
// Identifying and packing a compiler reads all its files (80 MB for gcc): the first job with a
// new compiler does not wait for it. It runs locally while the id is computed in the
// background; later jobs get the id from memory, re-checked at most once a second (a cheap
// re-plan: lstat of the toolchain's files), so an upgraded compiler gets a new id.
import path from 'node:path';
import { ToolchainPacker } from '../toolchain/pack-cache.js';
import { type ToolchainTarPlan } from '../toolchain/pack.js';
import { findHostCompilers, ToolchainIdentifier } from '../toolchain/identify.js';
import type { Logger } from './log.js';

/** What placement needs of a job's toolchain: its id and the machine it runs on. */
export interface ToolchainRef {
  id: string;
  arch: string;
  os: string;
}

const RECHECK_MS = 1000;

interface Known {
  /** undefined: not a compiler we can identify */
  ref: ToolchainRef | undefined;
  checkedAt: number;
}

export class HostToolchains {
  private readonly byId = new Map<string, { compiler: string; plan: ToolchainTarPlan; size: number }>();
  private readonly byCompiler = new Map<string, Known>();
  private readonly pending = new Map<string, Promise<ToolchainRef | undefined>>();
  private readonly identifier: ToolchainIdentifier;
  private readonly packer: ToolchainPacker;
  /** `knowledgeDir`: where the identified files and tarball ids of compilers are kept
   *  (config.toolchainKnowledgeDir: shared by the agents of a machine). `identifyOnFirstUse`: a
   *  compiler seen for the first time is identified before its job goes on (an agent that does
   *  not identify every compiler at start), instead of compiling locally meanwhile. */
  constructor(
    private readonly log: Logger,
    knowledgeDir: string,
    private readonly onChange: () => void = () => undefined,
    private readonly identifyOnFirstUse = false,
  ) {
    this.identifier = new ToolchainIdentifier({ log, cacheFile: path.join(knowledgeDir, 'toolchain-files.json') });
    this.packer = new ToolchainPacker({ cacheFile: path.join(knowledgeDir, 'toolchain-packs.json'), log });
  }

  /** Identifies and packs the compilers on PATH, one after another, in the background of the agent. */
  async discover(pathEnv = process.env.PATH ?? ''): Promise<void> {
    for (const compiler of findHostCompilers(pathEnv)) await this.refOf(compiler);
    await this.packer.flush();
    this.log.info({ toolchains: this.byId.size }, 'host toolchains identified');
  }

  ids(): string[] {
    return [...this.byId.keys()];
  }

  /** The tarball plan of a host toolchain (what a cache installs it from, without a copy on
   *  disk) and the tarball's size. */
  planFor(id: string): { plan: ToolchainTarPlan; size: number } | undefined {
    return this.byId.get(id);
  }

  /**
   * The toolchain of a compiler for a job. Never seen before: starts identifying and packing
   * it and answers undefined at once (the job compiles locally meanwhile; unless
   * identifyOnFirstUse). Seen before: the
   * id from memory, re-checked first if the last check is older than a second.
   */
  async refForJob(compiler: string): Promise<ToolchainRef | undefined> {
    const known = this.byCompiler.get(compiler);
    if (known && Date.now() - known.checkedAt < RECHECK_MS) return known.ref;
    const check = this.refOf(compiler);
    return known || this.identifyOnFirstUse ? check : undefined;
  }

  /** The toolchain of a compiler of this host, identified and packed once (cached by its
   *  files' stats), or undefined if it is not one we know how to identify. */
  refOf(compiler: string): Promise<ToolchainRef | undefined> {
    let running = this.pending.get(compiler);
    if (!running) {
      running = this.identify(compiler).finally(() => this.pending.delete(compiler));
      this.pending.set(compiler, running);
    }
    return running;
  }

  private async identify(compiler: string): Promise<ToolchainRef | undefined> {
    try {
      const toolchain = await this.identifier.identify(compiler);
      const packed = await this.packer.pack(toolchain, compiler);
      if (!this.byId.has(packed.id)) {
        this.byId.set(packed.id, { compiler, plan: packed.plan, size: packed.size });
        this.log.debug({ compiler, id: packed.id, bytes: packed.size }, 'host toolchain packed');
        this.onChange();
      }
      const ref = { id: packed.id, arch: packed.plan.description.arch, os: packed.plan.description.os };
      this.byCompiler.set(compiler, { ref, checkedAt: Date.now() });
      return ref;
    } catch (err) {
      this.byCompiler.set(compiler, { ref: undefined, checkedAt: Date.now() });
      this.log.debug({ compiler, err: (err as Error).message }, 'not an identifiable toolchain');
      return undefined;
    }
  }
}
