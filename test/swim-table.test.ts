// The membership table's rules, without sockets (node/mesh/membership/table.ts): which update
// wins, how a member refutes a suspicion of itself, how the suspicion timeout falls as others
// confirm it, and how often news is passed on.
import { describe, expect, it } from 'vitest';
import { SwimTable, initialIncarnation } from '../node/mesh/membership/table.js';
import type { MemberCard } from '../protocol/swim-messages.js';

function card(peerId: string, extra: Partial<MemberCard> = {}): MemberCard {
  return { peerId, name: peerId, addresses: [], startedAt: 1_000_000, protocolVersion: 1, cores: 2, slots: 2, speed: 1, os: 'linux', arch: 'x64', libc: 'glibc', toolchains: [], ...extra };
}

function table(self = 'self'): SwimTable {
  return new SwimTable(() => card(self), 1000);
}

describe('membership table', () => {
  it('a newer incarnation wins; at equal incarnations suspect beats alive and dead beats both', () => {
    const t = table();
    expect(t.apply({ peerId: 'a', state: 'alive', incarnation: 5, card: card('a') }, 'x')).toBe(true);
    expect(t.apply({ peerId: 'a', state: 'alive', incarnation: 4, card: card('a', { slots: 9 }) }, 'x')).toBe(false);
    expect(t.apply({ peerId: 'a', state: 'suspect', incarnation: 5 }, 'x')).toBe(true);
    expect(t.get('a')?.state).toBe('suspect');
    expect(t.apply({ peerId: 'a', state: 'alive', incarnation: 5, card: card('a') }, 'x')).toBe(false);
    expect(t.apply({ peerId: 'a', state: 'alive', incarnation: 6, card: card('a', { slots: 9 }) }, 'x')).toBe(true);
    expect(t.get('a')).toMatchObject({ state: 'alive', incarnation: 6, card: { slots: 9 } });
    expect(t.apply({ peerId: 'a', state: 'dead', incarnation: 6 }, 'x')).toBe(true);
    expect(t.get('a')).toBeUndefined();
    // Old news of the dead is ignored; a new life (higher incarnation) is not.
    expect(t.apply({ peerId: 'a', state: 'alive', incarnation: 6, card: card('a') }, 'y')).toBe(false);
    expect(t.apply({ peerId: 'a', state: 'alive', incarnation: 7, card: card('a') }, 'y')).toBe(true);
  });

  it('a member suspected or buried while alive refutes with a higher incarnation, sent first', () => {
    const t = table('self');
    const start = t.incarnation;
    expect(start).toBe(initialIncarnation(1_000_000));
    const refuted: number[] = [];
    t.on('refuted', (i) => refuted.push(i));
    t.apply({ peerId: 'self', state: 'suspect', incarnation: start }, 'x');
    expect(t.incarnation).toBe(start + 1);
    t.apply({ peerId: 'self', state: 'dead', incarnation: start + 1 }, 'x');
    expect(refuted).toEqual([start + 1, start + 2]);
    expect(t.piggyback(8)).toContainEqual(expect.objectContaining({ peerId: 'self', state: 'alive', incarnation: start + 2 }));
  });

  it('the suspicion timeout grows with log n and falls as other members confirm it', () => {
    const small = table();
    const large = table();
    for (let i = 0; i < 999; i++) large.apply({ peerId: `m${i}`, state: 'alive', incarnation: 1, card: card(`m${i}`) }, 'x');
    for (let i = 0; i < 9; i++) small.apply({ peerId: `m${i}`, state: 'alive', incarnation: 1, card: card(`m${i}`) }, 'x');
    expect(large.suspicionTimeoutMs(0)).toBeGreaterThan(small.suspicionTimeoutMs(0) * 2.5);
    expect(large.suspicionTimeoutMs(1)).toBeLessThan(large.suspicionTimeoutMs(0));
    expect(large.suspicionTimeoutMs(2)).toBe(large.suspicionTimeoutMs(9));
    // A suspect due for its last probe: only a suspect still at that incarnation is buried.
    small.suspect('m1', 0);
    expect(small.expired(small.suspicionTimeoutMs(0) * 2)).toEqual(['m1']);
    small.apply({ peerId: 'm1', state: 'alive', incarnation: 2, card: card('m1') }, 'm1');
    expect(small.buryIfStillSuspect('m1', 1)).toBe(false);
    expect(small.get('m1')?.state).toBe('alive');
  });

  it('news is passed on a bounded number of times, and a message to a suspect carries its suspicion first', () => {
    const t = table();
    for (let i = 0; i < 4; i++) t.piggyback(8); // our own introduction, sent 4 × log10(n) times while alone
    expect(t.piggyback(8)).toEqual([]);
    for (let i = 0; i < 9; i++) t.apply({ peerId: `m${i}`, state: 'alive', incarnation: 1, card: card(`m${i}`) }, 'x');
    let sent = 0;
    for (let round = 0; round < 20; round++) sent += t.piggyback(100).length;
    expect(sent).toBe(9 * 4 * Math.ceil(Math.log10(11)));
    t.suspect('m3');
    expect(t.piggyback(4, 'm3')[0]).toEqual({ peerId: 'm3', state: 'suspect', incarnation: 1 });
  });
});
