// Where a process's CPU went, from the .cpuprofile files `node --cpu-prof` writes: self time
// summed by where the code lives (one of our modules, a dependency, Node's internals, the
// garbage collector), so a benchmark can print "per job, X ms in Noise, Y ms in the scan".
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}

interface CpuProfile {
  nodes: ProfileNode[];
  startTime: number;
  endTime: number;
  samples: number[];
  timeDeltas: number[];
}

/** A short name for where a function lives: our file, a package, node:internal, or a V8 pseudo-frame. */
export function placeOf(url: string, functionName: string): string {
  if (!url) return functionName.startsWith('(') ? functionName : '(native)';
  const modules = url.lastIndexOf('/node_modules/');
  if (modules >= 0) {
    const rest = url.slice(modules + '/node_modules/'.length).split('/');
    return rest[0]!.startsWith('@') ? `${rest[0]}/${rest[1]}` : rest[0]!;
  }
  if (url.startsWith('node:')) return url.replace(/^node:internal\//, 'node:').split('/').slice(0, 2).join('/');
  const dist = url.indexOf('/dist/');
  if (dist >= 0) return url.slice(dist + '/dist/'.length).replace(/\.js$/, '');
  return path.basename(url);
}

/** A span of CLOCK_MONOTONIC in microseconds (process.hrtime.bigint() / 1000n): V8 stamps its
 *  samples with the same clock, so a benchmark can keep the samples of its measured build only. */
export interface Window {
  fromUs: number;
  toUs: number;
}

export const monotonicUs = () => Number(process.hrtime.bigint() / 1000n);

/** Milliseconds of self time per place in one profile, and the busy total (idle excluded),
 *  of the samples inside the window when one is given. */
export function summariseProfile(file: string, window?: Window): { byPlace: Map<string, number>; busyMs: number } {
  const profile = JSON.parse(readFileSync(file, 'utf8')) as CpuProfile;
  const placeById = new Map<number, string>();
  const parentOf = new Map<number, ProfileNode>();
  for (const node of profile.nodes) for (const child of node.children ?? []) parentOf.set(child, node);
  for (const node of profile.nodes) {
    const { url, functionName } = node.callFrame;
    // A native function (a binding: stat, read, hash, compress) counts where it was called from.
    const caller = parentOf.get(node.id)?.callFrame;
    const native = !url && !functionName.startsWith('(') && caller;
    placeById.set(node.id, native ? `${placeOf(caller.url, caller.functionName)} > ${functionName || '?'}` : placeOf(url, functionName));
  }
  const byPlace = new Map<string, number>();
  let busyMs = 0;
  let at = profile.startTime;
  for (let i = 0; i < profile.samples.length; i++) {
    const place = placeById.get(profile.samples[i]!) ?? '?';
    // A sample's delta is the time since the previous one: attribute it to this sample.
    at += profile.timeDeltas[i] ?? 0;
    const ms = (profile.timeDeltas[i] ?? 0) / 1000;
    if (window && (at < window.fromUs || at > window.toUs)) continue;
    if (place === '(idle)') continue;
    busyMs += ms;
    byPlace.set(place, (byPlace.get(place) ?? 0) + ms);
  }
  return { byPlace, busyMs };
}

/** The profiles in a directory, main thread first: node names them CPU.<date>.<pid>.<tid>.<seq>.cpuprofile
 *  and the main thread has thread id 0. */
export function profilesIn(dir: string): { mainThread?: string; workers: string[] } {
  const files = readdirSync(dir).filter((f) => f.endsWith('.cpuprofile')).map((f) => path.join(dir, f));
  const threadOf = (f: string) => Number(path.basename(f).split('.')[4]);
  return { mainThread: files.find((f) => threadOf(f) === 0), workers: files.filter((f) => threadOf(f) !== 0) };
}

/** The largest places, as "name ms/job" lines. */
export function topPlaces(byPlace: Map<string, number>, jobs: number, count = 14): string[] {
  return [...byPlace.entries()]
    .sort((a, b) => b[1] - a[1])
    .slice(0, count)
    .map(([place, ms]) => `${place.padEnd(44)} ${(ms / jobs).toFixed(2).padStart(7)} ms/job`);
}
