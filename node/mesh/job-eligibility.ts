// Which members jobs must not go to right now, from what this agent knows of them: suspects
// (until they answer again, unless they are sending us work right now), and members reached
// only through a relay unless the user allows jobs there (a job over a relay is slow, and costs
// the relay's owner).
import type { PeerViewEntry } from './view.js';

export function unusableForJobs(
  view: readonly PeerViewEntry[],
  links: ReadonlyMap<string, 'direct' | 'relayed'>,
  relayedJobs: boolean,
  sendingWork: (peerId: string) => boolean = () => false,
): Set<string> {
  const unusable = new Set<string>();
  for (const entry of view) if (entry.advert.state === 'suspect' && !sendingWork(entry.peerId)) unusable.add(entry.peerId);
  if (relayedJobs) return unusable;
  for (const [peer, link] of links) if (link === 'relayed') unusable.add(peer);
  // A member with no connection now that has only relayed addresses, or says it cannot be
  // dialled (behind a router without a mapping), would be reached through a relay too.
  for (const entry of view) {
    if (links.has(entry.peerId)) continue;
    const { addresses, reachable, mapped } = entry.advert;
    if (!addresses.some((a) => !a.includes('/p2p-circuit')) || (reachable === false && mapped === undefined)) unusable.add(entry.peerId);
  }
  return unusable;
}
