import { existsSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { sha256, Store } from '../node/store.js';
import { tempDir } from './helpers/tmp.js';

const blob = (n: number, fill: number) => Buffer.alloc(n, fill);

async function storeOf(maxBytes: number, dir = tempDir()) {
  const store = new Store(dir, maxBytes);
  await store.start();
  return store;
}

describe('content-addressed store', () => {
  it('keeps a file under its sha256 and writes it once', async () => {
    const store = await storeOf(1024);
    const data = blob(10, 1);
    const hash = sha256(data);
    await Promise.all([store.put(hash, data), store.put(hash, data)]);
    expect(readFileSync(store.pathOf(hash))).toEqual(data);
    expect(store.stats).toMatchObject({ files: 1, bytes: 10 });
  });

  it('evicts the least recently used file when over its bound', async () => {
    const store = await storeOf(250);
    const [a, b, c] = [blob(100, 1), blob(100, 2), blob(100, 3)];
    await store.put(sha256(a), a);
    await store.put(sha256(b), b);
    store.touch(sha256(a));
    await store.put(sha256(c), c);
    expect(store.has(sha256(a))).toBe(true);
    expect(store.has(sha256(b))).toBe(false);
    expect(existsSync(store.pathOf(sha256(b)))).toBe(false);
    expect(store.has(sha256(c))).toBe(true);
  });

  it('never evicts a file pinned by a running job', async () => {
    const store = await storeOf(150);
    const [a, b] = [blob(100, 1), blob(100, 2)];
    await store.put(sha256(a), a);
    store.pin([sha256(a)]);
    await store.put(sha256(b), b);
    expect(store.has(sha256(a))).toBe(true);
    store.unpin([sha256(a)]);
    await new Promise((r) => setTimeout(r, 20));
    expect(store.stats.bytes).toBeLessThanOrEqual(150);
  });

  it('finds its files again after a restart and leaves no temporary files', async () => {
    const dir = tempDir();
    const first = await storeOf(1024, dir);
    const data = blob(5, 9);
    await first.put(sha256(data), data);
    const second = await storeOf(1024, dir);
    expect(second.has(sha256(data))).toBe(true);
    expect(readdirSync(path.join(dir, 'tmp'))).toEqual([]);
  });

  it('refuses to pin a missing file', async () => {
    const store = await storeOf(1024);
    expect(() => store.pin(['0'.repeat(64)])).toThrow(/missing/);
  });
});
