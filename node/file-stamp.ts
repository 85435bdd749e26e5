// What stat data says about a file's content, compared without keeping the Stats object: the
// scan, the hasher and the result cache trust a file unchanged while its stamp (device, inode,
// size, mtime, ctime, mode) is, once that stamp is older than a timestamp tick can hide.
// Number stats, not bigint ones: Node 20 builds a BigIntStats with eight BigInts and four Dates,
// ~6.6 µs of CPU and a heap object per stat against ~1.6 µs, and a compile's scan takes ~400
// stats. A double keeps a timestamp's milliseconds to ~0.2 µs, below any file system's tick.
import type { Stats } from 'node:fs';

/** A file changed less than this long ago may change again within the same timestamp tick
 *  (ccache's "too new" rule; FAT and some network file systems keep whole or two seconds). */
const SETTLE_MS = 2000;

export type NumericStamp = readonly [dev: number, ino: number, size: number, mtimeMs: number, ctimeMs: number, mode: number];

export function numbersOf(st: Stats): NumericStamp {
  return [st.dev, st.ino, st.size, st.mtimeMs, st.ctimeMs, st.mode];
}

export function sameStamp(st: Stats, known: NumericStamp): boolean {
  return st.ino === known[1] && st.mtimeMs === known[3] && st.ctimeMs === known[4] && st.size === known[2] && st.dev === known[0] && st.mode === known[5];
}

/** Whether stat data is old enough to stand for the content read after it (see above). */
export function settled(st: Stats, nowMs = Date.now()): boolean {
  const before = nowMs - SETTLE_MS;
  return st.mtimeMs < before && st.ctimeMs < before;
}

/** The scan's rule, mtime alone: a build's headers are written, not copied with their old
 *  times kept (`cp -p`), and a freshly checked-out tree is trusted at once. */
export function mtimeSettled(st: Stats, nowMs = Date.now()): boolean {
  return st.mtimeMs < nowMs - SETTLE_MS;
}

/** The stamp as one string (a manifest stores it so). */
export function stampOf(st: Stats): string {
  return `${st.dev}:${st.ino}:${st.size}:${st.mtimeMs}:${st.ctimeMs}:${st.mode}`;
}

export function numericStamp(stamp: string | undefined): NumericStamp | undefined {
  if (!stamp) return undefined;
  const parts = stamp.split(':').map(Number);
  return parts.length === 6 && parts.every(Number.isFinite) ? (parts as unknown as NumericStamp) : undefined;
}
