// The agent's HTTP face: the monitor page and its live frames (server-sent events), the same
// frames for `meshcc top`, Prometheus /metrics, and /healthz for probes and service managers.
// On loopback anyone on this machine may look (like `meshcc stats`); on any other address
// every request but /healthz must carry the mesh key or the monitor token.
import { createHmac, timingSafeEqual } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import type { Logger } from '../log.js';
import type { Metrics } from './metrics.js';
import type { MonitorModel } from './model.js';

/** Frames go out at most this often, and only when something changed. */
export const FRAME_INTERVAL_MS = 250;
/** A watcher that stops reading is dropped once this much waits for it. */
const MAX_BUFFERED_BYTES = 8 << 20;

export interface MonitorServerOptions {
  model: MonitorModel;
  metrics: Metrics;
  health: () => { ready: boolean; reason: string };
  meshKey: Uint8Array;
  /** Directory of index.html and style.css, and of the page's compiled script. */
  pageDir: string;
  scriptDir: string;
  log: Logger;
}

const ASSETS: Record<string, { file: 'page' | 'script'; name: string; type: string }> = {
  '/': { file: 'page', name: 'index.html', type: 'text/html; charset=utf-8' },
  '/style.css': { file: 'page', name: 'style.css', type: 'text/css; charset=utf-8' },
  '/app.js': { file: 'script', name: 'app.js', type: 'text/javascript; charset=utf-8' },
};

/** The token that opens a monitor bound beyond loopback: derived from the mesh key, so any member can make it. */
export function monitorToken(meshKey: Uint8Array): string {
  return createHmac('sha256', meshKey).update('meshcc monitor v1').digest('hex').slice(0, 32);
}

export function isLoopbackHost(host: string): boolean {
  return host === 'localhost' || host === '::1' || /^127\./.test(host);
}

export class MonitorServer {
  private readonly servers: { server: http.Server; url: string; open: boolean }[] = [];
  private readonly watchers = new Set<http.ServerResponse>();
  private timer?: NodeJS.Timeout;
  private lastShape = '';
  private readonly secrets: Buffer[];

  constructor(private readonly options: MonitorServerOptions) {
    this.secrets = [Buffer.from(monitorToken(options.meshKey)), Buffer.from(Buffer.from(options.meshKey).toString('hex'))];
  }

  /** Listens on host:port (port 0: any free one); returns the page's address. */
  async listen(host: string, port: number): Promise<string> {
    const open = isLoopbackHost(host);
    const server = http.createServer((req, res) => void this.handle(req, res, open));
    server.keepAliveTimeout = 5_000;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, host, () => {
        server.off('error', reject);
        resolve();
      });
    });
    const address = server.address() as AddressInfo;
    const shown = address.family === 'IPv6' ? `[${address.address}]` : address.address;
    const url = `http://${shown}:${address.port}/`;
    this.servers.push({ server, url, open });
    return url;
  }

  urls(): { url: string; open: boolean }[] {
    return this.servers.map(({ url, open }) => ({ url, open }));
  }

  async stop(): Promise<void> {
    clearInterval(this.timer);
    this.timer = undefined;
    for (const res of this.watchers) res.end();
    this.watchers.clear();
    await Promise.all(
      this.servers.map(
        ({ server }) =>
          new Promise<void>((resolve) => {
            server.close(() => resolve());
            server.closeAllConnections();
          }),
      ),
    );
    this.servers.length = 0;
  }

  private async handle(req: http.IncomingMessage, res: http.ServerResponse, open: boolean): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://monitor');
    try {
      if (req.method !== 'GET' && req.method !== 'HEAD') return plain(res, 405, 'only GET is served here\n');
      if (url.pathname === '/healthz') {
        const health = this.options.health();
        return plain(res, health.ready ? 200 : 503, `${health.ready ? 'ready' : 'not ready'}: ${health.reason}\n`);
      }
      if (!open && !this.authorized(req, url, res)) return plain(res, 401, 'this monitor needs the mesh key or the token printed by `meshcc monitor` (?token=…)\n');
      if (url.pathname === '/events') return this.watch(res);
      if (url.pathname === '/frame') return json(res, this.fullFrame());
      if (url.pathname === '/metrics') {
        const text = await this.options.metrics.text();
        res.writeHead(200, { 'content-type': this.options.metrics.contentType });
        return void res.end(text);
      }
      if (url.pathname === '/favicon.ico') return void res.writeHead(204).end();
      const asset = ASSETS[url.pathname];
      if (!asset) return plain(res, 404, `nothing at ${url.pathname}\n`);
      const dir = asset.file === 'page' ? this.options.pageDir : this.options.scriptDir;
      const body = await readFile(path.join(dir, asset.name));
      res.writeHead(200, { 'content-type': asset.type, 'cache-control': 'no-cache' });
      res.end(body);
    } catch (err) {
      this.options.log.warn({ path: url.pathname, err: (err as Error).message }, 'monitor request failed');
      if (!res.headersSent) plain(res, 500, `${(err as Error).message}\n`);
      else res.destroy();
    }
  }

  private authorized(req: http.IncomingMessage, url: URL, res: http.ServerResponse): boolean {
    const fromQuery = url.searchParams.get('token') ?? url.searchParams.get('key');
    const bearer = /^Bearer\s+(\S+)$/i.exec(req.headers.authorization ?? '')?.[1];
    const cookie = /(?:^|;\s*)meshcc_token=([0-9a-f]+)/.exec(req.headers.cookie ?? '')?.[1];
    for (const candidate of [fromQuery, bearer, cookie]) {
      if (!candidate || !this.secrets.some((s) => s.length === candidate.length && timingSafeEqual(s, Buffer.from(candidate)))) continue;
      // The page's own requests (script, events) then carry it as a cookie.
      if (candidate === fromQuery) res.setHeader('set-cookie', `meshcc_token=${candidate}; HttpOnly; SameSite=Strict; Path=/`);
      return true;
    }
    return false;
  }

  private watch(res: http.ServerResponse): void {
    res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache', connection: 'keep-alive' });
    send(res, this.fullFrame());
    this.watchers.add(res);
    res.on('close', () => {
      this.watchers.delete(res);
      if (this.watchers.size === 0) {
        clearInterval(this.timer);
        this.timer = undefined;
      }
    });
    this.timer ??= setInterval(() => this.tick(), FRAME_INTERVAL_MS);
  }

  /** Those already watching get what changed so far first: a full frame takes the changes. */
  private fullFrame() {
    this.tick();
    return this.options.model.frame(true);
  }

  private tick(): void {
    if (this.watchers.size === 0) return;
    const frame = this.options.model.frame(false);
    const shape = JSON.stringify([frame.agents, frame.counters, frame.running, frame.build]);
    if (frame.jobs.length === 0 && shape === this.lastShape) return;
    this.lastShape = shape;
    const data = `data: ${JSON.stringify(frame)}\n\n`;
    for (const res of this.watchers) {
      if (res.writableLength > MAX_BUFFERED_BYTES) res.destroy();
      else res.write(data);
    }
  }
}

function send(res: http.ServerResponse, frame: unknown): void {
  res.write(`data: ${JSON.stringify(frame)}\n\n`);
}

function plain(res: http.ServerResponse, status: number, text: string): void {
  res.writeHead(status, { 'content-type': 'text/plain; charset=utf-8' });
  res.end(text);
}

function json(res: http.ServerResponse, value: unknown): void {
  res.writeHead(200, { 'content-type': 'application/json' });
  res.end(JSON.stringify(value));
}
