// What the CLI prints for people: `meshcc stats` and `meshcc status`.
import type { AgentStatus } from '../mesh/mesh-service.js';
import type { StatsSnapshot } from '../stats.js';
import { formatCacheStats } from '../cache/cli.js';

function kib(bytes: number): string {
  return `${(bytes / 1024).toFixed(1)} KiB`;
}

function seconds(ms: number): string {
  return `${(ms / 1000).toFixed(1)} s`;
}

export function formatStats(s: StatsSnapshot): string {
  const lines: string[] = [`meshcc agent since ${s.startedAt}`];
  const titles = {
    local: 'local (plain command)',
    job: 'executed here (sandbox)',
    remote: 'remote (on a peer)',
    fallback: 'fallback (local after remote trouble)',
  };
  for (const route of ['local', 'job', 'remote', 'fallback'] as const) {
    const r = s.routes[route];
    lines.push(`${titles[route].padEnd(42)} ${String(r.jobs).padStart(7)} jobs  ${seconds(r.ms).padStart(9)}`);
    for (const [reason, n] of Object.entries(r.byReason).sort((a, b) => b[1] - a[1])) {
      lines.push(`  ${reason.padEnd(40)} ${String(n).padStart(7)}`);
    }
  }
  const jr = s.jobRoute;
  lines.push(
    `job route time: scan ${seconds(jr.scanMs)}, hashing ${seconds(jr.hashMs)}, execution ${seconds(jr.executeMs)}; ` +
      `${jr.inputFiles} inputs, ${(jr.inputBytes / 1048576).toFixed(1)} MiB read`,
  );
  lines.push(
    `hashing: ${s.hashing.filesHashed} files hashed (${(s.hashing.bytesHashed / 1048576).toFixed(1)} MiB), ${s.hashing.cacheHits} stat-cache hits`,
  );
  if (s.cache) lines.push(...formatCacheStats(s.cache));
  lines.push(`store: ${s.store.files} files, ${(s.store.bytes / 1048576).toFixed(1)} of ${(s.store.maxBytes / 1048576).toFixed(0)} MiB`);
  lines.push(`mesh: ${kib(s.bytesSent)} sent, ${kib(s.bytesReceived)} received for our jobs; ran ${s.served.results} jobs for peers`);
  for (const [peer, p] of Object.entries(s.perPeer).sort((a, b) => b[1].jobs - a[1].jobs)) {
    const failures = Object.entries(p.failuresByReason).map(([r, n]) => `${r} ${n}`).join(', ');
    lines.push(`  …${peer.slice(-8)}  ${String(p.jobs).padStart(6)} jobs  ${kib(p.bytesSent).padStart(10)} sent` + (failures ? `  failures: ${failures}` : ''));
  }
  lines.push(`hedged stragglers: ${s.hedges.started} (won locally ${s.hedges.wonLocally}); verified: ${s.verify.matched} matched, ${s.verify.mismatches} MISMATCHED`);
  if (s.peersBackedOff.length) lines.push(`backed off: ${s.peersBackedOff.map((p) => `…${p.slice(-8)}`).join(' ')}`);
  for (const [peer, why] of Object.entries(s.peersExcluded)) lines.push(`EXCLUDED …${peer.slice(-8)}: ${why}`);
  const pl = s.placements;
  if (pl) {
    const reasons = Object.entries(pl.byReason).sort((a, b) => b[1] - a[1]).map(([r, n]) => `${r} ${n}`).join(', ');
    lines.push(`placed by the scheduler: ${pl.viaScheduler}, by this agent: ${pl.bySelf}${reasons ? ` (${reasons})` : ''}`);
    for (const p of pl.recent.slice(-5)) lines.push(`  ${p.job.padEnd(12)} → ${p.peer === 'self' ? 'self' : `…${p.peer.slice(-8)}`}  ${p.via}: ${p.reason}`);
  }
  const tc = s.toolchains;
  lines.push(
    `toolchains: ${tc.cached} cached (${(tc.cachedBytes / 1048576).toFixed(1)} MiB); fetched ${tc.fetched} (${(tc.fetchedBytes / 1048576).toFixed(1)} MiB, ${seconds(tc.fetchMs)})` +
      (tc.fetchFailures ? `, ${tc.fetchFailures} fetches failed` : '') +
      `; served ${tc.served} (${(tc.servedBytes / 1048576).toFixed(1)} MiB); peers' jobs on shipped toolchains ${tc.jobsOnShipped}, on this host's ${tc.jobsOnHost}`,
  );
  const sl = s.slots;
  lines.push(
    `slots: local ${sl.localInUse}/${sl.local}, executor ${sl.executorInUse}/${sl.executor}` +
      (sl.executorUnavailable ? ` (executor off: ${sl.executorUnavailable})` : ''),
  );
  return `${lines.join('\n')}\n`;
}

/** `meshcc status` for people: one row per agent, this one marked with '*'. */
export function formatStatus(agents: AgentStatus[]): string {
  const header = ['', 'name', 'peer', 'cores', 'slots', 'load', 'speed', 'rtt', 'link', 'role', 'toolchains', 'addresses'];
  const rows = agents.map((a) => [
    a.self ? '*' : '',
    a.name,
    `…${a.peerId.slice(-8)}`,
    String(a.cores),
    `${a.slotsUsed}/${a.slots}`,
    a.load.toFixed(2),
    a.speed.toFixed(1),
    a.rttMs === null ? '-' : `${a.rttMs.toFixed(1)} ms`,
    a.mapped ? 'mapped' : a.link,
    // A suspect gets no jobs until it answers again (or is declared dead and leaves the list).
    a.state === 'suspect' ? `${a.role} (suspect)` : a.role,
    String(a.toolchains.length),
    a.addresses.join(' '),
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: string[]) => cells.map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i]!))).join('  ').trimEnd();
  const why = agents.filter((a) => a.executorUnavailable).map((a) => `${a.name} (…${a.peerId.slice(-8)}) runs no jobs: ${a.executorUnavailable}`);
  // "mapped": a direct link through a router's port mapping (NAT-PMP or UPnP IGD).
  const reach = agents.filter((a) => a.self && a.reach).map((a) => `this agent: ${a.reach}`);
  return `${[line(header), ...rows.map(line), ...why, ...reach].join('\n')}\n`;
}
