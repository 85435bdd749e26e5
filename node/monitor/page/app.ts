// The monitor page: listens to the agent's frames (server-sent events) and draws the agents,
// the counters, the build's timeline (one lane per slot of each executor) and the latest jobs.
// No framework: a few elements updated in place, one canvas.

import type { AgentTile as Tile, JobView, MonitorFrame as Frame } from '../frame.js';

const JOB_ROWS = 60;
const ROUTE_COLOURS: Record<string, string> = {
  remote: '#4fa3ff',
  job: '#9b7bff',
  local: '#6cc070',
  fallback: '#ff8a3d',
  served: '#e0c050',
  cache: '#2ec4b6',
};

const $ = <T extends HTMLElement>(id: string) => document.getElementById(id) as T;
const jobs = new Map<string, JobView>();
let frame: Frame | undefined;
const names = new Map<string, string>();
let clockOffset = 0;

function nameOf(peerId: string): string {
  return names.get(peerId) ?? (peerId ? `${peerId.slice(0, 6)}…${peerId.slice(-4)}` : '?');
}

function bytes(n: number): string {
  if (n < 1024) return `${n} B`;
  const units = ['KiB', 'MiB', 'GiB', 'TiB'];
  let v = n;
  let i = -1;
  do {
    v /= 1024;
    i++;
  } while (v >= 1024 && i < units.length - 1);
  return `${v.toFixed(v < 10 ? 1 : 0)} ${units[i]}`;
}

function ms(n: number): string {
  return n < 1000 ? `${Math.round(n)} ms` : `${(n / 1000).toFixed(1)} s`;
}

function element(tag: string, className?: string, text?: string): HTMLElement {
  const el = document.createElement(tag);
  if (className) el.className = className;
  if (text !== undefined) el.textContent = text;
  return el;
}

function counters(target: HTMLElement, entries: [string, string, string][]): void {
  target.replaceChildren(
    ...entries.map(([id, label, value]) => {
      const div = element('div');
      div.append(element('dt', '', label));
      const dd = element('dd', '', value);
      dd.id = id;
      div.append(dd);
      return div;
    }),
  );
}

let drawnCounters = '';

function drawCounters(f: Frame): void {
  const key = JSON.stringify(f.counters);
  if (key === drawnCounters) return;
  drawnCounters = key;
  const s = f.counters.self;
  const reasons = Object.entries(s.fallbackByReason)
    .map(([k, v]) => `${k} ${v}`)
    .join(', ');
  counters($('self-counters'), [
    ['self-jobs', 'jobs', String(s.jobs)],
    ['self-rate', 'jobs/s', s.jobsPerSec.toFixed(1)],
    ['self-local', 'local', String(s.local)],
    ['self-remote', 'remote', String(s.remote)],
    ['self-job', 'own executor', String(s.job)],
    ['self-cache', 'cache hits', String(s.cacheHits ?? 0)],
    ['self-fallback', reasons ? `fallback (${reasons})` : 'fallback', String(s.fallback)],
    ['self-served', 'run for peers', String(s.served)],
    ['self-sent', 'sent', bytes(s.bytesSent)],
    ['self-received', 'received', bytes(s.bytesReceived)],
    ['self-hit', 'store hit rate', s.storeHitRate === null ? '–' : `${(s.storeHitRate * 100).toFixed(1)} %`],
    ['self-toolchains', 'toolchains in / out', `${s.toolchainsFetched} / ${s.toolchainsServed}`],
    ['self-verified', 'verified / mismatched', `${s.verified} / ${s.mismatches}`],
  ]);
  const m = f.counters.mesh;
  counters($('mesh-counters'), [
    ['mesh-agents', 'agents', `${m.agents}${m.lost ? ` (+${m.lost} lost)` : ''}`],
    ['mesh-slots', 'slots busy', `${m.slotsUsed} / ${m.slots}`],
    ['mesh-cores', 'cores', String(m.cores)],
    ['mesh-jobs', 'jobs', String(m.jobs)],
    ['mesh-rate', 'jobs/s', m.jobsPerSec.toFixed(1)],
    ['mesh-remote', 'remote', String(m.remote)],
    ['mesh-sent', 'sent', bytes(m.bytesSent)],
    ['mesh-received', 'received', bytes(m.bytesReceived)],
    ['mesh-term', 'election term', String(m.term)],
  ]);
}

/** Tiles by peer, with what they were drawn from: only a tile that changed is drawn again. */
const drawnTiles = new Map<string, { key: string; tile: HTMLElement }>();

function drawAgents(f: Frame): void {
  const container = $('agents');
  const now = Date.now() - clockOffset;
  const tiles = f.agents.map((a) => {
    // A lost tile shows how long ago: redrawn once a second at most.
    const key = JSON.stringify(a) + (a.state === 'lost' ? Math.floor(now / 1000) : '');
    const drawn = drawnTiles.get(a.peerId);
    if (drawn?.key === key) return drawn.tile;
    const tile = drawTile(a, now);
    drawnTiles.set(a.peerId, { key, tile });
    return tile;
  });
  const present = new Set(f.agents.map((a) => a.peerId));
  for (const peer of drawnTiles.keys()) if (!present.has(peer)) drawnTiles.delete(peer);
  if (tiles.length !== container.children.length || tiles.some((t, i) => container.children[i] !== t)) container.replaceChildren(...tiles);
  const up = f.agents.filter((a) => a.state === 'up').length;
  $('agents-summary').textContent = `${up} up${f.agents.length > up ? `, ${f.agents.length - up} lost` : ''}`;
}

function drawTile(a: Tile, now: number): HTMLElement {
  const tile = element('div', `tile ${a.state}${a.role === 'scheduler' ? ' scheduler' : ''}`);
  tile.dataset.peer = a.peerId;
  tile.dataset.state = a.state;
  const head = element('div');
  head.append(element('span', 'name', a.name + (a.self ? ' (this agent)' : '')), element('span', 'role', a.role));
  const slots = element('div', 'slots');
  for (let i = 0; i < a.slots; i++) slots.append(element('span', i < a.slotsUsed ? 'slot busy' : 'slot'));
  const link = a.self ? 'this machine' : a.state === 'lost' ? `lost ${ms(now - (a.lostAt ?? 0))} ago` : a.link === 'relayed' ? 'through a relay' : a.link === 'direct' ? 'direct' : 'not connected';
  const facts = [
    `${a.cores} cores · ${a.slotsUsed}/${a.slots} slots · load ${a.load.toFixed(2)}`,
    `speed ${a.speed} · ${a.toolchains} toolchain${a.toolchains === 1 ? '' : 's'}${a.rttMs !== null && !a.self ? ` · rtt ${a.rttMs} ms` : ''}`,
    link,
  ];
  if (a.executorUnavailable) facts.push(`no slots: ${a.executorUnavailable}`);
  const factsEl = element('div', 'facts');
  factsEl.innerHTML = facts.map((t) => t.replace(/[&<>]/g, (c) => `&#${c.charCodeAt(0)};`)).join('<br>');
  tile.append(head, slots, factsEl);
  return tile;
}

function drawJobs(): void {
  const rows = [...jobs.values()].sort((a, b) => (b.end ?? Infinity) - (a.end ?? Infinity) || b.start - a.start).slice(0, JOB_ROWS);
  const now = Date.now() - clockOffset;
  $('jobs').querySelector('tbody')!.replaceChildren(
    ...rows.map((j) => {
      const tr = element('tr');
      const route = j.route ? `${j.route}${j.reason && j.route !== 'remote' ? ` (${j.reason})` : ''}${j.verified ? ' ✓ verified' : ''}` : 'running';
      tr.append(
        element('td', '', j.src),
        element('td', '', `${nameOf(j.client)} → ${j.exec ? nameOf(j.exec) : '…'}`),
        element('td', `route-${j.route ?? 'running'}`, route),
        element('td', '', ms((j.end ?? now) - j.start)),
      );
      return tr;
    }),
  );
}

/** One lane per slot of each executor; a job takes the first lane of its executor free at its start. */
function drawTimeline(f: Frame): void {
  const canvas = $<HTMLCanvasElement>('timeline');
  const ctx = canvas.getContext('2d');
  if (!ctx) return;
  const list = [...jobs.values()].filter((j) => j.exec).sort((a, b) => (a.ran ?? a.start) - (b.ran ?? b.start));
  const now = Date.now() - clockOffset;
  const start = f.build?.startedAt ?? list[0]?.start ?? now;
  const end = Math.max(f.build?.endedAt ?? now, start + 1000);
  const lanesByExec = new Map<string, number[]>();
  const placed: { job: JobView; exec: string; lane: number }[] = [];
  for (const job of list) {
    const lanes = lanesByExec.get(job.exec) ?? [];
    lanesByExec.set(job.exec, lanes);
    const from = job.ran ?? job.start;
    let lane = lanes.findIndex((busyUntil) => busyUntil <= from);
    if (lane < 0) lane = lanes.push(0) - 1;
    lanes[lane] = job.end ?? Infinity;
    placed.push({ job, exec: job.exec, lane });
  }
  const order = [...lanesByExec.keys()].sort((a, b) => nameOf(a).localeCompare(nameOf(b)));
  const laneHeight = 12;
  const labelWidth = 130;
  let rows = 0;
  const firstRow = new Map<string, number>();
  for (const exec of order) {
    firstRow.set(exec, rows);
    rows += lanesByExec.get(exec)!.length;
  }
  const width = canvas.clientWidth || 800;
  const height = Math.max(40, rows * laneHeight + order.length * 6 + 20);
  const scale = window.devicePixelRatio || 1;
  canvas.width = width * scale;
  canvas.height = height * scale;
  canvas.style.height = `${height}px`;
  ctx.scale(scale, scale);
  ctx.clearRect(0, 0, width, height);
  ctx.font = '11px system-ui, sans-serif';
  const x = (t: number) => labelWidth + ((t - start) / (end - start)) * (width - labelWidth - 8);
  order.forEach((exec, i) => {
    const top = firstRow.get(exec)! * laneHeight + i * 6 + 4;
    ctx.fillStyle = '#7b8794';
    ctx.fillText(nameOf(exec), 6, top + 10);
  });
  const topOf = (exec: string, lane: number) => (firstRow.get(exec)! + lane) * laneHeight + order.indexOf(exec) * 6 + 4;
  // Before a job ran there (scan, queue): a thin line under the bars.
  ctx.fillStyle = '#55606e';
  for (const { job, exec, lane } of placed) {
    const queued = x(Math.max(start, job.start));
    const from = x(Math.max(start, job.ran ?? job.start));
    if (from > queued) ctx.fillRect(queued, topOf(exec, lane) + laneHeight / 2 - 1, from - queued, 2);
  }
  for (const { job, exec, lane } of placed) {
    const top = topOf(exec, lane);
    const from = x(Math.max(start, job.ran ?? job.start));
    const to = x(job.end ?? now);
    ctx.fillStyle = job.route ? (ROUTE_COLOURS[job.route] ?? '#c0c8d0') : '#c0c8d0';
    ctx.fillRect(from, top, Math.max(1, to - from - 0.5), laneHeight - 2);
  }
  const seconds = (end - start) / 1000;
  $('timeline-summary').textContent = f.build
    ? `build ${f.build.number}: ${seconds.toFixed(1)} s, ${list.length} jobs${f.build.endedAt ? '' : ', running'}`
    : 'no build yet';
}

function apply(next: Frame): void {
  clockOffset = Date.now() - next.at;
  if (next.full) jobs.clear();
  // A new build clears the last one's timeline.
  if (frame?.build && next.build && next.build.number !== frame.build.number) {
    for (const [id, job] of jobs) if (job.start < next.build.startedAt) jobs.delete(id);
  }
  for (const job of next.jobs) jobs.set(`${job.client}/${job.id}`, job);
  for (const a of next.agents) names.set(a.peerId, a.name);
  frame = next;
  const self = next.agents.find((a) => a.self);
  $('self-name').textContent = self ? `${self.name} · ${self.role}` : '';
  const state = $('build-state');
  state.textContent = next.running > 0 ? `building: ${next.running} running` : next.build ? 'idle' : 'no build yet';
  drawCounters(next);
  drawAgents(next);
  // Jobs and the timeline change only with jobs, or with time while some run.
  if (next.full || next.jobs.length > 0 || next.running > 0) {
    drawTimeline(next);
    drawJobs();
  }
}

function connect(): void {
  const status = $('connection');
  const events = new EventSource('events');
  events.onopen = () => {
    status.textContent = 'live';
    status.className = 'pill live';
  };
  events.onmessage = (message) => apply(JSON.parse(message.data as string) as Frame);
  events.onerror = () => {
    status.textContent = 'agent unreachable: retrying';
    status.className = 'pill down';
  };
}

connect();
