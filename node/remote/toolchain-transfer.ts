// Shipping toolchains between agents over /meshcc/toolchain/1 (protocol/toolchain-messages.ts).
// Serving: any agent streams a toolchain it holds, brotli at quality 1 (bench/toolchain: gcc's
// 82 MB tarball becomes 35 MB in 1 s; gzip -1 took 1.7 s for the same size), a few at a time.
// Fetching: a peer that lacks a job's toolchain obtains it once, whatever the number of jobs
// asking, from the sources it is given in turn (peers whose adverts list it, then the client),
// and installs it into its cache; the cache checks the sha256 and every entry as it unpacks.
import { performance } from 'node:perf_hooks';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import zlib from 'node:zlib';
import type { Connection, Stream } from '@libp2p/interface';
import pLimit from 'p-limit';
import { MeshccError } from '../../protocol/errors.js';
import { parseMessage, PROTOCOL_VERSION } from '../../protocol/messages.js';
import { HolderToFetcher, ToolchainChunk, ToolchainGet, TOOLCHAIN_LIMITS, TOOLCHAIN_PROTOCOL } from '../../protocol/toolchain-messages.js';
import type { Logger } from '../log.js';
import { FramedStream } from '../mesh/framed-stream.js';
import type { MeshNode } from '../mesh/node.js';
import type { Stats } from '../stats.js';
import type { ToolchainSupply } from '../toolchain-supply.js';

const SILENCE_MS = 30_000;
/** Tarballs compressed and sent at once: each costs a core for a second or two. */
const CONCURRENT_SERVES = 2;
/** zlib's default 16 KB chunks make a thread-pool round trip per 16 KB: 5000 per gcc tarball. */
const ZLIB_CHUNK_BYTES = 256 * 1024;

export interface ToolchainTransferOptions {
  node: MeshNode;
  supply: ToolchainSupply;
  stats: Stats;
  log: Logger;
  /** The toolchain cache changed (an install): the advert lists the new id. */
  onInstalled: () => void;
}

export class ToolchainTransfer {
  private readonly obtaining = new Map<string, Promise<boolean>>();
  private readonly serves = pLimit(CONCURRENT_SERVES);
  private readonly open = new Set<Stream>();

  constructor(private readonly options: ToolchainTransferOptions) {}

  async start(): Promise<void> {
    await this.options.node.libp2p.handle(TOOLCHAIN_PROTOCOL, (stream, connection) => void this.serve(stream, connection), { maxInboundStreams: 32 });
  }

  async stop(): Promise<void> {
    for (const stream of this.open) stream.abort(new MeshccError('stopped', 'the agent is stopping'));
    if (this.options.node.started) await this.options.node.libp2p.unhandle(TOOLCHAIN_PROTOCOL).catch(() => undefined);
  }

  /** Whether a fetch of this toolchain is under way. */
  isObtaining(id: string): boolean {
    return this.obtaining.has(id);
  }

  /**
   * Fetches and installs a toolchain unless that is under way already; resolves true once it
   * is installed, false when no source could provide it.
   */
  obtain(id: string, sources: string[]): Promise<boolean> {
    let running = this.obtaining.get(id);
    if (!running) {
      running = this.obtainFrom(id, [...new Set(sources)]).finally(() => this.obtaining.delete(id));
      this.obtaining.set(id, running);
    }
    return running;
  }

  private async obtainFrom(id: string, sources: string[]): Promise<boolean> {
    const { supply, stats, log } = this.options;
    for (const source of sources) {
      const started = performance.now();
      let received = 0;
      try {
        log.info({ toolchain: id.slice(0, 12), from: source }, 'fetching a toolchain');
        await supply.install(id, async () => {
          const fetched = await this.fetch(source, id);
          fetched.onBytes = (n) => (received += n);
          return fetched.stream;
        });
        const ms = performance.now() - started;
        stats.toolchainFetched(received, ms);
        log.info({ toolchain: id.slice(0, 12), from: source, compressedBytes: received, ms: Math.round(ms) }, 'toolchain fetched and installed');
        this.options.onInstalled();
        return true;
      } catch (err) {
        stats.toolchains.fetchFailures++;
        log.warn({ toolchain: id.slice(0, 12), from: source, err: (err as Error).message }, 'could not fetch a toolchain');
      }
    }
    return false;
  }

  /** The uncompressed tarball as it arrives from `peerId`. */
  private async fetch(peerId: string, id: string): Promise<{ stream: Readable; onBytes?: (n: number) => void }> {
    const stream = await this.options.node.openStream(peerId, TOOLCHAIN_PROTOCOL, { signal: AbortSignal.timeout(10_000) });
    const framed = new FramedStream(stream, TOOLCHAIN_LIMITS.frameBytes);
    try {
      await framed.send({ t: 'get', v: PROTOCOL_VERSION, id });
      const header = parseMessage(HolderToFetcher, await framed.receive(SILENCE_MS));
      if (header.t === 'refused') throw new MeshccError(`refused-${header.reason}`, header.message);
      if (header.id !== id) throw new MeshccError('bad-message', 'the holder sent another toolchain');
    } catch (err) {
      await framed.close();
      throw err;
    }
    const result: { stream: Readable; onBytes?: (n: number) => void } = { stream: zlib.createBrotliDecompress({ chunkSize: ZLIB_CHUNK_BYTES }) };
    async function* chunks(): AsyncGenerator<Uint8Array> {
      try {
        for (;;) {
          const chunk = parseMessage(ToolchainChunk, await framed.receive(SILENCE_MS));
          result.onBytes?.(chunk.data.length);
          yield chunk.data;
          if (chunk.last) return;
        }
      } finally {
        await framed.close();
      }
    }
    // pipeline destroys the decompressor with the error of any step, so the install sees it.
    pipeline(Readable.from(chunks()), result.stream as zlib.BrotliDecompress).catch(() => undefined);
    return result;
  }

  private async serve(stream: Stream, connection: Connection): Promise<void> {
    const { supply, stats, log } = this.options;
    const framed = new FramedStream(stream, TOOLCHAIN_LIMITS.frameBytes);
    const peer = connection.remotePeer.toString();
    this.open.add(stream);
    try {
      const get = parseMessage(ToolchainGet, await framed.receive(SILENCE_MS));
      if (get.v !== PROTOCOL_VERSION) {
        await framed.send({ t: 'refused', reason: 'version', message: `protocol ${get.v} is not ${PROTOCOL_VERSION}` });
        return;
      }
      await this.serves(async () => {
        const tarball = await supply.tarball(get.id);
        if (!tarball) {
          await framed.send({ t: 'refused', reason: 'unknown-toolchain', message: `no toolchain ${get.id.slice(0, 12)} here` });
          return;
        }
        try {
          const started = performance.now();
          await framed.send({ t: 'tarball', id: get.id, size: tarball.fileBytes, z: 'br' });
          const sent = await sendCompressed(tarball.stream, framed);
          stats.toolchainServed(sent);
          log.info({ toolchain: get.id.slice(0, 12), to: peer, compressedBytes: sent, ms: Math.round(performance.now() - started) }, 'served a toolchain');
        } finally {
          tarball.stream.destroy();
          tarball.done();
        }
      });
    } catch (err) {
      log.info({ peer, err: (err as Error).message }, 'could not serve a toolchain');
      framed.abort(err as Error);
    } finally {
      this.open.delete(stream);
      await framed.close();
    }
  }
}

/** Sends the stream brotli-compressed in chunk frames; returns the compressed bytes sent. */
async function sendCompressed(tar: Readable, framed: FramedStream): Promise<number> {
  const compressor = zlib.createBrotliCompress({ chunkSize: ZLIB_CHUNK_BYTES, params: { [zlib.constants.BROTLI_PARAM_QUALITY]: 1 } });
  const compressed = tar.pipe(compressor);
  tar.once('error', (err) => compressor.destroy(err));
  let pending: Buffer[] = [];
  let pendingBytes = 0;
  let sent = 0;
  const flush = async (last: boolean) => {
    const data = Buffer.concat(pending);
    pending = [];
    pendingBytes = 0;
    sent += data.length;
    await framed.send({ t: 'chunk', data, last });
  };
  for await (const piece of compressed as AsyncIterable<Buffer>) {
    for (let offset = 0; offset < piece.length; ) {
      const take = Math.min(piece.length - offset, TOOLCHAIN_LIMITS.chunkBytes - pendingBytes);
      pending.push(piece.subarray(offset, offset + take));
      pendingBytes += take;
      offset += take;
      if (pendingBytes === TOOLCHAIN_LIMITS.chunkBytes) await flush(false);
    }
  }
  await flush(true);
  return sent;
}
