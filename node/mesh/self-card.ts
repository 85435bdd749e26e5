// What this agent says of itself: its card, which every member knows (addresses, slots,
// toolchains, reachability), and its load, which only the scheduler needs.
import os from 'node:os';
import { PROTOCOL_VERSION } from '../../protocol/messages.js';
import { SWIM_LIMITS, type Activity, type LoadReport, type MemberCard } from '../../protocol/swim-messages.js';
import type { PortMapper } from '../nat/port-mapper.js';
import type { MeshNode } from './node.js';
import type { Reachability } from './reachability.js';

const ADDRESS_CACHE_MS = 5_000;
const MAX_ADVERTISED_ADDRESSES = 16;

/** What the agent was configured with (the mesh service's options carry these). */
export interface SelfDescription {
  /** The name other agents show for this one (default: the host name). */
  name?: string;
  speed: number;
  candidate?: boolean;
  /** What this agent offers right now (read often: keep it cheap). */
  capacity: () => { slots: number; slotsUsed: number; toolchains: string[]; unavailable?: string };
  activity?: () => Activity;
}

export interface SelfCardSources {
  node: () => MeshNode | undefined;
  reachability: () => Reachability | undefined;
  portMapper: () => PortMapper | undefined;
  description: SelfDescription;
}

function libcName(): string {
  const header = (process.report?.getReport() as { header?: { glibcVersionRuntime?: string } } | undefined)?.header;
  return header?.glibcVersionRuntime ? `glibc ${header.glibcVersionRuntime}` : 'unknown';
}

function isLoopback(address: string): boolean {
  return address.startsWith('/ip4/127.') || address.startsWith('/ip6/::1/');
}

export class SelfCard {
  readonly startedAt = Date.now();
  private readonly libc = libcName();
  private addressCache?: { at: number; addresses: string[] };

  constructor(private readonly sources: SelfCardSources) {}

  /** Addresses changed (a mapping, a reachability verdict): the next card lists them at once. */
  addressesChanged(): void {
    this.addressCache = undefined;
  }

  /** Adverts go out several times a second under load, and each address listing asks the
   *  kernel for every interface (os.networkInterfaces: ~3 ms here); interfaces change rarely. */
  addresses(): string[] {
    const now = Date.now();
    if (this.addressCache && now - this.addressCache.at < ADDRESS_CACHE_MS) return this.addressCache.addresses;
    const node = this.sources.node();
    const peerId = node?.peerId.toString();
    const all = node?.addresses() ?? [];
    const outward = all.filter((a) => !isLoopback(a));
    const mapping = this.sources.portMapper()?.mapping;
    // The router's mapping first: it works from anywhere, and members try addresses in order.
    if (mapping) outward.unshift(`/ip4/${mapping.externalAddress}/tcp/${mapping.externalPort}/p2p/${peerId}`);
    // Addresses members reached us on (a NAT's port forward) first: they work from afar.
    const confirmed = [...(this.sources.reachability()?.confirmed ?? [])].map((a) => `${a}/p2p/${peerId}`).filter((a) => !all.includes(a));
    const addresses = [...new Set([...confirmed, ...(outward.length ? outward : all)])].slice(0, MAX_ADVERTISED_ADDRESSES);
    if (addresses.length > 0) this.addressCache = { at: now, addresses };
    return addresses;
  }

  /** This agent's card: what every member knows of it. */
  card(): MemberCard {
    const { capacity: capacityNow, name, speed, candidate } = this.sources.description;
    const node = this.sources.node()!;
    const reachability = this.sources.reachability();
    const mapping = this.sources.portMapper()?.mapping;
    const capacity = capacityNow();
    return {
      peerId: node.peerId.toString(),
      name: (name || os.hostname()).slice(0, 255) || 'unknown',
      addresses: this.addresses(),
      startedAt: this.startedAt,
      protocolVersion: PROTOCOL_VERSION,
      ...(candidate === false ? { candidate: false } : {}),
      cores: os.availableParallelism(),
      slots: capacity.slots,
      speed,
      os: process.platform,
      arch: process.arch,
      libc: this.libc,
      toolchains: capacity.toolchains.slice(0, SWIM_LIMITS.toolchains),
      ...(capacity.unavailable ? { executorUnavailable: capacity.unavailable.slice(0, 1024) } : {}),
      ...(reachability && reachability.state !== 'unknown' ? { reachable: reachability.state === 'reachable' } : {}),
      relay: node.relaying,
      ...(mapping ? { mapped: `/ip4/${mapping.externalAddress}/tcp/${mapping.externalPort}` } : {}),
    };
  }

  /** This agent's load: what the scheduler needs. */
  load(): LoadReport {
    const { capacity: capacityNow, activity } = this.sources.description;
    const capacity = capacityNow();
    return {
      slots: capacity.slots,
      slotsUsed: capacity.slotsUsed,
      load: os.loadavg()[0] ?? 0,
      freeMemoryBytes: os.freemem(),
      ...(activity ? { activity: activity() } : {}),
    };
  }
}
