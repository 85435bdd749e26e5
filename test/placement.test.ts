// Where this agent places a job by itself: holders of the job's toolchain first, a peer that
// would have to fetch it only when no holder has a slot (and then not again while it fetches),
// never a peer of another machine type, and its own executor before any peer.
import { describe, expect, it } from 'vitest';
import { PROTOCOL_VERSION } from '../protocol/messages.js';
import type { PeerAdvert, PeerViewEntry } from '../node/mesh/view.js';
import { Placement, SELF } from '../node/remote/placement.js';

const GCC = { id: 'a'.repeat(64), arch: 'x64', os: 'linux' };

function peer(id: string, advert: Partial<PeerAdvert>): PeerViewEntry {
  return {
    peerId: id,
    lastSeen: Date.now(),
    rttMs: 1,
    advert: {
      nodeName: id,
      peerId: id,
      addresses: [],
      cores: 4,
      slots: 2,
      slotsUsed: 0,
      load: 0,
      freeMemoryBytes: 1 << 30,
      speed: 1,
      os: 'linux',
      arch: 'x64',
      libc: 'glibc',
      toolchains: [],
      protocolVersion: PROTOCOL_VERSION,
      startedAt: Date.now(),
      ...advert,
    },
  };
}

function placement(peers: PeerViewEntry[], selfFree = 0) {
  return new Placement({ peers: () => peers, selfSlots: () => selfFree, selfFreeSlots: () => selfFree, backoffMs: 1000 });
}

describe('placement', () => {
  it("prefers a holder of the toolchain, even a slower one, over a faster peer that lacks it", () => {
    const p = placement([peer('fast-lacks', { speed: 10 }), peer('slow-holds', { speed: 1, toolchains: [GCC.id] })]);
    expect(p.tryPlace(GCC)).toBe('slow-holds');
  });

  it('its own free executor slot comes first', () => {
    expect(placement([peer('holds', { toolchains: [GCC.id] })], 1).tryPlace(GCC)).toBe(SELF);
  });

  it('with every holder busy, a peer that lacks the toolchain is tried (it fetches it); not again while it fetches', () => {
    const p = placement([peer('busy-holder', { toolchains: [GCC.id], slotsUsed: 4 }), peer('lacks', {})]);
    expect(p.tryPlace(GCC)).toBe('lacks');
    p.release('lacks');
    p.fetchingToolchain('lacks', GCC.id);
    expect(p.tryPlace(GCC)).toBeUndefined();
    // Another toolchain is still worth offering there.
    expect(p.tryPlace({ ...GCC, id: 'b'.repeat(64) })).toBe('lacks');
  });

  it('never a peer of another architecture or OS, whatever it advertises', () => {
    const p = placement([peer('arm', { arch: 'arm64', toolchains: [GCC.id] }), peer('mac', { os: 'darwin' })]);
    expect(p.tryPlace(GCC)).toBeUndefined();
    expect(p.hasCandidates(GCC, new Set(), true)).toBe(false);
  });

  it('without an identified toolchain only its own executor can take the job', () => {
    expect(placement([peer('holds', { toolchains: [GCC.id] })]).tryPlace(undefined)).toBeUndefined();
  });
});
