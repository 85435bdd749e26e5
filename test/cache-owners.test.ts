// Rendezvous hashing of the result cache's entries (node/cache/owners.ts): the same owners from
// any order of the same members, stable when others come and go, and spread evenly.
import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { ownersOf } from '../node/cache/owners.js';

const key = (i: number) => createHash('sha256').update(`key ${i}`).digest('hex');
const members = Array.from({ length: 10 }, (_, i) => `12D3KooWmember${i}`);

describe('ownersOf', () => {
  it('names the same distinct owners whatever the order of the members', () => {
    for (let i = 0; i < 50; i++) {
      const owners = ownersOf(key(i), members);
      expect(owners).toHaveLength(2);
      expect(new Set(owners).size).toBe(2);
      expect(ownersOf(key(i), [...members].reverse())).toEqual(owners);
      expect(ownersOf(key(i), [...members, ...members])).toEqual(owners);
    }
  });

  it('moves only the entries of a member that leaves, and gives a newcomer only what it ranks first for', () => {
    for (let i = 0; i < 200; i++) {
      const owners = ownersOf(key(i), members);
      const others = members.filter((m) => !owners.includes(m));
      expect(ownersOf(key(i), members.filter((m) => m !== others[0]))).toEqual(owners);
      expect(ownersOf(key(i), members.filter((m) => m !== owners[0]))[0]).toBe(owners[1]);
      const withNewcomer = ownersOf(key(i), [...members, '12D3KooWnewcomer']);
      expect(withNewcomer.filter((m) => m !== '12D3KooWnewcomer')).toEqual(owners.slice(0, withNewcomer.includes('12D3KooWnewcomer') ? 1 : 2));
    }
  });

  it('spreads keys evenly', () => {
    const first = new Map<string, number>();
    const KEYS = 5000;
    for (let i = 0; i < KEYS; i++) {
      const [owner] = ownersOf(key(i), members);
      first.set(owner!, (first.get(owner!) ?? 0) + 1);
    }
    // 500 expected each; 4 standard deviations is ±85.
    for (const m of members) expect(Math.abs((first.get(m) ?? 0) - KEYS / members.length)).toBeLessThan(85);
  });
});
