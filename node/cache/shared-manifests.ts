// A direct-mode manifest as the mesh keeps it: an entry under the manifest's key whose one
// output is the manifest (without stat data, gzip'd JSON), written by the member that scanned,
// so that it travels, is checked against its hash, evicted, and dropped with its writer exactly
// as results are. A client with an empty home (a CI runner) then needs no scan for a unit some
// member compiled: it checks the listed files by content and fetches the result.
import { gunzipSync, gzipSync } from 'node:zlib';
import { sha256 } from '../store.js';
import type { CacheEntry } from './entry.js';
import type { CachedResult } from './local-entries.js';
import { forSharing, isManifest, type Manifest } from './manifests.js';

/** The one output of a manifest's entry (a path no compile writes). */
export const MANIFEST_OUTPUT = '/.meshcc-manifest';
/** A manifest a member sends is unpacked up to this size at most. */
const MAX_MANIFEST_BYTES = 32 * 1024 * 1024;

export function manifestEntry(key: string, writer: string, manifest: Manifest): { entry: CacheEntry; data: Uint8Array[] } {
  const data = gzipSync(JSON.stringify(forSharing(manifest)), { level: 1 });
  return {
    entry: { key, writer, writtenAt: Date.now(), exit: 0, stdout: new Uint8Array(0), stderr: new Uint8Array(0), outputs: [{ path: MANIFEST_OUTPUT, hash: sha256(data), size: data.length, executable: false }] },
    data: [data],
  };
}

/** The manifest an entry carries; undefined when it is not one, or not a valid one. */
export function manifestOf(found: CachedResult): Manifest | undefined {
  const [output] = found.outputs;
  if (found.outputs.length !== 1 || output?.path !== MANIFEST_OUTPUT || found.entry.exit !== 0) return undefined;
  try {
    const value: unknown = JSON.parse(gunzipSync(output.data, { maxOutputLength: MAX_MANIFEST_BYTES }).toString('utf8'));
    return isManifest(value) ? value : undefined;
  } catch {
    return undefined;
  }
}
