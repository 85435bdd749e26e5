// The scheduler's end of /meshcc/report/1: every member that follows this agent keeps one
// stream here. Hellos are answered with a lease (this agent is the scheduler) or a redirect;
// loads land in the load table the placement core reads; leases go out to all at once, one
// encoded frame for everyone. Any agent serves the protocol: a candidate asked during a
// failover answers once it knows who the scheduler is.
import type { Connection, Stream } from '@libp2p/interface';
import { MeshccError } from '../../protocol/errors.js';
import { encodeFrame } from '../../protocol/framing.js';
import { parseMessage } from '../../protocol/messages.js';
import { REPORT_PROTOCOL, ReportFromMember, SWIM_LIMITS, type Leader, type LoadReport, type LoadRow, type MemberUpdate, type ReportFromMember as FromMember } from '../../protocol/swim-messages.js';
import type { Logger } from '../log.js';
import { FramedStream } from '../mesh/framed-stream.js';
import type { MeshNode } from '../mesh/node.js';

const HELLO_TIMEOUT_MS = 10_000;

export interface ReportServerOptions {
  node: MeshNode;
  log: Logger;
  /** What to answer a member's hello: a lease when this agent is (or just became) the scheduler. */
  answer: (hello: Extract<FromMember, { t: 'hello' }>, from: string) => Promise<{ lease: number } | { redirect: Leader }>;
  onLoad: (peerId: string, report: LoadReport) => void;
  /** A member's report stream ended (it may be gone). */
  onGone: (peerId: string) => void;
  /** Every member's last load (the answer to loads?). */
  rows: () => LoadRow[];
}

interface Follower {
  framed: FramedStream;
  stream: Stream;
}

export class ReportServer {
  private readonly followers = new Map<string, Follower>();
  private timer?: NodeJS.Timeout;
  private term = 0;
  private everyMs: () => number = () => 1000;

  constructor(private readonly options: ReportServerOptions) {}

  get followerCount(): number {
    return this.followers.size;
  }

  async start(): Promise<void> {
    await this.options.node.libp2p.handle(REPORT_PROTOCOL, (stream, connection) => void this.serve(stream, connection), { maxInboundStreams: 4, runOnLimitedConnection: true });
  }

  async stop(): Promise<void> {
    this.dismiss();
    if (this.options.node.started) await this.options.node.libp2p.unhandle(REPORT_PROTOCOL).catch(() => undefined);
  }

  /** Leases every `everyMs` to every follower, for `term`. */
  lead(term: number, everyMs: () => number): void {
    this.term = term;
    this.everyMs = everyMs;
    clearTimeout(this.timer);
    const tick = () => {
      const every = everyMs();
      const frame = encodeFrame({ t: 'lease', term: this.term, everyMs: every });
      for (const follower of this.followers.values()) follower.framed.sendSoonEncoded([frame]).catch(() => undefined);
      this.timer = setTimeout(tick, every);
      this.timer.unref();
    };
    tick();
  }

  /** Passes news to every follower but the one it concerns (one encoded frame for all). */
  broadcast(updates: MemberUpdate[]): void {
    if (updates.length === 0 || this.followers.size === 0) return;
    const frame = encodeFrame({ t: 'news', updates });
    const about = new Set(updates.map((u) => u.peerId));
    for (const [peer, follower] of this.followers) if (!about.has(peer) || updates.length > 1) follower.framed.sendSoonEncoded([frame]).catch(() => undefined);
  }

  /** No longer the scheduler: every follower's stream closes, and they look again. */
  dismiss(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    for (const follower of this.followers.values()) follower.stream.abort(new MeshccError('not-scheduler', 'no longer the scheduler'));
    this.followers.clear();
  }

  private async serve(stream: Stream, connection: Connection): Promise<void> {
    const from = connection.remotePeer.toString();
    const framed = new FramedStream(stream, SWIM_LIMITS.frameBytes);
    let registered: Follower | undefined;
    try {
      const hello = parseMessage(ReportFromMember, await framed.receive(HELLO_TIMEOUT_MS));
      if (hello.t !== 'hello') throw new MeshccError('bad-message', 'a report stream starts with hello');
      const decision = await this.options.answer(hello, from);
      if ('redirect' in decision) {
        await framed.send({ t: 'redirect', leader: decision.redirect });
        return;
      }
      registered = { framed, stream };
      this.followers.get(from)?.stream.abort(new MeshccError('replaced', 'a newer report stream'));
      this.followers.set(from, registered);
      await framed.send({ t: 'lease', term: decision.lease, everyMs: this.everyMs() });
      for (;;) {
        const { value } = await framed.read();
        const message = parseMessage(ReportFromMember, value);
        if (message.t === 'load') {
          const { t: _t, ...report } = message;
          this.options.onLoad(from, report);
        } else if (message.t === 'loads?') {
          framed.sendSoon({ t: 'loads', id: message.id, rows: this.options.rows() }).catch(() => undefined);
        }
      }
    } catch (err) {
      if (!(err instanceof MeshccError && (err.code === 'stream-closed' || err.code === 'timeout'))) this.options.log.debug({ peer: from, err: (err as Error).message }, 'report stream ended');
      framed.abort(err as Error);
    } finally {
      if (registered && this.followers.get(from) === registered) {
        this.followers.delete(from);
        this.options.onGone(from);
      }
      await framed.close();
    }
  }
}
