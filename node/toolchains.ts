// The toolchains this agent holds: the C/C++ compilers of its host, by toolchain id (the
// content hash computed by toolchain/). Peers advertise these ids; a job names one, and the
// peer runs it only with the identical compiler.
import { findHostCompilers, ToolchainIdentifier } from '../toolchain/identify.js';
import type { Logger } from './log.js';

export class HostToolchains {
  private readonly byId = new Map<string, string>();
  private readonly identifier: ToolchainIdentifier;

  constructor(
    private readonly log: Logger,
    cacheFile: string,
    private readonly onChange: () => void = () => undefined,
  ) {
    this.identifier = new ToolchainIdentifier({ log, cacheFile });
  }

  /** Identifies the compilers on PATH, one after another, in the background of the agent. */
  async discover(pathEnv = process.env.PATH ?? ''): Promise<void> {
    for (const compiler of findHostCompilers(pathEnv)) await this.idOf(compiler);
    this.log.info({ toolchains: this.byId.size }, 'host toolchains identified');
  }

  ids(): string[] {
    return [...this.byId.keys()];
  }

  compilerFor(id: string): string | undefined {
    return this.byId.get(id);
  }

  /** The id of a compiler of this host (cached by the identifier), or undefined if it is not one we know how to identify. */
  async idOf(compiler: string): Promise<string | undefined> {
    try {
      const toolchain = await this.identifier.identify(compiler);
      if (!this.byId.has(toolchain.id)) {
        this.byId.set(toolchain.id, compiler);
        this.onChange();
      }
      return toolchain.id;
    } catch (err) {
      this.log.debug({ compiler, err: (err as Error).message }, 'not an identifiable toolchain');
      return undefined;
    }
  }
}
