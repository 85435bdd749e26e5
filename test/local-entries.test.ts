// The agent's own cache entries: an object whose bytes were checked once is not hashed again
// while its stat data (taken after each read) is unchanged, and an object altered on disk after
// that check is still never handed out; an entry is read and checked once, then kept decoded.
import { chmodSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { LocalEntries } from '../node/cache/local-entries.js';
import { sha256, Store } from '../node/store.js';
import { tempDir } from './helpers/tmp.js';

const log = pino({ level: 'silent' });

async function entriesWithOne(object: Buffer) {
  const home = tempDir('meshcc-entries-');
  const store = new Store(path.join(home, 'store'), 1 << 30, log);
  await store.start();
  const entries = new LocalEntries(path.join(home, 'entries'), store, 1 << 30, log);
  await entries.start();
  const key = 'ab'.repeat(32);
  const hash = sha256(object);
  await entries.put(
    { key, writer: 'peer', writtenAt: Date.now(), exit: 0, stdout: new Uint8Array(), stderr: Buffer.from('warning: kept\n'), outputs: [{ path: '/src/a.o', hash, size: object.length, executable: false }] },
    [object],
  );
  return { store, entries, key, objectPath: store.pathOf(hash) };
}

describe('entries held by this agent', () => {
  it('never hand out an object altered after its bytes were checked and remembered', async () => {
    const object = Buffer.from('\x7fELF object bytes '.repeat(100));
    const { entries, key, objectPath } = await entriesWithOne(object);
    // Stat data is remembered only once it is two seconds old (a file can change twice within
    // one timestamp tick).
    await new Promise((r) => setTimeout(r, 2_200));
    expect(Buffer.from((await entries.get(key))!.outputs[0]!.data)).toEqual(object);
    expect(Buffer.from((await entries.get(key))!.outputs[0]!.data)).toEqual(object);
    const altered = readFileSync(objectPath);
    altered[altered.length - 1] = altered[altered.length - 1]! ^ 0xff;
    chmodSync(objectPath, 0o644);
    writeFileSync(objectPath, altered);
    expect(await entries.get(key)).toBeUndefined();
    // Dropped, not merely skipped once.
    expect(entries.has(key)).toBe(false);
  });

  it('trust the stat data of an object they wrote themselves at once, and still see it altered a moment later', async () => {
    const object = Buffer.from('\x7fELF fresh object '.repeat(100));
    const { entries, key, objectPath } = await entriesWithOne(object);
    expect(Buffer.from((await entries.get(key, true))!.outputs[0]!.data).length).toBe(0); // named, not read
    // Past one timestamp tick (a jiffy, at most 10 ms): a write changes the ctime.
    await new Promise((r) => setTimeout(r, 30));
    const altered = readFileSync(objectPath);
    altered[0] = altered[0]! ^ 0xff;
    chmodSync(objectPath, 0o644);
    writeFileSync(objectPath, altered);
    expect(await entries.get(key, true)).toBeUndefined();
  });

  it('keep an entry decoded: its file gone from under the agent, the hit still holds; its object gone, a miss', async () => {
    const object = Buffer.from('\x7fELF another object '.repeat(50));
    const { entries, key, objectPath } = await entriesWithOne(object);
    rmSync(path.join(path.dirname(path.dirname(objectPath)), '..', 'entries', key.slice(0, 2), key));
    const hit = await entries.get(key);
    expect(Buffer.from(hit!.entry.stderr).toString()).toBe('warning: kept\n');
    expect(Buffer.from(hit!.outputs[0]!.data)).toEqual(object);
    rmSync(objectPath);
    expect(await entries.get(key)).toBeUndefined();
  });
});
