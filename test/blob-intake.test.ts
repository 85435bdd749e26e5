// A peer's intake of store files: concurrent jobs that need the same file make one transfer,
// and a file that does not match its hash never enters the store.
import { createHash } from 'node:crypto';
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { packChunk } from '../protocol/compression.js';
import type { BlobChunk } from '../protocol/messages.js';
import { BlobIntake } from '../node/remote/blob-intake.js';
import { Store } from '../node/store.js';
import { tempDir } from './helpers/tmp.js';

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

async function storeAt() {
  const store = new Store(tempDir(), 1 << 30, pino({ level: 'silent' }));
  await store.start();
  return store;
}

async function chunksOf(hash: string, data: Buffer): Promise<BlobChunk[]> {
  return [{ t: 'blob', hash, ...(await packChunk(data)), last: true }];
}

describe('blob intake', () => {
  it('two jobs needing the same file: the first fetches it, the second waits for that transfer', async () => {
    const store = await storeAt();
    const intake = new BlobIntake(store);
    const header = Buffer.from('#define SHARED 1\n'.repeat(100));
    const own = Buffer.from('int only_b;\n');
    const [h, o] = [sha(header), sha(own)];
    const sizes = new Map([
      [h, header.length],
      [o, own.length],
    ]);
    const jobA = intake.claim([h]);
    const jobB = intake.claim([h, o]);
    expect(jobA.mine).toEqual([h]);
    expect(jobB.mine).toEqual([o]);
    expect(jobB.others).toHaveLength(1);
    const queue = await chunksOf(h, header);
    await intake.receive(jobA.mine, sizes, async () => queue.shift()!);
    await jobB.others[0];
    expect(store.has(h)).toBe(true);
    // A third job later finds it in the store: nothing to fetch at all.
    expect(intake.claim([h])).toEqual({ mine: [], others: [] });
  });

  it('a file whose content does not match its hash is refused, and waiting jobs fetch it themselves', async () => {
    const store = await storeAt();
    const intake = new BlobIntake(store);
    const real = Buffer.from('int x;\n'.repeat(50));
    const hash = sha(real);
    const first = intake.claim([hash]);
    const second = intake.claim([hash]);
    const forged = await chunksOf(hash, Buffer.from('int y;\n'.repeat(50)));
    await expect(intake.receive(first.mine, new Map([[hash, real.length]]), async () => forged.shift()!)).rejects.toThrow(/does not match its hash/);
    await expect(second.others[0]).rejects.toThrow();
    expect(store.has(hash)).toBe(false);
    expect(intake.claim([hash]).mine).toEqual([hash]);
  });
});
