// Files of a toolchain on disk: a cheap signature that tells whether a file changed (so its
// hash is recomputed only then), the ELF test, and streaming sha256 with a cache.
import { createHash } from 'node:crypto';
import { accessSync, constants, createReadStream, statSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { pipeline } from 'node:stream/promises';
import pLimit from 'p-limit';

/** An existing regular file this process may execute. */
export function isExecutableFile(file: string): boolean {
  try {
    accessSync(file, constants.X_OK);
    return statSync(file).isFile();
  } catch {
    return false;
  }
}

export interface FileState {
  /**
   * device, inode, size, mtime (ns) and mode: a replaced file (package upgrades write a new
   * inode), a rewritten one (size, mtime) and a chmod (the executable bit is hashed) all
   * change it. Follows symlinks.
   */
  signature: string;
  size: number;
  executable: boolean;
}

/** The state of a regular file (following symlinks), or undefined if there is none. */
export function fileState(file: string): FileState | undefined {
  try {
    const st = statSync(file, { bigint: true });
    if (!st.isFile()) return undefined;
    return {
      signature: `${st.dev}:${st.ino}:${st.size}:${st.mtimeNs}:${st.mode}`,
      size: Number(st.size),
      executable: (st.mode & 0o111n) !== 0n,
    };
  } catch {
    return undefined;
  }
}

/** Whether the file starts with the ELF magic. */
export async function isElf(file: string): Promise<boolean> {
  let handle;
  try {
    handle = await open(file, 'r');
    const head = Buffer.alloc(4);
    const { bytesRead } = await handle.read(head, 0, 4, 0);
    return bytesRead === 4 && head.equals(Buffer.from([0x7f, 0x45, 0x4c, 0x46]));
  } catch {
    return false;
  } finally {
    await handle?.close();
  }
}

async function sha256File(file: string): Promise<string> {
  const hash = createHash('sha256');
  await pipeline(createReadStream(file, { highWaterMark: 1 << 20 }), hash);
  return hash.digest('hex');
}

export interface HashedFile extends FileState {
  hash: string;
}

/**
 * sha256 of files, cached by path and signature: gcc and g++ share cc1plus, as and the
 * libraries, and a driver whose mtime changed is the only file read again.
 */
export class FileHasher {
  private readonly cache = new Map<string, { signature: string; hash: Promise<string> }>();
  private readonly limit = pLimit(4);
  /** How many files were read and hashed (not answered from the cache). */
  hashed = 0;

  async hash(file: string): Promise<HashedFile> {
    const state = fileState(file);
    if (!state) throw new Error(`${file} is not a regular file`);
    const cached = this.cache.get(file);
    if (cached?.signature === state.signature) return { ...state, hash: await cached.hash };
    const hash = this.limit(async () => {
      this.hashed++;
      const digest = await sha256File(file);
      // Rewritten in place while we read it: the hash may mix two versions.
      if (fileState(file)?.signature !== state.signature) throw new Error(`${file} changed while it was hashed`);
      return digest;
    });
    this.cache.set(file, { signature: state.signature, hash });
    hash.catch(() => {
      if (this.cache.get(file)?.hash === hash) this.cache.delete(file);
    });
    return { ...state, hash: await hash };
  }
}
