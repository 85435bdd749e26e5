// Which members get no jobs: suspects (unless they are sending us work), and members reached through a relay (unless allowed),
// including those not connected yet whose card says a dial would end at a relay.
import { describe, expect, it } from 'vitest';
import { unusableForJobs } from '../node/mesh/job-eligibility.js';
import type { PeerAdvert, PeerViewEntry } from '../node/mesh/view.js';

function member(peerId: string, advert: Partial<PeerAdvert> = {}): PeerViewEntry {
  return {
    peerId,
    lastSeen: 0,
    advert: {
      nodeName: peerId, peerId, addresses: [`/ip4/10.0.0.1/tcp/7624/p2p/${peerId}`], cores: 2, slots: 2, slotsUsed: 0, load: 0,
      freeMemoryBytes: 0, speed: 1, os: 'linux', arch: 'x64', libc: 'glibc', toolchains: [], protocolVersion: 1, startedAt: 0, ...advert,
    },
  };
}

const RELAYED = '/ip4/11.0.0.1/tcp/7624/p2p/relay/p2p-circuit/p2p/x';

describe('unusableForJobs', () => {
  it('a connected LAN member gets jobs; a suspect does not, connected or not, relayed jobs allowed or not', () => {
    const view = [member('lan'), member('suspect', { state: 'suspect' })];
    const links = new Map([['lan', 'direct'], ['suspect', 'direct']] as const);
    expect([...unusableForJobs(view, links, false)]).toEqual(['suspect']);
    expect([...unusableForJobs(view, links, true)]).toEqual(['suspect']);
  });

  it('a suspect that is sending us work (its results, its jobs) keeps its jobs: busy is not dead', () => {
    const view = [member('busy', { state: 'suspect' }), member('silent', { state: 'suspect' })];
    const links = new Map([['busy', 'direct'], ['silent', 'direct']] as const);
    expect([...unusableForJobs(view, links, false, (peer) => peer === 'busy')]).toEqual(['silent']);
  });

  it('a relayed link, or no link and only relayed addresses, or no link and a card that says it cannot be dialled: no jobs unless relayed jobs are allowed', () => {
    const view = [
      member('relayed'),
      member('circuit-only', { addresses: [RELAYED] }),
      member('behind-nat', { reachable: false, addresses: [`/ip4/192.168.1.2/tcp/7624/p2p/behind-nat`, RELAYED] }),
      member('mapped', { reachable: false, mapped: '/ip4/11.0.0.3/tcp/7624' }),
      member('public', { reachable: true }),
      member('unknown'),
    ];
    const links = new Map([['relayed', 'relayed']] as const);
    expect([...unusableForJobs(view, links, false)].sort()).toEqual(['behind-nat', 'circuit-only', 'relayed']);
    expect([...unusableForJobs(view, links, true)]).toEqual([]);
  });

  it('a member behind NAT that this agent reaches directly (the same LAN) gets jobs', () => {
    const view = [member('neighbour', { reachable: false })];
    expect([...unusableForJobs(view, new Map([['neighbour', 'direct']] as const), false)]).toEqual([]);
    expect([...unusableForJobs(view, new Map(), false)]).toEqual(['neighbour']);
  });
});
