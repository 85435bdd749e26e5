// One long-lived membership stream per peer (/meshcc/swim/2): requests carry an id, answers
// the id they answer (`re`), either side may ask. A stream per message cost every probe a
// yamux stream opened and closed, a multistream-select negotiation and libp2p's peer-store
// write for the protocol at both ends: more than half of a probe's CPU (2000 pings over a kept
// connection: 1.75 ms of CPU each, both ends). A request without an answer in time ends the
// stream (the next one opens a new stream: a stuck stream must not make a live member look dead).
import { z } from 'zod';
import { MeshccError, ProtocolError } from '../../../protocol/errors.js';
import type { FramedStream } from '../framed-stream.js';

/** Requests served at once on one stream; more are dropped (the asker times out). */
const MAX_IN_FLIGHT = 64;

const Frame = z.object({ id: z.number().int().nonnegative().optional(), re: z.number().int().nonnegative().optional() });

export interface SwimChannelOptions {
  /** A request arrived: its answer (without `re`), or undefined for none. Throwing a
   *  ProtocolError or a ZodError ends the stream (a malformed message). */
  serve: (request: unknown, channel: SwimChannel) => Promise<object | undefined>;
  /** The stream ended (closed by either side, broken, or malformed input). */
  ended: (channel: SwimChannel, err: Error) => void;
}

export class SwimChannel {
  private nextId = 1;
  private readonly pending = new Map<number, { resolve: (answer: unknown) => void; reject: (err: Error) => void; timer: NodeJS.Timeout }>();
  private inFlight = 0;
  private closed = false;
  /** When a message last went either way (idle connections are closed by it). */
  lastUsed = Date.now();

  constructor(
    readonly peerId: string,
    private readonly framed: FramedStream,
    private readonly options: SwimChannelOptions,
  ) {
    void this.readLoop();
  }

  get open(): boolean {
    return !this.closed;
  }

  /** Sends a request; resolves with the raw answer (to be parsed by the caller). */
  request(message: object, timeoutMs: number): Promise<unknown> {
    if (this.closed) return Promise.reject(new MeshccError('stream-closed', 'the membership stream is closed'));
    const id = this.nextId++;
    this.lastUsed = Date.now();
    const answer = new Promise<unknown>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        const err = new MeshccError('timeout', `no answer within ${Math.round(timeoutMs)} ms`);
        reject(err);
        this.end(err);
      }, Math.max(1, timeoutMs));
      this.pending.set(id, { resolve, reject, timer });
    });
    this.framed.sendSoon({ ...message, id }).catch((err: Error) => this.end(err));
    return answer;
  }

  end(err: Error = new MeshccError('stream-closed', 'the membership stream closed')): void {
    if (this.closed) return;
    this.closed = true;
    for (const { reject, timer } of this.pending.values()) {
      clearTimeout(timer);
      reject(err);
    }
    this.pending.clear();
    this.framed.abort(err);
    this.options.ended(this, err);
  }

  private async readLoop(): Promise<void> {
    try {
      for (;;) {
        const { value } = await this.framed.read();
        this.lastUsed = Date.now();
        const frame = Frame.parse(value);
        if (frame.re !== undefined) {
          const waiting = this.pending.get(frame.re);
          if (!waiting) continue;
          this.pending.delete(frame.re);
          clearTimeout(waiting.timer);
          waiting.resolve(value);
          continue;
        }
        if (frame.id === undefined) throw new ProtocolError('bad-message', 'a membership message with neither id nor re');
        if (this.inFlight >= MAX_IN_FLIGHT) continue;
        this.inFlight++;
        const id = frame.id;
        this.options
          .serve(value, this)
          .then((answer) => (answer && !this.closed ? this.framed.sendSoon({ ...answer, re: id }) : undefined))
          .catch((err: Error) => this.end(err))
          .finally(() => this.inFlight--);
      }
    } catch (err) {
      this.end(err as Error);
    }
  }
}
