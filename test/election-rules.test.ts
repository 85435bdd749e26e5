// The election's rules, agent by agent, with adverts passed by hand and a hand-moved clock.
import { describe, expect, it } from 'vitest';
import { PROTOCOL_VERSION, type Advert } from '../protocol/messages.js';
import { Election, LEASE_MS, type LivePeer } from '../node/scheduler/election.js';

interface Agent {
  id: string;
  startedAt: number;
  election: Election;
}

function agent(id: string, startedAt: number): Agent {
  return { id, startedAt, election: new Election({ peerId: id, protocolVersion: PROTOCOL_VERSION, startedAt }) };
}

function advertOf(a: Agent, now: number): Advert {
  return {
    t: 'advert',
    nodeName: a.id,
    peerId: a.id,
    addresses: [],
    cores: 2,
    slots: 2,
    slotsUsed: 0,
    load: 0,
    freeMemoryBytes: 0,
    speed: 1,
    os: 'linux',
    arch: 'x64',
    libc: 'glibc',
    toolchains: [],
    protocolVersion: PROTOCOL_VERSION,
    sentAt: now,
    startedAt: a.startedAt,
    election: a.election.advertised(now),
  };
}

/** Every agent sees every other one's advert as of now, then decides; `rounds` times. */
function gossip(agents: Agent[], now: number, rounds = 3): void {
  for (let r = 0; r < rounds; r++) {
    const adverts = new Map(agents.map((a) => [a.id, advertOf(a, now)]));
    for (const a of agents) {
      const live: LivePeer[] = agents.filter((b) => b !== a).map((b) => ({ advert: adverts.get(b.id)!, lastSeen: now }));
      a.election.update(live, now);
    }
  }
}

const schedulers = (agents: Agent[]) => new Set(agents.map((a) => a.election.state().scheduler));

describe('election', () => {
  it('an agent alone is its own scheduler at once, in term 1', () => {
    const a = agent('a', 100);
    a.election.update([], 1000);
    expect(a.election.state()).toEqual({ term: 1, scheduler: 'a' });
  });

  it('agents that started together and claimed the same term settle on the best-ranked one: longest running, then smallest id', () => {
    const agents = [agent('c', 100), agent('b', 50), agent('a', 50)];
    for (const a of agents) a.election.update([], 1000);
    expect(schedulers(agents).size).toBe(3);
    gossip(agents, 1000);
    expect(schedulers(agents)).toEqual(new Set(['a']));
    expect(agents.map((a) => a.election.state().term)).toEqual([1, 1, 1]);
  });

  it('a better-ranked newcomer does not take over a scheduler whose lease is valid', () => {
    const old = [agent('m', 500), agent('n', 600)];
    gossip(old, 1000);
    expect(schedulers(old)).toEqual(new Set(['m']));
    const newcomer = agent('a', 1); // ranks first
    gossip([...old, newcomer], 1100);
    expect(schedulers([...old, newcomer])).toEqual(new Set(['m']));
  });

  it('when the scheduler leaves, the best-ranked survivor claims the next term and everyone follows it', () => {
    const agents = [agent('a', 1), agent('b', 2), agent('c', 3)];
    gossip(agents, 1000);
    expect(agents[1]!.election.state()).toEqual({ term: 1, scheduler: 'a' });
    const survivors = agents.slice(1);
    gossip(survivors, 1100);
    expect(schedulers(survivors)).toEqual(new Set(['b']));
    expect(survivors.map((a) => a.election.state().term)).toEqual([2, 2]);
  });

  it('a scheduler silent past its lease (still listed, no adverts) is replaced once its grace to claim again is over', () => {
    const agents = [agent('a', 1), agent('b', 2)];
    gossip(agents, 1000);
    const lastA = advertOf(agents[0]!, 1000);
    const expired = 1000 + LEASE_MS + 1;
    agents[1]!.election.update([{ advert: lastA, lastSeen: 1000 }], expired);
    expect(agents[1]!.election.state().scheduler).toBeUndefined();
    agents[1]!.election.update([{ advert: lastA, lastSeen: 1000 }], expired + 1600);
    expect(agents[1]!.election.state()).toEqual({ term: 2, scheduler: 'b' });
  });

  it('after a partition heals, the higher term wins and the other scheduler steps down: one again', () => {
    const left = [agent('a', 1), agent('b', 2)];
    const right = [agent('c', 3), agent('d', 4)];
    gossip(left, 1000);
    gossip(right, 1000);
    // d lost sight of c on the right and took over: term 2 there, while c still holds term 1.
    right[1]!.election.update([], 5000);
    expect(right[1]!.election.state()).toEqual({ term: 2, scheduler: 'd' });
    const all = [...left, ...right];
    gossip(all, 5100);
    expect(schedulers(all)).toEqual(new Set(['d']));
    expect(new Set(all.map((a) => a.election.state().term)).size).toBe(1);
  });

  it('when the best candidate does not claim, the next one in rank does after a grace period', () => {
    const mute = agent('a', 1);
    const b = agent('b', 2);
    // b sees a's advert (a ranks first) but a never claims.
    const muteAdvert: Advert = { ...advertOf(mute, 0), election: { term: 0, scheduler: '', leaseMs: 0 } };
    b.election.update([{ advert: muteAdvert, lastSeen: 1000 }], 1000);
    expect(b.election.state().scheduler).toBeUndefined();
    b.election.update([{ advert: muteAdvert, lastSeen: 2600 }], 2600);
    expect(b.election.state()).toEqual({ term: 1, scheduler: 'b' });
  });

  it('agents whose adverts say nothing of elections (older versions) are not candidates', () => {
    const b = agent('b', 2);
    const { election: _e, startedAt: _s, ...legacy } = { ...advertOf(agent('a', 1), 1000) };
    b.election.update([{ advert: legacy as Advert, lastSeen: 1000 }], 1000);
    expect(b.election.state()).toEqual({ term: 1, scheduler: 'b' });
  });
});
