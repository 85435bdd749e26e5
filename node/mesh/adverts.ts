// /meshcc/advert/1: every agent keeps one long-lived stream to each connected peer and
// writes its advert there as frames, on change (throttled) and as a heartbeat. What peers
// send us lands in a PeerView; a peer silent for a few seconds is dropped.
import type { Connection, PeerId, Stream } from '@libp2p/interface';
import { MeshccError, ProtocolError } from '../../protocol/errors.js';
import { encodeFrame, FrameDecoder } from '../../protocol/framing.js';
import { ADVERT_LIMITS, Advert, parseMessage } from '../../protocol/messages.js';
import type { Logger } from '../log.js';
import type { MeshNode } from './node.js';
import { PeerView, type PeerViewEntry } from './view.js';

export const ADVERT_PROTOCOL = '/meshcc/advert/1';

export interface AdvertServiceOptions {
  node: MeshNode;
  /** This agent's current advert; called whenever one is sent. */
  localAdvert: () => Advert;
  log: Logger;
  /** Heartbeat period (ms). Default 1000. */
  heartbeatMs?: number;
  /** A peer silent this long is dropped (ms). Default 3000. */
  silenceMs?: number;
  /** At most one change-triggered send per this many ms. Default 250 (4/s). */
  minIntervalMs?: number;
  /** How often to measure each peer's rtt (ms). Default 5000. */
  rttEveryMs?: number;
  /** Close the connections of a peer dropped for silence. Default true. */
  hangUpSilent?: boolean;
}

interface Sender {
  peerId: PeerId;
  stream?: Stream;
  opening: boolean;
  waitingForDrain: boolean;
}

export class AdvertService {
  private readonly view_: PeerView;
  private readonly senders = new Map<string, Sender>();
  private readonly inbound = new Set<Stream>();
  private readonly lastRtt = new Map<string, number>();
  private heartbeat?: NodeJS.Timeout;
  private expiry?: NodeJS.Timeout;
  private throttled?: NodeJS.Timeout;
  private lastBroadcast = 0;
  private lastLocalError?: string;
  private running = false;
  private readonly heartbeatMs: number;
  private readonly minIntervalMs: number;
  private readonly rttEveryMs: number;
  private readonly hangUpSilent: boolean;
  private readonly node: MeshNode;
  private readonly log: Logger;

  constructor(private readonly options: AdvertServiceOptions) {
    this.node = options.node;
    this.log = options.log;
    this.heartbeatMs = options.heartbeatMs ?? 1000;
    this.minIntervalMs = options.minIntervalMs ?? 250;
    this.rttEveryMs = options.rttEveryMs ?? 5000;
    this.hangUpSilent = options.hangUpSilent ?? true;
    this.view_ = new PeerView(options.silenceMs ?? 3000);
  }

  /** The live view, with events (added, updated, removed) for other parts of the agent. */
  get peerView(): PeerView {
    return this.view_;
  }

  async start(): Promise<void> {
    if (this.running) return;
    const libp2p = this.node.libp2p;
    await libp2p.handle(ADVERT_PROTOCOL, (stream, connection) => this.onInbound(stream, connection), {
      maxInboundStreams: 4,
      maxOutboundStreams: 4,
    });
    this.running = true;
    libp2p.addEventListener('peer:connect', this.onConnect);
    libp2p.addEventListener('peer:disconnect', this.onDisconnect);
    for (const peer of this.node.connectedPeers()) this.openSender(peer);
    this.heartbeat = setInterval(() => this.tick(), this.heartbeatMs);
    this.heartbeat.unref();
    // Silence is checked more often than the heartbeat so a peer goes at ~silenceMs, not silenceMs + 1 beat.
    this.expiry = setInterval(() => this.expire(), Math.min(250, this.heartbeatMs));
    this.expiry.unref();
  }

  async stop(): Promise<void> {
    if (!this.running) return;
    this.running = false;
    clearInterval(this.heartbeat);
    clearInterval(this.expiry);
    clearTimeout(this.throttled);
    this.heartbeat = this.expiry = this.throttled = undefined;
    const libp2p = this.node.started ? this.node.libp2p : undefined;
    libp2p?.removeEventListener('peer:connect', this.onConnect);
    libp2p?.removeEventListener('peer:disconnect', this.onDisconnect);
    const stopped = new MeshccError('stopped', 'advert service stopped');
    for (const sender of this.senders.values()) sender.stream?.abort(stopped);
    for (const stream of this.inbound) stream.abort(stopped);
    this.senders.clear();
    this.inbound.clear();
    this.view_.clear();
    if (libp2p) await libp2p.unhandle(ADVERT_PROTOCOL).catch(() => {});
  }

  view(): PeerViewEntry[] {
    return this.view_.list();
  }

  /** The local advert changed: send it soon (at most every minIntervalMs). */
  notifyChanged(): void {
    if (!this.running || this.throttled) return;
    const wait = this.lastBroadcast + this.minIntervalMs - Date.now();
    if (wait <= 0) {
      this.broadcast();
      return;
    }
    this.throttled = setTimeout(() => {
      this.throttled = undefined;
      if (this.running) this.broadcast();
    }, wait);
    this.throttled.unref();
  }

  // ---- sending -----------------------------------------------------------------------

  private readonly onConnect = (evt: CustomEvent<PeerId>): void => {
    this.openSender(evt.detail);
  };

  private readonly onDisconnect = (evt: CustomEvent<PeerId>): void => {
    const id = evt.detail.toString();
    const sender = this.senders.get(id);
    this.senders.delete(id);
    sender?.stream?.abort(new MeshccError('disconnected', 'peer disconnected'));
    this.lastRtt.delete(id);
    if (this.view_.remove(id, 'disconnected')) this.log.info({ peer: id }, 'peer left the view (disconnected)');
  };

  private expire(): void {
    if (!this.running) return;
    for (const id of this.view_.expire()) {
      this.log.info({ peer: id }, 'peer left the view (silent)');
      if (this.hangUpSilent) {
        this.node.hangUp(id).catch((err: Error) => this.log.debug({ peer: id, err: err.message }, 'hang up failed'));
      }
    }
  }

  private tick(): void {
    if (!this.running) return;
    const now = Date.now();
    // Reopen streams that closed, for peers still connected.
    for (const peer of this.node.connectedPeers()) {
      if (!this.senders.has(peer.toString())) this.openSender(peer);
    }
    this.broadcast();
    for (const peer of this.node.connectedPeers()) {
      const id = peer.toString();
      if (now - (this.lastRtt.get(id) ?? 0) >= this.rttEveryMs) this.measureRtt(peer);
    }
  }

  private measureRtt(peer: PeerId): void {
    const id = peer.toString();
    this.lastRtt.set(id, Date.now());
    this.node
      .rtt(peer, { signal: AbortSignal.timeout(Math.max(this.heartbeatMs * 2, 2000)) })
      .then((ms) => this.view_.setRtt(id, ms))
      .catch((err: Error) => this.log.debug({ peer: id, err: err.message }, 'ping failed'));
  }

  private openSender(peer: PeerId): void {
    if (!this.running) return;
    const id = peer.toString();
    if (this.senders.has(id)) return;
    const sender: Sender = { peerId: peer, opening: true, waitingForDrain: false };
    this.senders.set(id, sender);
    this.node.libp2p
      .dialProtocol(peer, ADVERT_PROTOCOL, { signal: AbortSignal.timeout(5000) })
      .then((stream) => {
        if (!this.running || this.senders.get(id) !== sender) {
          stream.abort(new MeshccError('stopped', 'advert stream no longer wanted'));
          return;
        }
        sender.stream = stream;
        sender.opening = false;
        stream.addEventListener('drain', () => {
          sender.waitingForDrain = false;
        });
        stream.addEventListener('close', () => {
          if (this.senders.get(id) === sender) this.senders.delete(id);
        });
        // We never read from this stream; the peer never writes to it.
        let first: Buffer | undefined;
        try {
          first = encodeFrame(parseMessage(Advert, this.options.localAdvert()));
        } catch {
          // broadcast() reports it
        }
        if (first) this.sendTo(sender, first);
        if (!this.lastRtt.has(id)) this.measureRtt(peer);
      })
      .catch((err: Error) => {
        // Removing the sender lets the next heartbeat try again.
        if (this.senders.get(id) === sender) this.senders.delete(id);
        this.log.debug({ peer: id, err: err.message }, 'could not open the advert stream');
      });
  }

  private broadcast(): void {
    this.lastBroadcast = Date.now();
    if (this.senders.size === 0) return;
    let frame: Buffer;
    try {
      // Peers would reject an advert outside the limits: catch that here, once, not at every peer.
      frame = encodeFrame(parseMessage(Advert, this.options.localAdvert()));
      this.lastLocalError = undefined;
    } catch (err) {
      const message = (err as Error).message;
      if (message !== this.lastLocalError) this.log.warn({ err: message }, 'the local advert is invalid; not sending it');
      this.lastLocalError = message;
      return;
    }
    for (const sender of this.senders.values()) this.sendTo(sender, frame);
  }

  private sendTo(sender: Sender, frame: Uint8Array): void {
    const stream = sender.stream;
    if (!stream || stream.writeStatus !== 'writable') return;
    // An advert replaces the previous one: while the peer is not reading, skip rather than queue.
    if (sender.waitingForDrain) return;
    try {
      if (!stream.send(frame)) sender.waitingForDrain = true;
    } catch (err) {
      this.log.debug({ peer: sender.peerId.toString(), err: (err as Error).message }, 'advert send failed');
      stream.abort(err as Error);
    }
  }

  // ---- receiving ---------------------------------------------------------------------

  private async onInbound(stream: Stream, connection: Connection): Promise<void> {
    const peer = connection.remotePeer.toString();
    if (!this.running) {
      stream.abort(new MeshccError('stopped', 'advert service stopped'));
      return;
    }
    this.inbound.add(stream);
    const decoder = new FrameDecoder(ADVERT_LIMITS.frameBytes);
    // One log line per stream, however it ends.
    try {
      for await (const chunk of stream) {
        const bytes = chunk instanceof Uint8Array ? chunk : chunk.subarray();
        for (const value of decoder.push(Buffer.from(bytes))) {
          const advert = parseMessage(Advert, value);
          if (advert.peerId !== peer) {
            throw new ProtocolError('bad-message', `advert for ${advert.peerId} arrived from another peer`);
          }
          if (!this.running) return;
          const known = this.view_.has(peer);
          this.view_.update(peer, advert);
          if (!known) this.log.info({ peer, name: advert.nodeName }, 'peer joined the view');
        }
      }
      if (this.running) this.log.debug({ peer }, 'advert stream ended');
    } catch (err) {
      if (err instanceof ProtocolError) {
        this.log.warn({ peer, err: err.message }, 'malformed advert; closing that stream');
        stream.abort(err);
      } else if (this.running) {
        this.log.debug({ peer, err: (err as Error).message }, 'advert stream ended');
      }
    } finally {
      this.inbound.delete(stream);
      // The sender closed its end (or it broke): close ours, or the half-open stream counts
      // against the protocol's limit of inbound streams until the connection goes.
      if (stream.status === 'open') await stream.close().catch((err: Error) => stream.abort(err));
    }
  }
}
