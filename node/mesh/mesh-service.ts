// The agent's place in the mesh: its libp2p node (identity and mesh key from MESHCC_HOME),
// its adverts and view of the peers, LAN discovery, and the peers named by address.
// Started and stopped by the composition root (node/agent.ts).
import os from 'node:os';
import { MeshccError } from '../../protocol/errors.js';
import { ADVERT_LIMITS, PROTOCOL_VERSION, type Advert } from '../../protocol/messages.js';
import type { Logger } from '../log.js';
import { AdvertService } from './adverts.js';
import { LanDiscovery } from './discovery.js';
import { DnsPeers } from './dns-peers.js';
import { peerIdFromPrivateKey } from '@libp2p/peer-id';
import type { PrivateKey } from '@libp2p/interface';
import { loadOrCreateIdentity, loadOrCreateMeshKey, meshId } from './keys.js';
import { createMeshNode, type MeshNode } from './node.js';
import { createInvitation, type Invitation } from './invite-token.js';
import { MemberExchange } from './member-exchange.js';
import { Membership } from './membership.js';
import { MemberLinks } from './member-links.js';
import { Reachability } from './reachability.js';
import { Election, type ElectionState } from '../scheduler/election.js';

const ADDRESS_CACHE_MS = 5_000;
import type { PeerView, PeerViewEntry } from './view.js';

export interface MeshOptions {
  home: string;
  listen: string[];
  /** Multiaddrs (with /p2p/…) of peers to keep connected to, for networks without multicast. */
  staticPeers: string[];
  mdns: boolean;
  /** A DNS name (NAME[:PORT]) whose addresses are agents to dial, looked up again and again. */
  peersDns?: string;
  speed: number;
  /** The name other agents show for this one (default: the host name). */
  name?: string;
  log: Logger;
  /** What this agent offers right now (read for every advert: keep it cheap). */
  capacity: () => { slots: number; slotsUsed: number; toolchains: string[]; unavailable?: string };
  /** What this agent has done, for the mesh-wide counters of monitors (read for every advert). */
  activity?: () => Advert['activity'];
  /** The scheduler or the term changed. */
  onScheduler?: (state: ElectionState) => void;
  /** Offer circuit relay v2 to members (default true). */
  relay?: boolean;
  /** Send jobs to peers reached only through a relay (default false: relays are for signalling). */
  relayedJobs?: boolean;
}

/** How often the election looks again without news (leases run out between adverts). */
const ELECTION_TICK_MS = 250;

/** One row of `meshcc status`: the stable shape scripts rely on (`--json`). */
export interface AgentStatus {
  name: string;
  peerId: string;
  self: boolean;
  addresses: string[];
  cores: number;
  slots: number;
  slotsUsed: number;
  load: number;
  speed: number;
  toolchains: string[];
  rttMs: number | null;
  role: 'member' | 'scheduler';
  /** How this agent reaches it: itself, a direct connection, only a relayed one, or none right now. */
  link: 'self' | 'direct' | 'relayed' | 'none';
  /** Whether members could dial it back (undefined while unknown). */
  reachable?: boolean;
  /** What it has done since it started (its own compiles, run on peers, run for peers, bytes), as it advertised. */
  activity?: Advert['activity'];
  os: string;
  arch: string;
  libc: string;
  freeMemoryBytes: number;
  /** Why the agent offers no slots, when it offers none because it cannot sandbox. */
  executorUnavailable?: string;
}

const REDIAL_MS = 2000;
const MAX_ADVERTISED_ADDRESSES = 16;

function libcName(): string {
  const header = (process.report?.getReport() as { header?: { glibcVersionRuntime?: string } } | undefined)?.header;
  return header?.glibcVersionRuntime ? `glibc ${header.glibcVersionRuntime}` : 'unknown';
}

function isLoopback(address: string): boolean {
  return address.startsWith('/ip4/127.') || address.startsWith('/ip6/::1/');
}

export class MeshService {
  private node?: MeshNode;
  private addressCache?: { at: number; addresses: string[] };
  private adverts?: AdvertService;
  private discovery?: LanDiscovery;
  private dnsPeers?: DnsPeers;
  private redial?: NodeJS.Timeout;
  private readonly dialing = new Set<string>();
  private readonly libc = libcName();
  private readonly startedAt = Date.now();
  private election?: Election;
  private electionTimer?: NodeJS.Timeout;
  private identity?: PrivateKey;
  private meshKey?: Uint8Array;
  private membership_?: Membership;
  private exchange?: MemberExchange;
  private reachability?: Reachability;
  private memberLinks?: MemberLinks;

  constructor(private readonly options: MeshOptions) {}

  get membership(): Membership | undefined {
    return this.membership_;
  }

  get peerId(): string | undefined {
    return this.node?.peerId.toString();
  }

  /** The libp2p node, once started (job protocols run over it). */
  get meshNode(): MeshNode | undefined {
    return this.node;
  }

  /** The live view of peers, with added/updated/removed events; undefined before start. */
  get peerView(): PeerView | undefined {
    return this.adverts?.peerView;
  }

  peers(): PeerViewEntry[] {
    return this.adverts?.view() ?? [];
  }

  async start(): Promise<void> {
    const { home, listen, log } = this.options;
    const [privateKey, meshKey] = await Promise.all([loadOrCreateIdentity(home), loadOrCreateMeshKey(home)]);
    this.identity = privateKey;
    this.meshKey = meshKey;
    const membership = (this.membership_ = await Membership.load(home, meshId(meshKey), peerIdFromPrivateKey(privateKey).toString(), log));
    this.node = await createMeshNode({ privateKey, meshKey, listen, log, relay: this.options.relay, denied: (peer) => membership.isRevoked(peer) });
    this.reachability = new Reachability({ node: this.node, log, onChange: () => this.changed() });
    await this.reachability.start();
    this.exchange = new MemberExchange({
      node: this.node,
      membership,
      log,
      onChanged: (result) => {
        if (result.revoked.length) void this.node?.dropDenied();
      },
    });
    await this.exchange.start();
    this.election = new Election({ peerId: this.node.peerId.toString(), protocolVersion: PROTOCOL_VERSION, startedAt: this.startedAt });
    this.adverts = new AdvertService({ node: this.node, localAdvert: () => this.localAdvert(), log });
    await this.adverts.start();
    const view = this.adverts.peerView;
    for (const event of ['added', 'updated', 'removed'] as const) view.on(event, () => this.elect());
    for (const event of ['added', 'updated'] as const) {
      view.on(event, (entry) => {
        const { advert } = entry;
        const changed = membership.seen({ peerId: advert.peerId, name: advert.nodeName, addresses: advert.addresses, ...(advert.reachable === undefined ? {} : { reachable: advert.reachable }) });
        if (changed) this.exchange?.broadcast();
      });
    }
    this.electionTimer = setInterval(() => this.elect(), ELECTION_TICK_MS);
    this.electionTimer.unref();
    this.elect();
    if (this.options.mdns) {
      this.discovery = new LanDiscovery({
        meshId: this.node.meshId,
        peerId: this.node.peerId.toString(),
        addresses: () => this.advertisedAddresses(),
        onPeer: (peer) => this.connect(peer.peerId, peer.addresses),
        log,
      });
      this.discovery.start();
    }
    if (this.options.peersDns) {
      const node = this.node;
      this.dnsPeers = new DnsPeers({
        target: this.options.peersDns,
        dial: async (address) => (await node.dial(address)).toString(),
        connected: (peerId) => this.connected(peerId),
        selfId: () => this.peerId,
        selfAddresses: () => node.addresses(),
        log,
      });
      this.dnsPeers.start();
    }
    this.dialStaticPeers();
    this.memberLinks = new MemberLinks({
      node: this.node,
      membership,
      reachability: this.reachability,
      peers: () => this.peers(),
      connect: (peerId, addresses) => this.connect(peerId, addresses),
      dialing: this.dialing,
      log,
    });
    this.redial = setInterval(() => {
      this.dialStaticPeers();
      this.memberLinks?.tick();
    }, REDIAL_MS);
    this.redial.unref();
    log.info({ peerId: this.peerId, addresses: this.node.addresses(), meshId: this.node.meshId }, 'joined the mesh');
  }

  /** The scheduler this agent follows, and the term. */
  scheduler(): ElectionState {
    return this.election?.state() ?? { term: 0 };
  }

  private elect(): void {
    if (!this.election || !this.adverts) return;
    const changed = this.election.update(this.adverts.view(), Date.now());
    if (!changed) return;
    const state = this.election.state();
    this.options.log.info({ term: state.term, scheduler: state.scheduler, self: this.election.isScheduler }, this.election.isScheduler ? 'this agent is the scheduler' : state.scheduler ? 'following a scheduler' : 'no scheduler');
    this.changed();
    this.options.onScheduler?.(state);
  }

  async stop(): Promise<void> {
    clearInterval(this.electionTimer);
    clearInterval(this.redial);
    this.exchange?.stop();
    await this.membership_?.flush().catch(() => undefined);
    this.dnsPeers?.stop();
    await this.discovery?.stop();
    await this.adverts?.stop();
    await this.node?.stop();
  }

  /** Tell peers now (throttled) rather than at the next heartbeat. */
  changed(): void {
    this.adverts?.notifyChanged();
  }

  status(): AgentStatus[] {
    if (!this.node || !this.adverts) return [];
    const self = this.localAdvert();
    const rows = [toStatus(self, true, 0, 'self')];
    const links = this.node.links();
    for (const entry of this.adverts.view()) rows.push(toStatus(entry.advert, false, entry.rttMs ?? null, links.get(entry.peerId) ?? 'none'));
    const { scheduler } = this.scheduler();
    for (const row of rows) if (row.peerId === scheduler) row.role = 'scheduler';
    return rows;
  }

  /** Adverts go out several times a second under load, and each address listing asks the
   *  kernel for every interface (os.networkInterfaces: ~3 ms here); interfaces change rarely. */
  private advertisedAddresses(): string[] {
    const now = Date.now();
    if (this.addressCache && now - this.addressCache.at < ADDRESS_CACHE_MS) return this.addressCache.addresses;
    const all = this.node?.addresses() ?? [];
    const outward = all.filter((a) => !isLoopback(a));
    // Addresses members reached us on (a NAT's port forward) first: they work from afar.
    const confirmed = [...(this.reachability?.confirmed ?? [])].map((a) => `${a}/p2p/${this.peerId}`).filter((a) => !all.includes(a));
    const addresses = [...confirmed, ...(outward.length ? outward : all)].slice(0, MAX_ADVERTISED_ADDRESSES);
    if (addresses.length > 0) this.addressCache = { at: now, addresses };
    return addresses;
  }

  /** This agent's advert as peers get it now. */
  localAdvert(): Advert {
    const capacity = this.options.capacity();
    return {
      t: 'advert',
      nodeName: (this.options.name || os.hostname()).slice(0, 255) || 'unknown',
      peerId: this.node!.peerId.toString(),
      addresses: this.advertisedAddresses(),
      cores: os.availableParallelism(),
      slots: capacity.slots,
      slotsUsed: capacity.slotsUsed,
      load: os.loadavg()[0] ?? 0,
      freeMemoryBytes: os.freemem(),
      speed: this.options.speed,
      os: process.platform,
      arch: process.arch,
      libc: this.libc,
      toolchains: capacity.toolchains.slice(0, ADVERT_LIMITS.toolchains),
      protocolVersion: PROTOCOL_VERSION,
      sentAt: Date.now(),
      startedAt: this.startedAt,
      ...(this.election ? { election: this.election.advertised(Date.now()) } : {}),
      ...(capacity.unavailable ? { executorUnavailable: capacity.unavailable.slice(0, 1024) } : {}),
      ...(this.options.activity ? { activity: this.options.activity() } : {}),
      ...(this.reachability && this.reachability.state !== 'unknown' ? { reachable: this.reachability.state === 'reachable' } : {}),
      relay: this.node!.relaying,
    };
  }

  /** Peers jobs must not go to: those reached only through a relay, unless the user allows it. */
  unusableForJobs(): Set<string> {
    const unusable = new Set<string>();
    if (this.options.relayedJobs || !this.node) return unusable;
    for (const [peer, link] of this.node.links()) if (link === 'relayed') unusable.add(peer);
    return unusable;
  }

  /** An invitation token to this mesh, valid until `expiresAt`. */
  async invite(expiresAt: number): Promise<string> {
    if (!this.node || !this.identity || !this.meshKey) throw new MeshccError('mesh-not-started', 'the mesh is not running');
    return createInvitation({
      meshKey: this.meshKey,
      identity: this.identity,
      inviter: this.node.peerId.toString(),
      name: this.localAdvert().nodeName,
      addresses: this.advertisedAddresses(),
      expiresAt,
    });
  }

  /** Presents an invitation to the mesh it is for (this service must run with that mesh's key). */
  async presentInvitation(token: string, invitation: Invitation): Promise<void> {
    if (!this.exchange) throw new MeshccError('mesh-not-started', 'the mesh is not running');
    await this.exchange.presentInvitation(token, invitation, this.localAdvert().nodeName);
  }

  /** Removes a member for everyone (signed by this agent), and hangs up on it. */
  async revoke(peerId: string): Promise<void> {
    if (!this.membership_ || !this.identity || !this.node) throw new MeshccError('mesh-not-started', 'the mesh is not running');
    await this.membership_.revoke(peerId, this.identity);
    await this.node.dropDenied();
    this.exchange?.broadcast();
  }

  private connected(peerId: string): boolean {
    return this.node!.connectedPeers().some((p) => p.toString() === peerId);
  }

  /** Dials a peer of our mesh by the first of its addresses that answers. */
  private connect(peerId: string, addresses: string[]): void {
    if (!this.node || peerId === this.peerId || this.connected(peerId) || this.dialing.has(peerId)) return;
    this.dialing.add(peerId);
    void (async () => {
      for (const raw of addresses) {
        const address = raw.includes('/p2p/') ? raw : `${raw}/p2p/${peerId}`;
        try {
          await this.node!.dial(address, { signal: AbortSignal.timeout(5000) });
          this.options.log.debug({ peer: peerId, address }, 'connected to peer');
          return;
        } catch (err) {
          this.options.log.debug({ peer: peerId, address, err: (err as Error).message }, 'dial failed');
        }
      }
    })().finally(() => this.dialing.delete(peerId));
  }

  private dialStaticPeers(): void {
    for (const address of this.options.staticPeers) {
      const peerId = /\/p2p\/([^/]+)$/.exec(address)?.[1];
      if (peerId) this.connect(peerId, [address]);
      else this.options.log.warn({ address }, 'a --peer address must end in /p2p/<peer id>; ignored');
    }
  }
}

/** The status row of a peer as last known, once it has no connection. */
export function lostPeerStatus(entry: PeerViewEntry): AgentStatus {
  return toStatus(entry.advert, false, entry.rttMs ?? null, 'none');
}

function toStatus(advert: Advert, self: boolean, rttMs: number | null, link: AgentStatus['link']): AgentStatus {
  return {
    name: advert.nodeName,
    peerId: advert.peerId,
    self,
    addresses: advert.addresses,
    cores: advert.cores,
    slots: advert.slots,
    slotsUsed: advert.slotsUsed,
    load: advert.load,
    speed: advert.speed,
    toolchains: advert.toolchains,
    rttMs,
    role: 'member',
    link,
    ...(advert.reachable === undefined ? {} : { reachable: advert.reachable }),
    ...(advert.activity ? { activity: advert.activity } : {}),
    os: advert.os,
    arch: advert.arch,
    libc: advert.libc,
    freeMemoryBytes: advert.freeMemoryBytes,
    ...(advert.executorUnavailable ? { executorUnavailable: advert.executorUnavailable } : {}),
  };
}
