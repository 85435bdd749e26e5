// The scheduler's side of /meshcc/schedule/1. Every agent handles the protocol; only the
// elected one places jobs (the others answer not-scheduler and the client looks again). Its
// view of the mesh is the members' cards with the loads they report to it on their report
// streams (node/scheduler/leadership.ts), its own included; it polls nobody.
import type { Connection, Stream } from '@libp2p/interface';
import { MeshccError } from '../../protocol/errors.js';
import { parseMessage, PROTOCOL_VERSION } from '../../protocol/messages.js';
import { ClientToScheduler, SCHEDULE_LIMITS, SCHEDULE_PROTOCOL } from '../../protocol/schedule-messages.js';
import type { Logger } from '../log.js';
import { FramedStream } from '../mesh/framed-stream.js';
import type { MeshNode } from '../mesh/node.js';
import type { PeerAdvert, PeerViewEntry } from '../mesh/view.js';
import { SchedulerCore, type Decision, type PeerInfo, type Placed, type PlacementRequest } from './core.js';

/** A request waits at most this long for a slot; then the client places it itself. */
const MAX_WAIT_MS = 30_000;
const IDLE_CLIENT_MS = 10 * 60_000;

export interface SchedulerServiceOptions {
  node: MeshNode;
  log: Logger;
  /** this agent's own card and load (its executor is a candidate like any peer's) */
  selfAdvert: () => PeerAdvert;
  peers: () => PeerViewEntry[];
  /** whether this agent is the elected scheduler, and who is */
  isScheduler: () => boolean;
  scheduler: () => { term: number; scheduler?: string };
}

export function peerInfo(advert: PeerAdvert, rttMs?: number): PeerInfo {
  return {
    id: advert.peerId,
    slots: advert.slots,
    slotsUsed: advert.slotsUsed,
    speed: advert.speed,
    load: advert.load,
    cores: advert.cores,
    arch: advert.arch,
    os: advert.os,
    toolchains: advert.toolchains,
    ...(rttMs !== undefined ? { rttMs } : {}),
  };
}

export class SchedulerService {
  private core?: SchedulerCore;
  private readonly streams = new Set<Stream>();
  private flushQueued = false;
  private timer?: NodeJS.Timeout;
  /** decisions made, for stats */
  readonly counts = { placed: 0, local: 0, none: 0 };

  constructor(private readonly options: SchedulerServiceOptions) {}

  async start(): Promise<void> {
    await this.options.node.libp2p.handle(SCHEDULE_PROTOCOL, (stream, connection) => void this.serve(stream, connection), { maxInboundStreams: 1024 });
    this.timer = setInterval(() => this.core?.expireWaiting(MAX_WAIT_MS), 1000);
    this.timer.unref();
  }

  async stop(): Promise<void> {
    clearInterval(this.timer);
    for (const stream of this.streams) stream.abort(new MeshccError('stopped', 'the agent is stopping'));
    if (this.options.node.started) await this.options.node.libp2p.unhandle(SCHEDULE_PROTOCOL).catch(() => undefined);
  }

  /** The election changed: start placing (with a fresh view) or stop. */
  electionChanged(): void {
    if (this.options.isScheduler()) {
      if (this.core) return;
      this.core = new SchedulerCore({ now: Date.now });
      this.refreshView();
      this.options.log.info('scheduler: placing jobs for the mesh');
    } else if (this.core) {
      this.core = undefined;
      this.options.log.info('scheduler: no longer placing jobs');
      // Clients with waiting requests see their stream close and ask the new scheduler.
      for (const stream of this.streams) stream.abort(new MeshccError('not-scheduler', 'this agent is no longer the scheduler'));
    }
  }

  /** The whole view again (on taking office). */
  refreshView(): void {
    const core = this.core;
    if (!core) return;
    core.upsertPeer(peerInfo(this.options.selfAdvert(), 0));
    for (const entry of this.options.peers()) core.upsertPeer(peerInfo(entry.advert, entry.rttMs));
  }

  /** One peer's advert arrived. */
  peerUpdated(entry: PeerViewEntry): void {
    this.core?.upsertPeer(peerInfo(entry.advert, entry.rttMs));
  }

  peerRemoved(peerId: string): void {
    this.core?.removePeer(peerId);
  }

  /** This agent's own capacity changed (its executor runs jobs too). */
  selfChanged(): void {
    this.core?.upsertPeer(peerInfo(this.options.selfAdvert(), 0));
  }

  /** A request from this agent itself (no stream to itself). */
  placeLocal(request: PlacementRequest): Promise<{ decision: Decision; done: (ms?: number, fetching?: boolean) => void } | undefined> {
    const core = this.core;
    if (!core) return Promise.resolve(undefined);
    return new Promise((resolve) => {
      core.request(request, (decision) => resolve({ decision, done: this.doneFor(core, request, decision) }));
      this.flushSoon();
    });
  }

  /** The placement core, while this agent is the scheduler (stats, tests). */
  get active(): SchedulerCore | undefined {
    return this.core;
  }

  private doneFor(core: SchedulerCore, request: PlacementRequest, decision: Decision): (ms?: number, fetching?: boolean) => void {
    this.count(decision);
    if (decision.where !== 'peer') return () => undefined;
    const placed: Placed = { peer: decision.peer, client: request.client, expectedMs: decision.expectedMs, workMs: decision.workMs };
    let reported = false;
    return (ms, fetching) => {
      if (reported) return;
      reported = true;
      if (fetching) core.peerFetching(decision.peer, request.toolchain.id);
      core.done(placed, ms);
    };
  }

  private count(decision: Decision): void {
    if (decision.where === 'peer') this.counts.placed++;
    else if (decision.where === 'local') this.counts.local++;
    else this.counts.none++;
  }

  /** Requests that arrive together are handed out together, largest first. */
  private flushSoon(): void {
    if (this.flushQueued) return;
    this.flushQueued = true;
    setImmediate(() => {
      this.flushQueued = false;
      this.core?.flush();
    });
  }

  private async serve(stream: Stream, connection: Connection): Promise<void> {
    const client = connection.remotePeer.toString();
    const framed = new FramedStream(stream, SCHEDULE_LIMITS.frameBytes);
    this.streams.add(stream);
    const open = new Map<number, (ms?: number, fetching?: boolean) => void>();
    const core = this.core;
    try {
      for (;;) {
        const message = parseMessage(ClientToScheduler, await framed.receive(IDLE_CLIENT_MS));
        if (message.t === 'done') {
          open.get(message.id)?.(message.ms, message.fetching);
          open.delete(message.id);
          continue;
        }
        if (message.v !== PROTOCOL_VERSION || !core || core !== this.core) {
          const { term, scheduler } = this.options.scheduler();
          await framed.send({ t: 'not-scheduler', term, scheduler: scheduler ?? '' });
          return;
        }
        const request: PlacementRequest = {
          client,
          toolchain: message.toolchain,
          estimateMs: message.estimateMs,
          localFree: message.localFree,
          localSpeed: message.localSpeed,
          skip: message.skip,
          ...(message.linkMs ? { linkMs: message.linkMs } : {}),
        };
        const id = message.id;
        core.request(request, (decision) => {
          open.set(id, this.doneFor(core, request, decision));
          this.options.log.debug({ client, peer: decision.where === 'peer' ? decision.peer : decision.where, reason: decision.reason }, 'scheduler placed a job');
          void framed
            .sendSoon({
              t: 'placed',
              id,
              where: decision.where,
              reason: decision.reason,
              ...(decision.where === 'peer' ? { peer: decision.peer, expectedMs: decision.expectedMs } : {}),
            })
            .catch(() => undefined);
        });
        this.flushSoon();
      }
    } catch (err) {
      if (!(err instanceof MeshccError && (err.code === 'stream-closed' || err.code === 'timeout'))) this.options.log.debug({ client, err: (err as Error).message }, 'schedule stream ended');
    } finally {
      this.streams.delete(stream);
      // Its placements no longer hold slots; its waiting requests are dropped.
      if (core && core === this.core) core.removeClient(client);
      await framed.close();
    }
  }
}
