// The peer side of the job sessions (job-session.ts): take a job offered by another agent of
// the mesh if a slot is free and the toolchain is here (when it is not: start fetching it and
// refuse this job), store the files that came with the offer, fetch only the store files this
// agent still lacks, run the job in the sandbox over the toolchain, and send back the result
// and every output file. Anything that stops the job from running
// faithfully is answered with `failed`, so the client can try elsewhere; the peer keeps serving.
import { performance } from 'node:perf_hooks';
import type { JobWatch } from '../monitor/monitor.js';
import { sourceOf } from '../monitor/job-log.js';
import { readFile } from 'node:fs/promises';
import type { Connection, Stream } from '@libp2p/interface';
import { packChunk, unpackChunk, unpackOffer } from '../../protocol/compression.js';
import { MeshccError, ProtocolError } from '../../protocol/errors.js';
import { decodeBody } from '../../protocol/framing.js';
import { InlineFiles, joinInputTree } from '../../protocol/input-tree.js';
import { PeerTables } from './offer-table.js';
import {
  BlobChunk,
  type Job,
  JobOffer,
  WarmOffer,
  WireJob,
  MESH_JOB_LIMITS,
  parseMessage,
  PROTOCOL_VERSION,
  type InputFile,
  type JobResult,
} from '../../protocol/messages.js';
import type { Executor } from '../executor/executor.js';
import type { ToolchainSupply } from '../toolchain-supply.js';
import type { Logger } from '../log.js';
import { FramedStream } from '../mesh/framed-stream.js';
import type { MeshNode } from '../mesh/node.js';
import { sha256, type Store } from '../store.js';
import { BlobIntake } from './blob-intake.js';
import { JOB_PROTOCOL, JobSession, MAX_JOBS_PER_SESSION, type JobChannel } from './job-session.js';

export const WARM_PROTOCOL = '/meshcc/warm/1';

/** How long a client may take to send the job, or a file we asked for. */
const CLIENT_SILENCE_MS = 30_000;
const FETCH_ROUNDS = 3;
/** Offer bodies kept as dictionaries: a client compresses against its last accepted offer, so a
 *  few per client agent served at once. */
const OFFER_BODIES_KEPT = 256;
const OFFER_BODIES_BYTES = 64 * 1024 * 1024;

/** The last `max` buffers added, by key, and at most OFFER_BODIES_BYTES of them. */
class RecentBodies {
  private readonly bodies = new Map<string, Buffer>();
  private bytes = 0;

  constructor(private readonly max: number) {}

  get(key: string): Buffer | undefined {
    const body = this.bodies.get(key);
    if (body) {
      this.bodies.delete(key);
      this.bodies.set(key, body);
    }
    return body;
  }

  add(key: string, body: Buffer): void {
    this.drop(key);
    this.bodies.set(key, body);
    this.bytes += body.length;
    while (this.bodies.size > this.max || this.bytes > OFFER_BODIES_BYTES) this.drop(this.bodies.keys().next().value!);
  }

  private drop(key: string): void {
    const body = this.bodies.get(key);
    if (!body) return;
    this.bodies.delete(key);
    this.bytes -= body.length;
  }
}

export interface JobServerOptions {
  node: MeshNode;
  store: Store;
  executor: Executor;
  /** The toolchains this agent can run jobs with (installed trees, leased per job). */
  toolchains: ToolchainSupply;
  /** Starts fetching a toolchain this agent lacks, from these peers in turn (at most one fetch per id). */
  obtainToolchain: (id: string, sources: string[]) => void;
  /** Peers whose adverts list a toolchain. */
  holdersOf: (id: string) => string[];
  log: Logger;
  /** Counts of what peers asked of us (for stats). */
  onServed?: (outcome: 'result' | 'failed' | 'refused', bytesIn: number, bytesOut: number) => void;
  /** Tells the monitor of a job run here for a peer. */
  watchServed?: (id: string, source: string, client: string) => JobWatch;
  /** A job ran on a toolchain another agent shipped here (or on one of this host's). */
  onToolchainUsed?: (shipped: boolean) => void;
}

export class JobServer {
  private readonly intake: BlobIntake;
  private readonly open = new Set<Stream>();
  private readonly sessions = new Set<JobSession>();
  /** The input tables clients share with this agent (inputs named by number in their offers). */
  private readonly tables: PeerTables;
  /** Recent offer bodies by sha256: the dictionaries clients compress their next offers with. */
  private readonly offerBodies = new RecentBodies(OFFER_BODIES_KEPT);

  constructor(private readonly options: JobServerOptions) {
    this.intake = new BlobIntake(options.store);
    this.tables = new PeerTables();
  }

  async start(): Promise<void> {
    await this.options.node.libp2p.handle(JOB_PROTOCOL, (stream, connection) => this.serveSession(stream, connection), {
      maxInboundStreams: 64,
    });
    await this.options.node.libp2p.handle(WARM_PROTOCOL, (stream, connection) => void this.warm(stream, connection), { maxInboundStreams: 4 });
  }

  /** A client sends the files its recent jobs used most, ahead of the jobs that will need them. */
  private async warm(stream: Stream, connection: Connection): Promise<void> {
    const framed = new FramedStream(stream, MESH_JOB_LIMITS.frameBytes);
    this.open.add(stream);
    const cancel = new AbortController();
    try {
      const offer = parseMessage(WarmOffer, await framed.receive(CLIENT_SILENCE_MS));
      const sizes = new Map(offer.files.filter(([hash]) => !this.options.store.has(hash)));
      await this.fetch(sizes, framed, cancel.signal);
      await framed.send({ t: 'warmed', fetched: sizes.size });
      this.options.log.info({ client: connection.remotePeer.toString(), files: offer.files.length, fetched: sizes.size }, 'warmed the store for a client');
    } catch (err) {
      this.options.log.debug({ err: (err as Error).message }, 'a warm-up ended early');
    } finally {
      this.open.delete(stream);
      cancel.abort();
      await framed.close();
    }
  }

  async stop(): Promise<void> {
    const stopped = new MeshccError('stopped', 'the agent is stopping');
    for (const stream of this.open) stream.abort(stopped);
    for (const session of this.sessions) session.abort(stopped);
    if (this.options.node.started) await this.options.node.libp2p.unhandle([JOB_PROTOCOL, WARM_PROTOCOL]).catch(() => undefined);
  }

  /** A client's session: every job it opens is served as it comes. */
  private serveSession(stream: Stream, connection: Connection): void {
    const client = connection.remotePeer.toString();
    const session = new JobSession(stream, {
      onFrame: () => this.options.node.heard(client),
      onJob: (channel) => {
        if (session.jobs > MAX_JOBS_PER_SESSION) {
          void channel.send({ t: 'refused', reason: 'busy', message: 'too many jobs on one session' }).catch(() => undefined);
          channel.close();
          return;
        }
        void this.serve(channel, connection);
      },
      onEnd: (ended) => {
        this.sessions.delete(ended);
        this.options.log.debug({ client: connection.remotePeer.toString() }, 'a job session ended');
        // The client closed its end or spoke garbage: close ours too, or the half-open stream
        // counts against the protocol's 64 inbound streams until the connection goes.
        ended.close();
      },
    });
    this.sessions.add(session);
  }

  private async serve(framed: JobChannel, connection: Connection): Promise<void> {
    const { executor, log } = this.options;
    const client = connection.remotePeer.toString();
    let outcome: 'result' | 'failed' | 'refused' = 'failed';
    let reserved = false;
    let watch: JobWatch | undefined;
    const started = performance.now();
    // The client cancelled the job, or the session ended.
    const cancel = framed.ended$;
    try {
      const offer = parseMessage(JobOffer, await framed.receive(CLIENT_SILENCE_MS));
      const refusal = this.refusal(offer, client);
      if (refusal) {
        outcome = 'refused';
        await framed.send({ t: 'refused', ...refusal });
        return;
      }
      reserved = executor.tryReserve();
      if (!reserved) {
        outcome = 'refused';
        await framed.send({ t: 'refused', reason: 'busy', message: 'every slot of this agent is taken' });
        return;
      }
      const decoded = await this.decodeJob(offer);
      if (!decoded) {
        outcome = 'refused';
        await framed.send({ t: 'refused', reason: 'unknown-dictionary', message: 'this agent no longer holds the offer the job was compressed against, or the input table it names' });
        return;
      }
      const { wire, tableInputs } = decoded;
      if (offer.blobs) await this.takeInline(offer.blobs);
      await this.fetch(new Map(wire.tree.map(([hash, size]) => [Buffer.from(hash).toString('hex'), size])), framed, cancel.signal);
      const job = await this.rebuild(wire, tableInputs);
      watch = this.options.watchServed?.(job.id, sourceOf(job.argv), client);
      await this.fetch(this.lacking(job.inputs), framed, cancel.signal);
      const toolchain = await this.options.toolchains.use(offer.toolchain);
      if (!toolchain) throw new MeshccError('unknown-toolchain', `toolchain ${offer.toolchain.slice(0, 12)} is no longer here`);
      let result;
      let compileMs = 0;
      try {
        // The toolchain's tree has the compiler at the path it was packed for; nothing else runs.
        job.compiler = toolchain.compiler;
        const compileStarted = performance.now();
        result = await executor.run(job, cancel.signal, toolchain.mounts);
        compileMs = performance.now() - compileStarted;
        this.options.onToolchainUsed?.(toolchain.shipped);
      } finally {
        toolchain.release();
      }
      // The slot is free once the compile is done: the client may already be offering the next job.
      executor.release();
      reserved = false;
      await sendResult(framed, result, compileMs, offer.quality);
      outcome = 'result';
      log.debug({ job: job.id, client, exit: result.exit }, 'ran a job for a peer');
    } catch (err) {
      const e = err as Error;
      const code = e instanceof MeshccError ? e.code : (e as NodeJS.ErrnoException).code === 'ENOSPC' ? 'disk-full' : 'internal-error';
      if (!cancel.signal.aborted) {
        log[e instanceof ProtocolError ? 'warn' : 'info']({ client, code, err: e.message }, 'could not run a job for a peer');
        await framed.send({ t: 'failed', code, message: e.message.slice(0, MESH_JOB_LIMITS.textBytes) }).catch(() => undefined);
      }
    } finally {
      if (reserved) executor.release();
      this.options.onServed?.(outcome, framed.bytesIn, framed.bytesOut);
      watch?.end('served', outcome, performance.now() - started);
      framed.close();
    }
  }

  private refusal(offer: JobOffer, client: string): { reason: string; message: string } | undefined {
    const { executor } = this.options;
    if (offer.v !== PROTOCOL_VERSION) return { reason: 'version', message: `protocol ${offer.v} is not ${PROTOCOL_VERSION}` };
    if (executor.unavailableReason) return { reason: 'no-executor', message: executor.unavailableReason };
    if (!this.options.toolchains.holds(offer.toolchain)) {
      // Fetched in the background: this job goes elsewhere, the next ones find it here.
      // Other holders first, so that the client's uplink is not the only source.
      const holders = this.options.holdersOf(offer.toolchain).filter((p) => p !== client);
      this.options.obtainToolchain(offer.toolchain, [...shuffled(holders), client]);
      return { reason: 'fetching-toolchain', message: `toolchain ${offer.toolchain.slice(0, 12)} is not here yet; fetching it` };
    }
    return undefined;
  }

  /** The offered job, or undefined when it was compressed against an offer we no longer hold.
   *  Every offer body is kept (in memory, the last few per client), as the dictionary of that
   *  client's next offers. */
  private async decodeJob(offer: JobOffer): Promise<{ wire: WireJob; tableInputs?: InputFile[] } | undefined> {
    let dictionary: Buffer | undefined;
    if (offer.dict) {
      dictionary = this.offerBodies.get(offer.dict);
      if (!dictionary) return undefined;
    }
    const body = await unpackOffer({ z: offer.z, data: offer.body }, MESH_JOB_LIMITS.jobBytes * 8, dictionary);
    const wire = parseMessage(WireJob, decodeBody(body));
    // Inputs named by number come back as inputs: no detour through the inline form.
    const tableInputs = wire.table ? this.tables.resolve(wire.table) : undefined;
    if (wire.table && !tableInputs) return undefined;
    this.offerBodies.add(sha256(body), body);
    return { wire, ...(tableInputs ? { tableInputs } : {}) };
  }

  /** Files an offer carries (whole): checked against their hashes, then stored. */
  private async takeInline(blobs: NonNullable<JobOffer['blobs']>): Promise<void> {
    for (const blob of blobs) {
      if (this.options.store.touch(blob.hash)) continue;
      const data = await unpackChunk(blob, MESH_JOB_LIMITS.inlineFileBytes);
      if (sha256(data) !== blob.hash) throw new ProtocolError('bad-blob', `a file sent with the offer is not ${blob.hash.slice(0, 12)}`);
      await this.options.executor.keep(blob.hash, data);
    }
  }

  /** The job with its input tree read back from the chunks now in the store. */
  private async rebuild(wire: WireJob, tableInputs?: InputFile[]): Promise<Job> {
    const { store } = this.options;
    const hashes = wire.tree.map(([hash]) => Buffer.from(hash).toString('hex'));
    store.pin(hashes);
    try {
      const chunks = await Promise.all(hashes.map((h) => readFile(store.pathOf(h))));
      const { tree: _tree, files, table: _table, ...job } = wire;
      const joined = joinInputTree(tableInputs ? [] : parseMessage(InlineFiles, files), chunks);
      // Not validated again as a whole (~1.2 ms a job for hundreds of files): the offer's own
      // fields were, as WireJob; the inputs, as table entries or by joinInputTree; the listings, as chunks.
      return { ...job, listings: joined.listings, inputs: tableInputs ?? joined.inputs };
    } finally {
      store.unpin(hashes);
    }
  }

  /** The inputs the store lacks, by hash, with their sizes: usually none of a job's hundreds,
   *  so the common case is one lookup per input and nothing built. */
  private lacking(inputs: InputFile[]): Map<string, number> {
    const lacking = new Map<string, number>();
    for (const f of inputs) {
      if (f.size > MESH_JOB_LIMITS.inputFileBytes) throw new ProtocolError('too-large', `an input of ${f.size} bytes exceeds the limit`);
      if (!this.options.store.has(f.hash)) lacking.set(f.hash, f.size);
    }
    return lacking;
  }

  /** Asks the client for the files (by hash, with sizes) missing here, in rounds while shared transfers fail. */
  private async fetch(sizes: Map<string, number>, framed: FramedStream | JobChannel, signal: AbortSignal): Promise<void> {
    for (const size of sizes.values()) {
      if (size > MESH_JOB_LIMITS.inputFileBytes) throw new ProtocolError('too-large', `an input of ${size} bytes exceeds the limit`);
    }
    for (let round = 0; round < FETCH_ROUNDS; round++) {
      const { mine, others } = this.intake.claim(sizes.keys());
      if (mine.length === 0 && others.length === 0) return;
      if (mine.length > 0) {
        try {
          await framed.send({ t: 'need', hashes: mine });
          await this.intake.receive(mine, sizes, async () => parseMessage(BlobChunk, await framed.receive(CLIENT_SILENCE_MS, signal)));
        } catch (err) {
          this.intake.abandon(mine, err as Error);
          throw err;
        }
      }
      await Promise.allSettled(others);
    }
    const missing = [...sizes.keys()].filter((h) => !this.options.store.has(h));
    if (missing.length) throw new MeshccError('inputs-unavailable', `${missing.length} input files could not be fetched`);
  }
}

function shuffled<T>(items: T[]): T[] {
  const copy = [...items];
  for (let i = copy.length - 1; i > 0; i--) {
    const j = Math.floor(Math.random() * (i + 1));
    [copy[i], copy[j]] = [copy[j]!, copy[i]!];
  }
  return copy;
}

async function sendResult(framed: JobChannel, result: JobResult, compileMs: number, quality?: number): Promise<void> {
  // The result and its outputs leave in as few writes as the batch size allows: a -g object
  // and its .d usually in the same one as the result.
  let batch: unknown[] = [
    {
      t: 'result',
      exit: result.exit,
      stdout: result.stdout,
      stderr: result.stderr,
      compileMs: Math.round(compileMs * 10) / 10,
      outputs: result.outputs.map((o) => ({ path: o.path, size: o.data.length, executable: o.executable })),
    },
  ];
  let batchBytes = result.stdout.length + result.stderr.length;
  for (const [index, output] of result.outputs.entries()) {
    const data = output.data;
    for (let offset = 0; offset === 0 || offset < data.length; offset += MESH_JOB_LIMITS.chunkBytes) {
      const end = Math.min(data.length, offset + MESH_JOB_LIMITS.chunkBytes);
      const packed = await packChunk(data.subarray(offset, end), quality);
      if (batchBytes + packed.data.length > MESH_JOB_LIMITS.chunkBytes && batch.length) {
        await framed.sendAll(batch);
        [batch, batchBytes] = [[], 0];
      }
      batch.push({ t: 'output', index, ...packed, last: end >= data.length });
      batchBytes += packed.data.length;
    }
  }
  if (batch.length) await framed.sendAll(batch);
}
