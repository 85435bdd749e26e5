// The election's rules, without sockets: who follows which claim, what losing a scheduler
// does, and who may claim (the moves over the network: test/election.test.ts).
import { describe, expect, it } from 'vitest';
import { compareRank, Election, type Candidate } from '../node/scheduler/election.js';

const old: Candidate = { peerId: 'A', protocolVersion: 1, startedAt: 1000 };
const middle: Candidate = { peerId: 'B', protocolVersion: 1, startedAt: 2000 };
const young: Candidate = { peerId: 'C', protocolVersion: 1, startedAt: 3000 };

function election(self: Candidate, others: Candidate[], eligible = true): Election {
  return new Election(self, eligible, () => others);
}

describe('election rules', () => {
  it('ranks the newest protocol first, then the longest-running agent, then the smallest peer id', () => {
    const newer = { peerId: 'Z', protocolVersion: 2, startedAt: 9999 };
    expect([young, middle, newer, old].sort(compareRank).map((c) => c.peerId)).toEqual(['Z', 'A', 'B', 'C']);
    expect(compareRank({ ...old, peerId: 'B' }, old)).toBeGreaterThan(0);
  });

  it('follows the highest term, and between equal terms the better-ranked claimant', () => {
    const e = election(young, [old, middle]);
    expect(e.observe({ term: 1, peerId: 'B' })).toBe(true);
    expect(e.observe({ term: 1, peerId: 'A' })).toBe(true);
    expect(e.state()).toEqual({ term: 1, scheduler: 'A' });
    // An equal term by a worse-ranked claimant, or a lower term, changes nothing.
    expect(e.observe({ term: 1, peerId: 'B' })).toBe(false);
    expect(e.observe({ term: 0, peerId: 'B' })).toBe(false);
    // A higher term wins whoever claims it: a claim is never preempted by rank alone.
    expect(e.observe({ term: 2, peerId: 'B' })).toBe(true);
    expect(e.state()).toEqual({ term: 2, scheduler: 'B' });
  });

  it('a lone agent claims, and steps down to a better claim of the same term when it meets the mesh', () => {
    const e = election(young, [old]);
    e.claim();
    expect(e.isScheduler).toBe(true);
    expect(e.stepDown({ term: 1, peerId: 'A' })).toBe(true);
    expect(e.isScheduler).toBe(false);
    // The older mesh's scheduler does not step down to the newcomer's claim.
    const mesh = election(old, [young]);
    mesh.claim();
    expect(mesh.stepDown({ term: 1, peerId: 'C' })).toBe(false);
  });

  it('ignores a claimant of an equal term it knows nothing of (it cannot rank it)', () => {
    const e = election(young, [old]);
    e.observe({ term: 1, peerId: 'A' });
    expect(e.observe({ term: 1, peerId: 'unknown' })).toBe(false);
    expect(e.observe({ term: 2, peerId: 'unknown' })).toBe(true);
  });

  it('a lost scheduler is not followed again at that term, and is not asked to lead', () => {
    const e = election(young, [old, middle]);
    e.observe({ term: 4, peerId: 'A' });
    expect(e.lose({ term: 4, peerId: 'A' })).toBe(true);
    expect(e.state()).toEqual({ term: 4 });
    expect(e.observe({ term: 4, peerId: 'A' })).toBe(false);
    expect(e.betterRanked().map((c) => c.peerId)).toEqual(['B']);
    // The next term by the next in rank is followed.
    expect(e.observe({ term: 5, peerId: 'B' })).toBe(true);
  });

  it('only members ranked above this agent are asked before it claims; one that may not claim asks everyone', () => {
    expect(election(middle, [old, young]).betterRanked().map((c) => c.peerId)).toEqual(['A']);
    expect(election(old, [middle, young]).betterRanked()).toEqual([]);
    expect(election(old, [middle, young], false).betterRanked().map((c) => c.peerId)).toEqual(['B', 'C']);
  });
});
