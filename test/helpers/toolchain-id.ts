// The toolchain id an agent computes for a compiler of this host, as the path invoked.
import { ToolchainIdentifier } from '../../toolchain/identify.js';
import { ToolchainPacker } from '../../toolchain/pack-cache.js';

export async function hostToolchainId(compiler: string): Promise<string> {
  const toolchain = await new ToolchainIdentifier().identify(compiler);
  return (await new ToolchainPacker().pack(toolchain, compiler)).id;
}
