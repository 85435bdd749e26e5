// The result cache across the mesh: serves this agent's entries to members that ask
// (/meshcc/cache/2) and takes entries members hand it, and asks other agents for theirs.
// Requests to a member share one long-lived session (node/remote/job-session.ts), as jobs do:
// a stream per request cost a fresh client 3.3 ms of its event loop a lookup (open, protocol,
// close, window updates: each a write of its own), more than the rest of a hit.
// Only members reach this handler at all (the mesh's private network and knock); a revoked
// member is refused, and what anyone sends is checked against its hashes before it is kept.
import type { Connection, Stream } from '@libp2p/interface';
import { JobSession, JobSessions, type JobChannel } from '../remote/job-session.js';
import { MeshccError } from '../../protocol/errors.js';
import { parseMessage } from '../../protocol/messages.js';
import type { MeshNode } from '../mesh/node.js';
import type { Logger } from '../log.js';
import { sha256 } from '../store.js';
import type { CacheEntry } from './entry.js';
import type { CachedResult, LocalEntries } from './local-entries.js';
import { CACHE_FRAME_BYTES, CACHE_PROTOCOL, CacheReply, CacheRequest } from './protocol.js';

export interface MeshCacheOptions {
  node: MeshNode;
  entries: LocalEntries;
  /** Whether a peer may read and write here now (a member, not revoked). */
  admitted: (peerId: string) => boolean;
  /** Whether entries written by this peer may be kept (not revoked, not caught lying). */
  trustedWriter: (peerId: string) => boolean;
  /** Takes and serves entries for others (only a read-write agent does). */
  holds: boolean;
  log: Logger;
  onServed: (hit: boolean, bytes: number) => void;
  onStored: (bytes: number) => void;
}

const ANSWER_MS = 10_000;
/** A member's session closes after this long without requests. */
const SESSION_IDLE_MS = 60_000;
/** The protocol's name goes out with the request (libp2p's optimistic selection): a lookup is one round trip, not two. */
const OPTIMISTIC = (signal: AbortSignal) => ({ signal, negotiateFully: false });
/** An owner that did not answer a lookup in time is not asked for this long (a hung member
 *  must not cost every compile the lookup timeout). */
const QUIET_AFTER_TIMEOUT_MS = 30_000;

export class MeshCache {
  private readonly serving = new Set<JobSession>();
  private readonly sessions = new JobSessions({ idleMs: SESSION_IDLE_MS, frameBytes: CACHE_FRAME_BYTES });
  private readonly silentUntil = new Map<string, number>();

  constructor(private readonly options: MeshCacheOptions) {}

  async start(): Promise<void> {
    await this.options.node.libp2p.handle(CACHE_PROTOCOL, (stream, connection) => this.serveSession(stream, connection), { maxInboundStreams: 64 });
  }

  async stop(): Promise<void> {
    this.sessions.stop();
    for (const session of this.serving) session.abort(new MeshccError('stopped', 'the agent is stopping'));
    if (this.options.node.started) await this.options.node.libp2p.unhandle(CACHE_PROTOCOL).catch(() => undefined);
  }

  /** The entry from `peerId`, its outputs checked against their hashes; undefined on a miss or any failure. */
  async get(peerId: string, key: string, timeoutMs: number): Promise<CachedResult | undefined> {
    if ((this.silentUntil.get(peerId) ?? 0) > Date.now()) return undefined;
    const reply = await this.ask(peerId, { t: 'get', key }, timeoutMs);
    if (reply?.t !== 'hit') return undefined;
    const { entry, data } = reply;
    if (entry.key !== key || data.length !== entry.outputs.length) return undefined;
    // Bytes altered on the holder (or on the way) are never used.
    for (let i = 0; i < data.length; i++) {
      if (data[i]!.length !== entry.outputs[i]!.size || sha256(data[i]!) !== entry.outputs[i]!.hash) {
        this.options.log.error({ peer: peerId, key: key.slice(0, 12), output: entry.outputs[i]!.path }, 'cache: an entry from a peer does not match its hashes; not used');
        return undefined;
      }
    }
    if (!this.options.trustedWriter(entry.writer)) return undefined;
    return { entry, outputs: entry.outputs.map((o, i) => ({ path: o.path, data: data[i]!, executable: o.executable })) };
  }

  /** Hands an entry to an owner; false when it was not stored. */
  async put(peerId: string, entry: CacheEntry, data: Uint8Array[], timeoutMs: number): Promise<boolean> {
    return (await this.ask(peerId, { t: 'put', entry, data }, timeoutMs))?.t === 'stored';
  }

  private async ask(peerId: string, request: CacheRequest, timeoutMs: number): Promise<CacheReply | undefined> {
    const signal = AbortSignal.timeout(timeoutMs);
    let channel: JobChannel | undefined;
    try {
      channel = await this.sessions.open(() => this.open(peerId, signal), peerId, signal);
      await channel.send(request);
      return parseMessage(CacheReply, await channel.receive(timeoutMs, signal));
    } catch (err) {
      this.options.log.debug({ peer: peerId, t: request.t, err: (err as Error).message }, 'cache: no answer from a peer');
      if (request.t === 'get' && signal.aborted) {
        this.silentUntil.set(peerId, Date.now() + QUIET_AFTER_TIMEOUT_MS);
        this.options.log.info({ peer: peerId, timeoutMs }, 'cache: a member did not answer a lookup in time; not asked for 30 s');
      }
      channel?.abort(err as Error);
      return undefined;
    } finally {
      channel?.close();
    }
  }

  /** A stream to a member: over an open connection, else dialled where it says it can be reached. */
  private open(peerId: string, signal: AbortSignal): Promise<Stream> {
    return this.options.node.openStream(peerId, CACHE_PROTOCOL, OPTIMISTIC(signal));
  }

  /** A member's session: each request on it is answered as it comes. */
  private serveSession(stream: Stream, connection: Connection): void {
    const session = new JobSession(stream, {
      opens: ['get', 'put'],
      frameBytes: CACHE_FRAME_BYTES,
      onJob: (channel) => void this.serve(channel, connection),
      onEnd: (ended) => {
        this.serving.delete(ended);
        ended.close();
      },
    });
    this.serving.add(session);
  }

  private async serve(channel: JobChannel, connection: Connection): Promise<void> {
    const { entries, log } = this.options;
    const peer = connection.remotePeer.toString();
    try {
      const request = parseMessage(CacheRequest, await channel.receive(ANSWER_MS));
      if (!this.options.admitted(peer)) {
        await channel.send({ t: 'refused', reason: 'not a member' });
        return;
      }
      if (request.t === 'get') {
        const found = this.options.holds ? await entries.get(request.key) : undefined;
        if (found && this.options.trustedWriter(found.entry.writer)) {
          const data = found.outputs.map((o) => o.data);
          await channel.send({ t: 'hit', entry: found.entry, data });
          this.options.onServed(true, data.reduce((n, d) => n + d.length, 0));
        } else {
          await channel.send({ t: 'miss' });
          this.options.onServed(false, 0);
        }
        return;
      }
      if (!this.options.holds || !this.options.trustedWriter(peer)) {
        await channel.send({ t: 'refused', reason: 'this agent keeps no entries from that writer' });
        return;
      }
      // The writer is who sent it, whatever the entry says.
      const entry: CacheEntry = { ...request.entry, writer: peer };
      await entries.put(entry, request.data);
      this.options.onStored(request.data.reduce((n, d) => n + d.length, 0));
      await channel.send({ t: 'stored' });
    } catch (err) {
      log.debug({ peer, err: (err as Error).message }, 'cache: a request failed');
      await channel.send({ t: 'refused', reason: (err as Error).message.slice(0, 200) }).catch(() => undefined);
    } finally {
      channel.close();
    }
  }
}
