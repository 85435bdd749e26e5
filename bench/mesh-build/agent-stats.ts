// The client agent's own counters (jobs by route, fallbacks and their reasons, bytes and store
// files sent) read over its socket before and after a build: what only meshcc can tell about
// itself, printed next to the kernel's figures. Fields an older agent lacks print as n/a.
import path from 'node:path';
import { query } from '../../node/cli/query.js';
import type { AgentStatus } from '../../node/mesh/mesh-service.js';
import { bytes, say } from './common.js';

export type Json = Record<string, unknown>;

export function at(obj: unknown, dotted: string): unknown {
  let v: unknown = obj;
  for (const k of dotted.split('.')) v = v && typeof v === 'object' ? (v as Json)[k] : undefined;
  return v;
}

export function numAt(obj: unknown, dotted: string): number | undefined {
  const v = at(obj, dotted);
  return typeof v === 'number' ? v : undefined;
}

function delta(before: unknown, after: unknown, dotted: string): number | undefined {
  const a = numAt(after, dotted);
  if (a === undefined) return undefined;
  return a - (numAt(before, dotted) ?? 0);
}

export const na = (n: number | undefined) => (n === undefined ? 'n/a' : String(n));

export async function statsOf(home: string): Promise<Json | undefined> {
  try {
    return (await query(path.join(home, 'agent.sock'), { t: 'stats', v: 1 })).stats as Json;
  } catch {
    return undefined;
  }
}

export async function statusOf(home: string): Promise<AgentStatus[]> {
  return (await query(path.join(home, 'agent.sock'), { t: 'status', v: 1 })).agents as AgentStatus[];
}

/** Per-key differences of a {key: number} object. */
function mapDelta(before: unknown, after: unknown, dotted: string): Record<string, number> | undefined {
  const a = at(after, dotted);
  if (!a || typeof a !== 'object') return undefined;
  const out: Record<string, number> = {};
  for (const [k, v] of Object.entries(a as Json)) {
    if (typeof v !== 'number') continue;
    const d = v - (numAt(at(before, dotted), k) ?? 0);
    if (d !== 0) out[k] = d;
  }
  return out;
}

export interface MeshBuildStats {
  counts: Record<'local' | 'job' | 'remote' | 'fallback', number | undefined>;
  fallbackByReason?: Record<string, number>;
  bytesSent?: number;
  bytesReceived?: number;
  /** of bytesSent, the job offers (the rest is store files); store files the jobs used, and those sent */
  offerBytes?: number;
  filesUsed?: number;
  filesSent?: number;
  /** peer id → differences of its numeric fields (jobs at least). */
  perPeer?: Record<string, Record<string, number>>;
  /** The stats of before the `counts` field: jobs by route. */
  routes?: Record<string, number>;
}

export function buildStats(before: Json | undefined, after: Json | undefined): MeshBuildStats {
  const counts = {
    local: delta(before, after, 'counts.local'),
    job: delta(before, after, 'counts.job'),
    remote: delta(before, after, 'counts.remote'),
    fallback: delta(before, after, 'counts.fallback'),
  };
  let perPeer: Record<string, Record<string, number>> | undefined;
  const peers = at(after, 'perPeer');
  if (peers && typeof peers === 'object') {
    perPeer = {};
    for (const id of Object.keys(peers)) {
      const d = mapDelta(before, after, `perPeer.${id}`);
      if (d && Object.keys(d).length) perPeer[id] = d;
    }
  }
  let routes: Record<string, number> | undefined;
  const r = at(after, 'routes');
  if (r && typeof r === 'object') {
    routes = {};
    for (const k of Object.keys(r)) routes[k] = delta(before, after, `routes.${k}.jobs`) ?? 0;
  }
  return {
    counts,
    fallbackByReason: mapDelta(before, after, 'fallbackByReason'),
    bytesSent: delta(before, after, 'bytesSent'),
    bytesReceived: delta(before, after, 'bytesReceived'),
    offerBytes: delta(before, after, 'inputFiles.offerBytes'),
    filesUsed: delta(before, after, 'inputFiles.total'),
    filesSent: delta(before, after, 'inputFiles.sent'),
    perPeer,
    routes,
  };
}

export function printStats(s: MeshBuildStats, peerNames: Map<string, string>): void {
  const c = s.counts;
  say(`  jobs (client agent's counts): local ${na(c.local)}, remote ${na(c.remote)}, fallback ${na(c.fallback)}, own executor ${na(c.job)}`);
  if (c.local === undefined && s.routes) {
    say(`    (no counts field yet; by route: ${Object.entries(s.routes).map(([k, v]) => `${k} ${v}`).join(', ')})`);
  }
  const reasons = s.fallbackByReason;
  say(`  fallback by reason: ${reasons === undefined ? 'n/a' : Object.keys(reasons).length ? Object.entries(reasons).map(([k, v]) => `${k} ${v}`).join(', ') : 'none'}`);
  say(`  bytes sent ${bytes(s.bytesSent)} (job offers ${bytes(s.offerBytes)}, store files the rest), received ${bytes(s.bytesReceived)}`);
  say(`  store files: ${na(s.filesUsed)} used by the jobs, ${na(s.filesSent)} sent (the peer lacked them)`);
  if (s.perPeer === undefined) say('  per peer: n/a');
  else if (Object.keys(s.perPeer).length === 0) say('  per peer: none');
  else
    for (const [id, d] of Object.entries(s.perPeer)) {
      const fields = Object.entries(d).map(([k, v]) => `${k} ${/bytes/i.test(k) ? bytes(v) : v}`);
      say(`  peer ${peerNames.get(id) ?? id}: ${fields.join(', ')}`);
    }
}
