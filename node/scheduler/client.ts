// The client agent's side of /meshcc/schedule/1: asks the elected scheduler where a job goes
// over one long-lived stream. Whenever there is no scheduler, it cannot be reached, it
// answers "none" or the stream breaks, the answer is undefined and the caller places the job
// itself from its own adverts: builds keep going during an election.
import { MeshccError } from '../../protocol/errors.js';
import { parseMessage, PROTOCOL_VERSION } from '../../protocol/messages.js';
import { SCHEDULE_LIMITS, SCHEDULE_PROTOCOL, SchedulerToClient } from '../../protocol/schedule-messages.js';
import type { Logger } from '../log.js';
import { FramedStream } from '../mesh/framed-stream.js';
import type { MeshNode } from '../mesh/node.js';
import type { ToolchainRef } from '../toolchains.js';
import type { SchedulerService } from './service.js';

export interface ScheduledPlacement {
  /** a peer id (this agent's own when its executor is the best place) or 'local' */
  where: string;
  reason: string;
  /** report the end of the job (its time, or that the peer is fetching the toolchain) */
  done(ms?: number, fetching?: boolean): void;
}

export interface PlaceQuery {
  toolchain: ToolchainRef;
  estimateMs: number;
  localFree: number;
  localSpeed: number;
  skip: readonly string[];
  /** far peers' overhead per job, as this client measured it */
  linkMs?: Record<string, number>;
}

interface Connection {
  scheduler: string;
  framed: FramedStream;
  waiting: Map<number, (answer: { where: string; reason: string; peer?: string } | undefined) => void>;
  closed: boolean;
}

export interface SchedulerClientOptions {
  node: () => MeshNode | undefined;
  self: () => string | undefined;
  /** the scheduler this agent follows */
  scheduler: () => string | undefined;
  /** this agent's own scheduler service (used directly when this agent is the scheduler) */
  service: () => SchedulerService | undefined;
  log: Logger;
}

export class SchedulerClient {
  private connection?: Connection;
  private connecting?: Promise<Connection | undefined>;
  private nextId = 0;

  constructor(private readonly options: SchedulerClientOptions) {}

  /** Where the scheduler says the job goes; undefined when the caller must place it itself. */
  async place(query: PlaceQuery): Promise<ScheduledPlacement | undefined> {
    const scheduler = this.options.scheduler();
    const self = this.options.self();
    if (!scheduler || !self) return undefined;
    const skip = query.skip.slice(0, SCHEDULE_LIMITS.skipped);
    if (scheduler === self) {
      const local = await this.options.service()?.placeLocal({ client: self, ...query, skip });
      if (!local || local.decision.where === 'none') {
        local?.done();
        return undefined;
      }
      const d = local.decision;
      return { where: d.where === 'peer' ? d.peer : 'local', reason: d.reason, done: local.done };
    }
    const connection = await this.connect(scheduler);
    if (!connection) return undefined;
    const id = this.nextId++;
    const answer = new Promise<{ where: string; reason: string; peer?: string } | undefined>((resolve) => connection.waiting.set(id, resolve));
    try {
      await connection.framed.sendSoon({ t: 'place', v: PROTOCOL_VERSION, id, toolchain: query.toolchain, estimateMs: query.estimateMs, localFree: query.localFree, localSpeed: query.localSpeed, skip, ...(query.linkMs ? { linkMs: query.linkMs } : {}) });
    } catch {
      this.drop(connection);
      return undefined;
    }
    const placed = await answer;
    if (!placed || placed.where === 'none') {
      if (placed) void connection.framed.sendSoon({ t: 'done', id }).catch(() => undefined);
      return undefined;
    }
    let reported = false;
    return {
      where: placed.where === 'peer' ? placed.peer! : 'local',
      reason: placed.reason,
      done: (ms, fetching) => {
        if (reported || connection.closed) return;
        reported = true;
        void connection.framed.sendSoon({ t: 'done', id, ...(ms !== undefined ? { ms } : {}), ...(fetching ? { fetching } : {}) }).catch(() => undefined);
      },
    };
  }

  stop(): void {
    if (this.connection) this.drop(this.connection);
  }

  private connect(scheduler: string): Promise<Connection | undefined> {
    if (this.connection && !this.connection.closed && this.connection.scheduler === scheduler) return Promise.resolve(this.connection);
    if (this.connection && this.connection.scheduler !== scheduler) this.drop(this.connection);
    this.connecting ??= this.open(scheduler).finally(() => (this.connecting = undefined));
    return this.connecting;
  }

  private async open(scheduler: string): Promise<Connection | undefined> {
    const node = this.options.node();
    if (!node) return undefined;
    try {
      const stream = await node.openStream(scheduler, SCHEDULE_PROTOCOL, { signal: AbortSignal.timeout(3000) });
      const connection: Connection = { scheduler, framed: new FramedStream(stream, SCHEDULE_LIMITS.frameBytes), waiting: new Map(), closed: false };
      this.connection = connection;
      void this.read(connection);
      return connection;
    } catch (err) {
      this.options.log.debug({ scheduler, err: (err as Error).message }, 'cannot reach the scheduler: placing jobs here');
      return undefined;
    }
  }

  private async read(connection: Connection): Promise<void> {
    try {
      for (;;) {
        const message = parseMessage(SchedulerToClient, await connection.framed.receive(24 * 3600_000));
        if (message.t === 'not-scheduler') break;
        const resolve = connection.waiting.get(message.id);
        connection.waiting.delete(message.id);
        resolve?.({ where: message.where, reason: message.reason, ...(message.peer ? { peer: message.peer } : {}) });
      }
    } catch (err) {
      if (!(err instanceof MeshccError)) this.options.log.debug({ err: (err as Error).message }, 'schedule stream failed');
    }
    this.drop(connection);
  }

  private drop(connection: Connection): void {
    if (connection.closed) return;
    connection.closed = true;
    for (const resolve of connection.waiting.values()) resolve(undefined);
    connection.waiting.clear();
    if (this.connection === connection) this.connection = undefined;
    void connection.framed.close();
  }
}
