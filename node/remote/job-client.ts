// The client side of a job on a peer's job session (job-session.ts): offer one job (with the
// files no peer can hold yet), send exactly the store files it asks for, and read back the
// result and the output files. Every way this can go wrong ends in a RemoteFailure that says
// whether to try another peer, go local, or blame the peer.
import { readFile as readFileCallback } from 'node:fs';
import { open } from 'node:fs/promises';
import { promisify } from 'node:util';
import { NEAR_QUALITY, packChunk, packOffer, unpackChunk } from '../../protocol/compression.js';
import { MeshccError, ProtocolError } from '../../protocol/errors.js';
import { encodeBody } from '../../protocol/framing.js';
import { listingChunks, wireJob } from '../../protocol/input-tree.js';
import { ClientTable } from './offer-table.js';
import {
  MESH_JOB_LIMITS,
  OutputChunk,
  parseMessage,
  PeerToClient,
  PROTOCOL_VERSION,
  type Job,
  type JobResult,
  type OutputFile,
  type RemoteResult,
} from '../../protocol/messages.js';
import type { FramedStream } from '../mesh/framed-stream.js';
import type { MeshNode } from '../mesh/node.js';
import { inOutputDirs } from '../outputs.js';
import { sha256, type Store } from '../store.js';
import { JOB_PROTOCOL, type JobChannel, type JobSessions } from './job-session.js';
import type { FreshFile } from '../scan/walk-scan.js';

/** Why a remote attempt did not produce a result, and what to do about it. */
export class RemoteFailure extends MeshccError {
  constructor(
    code: string,
    message: string,
    /** 'elsewhere': another peer may do it; 'local': only a local compile will. */
    readonly next: 'elsewhere' | 'local',
    /** Whether this counts against the peer (backoff). A refusal does not. */
    readonly peerAtFault: boolean,
  ) {
    super(code, message);
  }
}

export interface RemoteAttempt {
  result: JobResult;
  bytesSent: number;
  bytesReceived: number;
  /** store files the job needs (inputs and directory listings), and those the peer lacked */
  files: number;
  filesSent: number;
  /** the compile's own time on the peer, when it says */
  compileMs?: number;
  /** bytes of the job offer (the rest of bytesSent is store files) */
  offerBytes: number;
}

export interface RunOnPeerOptions {
  node: MeshNode;
  store: Store;
  peerId: string;
  toolchain: string;
  job: Job;
  /** How long the peer may stay silent (the job's own timeout plus transfers). */
  silenceMs: number;
  signal?: AbortSignal;
  /** The last offer each peer took, by peer id: the dictionary for the next. */
  offers?: Map<string, { hash: string; body: Buffer }>;
  /** Brotli quality of what crosses the link both ways (higher over a slow link). */
  quality?: number;
  /** The input table this client shares with each peer, by peer id (inputs by number). */
  tables?: Map<string, ClientTable>;
  /** The job session with each peer. */
  sessions: JobSessions;
  /** Inputs hashed for the first time for this job, with their contents: sent with the offer. */
  fresh?: FreshFile[];
}

/** The callback API: no FileHandle (and its finaliser) per file. */
const readFile = promisify(readFileCallback);

/** Failure codes a peer reports that another peer would hit as well (limits are the same
 *  everywhere by default; a local compile has none). */
export const LOCAL_ONLY = new Set(['missing-input', 'output-too-large', 'resource-limit']);

export async function runOnPeer(options: RunOnPeerOptions): Promise<RemoteAttempt> {
  const { node, peerId, job, signal } = options;
  let framed: JobChannel | undefined;
  let pinned: string[] = [];
  try {
    framed = await options.sessions.open(() => node.openStream(peerId, JOB_PROTOCOL, { signal: AbortSignal.timeout(10_000) }), peerId, signal);
    const chunks = listingChunks(job.listings);
    for (const chunk of chunks) await options.store.put(chunk.hash, chunk.data);
    options.store.pin((pinned = chunks.map((c) => c.hash)));
    let table = options.tables?.get(peerId);
    if (options.tables && (!table || table.full)) options.tables.set(peerId, (table = new ClientTable()));
    const encoded = table?.encode(job.inputs);
    const raw = encodeBody(wireJob(job, chunks, encoded?.refs));
    const dictionary = options.offers?.get(peerId);
    const body = await packOffer(raw, dictionary?.body);
    const blobs = await inlineBlobs(options.fresh ?? [], options.quality);
    const offerBytesBefore = framed.bytesOut;
    await framed.send({
      t: 'job',
      v: PROTOCOL_VERSION,
      toolchain: options.toolchain,
      z: body.z,
      body: body.data,
      ...(dictionary && body.z ? { dict: dictionary.hash } : {}),
      ...(options.quality ? { quality: options.quality } : {}),
      ...(blobs.length ? { blobs } : {}),
    });
    const offerBytes = framed.bytesOut - offerBytesBefore;
    let offerTaken = false;
    const offerArrived = () => {
      // The peer decoded it and keeps it: the next offer to this peer may use it as dictionary,
      // and the table entries it defined are the peer's now.
      if (!offerTaken) {
        options.offers?.set(peerId, { hash: sha256(raw), body: raw });
        if (encoded) table?.acked(encoded.carried);
      }
      offerTaken = true;
    };
    // Built when a peer first asks for files: most jobs need none.
    let allowed: Set<string> | undefined;
    let filesSent = 0;
    for (;;) {
      const message = parseMessage(PeerToClient, await framed.receive(options.silenceMs, signal));
      switch (message.t) {
        case 'need':
          offerArrived();
          allowed ??= new Set([...job.inputs.map((f) => f.hash), ...chunks.map((c) => c.hash)]);
          for (const hash of message.hashes) {
            if (!allowed.has(hash)) throw new ProtocolError('bad-need', `the peer asked for ${hash.slice(0, 12)}, which is not an input of this job`);
          }
          await sendBlobs(framed, options.store, message.hashes, options.quality);
          filesSent += message.hashes.length;
          break;
        case 'refused':
          if (message.reason === 'unknown-dictionary') {
            options.offers?.delete(peerId);
            if (options.tables?.get(peerId) === table) options.tables?.delete(peerId);
          }
          throw new RemoteFailure(`refused-${message.reason}`, `the peer refused the job: ${message.message}`, 'elsewhere', false);
        case 'failed':
          throw new RemoteFailure(message.code, `the peer could not run the job: ${message.message}`, LOCAL_ONLY.has(message.code) ? 'local' : 'elsewhere', !LOCAL_ONLY.has(message.code));
        case 'result': {
          offerArrived();
          const outputs = await receiveOutputs(framed, job, message, options.silenceMs, signal);
          framed.close();
          const result = { id: job.id, exit: message.exit, stdout: Buffer.from(message.stdout), stderr: Buffer.from(message.stderr), outputs };
          return { result, bytesSent: framed.bytesOut, bytesReceived: framed.bytesIn, files: job.inputs.length + chunks.length, filesSent, compileMs: message.compileMs, offerBytes };
        }
        case 'output':
          throw new ProtocolError('unexpected-output', 'an output chunk arrived before the result');
      }
    }
  } catch (err) {
    // A refusal or a failure ended the job on both sides; anything else is cancelled there.
    if (err instanceof RemoteFailure) framed?.close();
    else framed?.abort(err as Error);
    throw asRemoteFailure(err, signal);
  } finally {
    options.store.unpin(pinned);
  }
}

function asRemoteFailure(err: unknown, signal?: AbortSignal): RemoteFailure {
  if (err instanceof RemoteFailure) return err;
  const e = err as Error;
  if (signal?.aborted) {
    const reason = signal.reason instanceof MeshccError ? signal.reason : new MeshccError('cancelled', 'cancelled');
    return new RemoteFailure(reason.code, reason.message, 'elsewhere', reason.code === 'peer-lost');
  }
  if (e instanceof ProtocolError) return new RemoteFailure('bad-answer', `the peer answered garbage: ${e.message}`, 'elsewhere', true);
  const code = e instanceof MeshccError ? e.code : 'connection-failed';
  return new RemoteFailure(code, `lost the peer: ${e.message}`, 'elsewhere', true);
}

/** The fresh files that fit in an offer, compressed. */
async function inlineBlobs(fresh: FreshFile[], quality?: number): Promise<{ hash: string; z: boolean; data: Uint8Array }[]> {
  const blobs: { hash: string; z: boolean; data: Uint8Array }[] = [];
  let bytes = 0;
  for (const file of fresh) {
    if (file.data.length > MESH_JOB_LIMITS.inlineFileBytes || blobs.length >= MESH_JOB_LIMITS.inlineBlobs) continue;
    const packed = file.packed && (quality ?? NEAR_QUALITY) === NEAR_QUALITY ? file.packed : await packChunk(file.data, quality);
    if (bytes + packed.data.length > MESH_JOB_LIMITS.inlineBlobBytes) break;
    blobs.push({ hash: file.hash, ...packed });
    bytes += packed.data.length;
  }
  return blobs;
}

/** Sends store files, small ones several to a write (each write costs a muxer frame, an
 *  encryption and a window update), large ones in chunks. */
export async function sendBlobs(framed: Pick<FramedStream, 'sendAll'>, store: Store, hashes: string[], quality?: number): Promise<void> {
  let batch: unknown[] = [];
  let batchBytes = 0;
  const flush = async () => {
    if (batch.length) await framed.sendAll(batch);
    [batch, batchBytes] = [[], 0];
  };
  const add = async (hash: string, chunk: Buffer, last: boolean) => {
    const packed = await packChunk(chunk, quality);
    if (batchBytes + packed.data.length > MESH_JOB_LIMITS.chunkBytes) await flush();
    batch.push({ t: 'blob', hash, ...packed, last });
    batchBytes += packed.data.length;
  };
  for (const hash of hashes) {
    const known = store.sizeOf(hash);
    if (known !== undefined && known <= MESH_JOB_LIMITS.chunkBytes) {
      // Most inputs are one chunk: read whole, without a file handle.
      const data = await readFile(store.pathOf(hash));
      if (data.length !== known) throw new MeshccError('store-changed', `store file ${hash.slice(0, 12)} changed while being sent`);
      await add(hash, data, true);
      continue;
    }
    const file = await open(store.pathOf(hash), 'r');
    try {
      const size = (await file.stat()).size;
      let offset = 0;
      do {
        const length = Math.min(MESH_JOB_LIMITS.chunkBytes, size - offset);
        const buffer = Buffer.allocUnsafe(length);
        const { bytesRead } = await file.read(buffer, 0, length, offset);
        if (bytesRead !== length) throw new MeshccError('store-changed', `store file ${hash.slice(0, 12)} shrank while being sent`);
        offset += length;
        await add(hash, buffer, offset >= size);
      } while (offset < size);
    } finally {
      await file.close();
    }
  }
  await flush();
}

async function receiveOutputs(
  framed: JobChannel,
  job: Job,
  result: RemoteResult,
  silenceMs: number,
  signal?: AbortSignal,
): Promise<OutputFile[]> {
  const allowed = inOutputDirs(job.outputs);
  const outputs: OutputFile[] = [];
  for (const [index, declared] of result.outputs.entries()) {
    if (!allowed(declared.path)) {
      throw new ProtocolError('bad-output', `the peer returned ${declared.path}, outside the job's output directories`);
    }
    const data = Buffer.allocUnsafe(declared.size);
    let filled = 0;
    for (let last = false; !last; ) {
      const chunk = parseMessage(OutputChunk, await framed.receive(silenceMs, signal));
      if (chunk.index !== index) throw new ProtocolError('bad-output', `output chunk ${chunk.index} arrived while ${index} was expected`);
      const bytes = await unpackChunk(chunk, Math.min(MESH_JOB_LIMITS.chunkBytes, declared.size - filled));
      bytes.copy(data, filled);
      filled += bytes.length;
      last = chunk.last;
    }
    if (filled !== declared.size) throw new ProtocolError('bad-output', `output ${declared.path} has ${filled} bytes, not ${declared.size}`);
    outputs.push({ path: declared.path, data, executable: declared.executable });
  }
  return outputs;
}
