// The peer's toolchain cache: LRU eviction within its bound, leased toolchains kept, one install
// per id however many ask, touched trees verified again and tampered ones removed, and
// last-used times that survive a restart.
import { existsSync, readdirSync, utimesSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { Readable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { ToolchainCache, type ToolchainCacheLog } from '../node/toolchain-cache.js';
import { ToolchainRejected } from '../toolchain/unpack.js';
import { makeToolchainTree, tarOfTree } from './helpers/toolchain-tars.js';
import { tempDir } from './helpers/tmp.js';

interface Tarball {
  id: string;
  bytes: Buffer;
}

/** A valid toolchain tarball of about `driverBytes` bytes of files. */
async function tarball(seed: string, driverBytes = 20_000, description = {}): Promise<Tarball> {
  return tarOfTree(makeToolchainTree(tempDir('meshcc-tree-'), seed, { driverBytes, description }));
}

function source(t: Tarball): Readable {
  return Readable.from([t.bytes]);
}

/** A clock that moves one second per reading, so last-used times never tie. */
function ticking(): () => number {
  let t = 1_700_000_000_000;
  return () => (t += 1000);
}

function recordingLog(): ToolchainCacheLog & { messages: string[] } {
  const messages: string[] = [];
  return { messages, debug: (_obj, msg) => messages.push(msg), warn: (_obj, msg) => messages.push(msg) };
}

async function installAndRelease(cache: ToolchainCache, t: Tarball): Promise<void> {
  (await cache.install(t.id, source(t))).release();
}

function idsOnDisk(dir: string): string[] {
  return readdirSync(dir).filter((n) => /^[0-9a-f]{64}$/.test(n)).sort();
}

// Each toolchain below is ~23 KB of files (20 000-byte driver, 3000-byte library, description).
const BOUND_FOR_TWO = 50_000;

describe('ToolchainCache', () => {
  it('evicts the least recently used toolchain when over its bound', async () => {
    const dir = tempDir('meshcc-cache-');
    const cache = new ToolchainCache({ dir, maxBytes: BOUND_FOR_TWO, now: ticking() });
    const [a, b, c] = await Promise.all([tarball('a'), tarball('b'), tarball('c')]);
    await installAndRelease(cache, a);
    await installAndRelease(cache, b);
    (await cache.acquire(a.id))!.release(); // a is now more recent than b
    await installAndRelease(cache, c);
    await cache.prune();
    expect(cache.has(b.id)).toBe(false);
    expect(cache.has(a.id) && cache.has(c.id)).toBe(true);
    expect(idsOnDisk(dir)).toEqual([a.id, c.id].sort());
    expect(cache.totalBytes).toBeLessThanOrEqual(BOUND_FOR_TWO);
    expect(await cache.acquire(b.id)).toBeUndefined();
  });

  it('never evicts a toolchain in use, and evicts it once released', async () => {
    const dir = tempDir('meshcc-cache-');
    const cache = new ToolchainCache({ dir, maxBytes: 30_000, now: ticking() });
    const [a, b] = await Promise.all([tarball('a'), tarball('b')]);
    const leaseA = await cache.install(a.id, source(a));
    const leaseB = await cache.install(b.id, source(b));
    expect(await cache.prune()).toEqual([]);
    expect(cache.list().map((t) => t.inUse)).toEqual([true, true]);
    // Releasing the last lease runs the eviction that waited for it.
    leaseA.release();
    leaseA.release(); // idempotent: b's lease is not released by it
    expect(cache.has(a.id)).toBe(false);
    expect(idsOnDisk(dir)).toEqual([b.id]);
    expect(await cache.prune()).toEqual([]);
    expect(cache.list()).toMatchObject([{ id: b.id, inUse: true }]);
    expect(existsSync(path.join(leaseB.root, 'usr/libexec/fake/fakecc-1'))).toBe(true);
    leaseB.release();
  });

  it('makes one install of concurrent installs of one id, and leases it to each caller', async () => {
    const dir = tempDir('meshcc-cache-');
    const cache = new ToolchainCache({ dir, maxBytes: 10_000_000 });
    const t = await tarball('shared');
    let opened = 0;
    const open = async (): Promise<Readable> => {
      opened++;
      await new Promise((resolve) => setTimeout(resolve, 50));
      return source(t);
    };
    const installs = [cache.install(t.id, open), cache.install(t.id, open), cache.install(t.id, open)];
    await new Promise((resolve) => setTimeout(resolve, 10));
    // Asked while the install is under way: waits for it rather than answering "missing".
    const acquired = cache.acquire(t.id);
    const leases = [...(await Promise.all(installs)), await acquired];
    expect(opened).toBe(1);
    expect(leases.map((l) => l?.root)).toEqual(Array(4).fill(path.join(dir, t.id)));
    expect(readdirSync(dir).filter((n) => n.startsWith('.staging-'))).toEqual([]);
    for (const l of leases.slice(0, 3)) l!.release();
    expect(cache.list()[0]?.inUse).toBe(true);
    leases[3]!.release();
    expect(cache.list()[0]?.inUse).toBe(false);
  });

  it('verifies a touched tree again and keeps it, and removes a tampered one', async () => {
    const dir = tempDir('meshcc-cache-');
    const log = recordingLog();
    let clock = Date.now();
    const cache = new ToolchainCache({ dir, maxBytes: 10_000_000, log, now: () => clock });
    const t = await tarball('touched');
    (await cache.install(t.id, source(t))).release();
    const driver = path.join(dir, t.id, 'usr/libexec/fake/fakecc-1');

    utimesSync(driver, new Date(), new Date(Date.now() + 5000));
    const lease = await cache.acquire(t.id);
    expect(lease?.root).toBe(path.join(dir, t.id));
    expect(log.messages).toContain('toolchain tree touched since install, verifying it again');
    lease!.release();
    log.messages.length = 0;
    (await cache.acquire(t.id))!.release();
    expect(log.messages).not.toContain('toolchain tree touched since install, verifying it again');

    writeFileSync(driver, Buffer.alloc(20_000, 0x90)); // same size, other bytes
    // A tree found intact is not walked again for two seconds (every job of a build acquires it).
    (await cache.acquire(t.id))!.release();
    clock += 2500;
    expect(await cache.acquire(t.id)).toBeUndefined();
    expect(log.messages).toContain('installed toolchain was modified: removing it');
    expect(cache.has(t.id)).toBe(false);
    expect(idsOnDisk(dir)).toEqual([]);

    // The same id installs again from a good tarball.
    (await cache.install(t.id, source(t))).release();
    expect(cache.has(t.id)).toBe(true);
  });

  it('keeps last-used times across a new instance on the same directory', async () => {
    const dir = tempDir('meshcc-cache-');
    const clock = ticking();
    const first = new ToolchainCache({ dir, maxBytes: BOUND_FOR_TWO, now: clock });
    const [a, b, c] = await Promise.all([tarball('a'), tarball('b'), tarball('c')]);
    await installAndRelease(first, b);
    await installAndRelease(first, a);
    (await first.acquire(b.id))!.release(); // a is the least recently used
    await first.flush();
    const byId = (a: { id: string }, b: { id: string }): number => a.id.localeCompare(b.id);
    const listed = first.list().sort(byId);
    expect(listed.map((t) => t.lastUsed).every((t) => t > 0)).toBe(true);

    const second = new ToolchainCache({ dir, maxBytes: BOUND_FOR_TWO, now: clock });
    expect(second.list().sort(byId)).toEqual(listed);
    await installAndRelease(second, c);
    await second.prune();
    expect(second.has(a.id)).toBe(false);
    expect(second.has(b.id) && second.has(c.id)).toBe(true);
  });

  it('refuses a toolchain for another machine and one larger than the whole cache, changing nothing', async () => {
    const dir = tempDir('meshcc-cache-');
    const cache = new ToolchainCache({ dir, maxBytes: 30_000 });
    const foreign = await tarball('foreign', 1000, { arch: 'sparc64' });
    await expect(cache.install(foreign.id, source(foreign))).rejects.toThrow(ToolchainRejected);
    await expect(cache.install(foreign.id, source(foreign))).rejects.toThrow(/platform/);
    const huge = await tarball('huge', 40_000);
    await expect(cache.install(huge.id, source(huge))).rejects.toThrow(/too-large/);
    expect(cache.list()).toEqual([]);
    expect(readdirSync(dir)).toEqual([]);
  });
});
