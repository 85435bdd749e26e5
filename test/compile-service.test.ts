// Where a compile goes next, with fakes of the service's neighbours (no sockets, no sandbox).
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import type { AgentReply, CompileRequest, Job, JobResult } from '../protocol/messages.js';
import { CompileService, type ClientConnection } from '../node/compile-service.js';
import { JobFailure, type Executor } from '../node/executor/executor.js';
import type { InputHasher } from '../node/scan/hasher.js';
import type { InputScanner } from '../node/scan/scanner.js';
import { Placement } from '../node/remote/placement.js';
import { RemoteRunner } from '../node/remote/remote-runner.js';
import { Slots } from '../node/slots.js';
import type { Store } from '../node/store.js';
import { Stats } from '../node/stats.js';
import { tempDir } from './helpers/tmp.js';

class FakeConnection implements ClientConnection {
  replies: AgentReply[] = [];
  closed = false;
  private finish!: (exit: number | undefined) => void;
  readonly finished = new Promise<number | undefined>((r) => (this.finish = r));
  reply(message: AgentReply) {
    this.replies.push(message);
  }
  clientDone(exit = 0) {
    this.finish(exit);
  }
}

function fakeExecutor(behaviour: { freeSlots: number; run?: (job: Job) => Promise<JobResult> }) {
  const runs: Job[] = [];
  const executor = {
    unavailableReason: undefined,
    sandboxUnavailableReason: 'a fake has no sandbox',
    slots: behaviour.freeSlots,
    freeSlots: behaviour.freeSlots,
    tryReserve: () => true,
    release: () => undefined,
    run: (job: Job) => {
      runs.push(job);
      return behaviour.run ? behaviour.run(job) : Promise.reject(new Error('unexpected run'));
    },
  } as unknown as Executor;
  return { executor, runs };
}

function service(localSlots: number, executor: Executor) {
  const stats = new Stats();
  const slots = new Slots(localSlots);
  const scanner = { scanHashed: async () => ({ inputs: [], dirs: [], listings: [], method: 'walk' }) } as unknown as InputScanner;
  const hasher = { hash: async () => undefined } as unknown as InputHasher;
  const log = pino({ level: 'silent' });
  const placement = new Placement({ peers: () => [], selfSlots: () => executor.slots, selfFreeSlots: () => executor.freeSlots, backoffMs: 1000 });
  const store = { pin: () => undefined, unpin: () => undefined } as unknown as Store;
  const remote = new RemoteRunner({
    node: () => undefined,
    store,
    executor,
    placement,
    localSlots: slots,
    stats,
    log,
    jobTimeoutMs: 10_000,
    verifyRate: 0,
    selfId: () => undefined,
    selfSpeed: () => 1,
    hedgeMinMs: 5000,
  });
  const svc = new CompileService({ localSlots: slots, placement, remote, toolchainOf: async () => undefined, scanner, hasher, stats, log });
  return { svc, stats, slots };
}

function request(argv: string[]): CompileRequest {
  return { t: 'compile', v: 1, cwd: tempDir(), argv, compiler: '/usr/bin/gcc', env: {} };
}

const tick = () => new Promise((r) => setTimeout(r, 10));

describe('compile service', () => {
  it('sends a link back to the client to run, with the reason', async () => {
    const { svc, stats } = service(1, fakeExecutor({ freeSlots: 1 }).executor);
    const conn = new FakeConnection();
    const handled = svc.handle(request(['gcc', 'a.o', '-o', 'app']), conn);
    await tick();
    expect(conn.replies).toEqual([{ t: 'run-local', reason: 'link' }]);
    conn.clientDone();
    await handled;
    expect(stats.routes.local.byReason).toEqual({ link: 1 });
  });

  it('holds a local slot for as long as the client runs the compiler', async () => {
    const { svc, slots } = service(1, fakeExecutor({ freeSlots: 0 }).executor);
    const conn = new FakeConnection();
    const handled = svc.handle(request(['gcc', '-c', 'a.c']), conn);
    await tick();
    expect(conn.replies).toEqual([{ t: 'run-local', reason: 'local-slot' }]);
    expect(slots.inUse).toBe(1);
    conn.clientDone();
    await handled;
    expect(slots.inUse).toBe(0);
  });

  it('waits for a local slot rather than queue behind a busy executor', async () => {
    const { executor, runs } = fakeExecutor({ freeSlots: 0 });
    const { svc } = service(1, executor);
    const first = new FakeConnection();
    const second = new FakeConnection();
    const a = svc.handle(request(['gcc', '-c', 'a.c']), first);
    const b = svc.handle(request(['gcc', '-c', 'b.c']), second);
    await tick();
    expect(second.replies).toEqual([]);
    first.clientDone();
    await tick();
    expect(second.replies).toEqual([{ t: 'run-local', reason: 'local-slot' }]);
    second.clientDone();
    await Promise.all([a, b]);
    expect(runs).toHaveLength(0);
  });

  it('falls back to a local compile when the executor fails, counting the reason', async () => {
    const { executor, runs } = fakeExecutor({
      freeSlots: 1,
      run: () => Promise.reject(new JobFailure('timeout', 'the job ran longer than 600000 ms')),
    });
    const { svc, stats } = service(0, executor);
    const conn = new FakeConnection();
    const handled = svc.handle(request(['gcc', '-c', 'a.c']), conn);
    await tick();
    expect(runs).toHaveLength(1);
    expect(conn.replies).toEqual([{ t: 'run-local', reason: 'timeout' }]);
    conn.clientDone();
    await handled;
    expect(stats.routes.fallback.byReason).toEqual({ timeout: 1 });
  });

  it('returns a compile error from the executor as it is, without a local retry', async () => {
    const stderr = new TextEncoder().encode("a.c:1:1: error: unknown type name 'x'\n");
    const { executor } = fakeExecutor({
      freeSlots: 1,
      run: async (job) => ({ id: job.id, exit: 1, stdout: new Uint8Array(), stderr, outputs: [] }),
    });
    const { svc, stats } = service(0, executor);
    const conn = new FakeConnection();
    await svc.handle(request(['gcc', '-c', 'a.c']), conn);
    expect(conn.replies).toEqual([{ t: 'result', exit: 1, stdout: new Uint8Array(), stderr }]);
    expect(stats.routes.fallback.jobs).toBe(0);
  });
});
