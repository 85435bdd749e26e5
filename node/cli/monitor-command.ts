// `meshcc monitor` (where the live page is, and opening it) and `meshcc top` (the same view in
// a terminal, fed by the same frames).
import { spawn } from 'node:child_process';
import http from 'node:http';
import type { Command } from 'commander';
import { MeshccError } from '../../protocol/errors.js';
import { PROTOCOL_VERSION } from '../../protocol/messages.js';
import { parseHostPort, socketPath } from '../config.js';
import type { MonitorFrame } from '../monitor/frame.js';
import { query } from './query.js';
import { renderTop, TopState } from './top-view.js';

interface MonitorReply {
  urls: { url: string; open: boolean }[];
  token: string;
}

async function monitorOf(listen?: { host: string; port: number }): Promise<MonitorReply> {
  const reply = await query(socketPath(), { t: 'monitor', v: PROTOCOL_VERSION, ...(listen ? { listen } : {}) });
  return reply as unknown as MonitorReply;
}

function withToken(url: string, open: boolean, token: string): string {
  return open ? url : `${url}?token=${token}`;
}

/** Calls onFrame for every frame of the agent's event stream until the signal aborts. */
export function watchFrames(url: string, onFrame: (frame: MonitorFrame) => void, signal: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    const req = http.get(new URL('events', url), { signal }, (res) => {
      if (res.statusCode !== 200) {
        res.resume();
        return reject(new MeshccError('monitor-refused', `the agent's monitor answered ${res.statusCode}`));
      }
      let buffered = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => {
        buffered += chunk;
        let end: number;
        while ((end = buffered.indexOf('\n\n')) >= 0) {
          const event = buffered.slice(0, end);
          buffered = buffered.slice(end + 2);
          const data = event
            .split('\n')
            .filter((l) => l.startsWith('data: '))
            .map((l) => l.slice(6))
            .join('\n');
          if (data) onFrame(JSON.parse(data) as MonitorFrame);
        }
      });
      res.on('end', () => reject(new MeshccError('agent-gone', 'the agent closed the monitor stream')));
      res.on('error', reject);
    });
    req.on('error', (err) => (signal.aborted ? resolve() : reject(new MeshccError('agent-unreachable', `cannot reach the agent's monitor at ${url}: ${err.message}`))));
  });
}

async function top(): Promise<void> {
  const { urls } = await monitorOf();
  const url = urls.find((u) => u.open)?.url ?? urls[0]?.url;
  if (!url) throw new MeshccError('monitor-off', 'the agent serves no monitor (MESHCC_HTTP=off)');
  const out = process.stdout;
  const state = new TopState();
  const abort = new AbortController();
  const draw = () => out.write(`\x1b[H\x1b[2J${renderTop(state, out.columns || 120, out.rows || 40)}`);
  out.write('\x1b[?1049h\x1b[?25l');
  const restore = () => out.write('\x1b[?25h\x1b[?1049l');
  const finish = () => abort.abort();
  process.once('SIGINT', finish);
  process.once('SIGTERM', finish);
  out.on('resize', draw);
  if (process.stdin.isTTY) {
    process.stdin.setRawMode(true);
    process.stdin.resume();
    process.stdin.on('data', (key: Buffer) => {
      const k = key.toString();
      if (k === 'q' || k === '\x03' || k === '\x1b') finish();
    });
  }
  // Durations of running jobs grow between frames.
  const timer = setInterval(draw, 1000);
  draw();
  try {
    await watchFrames(
      url,
      (frame) => {
        state.apply(frame);
        draw();
      },
      abort.signal,
    );
  } finally {
    clearInterval(timer);
    restore();
    if (process.stdin.isTTY) process.stdin.setRawMode(false);
    process.stdin.pause();
  }
}

export function addMonitorCommands(program: Command): void {
  program
    .command('monitor')
    .description('print (and open in a browser) the address of the live monitor page the agent serves')
    .option('--listen <host:port>', 'serve it on this address too (beyond loopback the page needs the printed token)')
    .option('--no-open', 'only print the address')
    .action(async (opts: { listen?: string; open: boolean }) => {
      const listen = opts.listen ? parseHostPort(opts.listen, '--listen') : undefined;
      const { urls, token } = await monitorOf(listen);
      if (urls.length === 0) throw new MeshccError('monitor-off', 'the agent serves no monitor (MESHCC_HTTP=off)');
      for (const u of urls) process.stdout.write(`${withToken(u.url, u.open, token)}\n`);
      if (opts.open && (process.env.DISPLAY || process.env.WAYLAND_DISPLAY)) {
        const first = urls[0]!;
        spawn('xdg-open', [withToken(first.url, first.open, token)], { stdio: 'ignore', detached: true })
          .on('error', () => undefined)
          .unref();
      }
    });

  program
    .command('top')
    .description('the live mesh in this terminal: agents, slots, running jobs, counters (q quits)')
    .action(top);
}
