// The scheduler's placement decisions, with peers and a clock by hand.
import { describe, expect, it } from 'vitest';
import { SchedulerCore, type Decision, type PeerInfo, type PlacementRequest } from '../node/scheduler/core.js';

const TC = { id: 'a'.repeat(64), arch: 'x64', os: 'linux' };

function peer(id: string, over: Partial<PeerInfo> = {}): PeerInfo {
  return { id, slots: 1, slotsUsed: 0, speed: 1, load: 0, cores: 1, arch: 'x64', os: 'linux', toolchains: [TC.id], rttMs: 1, ...over };
}

function req(client: string, estimateMs: number, over: Partial<PlacementRequest> = {}): PlacementRequest {
  return { client, toolchain: TC, estimateMs, localFree: 0, localSpeed: 1, ...over };
}

/** Sends the requests, flushes once, and returns the answers in request order. */
function place(core: SchedulerCore, requests: PlacementRequest[]): (Decision | undefined)[] {
  const answers: (Decision | undefined)[] = requests.map(() => undefined);
  requests.forEach((r, i) => core.request(r, (d) => (answers[i] = d)));
  core.flush();
  return answers;
}

const at = (d: Decision | undefined) => (d?.where === 'peer' ? d.peer : d?.where);

describe('scheduler placement', () => {
  it('a slot freed by a job reported done goes to a waiting request at once, though the peer\'s last report still counts that job', () => {
    const core = new SchedulerCore({ now: () => 0 });
    core.upsertPeer(peer('p', { slots: 2 }));
    const placed: { peer: string; client: string; expectedMs: number; workMs: number }[] = [];
    const answers: (Decision | undefined)[] = [];
    const ask = (n: number) => {
      for (let i = 0; i < n; i++) {
        const at = answers.length;
        answers.push(undefined);
        core.request(req('c', 100), (d) => {
          answers[at] = d;
          if (d.where === 'peer') placed.push({ peer: d.peer, client: 'c', expectedMs: d.expectedMs, workMs: d.workMs });
        });
      }
      core.flush();
    };
    ask(4);
    // Two slots and one in the peer's own queue; the fourth waits.
    expect(answers.filter((d) => d?.where === 'peer')).toHaveLength(3);
    // The peer reports what it runs: our three.
    core.upsertPeer(peer('p', { slots: 2, slotsUsed: 3 }));
    core.done(placed[0]!, 100);
    expect(answers[3]).toMatchObject({ where: 'peer', peer: 'p' });
  });

  it('jobs a peer reports beyond the ones placed here (a client placing by itself) keep its slots taken', () => {
    const core = new SchedulerCore({ now: () => 0 });
    core.upsertPeer(peer('p', { slots: 2, slotsUsed: 3 }));
    const [d] = place(core, [req('c', 100)]);
    expect(d).toBeUndefined();
    core.upsertPeer(peer('p', { slots: 2, slotsUsed: 1 }));
    core.flush();
    expect(core.view().assigned).toBe(1);
  });

  it('the fastest holder of the toolchain, not a faster peer that would have to fetch it', () => {
    const core = new SchedulerCore({ now: () => 0 });
    core.upsertPeer(peer('slow-holder', { speed: 1 }));
    core.upsertPeer(peer('fast-holder', { speed: 2 }));
    core.upsertPeer(peer('fastest-lacks', { speed: 9, toolchains: [] }));
    const [d] = place(core, [req('c', 100)]);
    expect(d).toMatchObject({ where: 'peer', peer: 'fast-holder', reason: 'fastest-finish' });
  });

  it('a burst: the largest jobs get the fastest slots, then each full peer one in its own queue, the rest wait for slots in size order', () => {
    const core = new SchedulerCore({ now: () => 0 });
    core.upsertPeer(peer('fast', { speed: 3 }));
    core.upsertPeer(peer('slow', { speed: 1 }));
    const answers = place(core, [req('c', 10), req('c', 500), req('c', 50), req('c', 200), req('c', 120), req('c', 80)]);
    // 500 and 200 take the slots; 120 queues behind fast's 500 (done sooner than behind slow's
    // 200), 80 behind slow's; 50 and 10 wait here.
    expect(answers.map(at)).toEqual([undefined, 'fast', undefined, 'slow', 'fast', 'slow']);
    // A slot frees: the larger of the two waiting jobs takes the place in its queue.
    const d = answers[1] as Extract<Decision, { where: 'peer' }>;
    core.done({ peer: 'fast', client: 'c', expectedMs: d.expectedMs, workMs: d.workMs }, 170);
    expect(answers.map(at)).toEqual([undefined, 'fast', 'fast', 'slow', 'fast', 'slow']);
  });

  it('no job queues at a full peer while another peer has a free slot', () => {
    const core = new SchedulerCore({ now: () => 0 });
    core.upsertPeer(peer('fast', { speed: 10 }));
    core.upsertPeer(peer('slow', { speed: 1 }));
    // Behind fast's first job the second would finish sooner, but slow's slot is free.
    expect(place(core, [req('c', 100), req('c', 100)]).map(at)).toEqual(['fast', 'slow']);
  });

  it('between two builds, a freed slot goes to the client with fewer jobs placed', () => {
    const core = new SchedulerCore({ now: () => 0 });
    core.upsertPeer(peer('p', { slots: 2 }));
    const a = place(core, [req('A', 100), req('A', 100), req('A', 100), req('A', 100)]);
    const b = place(core, [req('B', 10)]);
    // Two slots and one place in p's own queue.
    expect(a.map(at)).toEqual(['p', 'p', 'p', undefined]);
    expect(b.map(at)).toEqual([undefined]);
    const first = a[0] as Extract<Decision, { where: 'peer' }>;
    core.done({ peer: 'p', client: 'A', expectedMs: first.expectedMs, workMs: first.workMs });
    expect(b.map(at)).toEqual(['p']);
    expect(a[3]).toBeUndefined();
  });

  it('a far peer (the client measured 600 ms per job there) only when it beats waiting for the near one', () => {
    const core = new SchedulerCore({ now: () => 0 });
    core.upsertPeer(peer('near', { slots: 1 }));
    core.upsertPeer(peer('far', { slots: 1, rttMs: 100 }));
    const linkMs = { far: 600 };
    // Small jobs: the near peer's next slot comes long before a far job would be back.
    const small = place(core, [req('c', 100, { linkMs }), req('c', 100, { linkMs })]);
    expect(small.map(at)).toEqual(['near', undefined]);
    const first = small[0] as Extract<Decision, { where: 'peer' }>;
    core.done({ peer: 'near', client: 'c', expectedMs: first.expectedMs, workMs: first.workMs }, 100);
    expect(small.map(at)).toEqual(['near', 'near']);
    // A long job holds the near peer: the next one is worth the trip.
    const fresh = new SchedulerCore({ now: () => 0 });
    fresh.upsertPeer(peer('near', { slots: 1 }));
    fresh.upsertPeer(peer('far', { slots: 1, rttMs: 100 }));
    expect(place(fresh, [req('c', 5000, { linkMs }), req('c', 1000, { linkMs })]).map(at)).toEqual(['near', 'far']);
    // Without the client's measurement the scheduler's own rtt is all it knows: the far peer takes it.
    const blind = new SchedulerCore({ now: () => 0 });
    blind.upsertPeer(peer('near', { slots: 1 }));
    blind.upsertPeer(peer('far', { slots: 1, rttMs: 100 }));
    expect(place(blind, [req('c', 100), req('c', 100)]).map(at)).toEqual(['near', 'far']);
  });

  it('"local" when the client has a free slot and would finish sooner', () => {
    const core = new SchedulerCore({ now: () => 0 });
    core.upsertPeer(peer('slow', { speed: 0.5 }));
    expect(place(core, [req('c', 100, { localFree: 1, localSpeed: 1 })])[0]).toMatchObject({ where: 'local', reason: 'local-is-faster' });
    expect(at(place(core, [req('c', 100, { localFree: 1, localSpeed: 0.1 })])[0])).toBe('slow');
  });

  it('learns from job times: a peer slower than it advertises loses work to an honest one', () => {
    const core = new SchedulerCore({ now: () => 0 });
    core.upsertPeer(peer('boaster', { speed: 2 }));
    core.upsertPeer(peer('honest', { speed: 1.5 }));
    for (let i = 0; i < 10; i++) {
      const [d] = place(core, [req('c', 100, { skip: ['honest'] })]);
      const placed = d as Extract<Decision, { where: 'peer' }>;
      expect(placed.peer).toBe('boaster');
      core.done({ peer: 'boaster', client: 'c', expectedMs: placed.expectedMs, workMs: placed.workMs }, placed.expectedMs * 3);
    }
    expect(at(place(core, [req('c', 100)])[0])).toBe('honest');
  });

  it('a peer loaded by other work counts as slower', () => {
    const core = new SchedulerCore({ now: () => 0 });
    core.upsertPeer(peer('busy-laptop', { speed: 2, cores: 4, load: 8 }));
    core.upsertPeer(peer('idle-box', { speed: 1, cores: 4, load: 0 }));
    expect(at(place(core, [req('c', 100)])[0])).toBe('idle-box');
  });

  it('never a peer of another machine type; "none" when nobody could ever take the job', () => {
    const core = new SchedulerCore({ now: () => 0 });
    core.upsertPeer(peer('arm', { arch: 'arm64' }));
    expect(place(core, [req('c', 100)])[0]).toEqual({ where: 'none', reason: 'no-candidate' });
  });

  it('a peer fetching the toolchain is left alone; a client that goes away frees its slots and drops its requests', () => {
    let now = 0;
    const core = new SchedulerCore({ now: () => now, fetchGraceMs: 1000 });
    core.upsertPeer(peer('lacks', { toolchains: [] }));
    expect(place(core, [req('c', 100)])[0]).toMatchObject({ where: 'peer', peer: 'lacks', reason: 'fetches-toolchain' });
    core.peerFetching('lacks', TC.id);
    core.removeClient('c');
    expect(place(core, [req('c', 100)])[0]).toEqual({ where: 'none', reason: 'no-candidate' });
    now = 2000;
    // Its slot and the place in its queue.
    expect(place(core, [req('c', 100), req('c', 100)]).map(at)).toEqual(['lacks', 'lacks']);
    const waiting = place(core, [req('c', 100)]);
    expect(waiting[0]).toBeUndefined();
    core.removeClient('c');
    expect(waiting[0]).toEqual({ where: 'none', reason: 'client-gone' });
    expect(core.view()).toMatchObject({ assigned: 0, waiting: 0 });
  });
});
