// LAN discovery over multicast DNS (RFC 6762/6763 style records via the multicast-dns package).
//
// Every agent announces `<label>._meshcc._tcp.local` under the PTR `_meshcc._tcp.local`, with an
// SRV record and a TXT record carrying `peer=<peer id>`, `mesh=<mesh id>` and one `addr=<multiaddr>`
// per listen address. The mesh id is a public identifier derived by the caller; no secret ever
// goes on the wire here. It answers queries for the service, queries at 0, 200 and 600 ms and
// then every `intervalMs`, and reports every responder of the same mesh (other than itself)
// through onPeer — on every response, so the caller can use repeated reports as liveness.
// Responders of other meshes are ignored (debug log). Malformed packets never throw.
//
// The socket binds 0.0.0.0:5353 and joins 224.0.0.251 on every IPv4 interface (multicast-dns's
// default). It needs a route for 224.0.0.0/4 (or a default route) to send.
import { createHash } from 'node:crypto';
import makeMdns from 'multicast-dns';
import type { Logger } from '../log.js';

export const MDNS_SERVICE = '_meshcc._tcp.local';

/** At most this many addr= entries are announced (keeps the packet well under one MTU). */
const MAX_ADDRS = 16;
/** Record TTL in seconds. */
const TTL = 120;

export interface LanPeer {
  peerId: string;
  addresses: string[];
}

export interface LanDiscoveryOptions {
  meshId: string;
  peerId: string;
  /** Current listen multiaddrs (read on every announcement). */
  addresses: () => string[];
  onPeer: (peer: LanPeer) => void;
  log: Logger;
  /** Steady-state query period; default 5000 ms. */
  intervalMs?: number;
  /** UDP port; default 5353. Tests on one host may use another. */
  port?: number;
}

type Mdns = ReturnType<typeof makeMdns>;
type AnyRecord = { name?: unknown; type?: unknown; data?: unknown };

/** A DNS label (≤ 63 bytes) naming this peer's instance. */
function instanceLabel(peerId: string): string {
  const clean = peerId.replace(/[^A-Za-z0-9-]/g, '-');
  if (clean.length > 0 && clean.length <= 63) return clean;
  return `p-${createHash('sha256').update(peerId).digest('hex').slice(0, 32)}`;
}

/** Port of the first `/tcp/<port>` multiaddr, else 0 (the SRV record is informational). */
function firstTcpPort(addrs: string[]): number {
  for (const a of addrs) {
    const m = /\/tcp\/(\d+)/.exec(a);
    if (m?.[1]) {
      const p = Number(m[1]);
      if (p > 0 && p < 65536) return p;
    }
  }
  return 0;
}

/** TXT data as strings: multicast-dns gives a Buffer or an array of Buffers/strings. */
function txtStrings(data: unknown): string[] {
  const parts = Array.isArray(data) ? data : [data];
  const out: string[] = [];
  for (const p of parts) {
    if (typeof p === 'string') out.push(p);
    else if (p instanceof Uint8Array) out.push(Buffer.from(p).toString('utf8'));
  }
  return out;
}

export function parseTxt(data: unknown): { peer?: string; mesh?: string; addrs: string[] } {
  const res: { peer?: string; mesh?: string; addrs: string[] } = { addrs: [] };
  for (const s of txtStrings(data)) {
    const eq = s.indexOf('=');
    if (eq <= 0) continue;
    const key = s.slice(0, eq);
    const value = s.slice(eq + 1);
    if (key === 'peer' && res.peer === undefined) res.peer = value;
    else if (key === 'mesh' && res.mesh === undefined) res.mesh = value;
    else if (key === 'addr' && value.startsWith('/')) res.addrs.push(value);
  }
  return res;
}

export class LanDiscovery {
  private readonly opts: LanDiscoveryOptions;
  private readonly intervalMs: number;
  private readonly instance: string;
  private readonly host: string;
  private mdns: Mdns | undefined;
  private timers: NodeJS.Timeout[] = [];
  private interval: NodeJS.Timeout | undefined;

  constructor(opts: LanDiscoveryOptions) {
    this.opts = opts;
    this.intervalMs = opts.intervalMs ?? 5000;
    const label = instanceLabel(opts.peerId);
    this.instance = `${label}.${MDNS_SERVICE}`;
    this.host = `${label}.local`;
  }

  get running(): boolean {
    return this.mdns !== undefined;
  }

  start(): void {
    if (this.mdns) return;
    const mdns = makeMdns(this.opts.port !== undefined ? { port: this.opts.port } : {});
    this.mdns = mdns;
    const log = this.opts.log;
    mdns.on('error', (err: Error) => log.warn({ err }, 'mdns socket error'));
    mdns.on('warning', (err: Error) => log.debug({ err: err.message }, 'mdns warning'));
    mdns.on('query', (packet: unknown) => {
      try {
        this.onQuery(packet);
      } catch (err) {
        log.debug({ err }, 'mdns: bad query ignored');
      }
    });
    mdns.on('response', (packet: unknown) => {
      try {
        this.onResponse(packet);
      } catch (err) {
        log.debug({ err }, 'mdns: bad response ignored');
      }
    });
    // Announce ourselves and ask for everyone, quickly at first, then periodically.
    const tick = (): void => {
      this.query();
    };
    this.announce();
    for (const delay of [0, 200, 600]) this.timers.push(setTimeout(tick, delay));
    this.timers.push(setTimeout(() => this.announce(), 1000));
    this.interval = setInterval(tick, this.intervalMs);
    this.interval.unref();
    for (const t of this.timers) t.unref();
    log.debug({ service: MDNS_SERVICE, instance: this.instance }, 'lan discovery started');
  }

  stop(): Promise<void> {
    const mdns = this.mdns;
    if (!mdns) return Promise.resolve();
    this.mdns = undefined;
    for (const t of this.timers) clearTimeout(t);
    this.timers = [];
    if (this.interval) clearInterval(this.interval);
    this.interval = undefined;
    return new Promise((resolve) => {
      try {
        mdns.destroy(() => resolve());
      } catch {
        resolve();
      }
    });
  }

  /** Sends a query for the service now (also done on the schedule). */
  query(): void {
    const mdns = this.mdns;
    if (!mdns) return;
    mdns.query({ questions: [{ name: MDNS_SERVICE, type: 'PTR' }] }, (err) => {
      if (err) this.opts.log.debug({ err: err.message }, 'mdns query not sent');
    });
  }

  private records(): { answers: unknown[]; additionals: unknown[] } {
    const addrs = this.opts.addresses().slice(0, MAX_ADDRS);
    const txt = [`peer=${this.opts.peerId}`, `mesh=${this.opts.meshId}`, ...addrs.map((a) => `addr=${a}`)].filter(
      (s) => Buffer.byteLength(s) <= 255,
    );
    return {
      answers: [{ name: MDNS_SERVICE, type: 'PTR', ttl: TTL, data: this.instance }],
      additionals: [
        {
          name: this.instance,
          type: 'SRV',
          ttl: TTL,
          data: { port: firstTcpPort(addrs), target: this.host, priority: 0, weight: 0 },
        },
        { name: this.instance, type: 'TXT', ttl: TTL, data: txt },
      ],
    };
  }

  private announce(): void {
    const mdns = this.mdns;
    if (!mdns) return;
    const { answers, additionals } = this.records();
    // The records are well-formed by construction; the casts only bridge dns-packet's typings.
    mdns.respond({ answers, additionals } as Parameters<Mdns['respond']>[0] & object, (err) => {
      if (err) this.opts.log.debug({ err: err.message }, 'mdns response not sent');
    });
  }

  private onQuery(packet: unknown): void {
    const questions = (packet as { questions?: unknown }).questions;
    if (!Array.isArray(questions)) return;
    const wanted = questions.some((q: AnyRecord) => {
      if (!q || typeof q.name !== 'string') return false;
      const name = q.name.toLowerCase();
      const type = q.type;
      if (name === MDNS_SERVICE) return type === 'PTR' || type === 'ANY';
      if (name === this.instance.toLowerCase()) return type === 'SRV' || type === 'TXT' || type === 'ANY';
      return false;
    });
    if (wanted) this.announce();
  }

  private onResponse(packet: unknown): void {
    const p = packet as { answers?: unknown; additionals?: unknown };
    const all: AnyRecord[] = [];
    for (const list of [p.answers, p.additionals]) {
      if (Array.isArray(list)) for (const r of list) if (r && typeof r === 'object') all.push(r as AnyRecord);
    }
    const suffix = `.${MDNS_SERVICE}`;
    for (const r of all) {
      if (r.type !== 'TXT' || typeof r.name !== 'string' || !r.name.toLowerCase().endsWith(suffix)) continue;
      const txt = parseTxt(r.data);
      if (!txt.peer || !txt.mesh) {
        this.opts.log.debug({ name: r.name }, 'mdns: meshcc record without peer/mesh ignored');
        continue;
      }
      if (txt.peer === this.opts.peerId) continue;
      if (txt.mesh !== this.opts.meshId) {
        this.opts.log.debug({ peerId: txt.peer, mesh: txt.mesh }, 'mdns: peer of another mesh ignored');
        continue;
      }
      try {
        this.opts.onPeer({ peerId: txt.peer, addresses: txt.addrs });
      } catch (err) {
        this.opts.log.warn({ err }, 'lan discovery onPeer threw');
      }
    }
  }
}
