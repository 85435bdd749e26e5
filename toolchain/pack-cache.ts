// Packs each compiler once: hashing its tarball reads every byte of it (80 MB for gcc, 230 MB
// for clang here), while planning it again costs a few dozen lstat calls. So every call plans
// (cheap, and it notices a retargeted symlink or an upgraded file) and the tarball is hashed
// only when the plan or a file's identity (device, inode, size, mtime) differs from the last
// time. The answers survive restarts in a JSON file; an entry is used only when its key matches
// the plan made now, so a stale file costs a hash, never a wrong id.
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { z } from 'zod';
import { AtomicJsonFile } from './json-file.js';
import { planToolchainTar, toolchainTarId, type TarDigest, type ToolchainTarPlan } from './pack.js';
import type { Toolchain, ToolchainLog } from './types.js';

export interface PackedToolchain extends TarDigest {
  /** what the tarball holds; stream it with toolchainTarStream or writeToolchainTar */
  plan: ToolchainTarPlan;
}

const SavedEntry = z.object({ compiler: z.string(), key: z.string(), id: z.string().regex(/^[0-9a-f]{64}$/), size: z.number().int().nonnegative() });
const SavedFile = z.object({ version: z.literal(1), entries: z.array(SavedEntry) });
type SavedEntry = z.infer<typeof SavedEntry>;

/** Everything the tarball's bytes depend on, with the identity of each file read from the host. */
function planKey(compilerPath: string, plan: ToolchainTarPlan): string {
  const entries = plan.entries.map((e) => {
    if (e.type !== 'file') return e;
    const content = Buffer.isBuffer(e.source) ? createHash('sha256').update(e.source).digest('hex') : e.source;
    return { type: e.type, name: e.name, size: e.size, executable: e.executable, content, stamp: e.stamp ?? null };
  });
  return createHash('sha256').update(JSON.stringify([compilerPath, plan.description, entries])).digest('hex');
}

export interface ToolchainPackerOptions {
  /** Keep ids across restarts in this JSON file. */
  cacheFile?: string;
  log?: ToolchainLog;
}

export class ToolchainPacker {
  /** by compiler path as invoked */
  private readonly known = new Map<string, SavedEntry>();
  /** by plan key: hashings under way, shared by concurrent callers */
  private readonly running = new Map<string, Promise<TarDigest>>();
  private loaded = false;
  private readonly writer: AtomicJsonFile | undefined;
  /** How many tarballs were hashed (not answered from the cache). */
  hashed = 0;

  constructor(private readonly options: ToolchainPackerOptions = {}) {
    if (options.cacheFile) {
      this.writer = new AtomicJsonFile(options.cacheFile, (err) => options.log?.debug({ err: err.message }, 'cannot save the toolchain pack cache'));
    }
  }

  /** The tarball id and plan of this toolchain as invoked by `compilerPath`. */
  async pack(toolchain: Toolchain, compilerPath: string): Promise<PackedToolchain> {
    this.load();
    const plan = await planToolchainTar(toolchain, compilerPath);
    const key = planKey(compilerPath, plan);
    const known = this.known.get(compilerPath);
    if (known?.key === key) return { id: known.id, size: known.size, plan };
    let digest = this.running.get(key);
    if (!digest) {
      this.hashed++;
      digest = toolchainTarId(plan).finally(() => this.running.delete(key));
      this.running.set(key, digest);
    }
    const { id, size } = await digest;
    this.known.set(compilerPath, { compiler: compilerPath, key, id, size });
    void this.save();
    return { id, size, plan };
  }

  /** Resolves once the cache file holds everything packed so far. */
  flush(): Promise<void> {
    return this.writer?.settled() ?? Promise.resolve();
  }

  private load(): void {
    if (this.loaded) return;
    this.loaded = true;
    if (!this.options.cacheFile) return;
    try {
      const parsed = SavedFile.safeParse(JSON.parse(readFileSync(this.options.cacheFile, 'utf8')));
      if (parsed.success) for (const e of parsed.data.entries) this.known.set(e.compiler, e);
    } catch {
      // missing or unreadable: everything is packed again
    }
  }

  private save(): Promise<void> {
    return this.writer?.save({ version: 1, entries: [...this.known.values()] }) ?? Promise.resolve();
  }
}
