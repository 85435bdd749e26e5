// The agent's place in the mesh: its libp2p node (identity and mesh key from MESHCC_HOME), the
// membership (SWIM: who is alive, with their cards), the election and the report stream to the
// scheduler (leadership), LAN discovery, and the peers named by address.
// Started and stopped by the composition root (node/agent.ts).
import { peerIdFromPrivateKey, peerIdFromString } from '@libp2p/peer-id';
import { multiaddr } from '@multiformats/multiaddr';
import type { PrivateKey } from '@libp2p/interface';
import { MeshccError } from '../../protocol/errors.js';
import { PROTOCOL_VERSION } from '../../protocol/messages.js';
import { SWIM_LIMITS, type Activity, type LoadReport, type LoadRow, type MemberCard } from '../../protocol/swim-messages.js';
import type { Logger } from '../log.js';
import { Leadership } from '../scheduler/leadership.js';
import type { ElectionState } from '../scheduler/election.js';
import type { LanDiscovery } from './discovery.js';
import type { DnsPeers } from './dns-peers.js';
import { loadOrCreateIdentity, loadOrCreateMeshKey, meshId } from './keys.js';
import { createMeshNode, type MeshNode } from './node.js';
import { createInvitation, type Invitation } from './invite-token.js';
import { MemberExchange } from './member-exchange.js';
import { Membership } from './membership.js';
import { MemberLinks } from './member-links.js';
import { LinkCheck } from './link-check.js';
import { unusableForJobs } from './job-eligibility.js';
import { SwimService } from './membership/swim-service.js';
import type { Member } from './membership/table.js';
import { toStatus, type AgentStatus } from './mesh-status.js';
import { SelfCard } from './self-card.js';
import { Reachability } from './reachability.js';
import { PeerView, peerAdvert, type PeerViewEntry } from './view.js';
// Discovery, DNS peers and port mapping are imported when configured: `meshcc run` (a CI step)
// uses none of them and pays for loading every module at each start.
import type { PortMapper, PortMapping } from '../nat/port-mapper.js';
import { describeReach, linksThroughMappings } from '../nat/reach.js';
import { publicInterfaceAddresses } from '../nat/addresses.js';

export type { AgentStatus } from './mesh-status.js';
export { lostPeerStatus } from './mesh-status.js';

export interface MeshOptions {
  home: string;
  listen: string[];
  /** Multiaddrs (with /p2p/…) of agents to join the mesh through, for networks without multicast. */
  staticPeers: string[];
  mdns: boolean;
  /** A DNS name (NAME[:PORT]) whose addresses are agents to dial, looked up again and again. */
  peersDns?: string;
  speed: number;
  /** The name other agents show for this one (default: the host name). */
  name?: string;
  log: Logger;
  /** What this agent offers right now (read often: keep it cheap). */
  capacity: () => { slots: number; slotsUsed: number; toolchains: string[]; unavailable?: string };
  /** What this agent has done, for the mesh-wide counters of monitors (sent to the scheduler). */
  activity?: () => Activity;
  /** The scheduler or the term changed. */
  onScheduler?: (state: ElectionState) => void;
  /** Offer circuit relay v2 to members (default true). */
  relay?: boolean;
  /** Send jobs to peers reached only through a relay (default false: relays are for signalling). */
  relayedJobs?: boolean;
  /** Ask the home router to map the listening port, by NAT-PMP or UPnP IGD (default true). */
  portMapping?: boolean;
  /** The membership's probe period (ms); benchmarks' simulated members probe less often. */
  probeIntervalMs?: number;
  /** Whether this agent may become the scheduler (default true). */
  candidate?: boolean;
}

/** A suspect that sent us work this recently still takes jobs (it is busy, not dead). */
const SENDING_WORK_MS = 2_000;
/** How long the set of members jobs must not go to is kept once computed. */
const UNUSABLE_KEPT_MS = 100;
const REDIAL_MS = 2000;
/** Changes of slots in use reach the scheduler at most this often. */
const LOAD_COALESCE_MS = 250;
/** Load average and free memory drift: looked at this often (sent only when they moved). */
const LOAD_CHECK_MS = 5000;
/** The mesh's loads, asked of the scheduler, are reused this long (status, top, the monitor). */
const MESH_LOADS_MS = 1000;

export class MeshService {
  private node?: MeshNode;
  private discovery?: LanDiscovery;
  private dnsPeers?: DnsPeers;
  private redial?: NodeJS.Timeout;
  private loadTimer?: NodeJS.Timeout;
  private loadSoon?: NodeJS.Timeout;
  private readonly dialing = new Set<string>();
  private identity?: PrivateKey;
  private meshKey?: Uint8Array;
  private membership_?: Membership;
  private exchange?: MemberExchange;
  private reachability?: Reachability;
  private memberLinks?: MemberLinks;
  private linkCheck?: LinkCheck;
  private portMapper?: PortMapper;
  private announcedMapping?: PortMapping;
  private swim?: SwimService;
  private leadership?: Leadership;
  private readonly view = new PeerView();
  private meshLoads?: { at: number; rows: Map<string, LoadRow>; asking?: Promise<void> };

  private readonly selfCard: SelfCard;

  constructor(private readonly options: MeshOptions) {
    this.selfCard = new SelfCard({
      node: () => this.node,
      reachability: () => this.reachability,
      portMapper: () => this.portMapper,
      description: options,
    });
  }

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

  /** The live view of peers, with added/updated/removed events. */
  get peerView(): PeerView {
    return this.view;
  }

  /** The membership protocol (its table, counters and health), once started. */
  get membershipProtocol(): SwimService | undefined {
    return this.swim;
  }

  peers(): PeerViewEntry[] {
    return this.view.list();
  }

  async start(): Promise<void> {
    const { home, listen, log } = this.options;
    const [privateKey, meshKey] = await Promise.all([loadOrCreateIdentity(home), loadOrCreateMeshKey(home)]);
    this.identity = privateKey;
    this.meshKey = meshKey;
    const self = peerIdFromPrivateKey(privateKey).toString();
    const membership = (this.membership_ = await Membership.load(home, meshId(meshKey), self, log));
    this.node = await createMeshNode({ privateKey, meshKey, listen, log, relay: this.options.relay, denied: (peer) => membership.isRevoked(peer) });
    this.node.addressBook = (peer) => {
      const card = this.swim?.table.get(peer)?.card;
      return card && { addresses: card.addresses, reachable: card.reachable };
    };
    // Its verdict and the addresses it confirmed go out in one card: a member that hears
    // "reachable" must also hear where.
    this.reachability = new Reachability({
      node: this.node,
      log,
      onChange: () => {
        this.selfCard.addressesChanged();
        this.changed();
      },
    });
    await this.reachability.start();
    // An agent listening on loopback only asks no router: nobody could come in through it.
    const port = Number(/^\/ip4\/[^/]+\/tcp\/(\d+)/.exec(this.node.addresses().find((a) => a.startsWith('/ip4/') && !a.startsWith('/ip4/127.')) ?? '')?.[1] ?? 0);
    if (this.options.portMapping !== false && port > 0) {
      const { PortMapper } = await import('../nat/port-mapper.js');
      this.portMapper = new PortMapper({ port, log, onChange: () => this.mappingChanged() });
      this.portMapper.start();
    }
    this.exchange = new MemberExchange({
      node: this.node,
      membership,
      log,
      onChanged: (result) => {
        if (!result.revoked.length) return;
        void this.node?.dropDenied();
        // Out of the membership at once, and the death passed on: hanging up alone left it
        // listed until this agent's own probes failed and the suspicion ran out (5-25 s), and a
        // refutation heard before the list came brought a member already buried back.
        for (const peer of result.revoked) this.swim?.table.declareDead(peer);
      },
    });
    await this.exchange.start();
    const swim = (this.swim = new SwimService({
      node: this.node,
      card: () => this.card(),
      leader: () => this.leadership?.leader() ?? { term: 0, peerId: '' },
      onLeader: (claim) => this.leadership?.heard(claim),
      admit: (peer) => !membership.isRevoked(peer),
      keep: (peer) => this.keepConnected(peer),
      log,
      ...(this.options.probeIntervalMs ? { probeIntervalMs: this.options.probeIntervalMs } : {}),
    }));
    swim.table.on('joined', (m) => this.memberSeen(m, true));
    swim.table.on('changed', (m) => this.memberSeen(m, false));
    // Probes measure the round trips that status, placement and the far-link rules read.
    swim.table.on('rtt', (peerId, rttMs) => this.view.setRtt(peerId, rttMs));
    swim.table.on('left', (m) => {
      if (this.view.remove(m.card.peerId, 'dead')) log.info({ peer: m.card.peerId, name: m.card.name }, 'peer left the view');
      this.leadership?.loads.delete(m.card.peerId);
      this.node?.forgetHeard(m.card.peerId);
      this.remembered.delete(m.card.peerId);
    });
    this.leadership = new Leadership({
      node: this.node,
      swim,
      self: { peerId: self, protocolVersion: PROTOCOL_VERSION, startedAt: this.selfCard.startedAt },
      candidate: this.options.candidate !== false,
      log,
      load: () => this.load(),
      onChanged: (state) => {
        this.refreshViewLoads();
        this.options.onScheduler?.(state);
      },
      onLoad: (peer) => this.refreshPeer(peer),
    });
    await swim.start();
    await this.leadership.start();
    this.loadTimer = setInterval(() => this.leadership?.loadChanged(), LOAD_CHECK_MS);
    this.loadTimer.unref();
    if (this.options.mdns) {
      const { LanDiscovery } = await import('./discovery.js');
      this.discovery = new LanDiscovery({
        meshId: this.node.meshId,
        peerId: self,
        addresses: () => this.selfCard.addresses(),
        onPeer: (peer) => this.connect(peer.peerId, peer.addresses),
        log,
      });
      this.discovery.start();
    }
    if (this.options.peersDns) {
      const node = this.node;
      const { DnsPeers } = await import('./dns-peers.js');
      this.dnsPeers = new DnsPeers({
        target: this.options.peersDns,
        dial: async (address) => {
          const peer = (await node.dial(address)).toString();
          this.connect(peer, [address]);
          return peer;
        },
        connected: (peerId) => this.swim?.table.get(peerId) !== undefined,
        selfId: () => this.peerId,
        selfAddresses: () => node.addresses(),
        log,
      });
      this.dnsPeers.start();
    }
    this.dialStaticPeers();
    this.linkCheck = new LinkCheck(this.node, log);
    this.memberLinks = new MemberLinks({
      node: this.node,
      membership,
      reachability: this.reachability,
      peers: () => this.view.entries(),
      listed: (peerId) => this.swim?.table.get(peerId) !== undefined,
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
    return this.leadership?.election.state() ?? { term: 0 };
  }

  async stop(): Promise<void> {
    clearInterval(this.redial);
    clearInterval(this.loadTimer);
    clearTimeout(this.loadSoon);
    this.exchange?.stop();
    await this.membership_?.flush().catch(() => undefined);
    this.dnsPeers?.stop();
    await this.discovery?.stop();
    await this.leadership?.stop();
    await this.swim?.stop();
    this.view.clear();
    await this.portMapper?.stop();
    await this.node?.stop();
  }

  /** Something this agent offers changed: the card (rare) goes out with the next probe, the load
   *  to the scheduler, coalesced. */
  changed(): void {
    if (this.loadSoon) return;
    this.loadSoon = setTimeout(() => {
      this.loadSoon = undefined;
      this.swim?.cardChanged();
      this.leadership?.loadChanged();
    }, LOAD_COALESCE_MS);
    this.loadSoon.unref();
  }

  /** A port mapping came, was renewed or went: libp2p announces it (identify: peers dial us
   *  there by peer id), our card says it now rather than in 5 s, and members dial us back again. */
  private mappingChanged(): void {
    const mapping = this.portMapper?.mapping;
    const announced = this.announcedMapping;
    if (announced && (announced.externalAddress !== mapping?.externalAddress || announced.externalPort !== mapping?.externalPort)) {
      this.node?.withdrawMapping(announced.internalAddress, announced.internalPort, announced.externalAddress, announced.externalPort);
    }
    if (mapping) this.node?.announceMapping(mapping.internalAddress, mapping.internalPort, mapping.externalAddress, mapping.externalPort);
    const news = announced?.externalAddress !== mapping?.externalAddress || announced?.externalPort !== mapping?.externalPort;
    this.announcedMapping = mapping;
    this.selfCard.addressesChanged();
    this.changed();
    if (news) this.reachability?.recheck();
  }

  /** The rows of `meshcc status` with the mesh's loads as the scheduler last told (asked again
   *  in the background when older than a second: the monitor calls this once a frame). */
  status(): AgentStatus[] {
    if (!this.node || !this.swim) return [];
    this.askMeshLoads();
    const reachability = this.reachability;
    const reach = describeReach({
      state: reachability?.state ?? 'unknown',
      publicAddresses: publicInterfaceAddresses(),
      ...(this.portMapper?.mapping ? { mapping: this.portMapper.mapping } : {}),
      confirmed: [...(reachability?.confirmed ?? [])],
      ...(reachability?.relay ? { relay: reachability.relay } : {}),
    });
    const ownCard = this.card();
    const rows: AgentStatus[] = [{ ...toStatus(peerAdvert(ownCard, this.load()), true, 0, 'self'), reach }];
    const links = this.node.links();
    const view = this.view.list();
    const mapped = linksThroughMappings(this.node.libp2p.getConnections(), (peer) => this.view.get(peer)?.advert.mapped, this.portMapper?.mapping);
    const loads = this.leadership?.election.isScheduler ? undefined : this.meshLoads?.rows;
    for (const entry of view) {
      // Not connected now: how the next dial would reach it (as job eligibility judges it).
      const { addresses, reachable, mapped: hasMapping } = entry.advert;
      const dialledDirectly = addresses.some((a) => !a.includes('/p2p-circuit')) && !(reachable === false && hasMapping === undefined);
      const link = links.get(entry.peerId) ?? (dialledDirectly ? 'direct' : addresses.length ? 'relayed' : 'none');
      const row = loads?.get(entry.peerId);
      const advert = row ? { ...entry.advert, slots: row.slots, slotsUsed: row.slotsUsed, load: row.load, freeMemoryBytes: row.freeMemoryBytes, ...(row.activity ? { activity: row.activity } : {}) } : entry.advert;
      // Not connected now (idle links close): the next dial goes to its mapping, advertised first.
      const throughMapping = mapped.has(entry.peerId) || (!links.has(entry.peerId) && entry.advert.mapped !== undefined);
      rows.push({ ...toStatus(advert, false, entry.rttMs ?? null, link), ...(link === 'direct' && throughMapping ? { mapped: true } : {}) });
    }
    const { scheduler } = this.scheduler();
    for (const row of rows) if (row.peerId === scheduler) row.role = 'scheduler';
    return rows;
  }

  /** `meshcc status`: the rows once the scheduler answered (or 3 s passed). */
  async statusFresh(): Promise<AgentStatus[]> {
    this.askMeshLoads();
    await this.meshLoads?.asking;
    return this.status();
  }

  private askMeshLoads(): void {
    const leadership = this.leadership;
    if (!leadership || leadership.election.isScheduler) return;
    if (this.meshLoads && (this.meshLoads.asking || Date.now() - this.meshLoads.at < MESH_LOADS_MS)) return;
    const state = (this.meshLoads ??= { at: 0, rows: new Map<string, LoadRow>() } as { at: number; rows: Map<string, LoadRow>; asking?: Promise<void> });
    state.asking = leadership
      .meshLoads()
      .then((rows) => {
        state.rows = new Map(rows.map((r) => [r.peerId, r]));
      })
      .catch((err: Error) => this.options.log.debug({ err: err.message }, 'the scheduler did not give the mesh loads'))
      .finally(() => {
        state.at = Date.now();
        state.asking = undefined;
      });
  }

  /** Membership and election counters (the benchmark, debugging). */
  membershipStats(): { members: number; health: number; followers: number; probes: number; suspected: number; served: number } {
    return { members: this.swim?.table.size ?? 0, health: this.swim?.health.score ?? 0, followers: this.leadership?.followers ?? 0, ...(this.swim?.counts ?? { probes: 0, suspected: 0, served: 0, indirect: 0 }) };
  }

  private memberSeen(member: Member, joined: boolean): void {
    const card = member.card;
    const entry = this.view.update(card.peerId, peerAdvert(card, this.loadOf(card.peerId), member.state === 'suspect' ? 'suspect' : 'alive'), Date.now(), member.rttMs);
    if (joined) this.options.log.info({ peer: card.peerId, name: card.name }, 'peer joined the view');
    if (entry.advert.state === 'suspect') this.linkCheck?.suspected(card.peerId);
    // Jobs, caches and toolchains dial a member by its peer id, after idle connections closed:
    // libp2p must know the addresses its card gives (a home's mapping among them).
    this.rememberAddresses(card.peerId, card.addresses);
    this.membership_?.seen({ peerId: card.peerId, name: card.name, addresses: card.addresses.slice(0, SWIM_LIMITS.addresses), ...(card.reachable === undefined ? {} : { reachable: card.reachable }) });
  }

  private rememberAddresses(peerId: string, addresses: string[]): void {
    const libp2p = this.node?.libp2p;
    if (!libp2p || peerId === this.peerId) return;
    // libp2p's peer store writes are dear (a lock, protobuf both ways): only when they changed.
    const key = addresses.join(' ');
    if (this.remembered.get(peerId) === key) return;
    this.remembered.set(peerId, key);
    try {
      const multiaddrs = addresses.map((a) => multiaddr(a));
      void libp2p.peerStore.merge(peerIdFromString(peerId), { multiaddrs }).catch(() => undefined);
    } catch {
      // an address that does not parse: the card's others still serve
    }
  }

  /** A member's load arrived at this scheduler (or its report stream ended). */
  private refreshPeer(peerId: string): void {
    const member = this.swim?.table.get(peerId);
    if (member) this.view.update(peerId, peerAdvert(member.card, this.loadOf(peerId), member.state === 'suspect' ? 'suspect' : 'alive'), Date.now(), member.rttMs);
  }

  /** Taking or leaving office: loads come from our own table, or from the cards again. */
  private refreshViewLoads(): void {
    for (const member of this.swim?.table.live() ?? []) this.refreshPeer(member.card.peerId);
  }

  private loadOf(peerId: string): LoadReport | undefined {
    if (!this.leadership?.election.isScheduler) return undefined;
    const row = this.leadership.loads.get(peerId);
    // A member whose report stream ended counts as busy until it reports again.
    return row?.gone ? { ...row, slotsUsed: row.slots } : row;
  }

  /** Idle connections are closed, except to the scheduler (the report stream), to the member
   *  that would succeed it (a failover needs no handshake), and to our relay; the successor
   *  keeps every member's (each member holds one to it, and would dial again when it closed). */
  private keepConnected(peerId: string): boolean {
    const successor = this.leadership?.successor;
    return peerId === this.scheduler().scheduler || peerId === successor || successor === this.peerId || peerId === this.reachability?.relay;
  }

  /** This agent's card: what every member knows of it. */
  card(): MemberCard {
    return this.selfCard.card();
  }

  /** This agent's load: what the scheduler needs. */
  load(): LoadReport {
    return this.selfCard.load();
  }

  /** Peers jobs must not go to right now (job-eligibility.ts). Every job asks, twice, and the
   *  answer walks every member and connection: it is kept for a moment, far shorter than a
   *  suspicion or a link takes to change. */
  unusableForJobs(): Set<string> {
    const now = performance.now();
    if (this.unusable && now - this.unusable.at < UNUSABLE_KEPT_MS) return this.unusable.peers;
    const node = this.node;
    const peers = unusableForJobs(this.view.list(), node?.links() ?? new Map(), this.options.relayedJobs === true, (peer) => node?.heardWithin(peer, SENDING_WORK_MS) === true);
    this.unusable = { at: now, peers };
    return peers;
  }

  private unusable?: { at: number; peers: Set<string> };
  /** The addresses last given to libp2p's peer store for each member. */
  private readonly remembered = new Map<string, string>();

  /** An invitation token to this mesh, valid until `expiresAt`. */
  async invite(expiresAt: number): Promise<string> {
    if (!this.node || !this.identity || !this.meshKey) throw new MeshccError('mesh-not-started', 'the mesh is not running');
    return createInvitation({
      meshKey: this.meshKey,
      identity: this.identity,
      inviter: this.node.peerId.toString(),
      name: this.card().name,
      addresses: this.selfCard.addresses(),
      expiresAt,
    });
  }

  /** Presents an invitation to the mesh it is for (this service must run with that mesh's key). */
  async presentInvitation(token: string, invitation: Invitation): Promise<void> {
    if (!this.exchange) throw new MeshccError('mesh-not-started', 'the mesh is not running');
    const address = await this.exchange.presentInvitation(token, invitation, this.card().name);
    // Into the membership through the inviter now: the member list alone would be dialled only
    // once the connection the invitation used had gone idle and closed (half a minute).
    this.connect(invitation.inviter, [address]);
  }

  /** Removes a member for everyone (signed by this agent), and hangs up on it. */
  async revoke(peerId: string): Promise<void> {
    if (!this.membership_ || !this.identity || !this.node) throw new MeshccError('mesh-not-started', 'the mesh is not running');
    await this.membership_.revoke(peerId, this.identity);
    await this.node.dropDenied();
    this.swim?.table.declareDead(peerId);
    this.exchange?.broadcast();
  }

  /** Joins the mesh through an agent (discovered, named, or remembered) unless it is listed already. */
  private connect(peerId: string, addresses: string[]): void {
    if (!this.swim || peerId === this.peerId || this.swim.table.get(peerId) || this.dialing.has(peerId)) return;
    this.dialing.add(peerId);
    this.swim
      .join(peerId, addresses)
      .then(() => this.options.log.debug({ peer: peerId }, 'joined through a peer'))
      .catch((err: Error) => this.options.log.debug({ peer: peerId, err: err.message }, 'could not join through a peer'))
      .finally(() => this.dialing.delete(peerId));
  }

  private dialStaticPeers(): void {
    for (const address of this.options.staticPeers) {
      const peerId = /\/p2p\/([^/]+)$/.exec(address)?.[1];
      if (peerId) this.connect(peerId, [address]);
      else this.options.log.warn({ address }, 'a --peer address must end in /p2p/<peer id>; ignored');
    }
  }
}
