// The monitor's parts on their own: the job log (builds, changes), the frames, the terminal
// view, the HTTP server's routes and its rule that beyond loopback a token is needed.
import http from 'node:http';
import { afterEach, describe, expect, it } from 'vitest';
import { parseHostPort } from '../node/config.js';
import { renderTop, TopState } from '../node/cli/top-view.js';
import { createLogger } from '../node/log.js';
import type { AgentStatus } from '../node/mesh/mesh-service.js';
import { MonitorServer, monitorToken } from '../node/monitor/http-server.js';
import { BUILD_GAP_MS, JobLog, sourceOf } from '../node/monitor/job-log.js';
import { Metrics } from '../node/monitor/metrics.js';
import type { MonitorFrame } from '../node/monitor/frame.js';
import { MonitorModel } from '../node/monitor/model.js';
import { Stats, type StatsSnapshot } from '../node/stats.js';

const quiet = createLogger({ level: 'silent' });

function statsSnapshot(stats = new Stats()): StatsSnapshot {
  return {
    startedAt: stats.startedAt,
    counts: stats.counts(),
    fallbackByReason: stats.routes.fallback.byReason,
    bytesSent: stats.bytesSent,
    bytesReceived: stats.bytesReceived,
    perPeer: stats.perPeer,
    served: stats.served,
    hedges: stats.hedges,
    verify: stats.verify,
    peersBackedOff: [],
    peersExcluded: {},
    routes: stats.routes,
    jobRoute: stats.jobRoute,
    hashing: { filesHashed: 0, bytesHashed: 0, cacheHits: 0 },
    inputFiles: stats.inputFiles,
    store: { files: 0, bytes: 0, maxBytes: 1 },
    placements: stats.placements,
    toolchains: { ...stats.toolchains, cached: 0, cachedBytes: 0 },
    slots: { local: 2, localInUse: 0, executor: 2, executorInUse: 0 },
  };
}

function status(peerId: string, self: boolean, extra: Partial<AgentStatus> = {}): AgentStatus {
  return {
    name: `agent-${peerId}`,
    peerId,
    self,
    addresses: [],
    cores: 4,
    slots: 4,
    slotsUsed: 1,
    load: 0.5,
    speed: 1,
    toolchains: ['a'],
    rttMs: self ? 0 : 1.5,
    role: 'member',
    link: self ? 'self' : 'direct',
    os: 'linux',
    arch: 'x64',
    libc: 'glibc',
    freeMemoryBytes: 1,
    activity: { jobs: 10, remote: 5, served: 3, bytesSent: 100, bytesReceived: 200 },
    ...extra,
  };
}

describe('job log', () => {
  it('starts a new build after a pause and keeps the current one', () => {
    let now = 1_000;
    const log = new JobLog(() => now);
    const a = log.start('1', 'a.c', 'me', '');
    log.placed(a, 'peer');
    now += 100;
    log.end(a, 'remote', 'peer');
    expect(log.build()).toEqual({ number: 1, startedAt: 1_000, endedAt: 1_100 });
    now += BUILD_GAP_MS - 1;
    const b = log.start('2', 'b.c', 'me', 'me');
    expect(log.build()?.number).toBe(1);
    now += BUILD_GAP_MS + 1;
    log.end(b, 'local', 'local-slot');
    now += BUILD_GAP_MS + 1;
    log.start('3', 'c.c', 'me', '');
    expect(log.build()).toEqual({ number: 2, startedAt: now, endedAt: undefined });
    expect(log.buildRecords().map((r) => r.id)).toEqual(['3']);
    expect(log.totals).toMatchObject({ remote: 1, local: 1 });
    expect(log.runningCount).toBe(1);
  });

  it('hands each changed record once, in the order of their last change', () => {
    const log = new JobLog();
    const a = log.start('1', 'a.c', 'me', '');
    const b = log.start('2', 'b.c', 'me', '');
    log.placed(a, 'p');
    expect(log.takeChanged().map((r) => r.id)).toEqual(['2', '1']);
    expect(log.takeChanged()).toEqual([]);
    log.end(b, 'fallback', 'peer-lost');
    log.end(b, 'fallback', 'twice');
    expect(log.takeChanged()).toEqual([b]);
    expect(b.reason).toBe('peer-lost');
  });

  it('names the source of a compile', () => {
    expect(sourceOf(['gcc', '-c', '-o', 'x.c', 'src/y.cc'])).toBe('src/y.cc');
    expect(sourceOf(['gcc', '-o', 'prog', 'a.o'])).toBe('gcc');
  });
});

describe('frames and the terminal view', () => {
  it('keeps a lost peer as a lost tile and sums the mesh from adverts', () => {
    let rows = [status('me', true), status('p1', false), status('p2', false, { role: 'scheduler' })];
    const jobs = new JobLog();
    const model = new MonitorModel({ status: () => rows, stats: () => statsSnapshot(), election: () => ({ term: 3, scheduler: 'p2' }), jobs });
    const record = jobs.start('j1', 'zutil.c', 'me', '');
    jobs.placed(record, 'p1');
    const first = model.frame(true);
    expect(first.agents.map((a) => [a.peerId, a.state])).toEqual([['me', 'up'], ['p1', 'up'], ['p2', 'up']]);
    expect(first.counters.mesh).toMatchObject({ agents: 3, slots: 12, slotsUsed: 3, jobs: 30, served: 9, term: 3, scheduler: 'p2' });
    expect(first.jobs).toHaveLength(1);
    rows = rows.filter((r) => r.peerId !== 'p1');
    model.peerLost(status('p1', false));
    const second = model.frame(false);
    expect(second.agents.find((a) => a.peerId === 'p1')).toMatchObject({ state: 'lost', slotsUsed: 0 });
    expect(second.counters.mesh.lost).toBe(1);
    expect(second.jobs).toEqual([]);

    const top = new TopState();
    top.apply(first);
    const screen = renderTop(top, 160, 40);
    expect(screen).toContain('agent-p1');
    expect(screen).toMatch(/RUNNING \(1\)\n\s+zutil\.c\s+agent-me → agent-p1\s+running/);
    top.apply(second);
    expect(renderTop(top, 160, 40)).toMatch(/agent-p1\s+member\s+lost\s+LOST/);
    // Never wider or taller than the terminal.
    const small = renderTop(top, 40, 6).split('\n');
    expect(small.length).toBeLessThanOrEqual(6);
    expect(Math.max(...small.map((l) => l.length))).toBeLessThanOrEqual(40);
  });
});

describe('monitor server', () => {
  let server: MonitorServer | undefined;
  afterEach(async () => server?.stop());

  function start(key = new Uint8Array(32).fill(7)) {
    const stats = new Stats();
    stats.record('remote', 'peer', 12);
    const jobs = new JobLog();
    const model = new MonitorModel({ status: () => [status('me', true)], stats: () => statsSnapshot(stats), election: () => ({ term: 1 }), jobs });
    const metrics = new Metrics({ stats: () => statsSnapshot(stats), mesh: () => ({ peers: 0, slots: 4, slotsUsed: 0, term: 1, scheduler: true }) });
    server = new MonitorServer({ model, metrics, health: () => ({ ready: false, reason: 'no peer' }), meshKey: key, pageDir: 'node/monitor/page', scriptDir: 'dist/monitor/page', log: quiet });
    return { key, jobs };
  }

  function get(url: string, headers: Record<string, string> = {}): Promise<{ status: number; body: string; headers: http.IncomingHttpHeaders }> {
    return new Promise((resolve, reject) => {
      http
        .get(url, { headers }, (res) => {
          let body = '';
          res.setEncoding('utf8').on('data', (d: string) => (body += d));
          res.on('end', () => resolve({ status: res.statusCode!, body, headers: res.headers }));
        })
        .on('error', reject);
    });
  }

  it('serves the page, frames, metrics and health on loopback without a token', async () => {
    start();
    const url = await server!.listen('127.0.0.1', 0);
    expect((await get(url)).body).toContain('<title>meshcc monitor</title>');
    expect((await get(`${url}style.css`)).status).toBe(200);
    const frame = JSON.parse((await get(`${url}frame`)).body) as MonitorFrame;
    expect(frame).toMatchObject({ full: true, self: 'me', counters: { self: { jobs: 1, remote: 1 } } });
    expect((await get(`${url}metrics`)).body).toContain('meshcc_jobs_total{route="remote",reason="peer"} 1');
    expect(await get(`${url}healthz`)).toMatchObject({ status: 503, body: 'not ready: no peer\n' });
    expect((await get(`${url}nothing`)).status).toBe(404);
  });

  it('pushes a full frame, then only what changed', async () => {
    const { jobs } = start();
    const url = await server!.listen('127.0.0.1', 0);
    const frames: MonitorFrame[] = [];
    const done = new Promise<void>((resolve, reject) => {
      const req = http.get(`${url}events`, (res) => {
        let buffered = '';
        res.setEncoding('utf8').on('data', (d: string) => {
          buffered += d;
          for (let end; (end = buffered.indexOf('\n\n')) >= 0; buffered = buffered.slice(end + 2)) frames.push(JSON.parse(buffered.slice(6, end)) as MonitorFrame);
          if (frames.length === 2) {
            req.destroy();
            resolve();
          }
        });
      });
      req.on('error', reject);
    });
    await new Promise((r) => setTimeout(r, 50));
    jobs.start('j9', 'late.c', 'me', '');
    await done;
    expect(frames[0]!.full).toBe(true);
    expect(frames[1]).toMatchObject({ full: false, jobs: [{ id: 'j9', src: 'late.c' }] });
  });

  it('beyond loopback answers only with the mesh key or the token', async () => {
    const { key } = start();
    const url = (await server!.listen('0.0.0.0', 0)).replace('0.0.0.0', '127.0.0.1');
    expect((await get(`${url}metrics`)).status).toBe(401);
    expect((await get(`${url}frame`, { authorization: 'Bearer 00' })).status).toBe(401);
    expect((await get(`${url}metrics`, { authorization: `Bearer ${monitorToken(key)}` })).status).toBe(200);
    expect((await get(`${url}frame?key=${Buffer.from(key).toString('hex')}`)).status).toBe(200);
    const viaToken = await get(`${url}?token=${monitorToken(key)}`);
    expect(viaToken.status).toBe(200);
    const cookie = String(viaToken.headers['set-cookie']).split(';')[0]!;
    expect((await get(`${url}frame`, { cookie })).status).toBe(200);
    // Probes need no key.
    expect((await get(`${url}healthz`)).status).toBe(503);
  });

  it('reads host:port the way users write it', () => {
    expect(parseHostPort('7625', 'x')).toEqual({ host: '127.0.0.1', port: 7625 });
    expect(parseHostPort('0.0.0.0:80', 'x')).toEqual({ host: '0.0.0.0', port: 80 });
    expect(parseHostPort('[::1]:9', 'x')).toEqual({ host: '::1', port: 9 });
    expect(() => parseHostPort('host:99999', 'MESHCC_HTTP')).toThrow(/MESHCC_HTTP must be host:port/);
  });
});
