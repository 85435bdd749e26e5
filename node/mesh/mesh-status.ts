// One row of `meshcc status` per agent: the stable shape scripts rely on (`--json`), built from
// a peer's card and the last load known of it.
import type { Activity } from '../../protocol/swim-messages.js';
import type { PeerAdvert, PeerViewEntry } from './view.js';

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
  /** How this agent reaches it: itself, a direct connection (open or to open), only a relayed one, or none right now. */
  link: 'self' | 'direct' | 'relayed' | 'none';
  /** Whether members could dial it back (undefined while unknown). */
  reachable?: boolean;
  /** A peer's row: the direct link goes through a router's port mapping (ours or its). */
  mapped?: boolean;
  /** This agent's row: whether and how others can dial it, in words. */
  reach?: string;
  /** 'suspect' while the membership has not heard from it lately (it stays listed). */
  state?: 'alive' | 'suspect';
  /** What it has done since it started (its own compiles, run on peers, run for peers, bytes), as it reported. */
  activity?: Activity;
  os: string;
  arch: string;
  libc: string;
  freeMemoryBytes: number;
  /** Why the agent offers no slots, when it offers none because it cannot sandbox. */
  executorUnavailable?: string;
}

/** The status row of a peer as last known, once it left the view. */
export function lostPeerStatus(entry: PeerViewEntry): AgentStatus {
  return toStatus(entry.advert, false, entry.rttMs ?? null, 'none');
}

export function toStatus(advert: PeerAdvert, self: boolean, rttMs: number | null, link: AgentStatus['link']): AgentStatus {
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
    ...(advert.state && !self ? { state: advert.state } : {}),
    ...(advert.activity ? { activity: advert.activity } : {}),
    os: advert.os,
    arch: advert.arch,
    libc: advert.libc,
    freeMemoryBytes: advert.freeMemoryBytes,
    ...(advert.executorUnavailable ? { executorUnavailable: advert.executorUnavailable } : {}),
  };
}
