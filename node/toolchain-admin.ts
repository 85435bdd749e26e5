// `meshcc toolchain create|list|prune`: what the CLI asks of an agent's toolchains, or does to
// them itself when no agent runs. The agent owns its cache while it runs (in-memory index,
// leases), so the CLI goes through its socket then; without one, it opens the cache itself.
import { createWriteStream } from 'node:fs';
import path from 'node:path';
import { MeshccError } from '../protocol/errors.js';
import type { ToolchainDescription } from '../toolchain/description.js';
import { isExecutableFile } from '../toolchain/files.js';
import { planFileBytes, toolchainTarStream, writeToolchainTar } from '../toolchain/pack.js';
import type { ToolchainCache } from './toolchain-cache.js';
import type { HostToolchains } from './toolchains.js';

export interface ToolchainRow {
  id: string;
  /** 'cache': installed in this agent's toolchain cache (servable, advertised); 'host': a
   *  compiler of this machine, packed on demand */
  where: 'cache' | 'host';
  family: string;
  version: string;
  target: string;
  compiler: string;
  arch: string;
  os: string;
  /** bytes of its files (installed tree, or what the tarball holds) */
  bytes: number;
  /** ms since the epoch, for cached ones */
  lastUsed?: number;
  inUse?: boolean;
}

export type ToolchainOp = { op: 'list' } | { op: 'create'; compiler: string } | { op: 'prune'; maxBytes: number };
export type ToolchainOpResult = { toolchains: ToolchainRow[]; created?: string; removed?: string[] };

function row(id: string, where: ToolchainRow['where'], d: ToolchainDescription, bytes: number): ToolchainRow {
  return { id, where, family: d.family, version: d.version, target: d.target, compiler: d.compiler, arch: d.arch, os: d.os, bytes };
}

/** The compiler an argument names, as a shell would find it: absolute, and executable. */
export function resolveCompiler(name: string, pathEnv = process.env.PATH ?? '', cwd = process.cwd()): string {
  const candidates = name.includes('/') ? [path.resolve(cwd, name)] : pathEnv.split(':').filter((d) => path.isAbsolute(d)).map((d) => path.join(d, name));
  const found = candidates.find(isExecutableFile);
  if (found) return found;
  throw new MeshccError('no-compiler', name.includes('/') ? `${name}: not an executable file` : `${name}: no such compiler on PATH`);
}

export class ToolchainAdmin {
  constructor(
    private readonly host: HostToolchains,
    private readonly cache: ToolchainCache,
  ) {}

  async run(request: ToolchainOp): Promise<ToolchainOpResult> {
    switch (request.op) {
      case 'list':
        return { toolchains: this.list() };
      case 'create':
        return { created: await this.create(request.compiler), toolchains: this.list() };
      case 'prune':
        return { removed: await this.cache.prune(request.maxBytes), toolchains: this.list() };
    }
  }

  list(): ToolchainRow[] {
    const rows: ToolchainRow[] = this.cache
      .list()
      .map((t) => ({ ...row(t.id, 'cache', t.description, t.bytes), lastUsed: t.lastUsed, inUse: t.inUse }))
      .sort((a, b) => b.lastUsed - a.lastUsed);
    for (const id of this.host.ids()) {
      const packed = this.host.planFor(id)!;
      if (!this.cache.has(id)) rows.push(row(id, 'host', packed.plan.description, planFileBytes(packed.plan)));
    }
    return rows;
  }

  /** Packs a compiler and installs it into the cache (so it is advertised and served); its id. */
  async create(compiler: string): Promise<string> {
    const ref = await this.host.refOf(compiler);
    if (!ref) throw new MeshccError('not-a-toolchain', `${compiler} is not a gcc or clang compiler meshcc can identify`);
    const packed = this.host.planFor(ref.id)!;
    const lease = await this.cache.install(ref.id, () => toolchainTarStream(packed.plan));
    lease.release();
    await this.cache.flush();
    return ref.id;
  }

  /** Packs a compiler into a tarball file (like icecc-create-env); its id and size. */
  async writeTarball(compiler: string, output: string): Promise<{ id: string; size: number }> {
    const ref = await this.host.refOf(compiler);
    if (!ref) throw new MeshccError('not-a-toolchain', `${compiler} is not a gcc or clang compiler meshcc can identify`);
    return writeToolchainTar(this.host.planFor(ref.id)!.plan, createWriteStream(output));
  }
}
