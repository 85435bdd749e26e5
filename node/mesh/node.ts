// The libp2p node of an agent: tcp + noise + yamux, identify and ping, inside a private
// network defined by the mesh key. Nobody without the key gets a byte out of it.
import './polyfill.js';
import { performance } from 'node:perf_hooks';
import { noise } from '@chainsafe/libp2p-noise';
import { circuitRelayServer, circuitRelayTransport, type CircuitRelayService } from '@libp2p/circuit-relay-v2';
import { dcutr } from '@libp2p/dcutr';
import { yamux } from '@chainsafe/libp2p-yamux';
import { identify, type Identify } from '@libp2p/identify';
import type { AbortOptions, Connection, PeerId, PrivateKey, Stream } from '@libp2p/interface';
import { peerIdFromPrivateKey, peerIdFromString } from '@libp2p/peer-id';
import { ping, type Ping } from '@libp2p/ping';
import { tcp } from '@libp2p/tcp';
import { multiaddr, type Multiaddr } from '@multiformats/multiaddr';
import { createLibp2p, type Libp2p } from 'libp2p';
import { MeshccError } from '../../protocol/errors.js';
import type { Logger } from '../log.js';
import { meshId } from './keys.js';
import { meshProtector } from './protector.js';
import { isPublicIPv4 } from '../nat/addresses.js';
import { dialOrder } from './reachability.js';

export const DEFAULT_LISTEN = ['/ip4/0.0.0.0/tcp/0'];

export type MeshServices = { identify: Identify; ping: Ping; transports: TransportAccess; dcutr: unknown; relay?: CircuitRelayService };

/** libp2p gives its internal components only to services: this one keeps the transport manager,
 *  which is how a node starts listening on a relay it chose (there is no public API for it). */
interface TransportAccess {
  transportManager: { listen(addresses: Multiaddr[]): Promise<void>; getAddrs(): Multiaddr[] };
  addressManager: {
    addPublicAddressMapping(internalIp: string, internalPort: number, externalIp: string, externalPort?: number, protocol?: 'tcp'): void;
    removePublicAddressMapping(internalIp: string, internalPort: number, externalIp: string, externalPort?: number, protocol?: 'tcp'): void;
    confirmObservedAddr(address: Multiaddr, options?: { type?: 'transport' | 'ip-mapping'; ttl?: number }): void;
  };
}
function transportAccess() {
  return (components: TransportAccess): TransportAccess => ({ transportManager: components.transportManager, addressManager: components.addressManager });
}
/** How long libp2p keeps announcing an address we confirmed (renewed with every renewal of a mapping). */
const ANNOUNCED_MS = 24 * 3_600_000;
export type MeshLibp2p = Libp2p<MeshServices>;

export interface MeshNodeOptions {
  privateKey: PrivateKey;
  /** The 32-byte mesh key: only nodes with the same key can connect. */
  meshKey: Uint8Array;
  /** Multiaddrs to listen on; default ['/ip4/0.0.0.0/tcp/0']. */
  listen?: string[];
  log: Logger;
  /** How long an inbound connection may take to prove it knows the mesh key (ms). */
  knockTimeoutMs?: number;
  /** Offer circuit relay v2 to members (default true); a relay only ever serves members. */
  relay?: boolean;
  /** Peers refused at every connection, both ways (revoked members). */
  denied?: (peerId: string) => boolean;
}

/** Where a member says it can be reached (its card): libp2p's peer store holds only what
 *  identify heard, which behind a router is its private addresses, not the forwarded one. */
export type AddressBook = (peerId: string) => { addresses: string[]; reachable?: boolean } | undefined;

export interface OpenStreamOptions extends AbortOptions {
  runOnLimitedConnection?: boolean;
  /** Send the protocol's name with the first data instead of waiting for the other side to agree. */
  negotiateFully?: boolean;
  /** Addresses to dial when no connection is open (default, or when empty: the address book's). */
  addresses?: string[];
}

// ---- the node ----------------------------------------------------------------------

function toPeerId(peer: PeerId | string): PeerId {
  return typeof peer === 'string' ? peerIdFromString(peer) : peer;
}

export class MeshNode {
  readonly peerId: PeerId;
  /** Public name of the mesh this node belongs to (never the key). */
  readonly meshId: string;
  private node?: MeshLibp2p;
  private readonly log: Logger;

  constructor(private readonly options: MeshNodeOptions) {
    this.peerId = peerIdFromPrivateKey(options.privateKey);
    this.meshId = meshId(options.meshKey);
    this.log = options.log;
  }

  /** The underlying libp2p node (for protocol handlers); throws before start(). */
  get libp2p(): MeshLibp2p {
    if (!this.node) throw new MeshccError('mesh-not-started', 'the mesh node is not started');
    return this.node;
  }

  get started(): boolean {
    return this.node !== undefined;
  }

  async start(): Promise<void> {
    if (this.node) return;
    const { privateKey, meshKey, log } = this.options;
    const listen = this.options.listen ?? DEFAULT_LISTEN;
    const denied = this.options.denied ?? (() => false);
    try {
      this.node = await createLibp2p({
        privateKey,
        addresses: { listen },
        transports: [tcp(), circuitRelayTransport()],
        connectionEncrypters: [noise()],
        streamMuxers: [yamux()],
        connectionProtector: meshProtector(meshKey, this.options.knockTimeoutMs ?? 2000, log),
        // Every member keeps a connection to the scheduler, and after a failover all of them
        // connect to the new one at once (from one address when agents share a host or a NAT):
        // libp2p's defaults (300 connections, 5 new ones per second per host) would cut or stall
        // that. Idle connections are closed by the membership (membership/swim-service.ts).
        connectionManager: { maxConnections: 8192, inboundConnectionThreshold: 1000, maxIncomingPendingConnections: 512 },
        // libp2p would ping every connection every 10 s on a stream of its own and abort the
        // connection when a busy peer answers late (the scheduler's, say): whether a member is
        // alive is the membership's question (membership/), asked once per period, not per connection.
        connectionMonitor: { enabled: false },
        connectionGater: {
          denyInboundEncryptedConnection: (peer) => denied(peer.toString()),
          denyOutboundEncryptedConnection: (peer) => denied(peer.toString()),
          denyDialPeer: (peer) => denied(peer.toString()),
        },
        services: {
          identify: identify(),
          ping: ping(),
          transports: transportAccess(),
          dcutr: dcutr(),
          // Both ends of a relayed connection are members (the relay checks the mesh key like
          // anyone else), so no byte or time limit: whether jobs may cross a relay is decided
          // by placement, not by cutting connections.
          ...(this.options.relay === false ? {} : { relay: circuitRelayServer({ reservations: { applyDefaultLimit: false, maxReservations: 128 } }) }),
        },
      });
    } catch (err) {
      throw new MeshccError('mesh-start-failed', `the mesh node could not start: ${(err as Error).message}`);
    }
    // libp2p announces a public interface address only once something verified it (autonat,
    // which we do not run): an agent on a public machine (a VPS, a relay) gives it in its card,
    // identify and invitations from the start; members' dial-backs check it.
    const { transportManager, addressManager } = this.node.services.transports;
    for (const address of transportManager.getAddrs()) {
      if (isPublicIPv4(/^\/ip4\/([^/]+)\/tcp\//.exec(address.toString())?.[1] ?? '')) addressManager.confirmObservedAddr(address, { type: 'transport' });
    }
    this.node.addEventListener('peer:connect', (evt) => log.debug({ peer: evt.detail.toString() }, 'peer connected'));
    this.node.addEventListener('peer:disconnect', (evt) =>
      log.debug({ peer: evt.detail.toString() }, 'peer disconnected'),
    );
    log.info(
      { peerId: this.peerId.toString(), mesh: this.meshId, addresses: this.addresses() },
      'mesh node listening',
    );
  }

  async stop(): Promise<void> {
    const node = this.node;
    if (!node) return;
    this.node = undefined;
    await node.stop();
  }

  /** The multiaddrs this node listens on, each ending in /p2p/<peer id>. */
  addresses(): string[] {
    return this.node ? this.node.getMultiaddrs().map((a) => a.toString()) : [];
  }

  /** Announces (in identify, so peers dial us there by peer id) the address at which a router
   *  forwards to us by a port mapping; again at every renewal. */
  announceMapping(internalIp: string, internalPort: number, externalIp: string, externalPort: number): void {
    const addresses = this.libp2p.services.transports.addressManager;
    addresses.addPublicAddressMapping(internalIp, internalPort, externalIp, externalPort, 'tcp');
    addresses.confirmObservedAddr(multiaddr(`/ip4/${externalIp}/tcp/${externalPort}`), { type: 'ip-mapping', ttl: ANNOUNCED_MS });
  }

  withdrawMapping(internalIp: string, internalPort: number, externalIp: string, externalPort: number): void {
    this.node?.services.transports.addressManager.removePublicAddressMapping(internalIp, internalPort, externalIp, externalPort, 'tcp');
  }

  /** Connect to a peer by multiaddr (with or without /p2p/…); resolves with its peer id. */
  async dial(address: string | Multiaddr, options?: AbortOptions): Promise<PeerId> {
    const ma = typeof address === 'string' ? multiaddr(address) : address;
    const connection = await this.libp2p.dial(ma, options);
    return connection.remotePeer;
  }

  /** Opens a new connection even when one exists (a dial-back probe); the caller closes it. */
  async dialNew(address: string | Multiaddr, options?: AbortOptions): Promise<Connection> {
    const ma = typeof address === 'string' ? multiaddr(address) : address;
    return this.libp2p.dial(ma, { ...options, force: true });
  }

  /** Takes a reservation on a relay (its address with /p2p/<relay id>) and listens there. */
  async listenOnRelay(relayAddress: string): Promise<void> {
    await this.libp2p.services.transports.transportManager.listen([multiaddr(`${relayAddress}/p2p-circuit`)]);
  }

  /** Whether this node offers circuit relay v2 to members. */
  get relaying(): boolean {
    return this.node?.services.relay !== undefined;
  }

  /** Closes every connection to peers that are now refused (a member was revoked). */
  async dropDenied(): Promise<void> {
    const denied = this.options.denied;
    if (!this.node || !denied) return;
    await Promise.all(this.node.getPeers().filter((p) => denied(p.toString())).map((p) => this.node!.hangUp(p).catch(() => undefined)));
  }

  /** Peers with at least one open connection. */
  connectedPeers(): PeerId[] {
    return this.node ? this.node.getPeers() : [];
  }

  /** The ids of peers with at least one open connection, as strings: one look at the
   *  connections, for checks against many members. */
  connectedPeerIds(): Set<string> {
    return new Set(this.connectedPeers().map((p) => p.toString()));
  }

  /** How each connected peer is reached: directly, or only through a circuit relay. */
  links(): Map<string, 'direct' | 'relayed'> {
    const links = new Map<string, 'direct' | 'relayed'>();
    for (const connection of this.node?.getConnections() ?? []) {
      const peer = connection.remotePeer.toString();
      const relayed = connection.remoteAddr.toString().includes('/p2p-circuit');
      if (!relayed) links.set(peer, 'direct');
      else if (!links.has(peer)) links.set(peer, 'relayed');
    }
    return links;
  }

  /** Round-trip time to a peer in ms (one libp2p ping over the existing or a new connection). */
  async rtt(peer: PeerId | string, options?: AbortOptions): Promise<number> {
    const signal = options?.signal ?? AbortSignal.timeout(5000);
    return this.libp2p.services.ping.ping(toPeerId(peer), { signal });
  }

  /** Set by the membership: where members say they can be reached. */
  addressBook?: AddressBook;
  /** When each peer last sent us a frame of work (a job, its result): proof of life. */
  private readonly lastHeard = new Map<string, number>();

  /** A peer sent a frame on a stream that carries work: it is alive, however late its probes. */
  heard(peerId: string): void {
    this.lastHeard.set(peerId, performance.now());
  }

  /** Whether the peer sent us work within the last `ms`. */
  heardWithin(peerId: string, ms: number): boolean {
    const at = this.lastHeard.get(peerId);
    return at !== undefined && performance.now() - at <= ms;
  }

  /** A member left: its record goes (the map stays as large as the mesh at most). */
  forgetHeard(peerId: string): void {
    this.lastHeard.delete(peerId);
  }

  /** A new stream to a peer for one of our protocols. Over an open connection if there is one;
   *  else dialled at the addresses the member advertises (direct ones first unless it cannot be
   *  dialled), and only then at whatever libp2p's peer store knows. */
  async openStream(peer: PeerId | string, protocol: string, options: OpenStreamOptions = {}): Promise<Stream> {
    const id = toPeerId(peer);
    const { addresses: given, ...streamOptions } = options;
    // A relayed (limited) connection carries only what may run on one; for anything else
    // libp2p would dial again by the peer store, whose addresses behind a router lead nowhere.
    const usable = this.libp2p.getConnections(id).some((c) => c.status === 'open' && (c.limits === undefined || options.runOnLimitedConnection === true));
    if (usable) return this.libp2p.dialProtocol(id, protocol, streamOptions);
    const book = this.addressBook?.(id.toString());
    const peerSuffix = `/p2p/${id.toString()}`;
    const targets = dialOrder(given?.length ? given : (book?.addresses ?? []), book?.reachable)
      .filter((a) => options.runOnLimitedConnection === true || !a.includes('/p2p-circuit'))
      .map((a) => multiaddr(a.endsWith(peerSuffix) ? a : `${a}${peerSuffix}`));
    if (targets.length === 0) return this.libp2p.dialProtocol(id, protocol, streamOptions);
    let connection: Connection;
    try {
      connection = await this.libp2p.dial(targets, { signal: options.signal });
    } catch (err) {
      if (options.signal?.aborted) throw err;
      return this.libp2p.dialProtocol(id, protocol, streamOptions);
    }
    return connection.newStream(protocol, streamOptions);
  }

  /** Whether a connection to the peer is open now. */
  isConnected(peer: PeerId | string): boolean {
    return this.libp2p.getConnections(toPeerId(peer)).length > 0;
  }

  /** Close every connection to a peer. */
  async hangUp(peer: PeerId | string): Promise<void> {
    if (!this.node) return;
    await this.node.hangUp(toPeerId(peer));
  }
}

/** Create and start a mesh node. */
export async function createMeshNode(options: MeshNodeOptions): Promise<MeshNode> {
  const node = new MeshNode(options);
  await node.start();
  return node;
}
