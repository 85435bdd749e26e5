// Whether a job's input inside a host-bound directory (gcc's own stddef.h, say) is byte for byte
// the host's file at that path. Then the host's serves the job as well as its own copy would,
// and the sandbox needs no mount of its own for it: bubblewrap's cost grows with its mounts,
// and a sandbox without per-job mounts can be kept for the next job (kept-sandboxes.ts).
import { createHash } from 'node:crypto';
import { lstatSync, readFileSync } from 'node:fs';
import type { InputFile } from '../../protocol/messages.js';

/** Paths remembered; past it the memory starts again (a host's compiler headers are a few hundred). */
const MAX_KNOWN = 4096;

export class HostCopies {
  private readonly known = new Map<string, { stamp: string; hash: string }>();

  sameAsHost(file: InputFile): boolean {
    let hash: string;
    try {
      // A link could lead out of the bound directories: only a regular file counts.
      const st = lstatSync(file.path, { throwIfNoEntry: false });
      if (!st?.isFile() || st.size !== file.size || (st.mode & 0o111) !== 0 !== file.executable) return false;
      const stamp = `${st.dev}:${st.ino}:${st.size}:${st.mtimeMs}:${st.ctimeMs}`;
      const known = this.known.get(file.path);
      if (known?.stamp === stamp) hash = known.hash;
      else {
        hash = createHash('sha256').update(readFileSync(file.path)).digest('hex');
        if (this.known.size >= MAX_KNOWN) this.known.clear();
        this.known.set(file.path, { stamp, hash });
      }
    } catch {
      return false;
    }
    return hash === file.hash;
  }
}
