// `meshcc top`'s screen, drawn from the monitor's frames: agents, slots, running jobs, counters.
// Pure text in, text out, so that the view is tested without a terminal.
import type { JobView, MonitorFrame } from '../monitor/frame.js';

export class TopState {
  frame?: MonitorFrame;
  readonly jobs = new Map<string, JobView>();

  apply(frame: MonitorFrame): void {
    if (frame.full) this.jobs.clear();
    if (this.frame?.build && frame.build && frame.build.number !== this.frame.build.number) {
      for (const [key, job] of this.jobs) if (job.start < frame.build.startedAt) this.jobs.delete(key);
    }
    for (const job of frame.jobs) this.jobs.set(`${job.client}/${job.id}`, job);
    // Only running jobs and the latest finished ones are shown.
    if (this.jobs.size > 2000) {
      const done = [...this.jobs].filter(([, j]) => j.end !== undefined).sort((a, b) => a[1].end! - b[1].end!);
      for (const [key] of done.slice(0, this.jobs.size - 1000)) this.jobs.delete(key);
    }
    this.frame = frame;
  }
}

const pad = (text: string, width: number) => (text.length > width ? `${text.slice(0, width - 1)}…` : text.padEnd(width));

function bytes(n: number): string {
  if (n < 1024) return `${n} B`;
  const units = ['KiB', 'MiB', 'GiB', 'TiB'];
  let v = n;
  let i = -1;
  do {
    v /= 1024;
    i++;
  } while (v >= 1024 && i < units.length - 1);
  return `${v.toFixed(1)} ${units[i]}`;
}

const seconds = (ms: number) => `${(ms / 1000).toFixed(1)} s`;

export function renderTop(state: TopState, columns: number, rows: number, now = Date.now()): string {
  const f = state.frame;
  if (!f) return 'meshcc top: waiting for the agent…';
  const clock = now - (Date.now() - f.at);
  const names = new Map(f.agents.map((a) => [a.peerId, a.name] as const));
  const nameOf = (id: string) => names.get(id) ?? (id ? `${id.slice(0, 8)}…` : '…');
  const self = f.agents.find((a) => a.self);
  const s = f.counters.self;
  const m = f.counters.mesh;
  const lines: string[] = [];
  const build = f.build ? `build ${f.build.number}: ${f.running > 0 ? `${f.running} running` : 'idle'}` : 'no build yet';
  lines.push(`meshcc top — ${self?.name ?? '?'} (${self?.role ?? 'member'}) · ${build} · ${s.jobsPerSec.toFixed(1)} jobs/s   (q quits)`);
  lines.push('');
  lines.push(`${pad('AGENT', 22)} ${pad('ROLE', 9)} ${pad('LINK', 8)} ${pad('SLOTS', 20)} ${pad('LOAD', 6)} ${pad('RTT', 8)} TOOLCHAINS`);
  for (const a of f.agents) {
    const cells = a.slots <= 16 ? `[${'#'.repeat(a.slotsUsed)}${'.'.repeat(Math.max(0, a.slots - a.slotsUsed))}]` : '';
    const slots = a.state === 'lost' ? 'LOST' : `${cells} ${a.slotsUsed}/${a.slots}`;
    const link = a.self ? 'self' : a.state === 'lost' ? 'lost' : a.link;
    const rtt = a.rttMs === null || a.self ? '-' : `${a.rttMs} ms`;
    lines.push(`${pad(a.name + (a.self ? ' *' : ''), 22)} ${pad(a.role, 9)} ${pad(link, 8)} ${pad(slots, 20)} ${pad(a.load.toFixed(2), 6)} ${pad(rtt, 8)} ${a.toolchains}`);
  }
  lines.push('');
  const reasons = Object.entries(s.fallbackByReason).map(([k, v]) => `${k} ${v}`).join(', ');
  lines.push(
    `THIS AGENT  jobs ${s.jobs}: local ${s.local}, remote ${s.remote}, own executor ${s.job}, cache hits ${s.cacheHits ?? 0}, fallback ${s.fallback}${reasons ? ` (${reasons})` : ''}; ` +
      `run for peers ${s.served}`,
  );
  lines.push(
    `            sent ${bytes(s.bytesSent)}, received ${bytes(s.bytesReceived)}, store hit rate ${s.storeHitRate === null ? '-' : `${(s.storeHitRate * 100).toFixed(1)} %`}, ` +
      `toolchains in/out ${s.toolchainsFetched}/${s.toolchainsServed}, verified ${s.verified}`,
  );
  lines.push(
    `MESH        ${m.agents} agents${m.lost ? ` (+${m.lost} lost)` : ''}, ${m.slotsUsed}/${m.slots} slots busy, ${m.cores} cores, jobs ${m.jobs} (${m.jobsPerSec.toFixed(1)}/s), ` +
      `sent ${bytes(m.bytesSent)}, election term ${m.term}`,
  );
  lines.push('');
  const jobs = [...state.jobs.values()];
  const running = jobs.filter((j) => j.end === undefined).sort((a, b) => a.start - b.start);
  const finished = jobs.filter((j) => j.end !== undefined).sort((a, b) => b.end! - a.end!);
  const jobLine = (j: JobView) =>
    `  ${pad(j.src, 34)} ${pad(`${nameOf(j.client)} → ${j.exec ? nameOf(j.exec) : '…'}`, 30)} ${pad(j.route ? `${j.route}${j.reason && j.route !== 'remote' ? ` (${j.reason})` : ''}${j.verified ? ' verified' : ''}` : 'running', 26)} ${seconds((j.end ?? clock) - j.start)}`;
  const room = Math.max(2, rows - lines.length - 3);
  const runningRoom = Math.min(running.length, Math.ceil(room / 2));
  lines.push(`RUNNING (${running.length})`);
  for (const j of running.slice(0, runningRoom)) lines.push(jobLine(j));
  lines.push('RECENT');
  for (const j of finished.slice(0, Math.max(0, room - runningRoom))) lines.push(jobLine(j));
  return lines
    .slice(0, rows)
    .map((l) => (l.length > columns ? l.slice(0, columns) : l))
    .join('\n');
}
