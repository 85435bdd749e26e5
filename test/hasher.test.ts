import { rmSync, utimesSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { InputHasher } from '../node/scan/hasher.js';
import { sha256, Store } from '../node/store.js';
import { tempDir } from './helpers/tmp.js';

async function hasher() {
  const store = new Store(path.join(tempDir(), 'store'), 1 << 30);
  await store.start();
  return { store, hasher: new InputHasher(store) };
}

/** A file that looks settled (modified long enough ago for its stat to be trusted). */
function settledFile(content: string): string {
  const file = path.join(tempDir(), 'h.h');
  writeFileSync(file, content);
  const past = new Date(Date.now() - 60_000);
  utimesSync(file, past, past);
  return file;
}

describe('input hasher', () => {
  it('reads and hashes a settled file once, then answers from its stat cache', async () => {
    const { hasher: h, store } = await hasher();
    const file = settledFile('#define A 1\n');
    const first = await h.hash(file);
    const second = await h.hash(file);
    expect(first.hash).toBe(sha256(Buffer.from('#define A 1\n')));
    expect(second.hash).toBe(first.hash);
    expect(h.stats).toMatchObject({ filesHashed: 1, cacheHits: 1 });
    expect(store.has(first.hash)).toBe(true);
  });

  it('answers a hit without a promise, with the same object each time; a changed or missing file is no hit', async () => {
    const { hasher: h } = await hasher();
    const file = settledFile('#define B 2\n');
    expect(h.cached(file)).toBeUndefined();
    const first = await h.hash(file);
    expect(h.cached(file)).toBe(first);
    writeFileSync(file, '#define B 3\n');
    expect(h.cached(file)).toBeUndefined();
    rmSync(file);
    expect(h.cached(file)).toBeUndefined();
  });

  it('hashes a changed file again', async () => {
    const { hasher: h } = await hasher();
    const file = settledFile('one\n');
    const first = await h.hash(file);
    writeFileSync(file, 'two!\n');
    const past = new Date(Date.now() - 30_000);
    utimesSync(file, past, past);
    const second = await h.hash(file);
    expect(second.hash).not.toBe(first.hash);
    expect(h.stats.filesHashed).toBe(2);
  });

  it('does not trust the stat of a file written just now', async () => {
    const { hasher: h } = await hasher();
    const file = path.join(tempDir(), 'fresh.h');
    writeFileSync(file, 'fresh\n');
    await h.hash(file);
    await h.hash(file);
    expect(h.stats).toMatchObject({ filesHashed: 2, cacheHits: 0 });
  });

  it('hashes a file once when many jobs ask at the same time', async () => {
    const { hasher: h } = await hasher();
    const file = settledFile('shared\n');
    await Promise.all(Array.from({ length: 50 }, () => h.hash(file)));
    expect(h.stats.filesHashed).toBe(1);
  });
});
