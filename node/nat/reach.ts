// What `meshcc status` says about reaching agents: for this agent, whether and how others can
// dial it (a public address, a router's port mapping, a forwarded port, a relay); for each
// link, whether a direct one goes through a port mapping.
import type { Connection } from '@libp2p/interface';
import { onLocalNetwork } from './addresses.js';
import type { PortMapping } from './port-mapper.js';

export interface OwnReach {
  /** Dial-back answers: all members could dial us, some could not, or nobody said yet. */
  state: 'unknown' | 'reachable' | 'unreachable';
  /** Public addresses of this machine's own interfaces. */
  publicAddresses: string[];
  mapping?: PortMapping;
  /** Addresses members dialled us back at (a port forward shows up here). */
  confirmed: string[];
  /** The peer id of the relay we hold a reservation on. */
  relay?: string;
}

const hostPort = (address: string) => /^\/ip[46]\/([^/]+)\/tcp\/(\d+)/.exec(address)?.slice(1).join(':');

/** One line: e.g. "reachable: mapped by the router (NAT-PMP) at 11.77.0.2:7624". */
export function describeReach(reach: OwnReach): string {
  const how: string[] = [];
  if (reach.publicAddresses.length) how.push(`public address ${reach.publicAddresses.join(', ')}`);
  if (reach.mapping) how.push(`mapped by the router (${reach.mapping.method === 'nat-pmp' ? 'NAT-PMP' : 'UPnP IGD'}) at ${reach.mapping.externalAddress}:${reach.mapping.externalPort}`);
  // Dial-backs to what we already said (our public address, our mapping) add nothing.
  const known = new Set([...reach.publicAddresses, ...(reach.mapping ? [reach.mapping.externalAddress] : [])]);
  const forwarded = reach.confirmed.map(hostPort).filter((a): a is string => a !== undefined && !known.has(a.replace(/:\d+$/, '')));
  if (forwarded.length) how.push(`dialled back at ${forwarded.join(', ')}`);
  if (reach.relay) how.push(`through the relay …${reach.relay.slice(-8)}`);
  const said = how.length ? how.join('; ') : 'no public address, no port mapping, no relay';
  if (reach.state === 'reachable') return `reachable: ${said}`;
  if (reach.state === 'unreachable') return `${reach.relay ? 'reachable only through a relay' : 'not reachable by every member'}: ${said}`;
  return `reachability not known yet (no dial-back answered): ${said}`;
}

/**
 * Peers a direct connection of ours reaches through a port mapping: one we dialled at the
 * address the peer's router maps for it, or one that came in from beyond our own networks
 * while our router maps our port (the only way in from there).
 */
export function linksThroughMappings(connections: Connection[], mappedOf: (peer: string) => string | undefined, ownMapping: PortMapping | undefined): Set<string> {
  const through = new Set<string>();
  for (const connection of connections) {
    const remote = connection.remoteAddr.toString();
    if (remote.includes('/p2p-circuit')) continue;
    const peer = connection.remotePeer.toString();
    const mapped = mappedOf(peer);
    if (connection.direction === 'outbound' && mapped && hostPort(remote) === hostPort(mapped)) through.add(peer);
    const host = /^\/ip4\/([^/]+)\//.exec(remote)?.[1];
    if (connection.direction === 'inbound' && ownMapping && host && !onLocalNetwork(host)) through.add(peer);
  }
  return through;
}
