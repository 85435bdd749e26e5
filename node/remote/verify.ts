// Byte-for-byte comparison of a remote result with a local compile of the same job.
import type { JobResult } from '../../protocol/messages.js';

/** Undefined when identical; otherwise what differs first, in words. */
export function sameResult(remote: JobResult, local: JobResult): string | undefined {
  if (remote.exit !== local.exit) return `exit code ${remote.exit} vs ${local.exit}`;
  if (!Buffer.from(remote.stdout).equals(Buffer.from(local.stdout))) return 'stdout differs';
  if (!Buffer.from(remote.stderr).equals(Buffer.from(local.stderr))) return 'stderr differs';
  const byPath = new Map(local.outputs.map((o) => [o.path, o]));
  if (remote.outputs.length !== local.outputs.length) return `${remote.outputs.length} outputs vs ${local.outputs.length}`;
  for (const output of remote.outputs) {
    const twin = byPath.get(output.path);
    if (!twin) return `${output.path} only in the remote result`;
    if (!Buffer.from(output.data).equals(Buffer.from(twin.data))) return `${output.path} differs`;
  }
  return undefined;
}
