// One stream between a client agent and a peer carries every job between them, as icecream
// and distcc keep one connection per host: a job costs no stream set-up, protocol negotiation
// or close, and everything all jobs send within one turn of the event loop leaves in one write
// (one muxer frame, one encryption, one system call, one window update on the other side).
// Measured on bench/throughput before this: a stream per job and a write per message were
// the largest share of both agents' event loops.
//
// Every message carries `j`, the job's number in the session (the client numbers its jobs).
// A job is a JobChannel: it sends and receives like a stream of its own. The client ends a job
// early with `cancel`; a session that breaks, or a peer that speaks garbage, ends every job on it.
import { MeshccError, ProtocolError } from '../../protocol/errors.js';
import { encodeFrame } from '../../protocol/framing.js';
import { MESH_JOB_LIMITS } from '../../protocol/messages.js';
import { FramedStream } from '../mesh/framed-stream.js';
import type { Stream } from '@libp2p/interface';

export const JOB_PROTOCOL = '/meshcc/job/2';

/** Jobs one session carries at once (beyond it a peer refuses at once; a client opens none). */
export const MAX_JOBS_PER_SESSION = 1024;

/** How a job that ended normally ends: one error for all (an Error's stack costs microseconds,
 *  and a cache session closes a channel per request). */
const JOB_OVER = new MeshccError('stream-closed', 'the job is over');

type Waiter = { resolve: (value: unknown) => void; reject: (err: Error) => void };

/** One job's messages within a session. */
export class JobChannel {
  private readonly queued: unknown[] = [];
  private waiter?: Waiter;
  private ended?: Error;
  /** Aborted when the other side cancels the job or the session ends. */
  readonly ended$ = new AbortController();
  bytesIn = 0;
  bytesOut = 0;

  constructor(
    readonly session: JobSession,
    readonly j: number,
  ) {}

  send(value: unknown): Promise<void> {
    return this.sendAll([value]);
  }

  sendAll(values: unknown[]): Promise<void> {
    if (this.ended) return Promise.reject(new MeshccError('stream-closed', `the job ended: ${this.ended.message}`));
    return this.session.enqueue(this, values);
  }

  /** The next message of this job; rejects on timeout, on abort, or when the job or session ends. */
  receive(timeoutMs: number, signal?: AbortSignal): Promise<unknown> {
    if (this.queued.length > 0) return Promise.resolve(this.queued.shift());
    if (this.ended) return Promise.reject(this.ended);
    if (signal?.aborted) return Promise.reject(signal.reason instanceof Error ? signal.reason : new MeshccError('aborted', 'aborted'));
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => settle(() => reject(new MeshccError('timeout', `no answer within ${Math.round(timeoutMs / 1000)} s`))), timeoutMs);
      const onAbort = () => settle(() => reject(signal?.reason instanceof Error ? signal.reason : new MeshccError('aborted', 'aborted')));
      const settle = (then: () => void) => {
        clearTimeout(timer);
        signal?.removeEventListener('abort', onAbort);
        this.waiter = undefined;
        then();
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      this.waiter = { resolve: (v) => settle(() => resolve(v)), reject: (e) => settle(() => reject(e)) };
    });
  }

  /** A message for this job arrived (from the session's reader). */
  deliver(value: unknown, bytes: number): void {
    this.bytesIn += bytes;
    if (this.waiter) this.waiter.resolve(value);
    else this.queued.push(value);
  }

  /** The job is over here (the other side knows: it answered or was answered). */
  close(): void {
    this.end(JOB_OVER);
  }

  /** Ends the job early and tells the other side. */
  abort(reason: Error): void {
    if (this.ended) return;
    this.session.cancel(this);
    this.end(reason);
  }

  /** The job ended for a reason outside it: the other side cancelled it, or the session broke. */
  end(reason: Error): void {
    if (this.ended) return;
    this.ended = reason;
    this.session.forget(this);
    this.waiter?.reject(reason);
    this.ended$.abort(reason);
  }
}

export interface JobSessionOptions {
  /** Message types that open a job on the serving side (default: `job`). */
  opens?: readonly string[];
  /** Largest frame either side may send (default: the job protocol's). */
  frameBytes?: number;
  /** Peer side: a message opening a job the session does not know yet. */
  onJob?: (channel: JobChannel) => void;
  /** The session ended (its stream closed or broke). */
  onEnd?: (session: JobSession) => void;
  /** A frame came in (the other side is alive, whatever its membership probes say). */
  onFrame?: () => void;
}

export class JobSession {
  private readonly framed: FramedStream;
  private readonly channels = new Map<number, JobChannel>();
  /** Message types that open a job here (JobSessionOptions.opens). */
  private readonly opens: ReadonlySet<string>;
  private nextJob = 0;
  private endedWith?: Error;
  /** When the last job of the session ended (for closing idle sessions). */
  idleSince = Date.now();

  constructor(
    readonly stream: Stream,
    private readonly options: JobSessionOptions = {},
  ) {
    this.framed = new FramedStream(stream, options.frameBytes ?? MESH_JOB_LIMITS.frameBytes);
    this.opens = new Set(options.opens ?? ['job']);
    void this.read();
  }

  get ended(): boolean {
    return this.endedWith !== undefined;
  }

  get jobs(): number {
    return this.channels.size;
  }

  /** Client side: a new job on this session. */
  open(): JobChannel {
    if (this.endedWith) throw new MeshccError('stream-closed', `the session ended: ${this.endedWith.message}`);
    const channel = new JobChannel(this, this.nextJob++);
    this.channels.set(channel.j, channel);
    return channel;
  }

  enqueue(channel: JobChannel, values: unknown[]): Promise<void> {
    if (this.endedWith) return Promise.reject(this.endedWith);
    const frames = values.map((value) => encodeFrame({ ...(value as object), j: channel.j }));
    for (const frame of frames) channel.bytesOut += frame.length;
    // Every job's messages of this turn of the event loop leave in one write.
    return this.framed.sendSoonEncoded(frames).catch((err: Error) => {
      const reason = err instanceof MeshccError ? err : new MeshccError('stream-closed', err.message);
      this.endAll(reason);
      throw reason;
    });
  }

  /** Tells the other side a job is cancelled (best effort: the session may be gone). */
  cancel(channel: JobChannel): void {
    if (this.channels.get(channel.j) !== channel || this.endedWith) return;
    void this.enqueue(channel, [{ t: 'cancel' }]).catch(() => undefined);
  }

  forget(channel: JobChannel): void {
    if (this.channels.get(channel.j) === channel) this.channels.delete(channel.j);
    if (this.channels.size === 0) this.idleSince = Date.now();
  }

  private async read(): Promise<void> {
    try {
      for (;;) {
        const { value, bytes } = await this.framed.read();
        this.options.onFrame?.();
        const j = (value as { j?: unknown } | null)?.j;
        if (typeof j !== 'number' || !Number.isSafeInteger(j) || j < 0) throw new ProtocolError('bad-message', 'a job session message without its job number');
        const t = (value as { t?: unknown }).t;
        const channel = this.channels.get(j);
        if (t === 'cancel') {
          channel?.end(new MeshccError('client-gone', 'the client cancelled the job'));
          continue;
        }
        if (channel) {
          channel.deliver(value, bytes);
          continue;
        }
        // A message for a job already over (cancelled meanwhile) is dropped; a new job opens a
        // channel. Offers arrive in any order: a client numbers a job before it has the offer ready.
        if (typeof t !== 'string' || !this.opens.has(t) || !this.options.onJob) continue;
        const opened = new JobChannel(this, j);
        this.channels.set(j, opened);
        opened.deliver(value, bytes);
        this.options.onJob(opened);
      }
    } catch (err) {
      this.endAll(err instanceof MeshccError ? err : new MeshccError('stream-closed', (err as Error).message));
    }
  }

  private endAll(reason: MeshccError): void {
    if (this.endedWith) return;
    this.endedWith = reason;
    for (const channel of [...this.channels.values()]) channel.end(reason);
    this.options.onEnd?.(this);
  }

  /** Ends the session and every job on it. */
  close(reason: Error = new MeshccError('closed', 'the session closed')): void {
    this.endAll(reason instanceof MeshccError ? reason : new MeshccError('closed', reason.message));
    void this.framed.close();
  }

  /** Breaks the session (a peer that spoke garbage, an agent that stops). */
  abort(reason: Error): void {
    this.endAll(reason instanceof MeshccError ? reason : new MeshccError('aborted', reason.message));
    this.framed.abort(reason);
  }
}

export interface JobSessionsOptions {
  /** A session without jobs this long is closed (default 60 s). */
  idleMs?: number;
  frameBytes?: number;
  /** Each frame a peer sends is its proof of life (MeshNode.heard). */
  heard?: (peerId: string) => void;
}

/** The client agent's sessions, one per peer, opened on a job's first need and closed when idle
 *  (also the result cache's requests, on a protocol of their own). */
export class JobSessions {
  private readonly sessions = new Map<string, JobSession>();
  private readonly opening = new Map<string, Promise<JobSession>>();
  private readonly sweeper: NodeJS.Timeout;

  private readonly idleMs: number;

  constructor(private readonly options: JobSessionsOptions = {}) {
    this.idleMs = options.idleMs ?? 60_000;
    this.sweeper = setInterval(() => this.closeIdle(), Math.max(1000, this.idleMs / 4));
    this.sweeper.unref();
  }

  /** A new job on the session with this peer (opening the session if there is none). */
  async open(openStream: () => Promise<Stream>, peerId: string, signal?: AbortSignal): Promise<JobChannel> {
    let session = this.sessions.get(peerId);
    if (!session || session.ended) {
      let opening = this.opening.get(peerId);
      if (!opening) {
        opening = openStream()
          .then((stream) => {
            const { frameBytes, heard } = this.options;
            const opened = new JobSession(stream, {
              ...(frameBytes !== undefined ? { frameBytes } : {}),
              ...(heard ? { onFrame: () => heard(peerId) } : {}),
              onEnd: (ended) => this.sessions.get(peerId) === ended && this.sessions.delete(peerId),
            });
            this.sessions.set(peerId, opened);
            return opened;
          })
          .finally(() => this.opening.delete(peerId));
        this.opening.set(peerId, opening);
      }
      session = await opening;
    }
    if (signal?.aborted) throw signal.reason instanceof Error ? signal.reason : new MeshccError('aborted', 'aborted');
    return session.open();
  }

  /** Ends the session with a peer (it left: its jobs fail over at once). */
  drop(peerId: string, reason: Error): void {
    this.sessions.get(peerId)?.abort(reason);
  }

  private closeIdle(): void {
    const now = Date.now();
    for (const [peerId, session] of this.sessions) {
      if (session.jobs === 0 && now - session.idleSince > this.idleMs) {
        this.sessions.delete(peerId);
        session.close();
      }
    }
  }

  stop(): void {
    clearInterval(this.sweeper);
    for (const session of this.sessions.values()) session.close();
    this.sessions.clear();
  }
}
