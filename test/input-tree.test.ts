// A job's input tree as offered: files inline by directory, listings as content-addressed chunks.
import { describe, expect, it } from 'vitest';
import { encodeBody } from '../protocol/framing.js';
import { inlineFiles, joinInputTree, listingChunks } from '../protocol/input-tree.js';
import type { DirListing, InputFile } from '../protocol/messages.js';

const h = (c: string) => c.repeat(64);
const inputs: InputFile[] = [
  { path: '/src/a.c', hash: h('a'), size: 10, executable: false },
  { path: '/usr/include/stdio.h', hash: h('b'), size: 900, executable: false },
  { path: '/src/a.h', hash: h('c'), size: 20, executable: false },
  { path: '/usr/include/bits/types.h', hash: h('d'), size: 300, executable: false },
];
const listings: DirListing[] = [{ path: '/usr/include', entries: [{ name: 'stdio.h', dir: false }, { name: 'bits', dir: true }] }];

describe('input trees on the wire', () => {
  it('inline files and listing chunks give back the same inputs and listings', () => {
    const files = inlineFiles(inputs);
    expect(files.map(([dir]) => dir)).toEqual(['/src', '/usr/include', '/usr/include/bits']);
    const joined = joinInputTree(files, listingChunks(listings).map((c) => c.data));
    expect(new Set(joined.inputs.map((f) => JSON.stringify(f)))).toEqual(new Set(inputs.map((f) => JSON.stringify(f))));
    expect(joined.listings).toEqual(listings);
  });

  it('the order of a job’s inputs does not matter, so consecutive offers line up; a listing is the same chunk for every job', () => {
    expect(encodeBody(inlineFiles([...inputs].reverse()))).toEqual(encodeBody(inlineFiles(inputs)));
    expect(listingChunks(listings)[0]!.hash).toBe(listingChunks(structuredClone(listings))[0]!.hash);
  });

  it('rejects a file name that escapes its directory, a relative directory, and a malformed listing, in one line', () => {
    expect(() => joinInputTree([['/src', [['../etc/passwd', Buffer.alloc(32), 1, false]]]], [])).toThrow(/^invalid tree: bad file name \.\.\/etc\/passwd$/);
    expect(() => joinInputTree([['/src/../etc', []]], [])).toThrow(/not an absolute normalised path/);
    expect(() => joinInputTree([], [encodeBody({ k: 'listing', dir: 'src', entries: [] })])).toThrow(/not an absolute normalised path/);
    expect(() => joinInputTree([], [Buffer.from([0xc1])])).toThrow(/not valid msgpack|invalid k/);
    // The joined job is not validated again as a whole, so the joined path's length is checked here.
    const deep = `/${'d'.repeat(4000)}`;
    expect(() => joinInputTree([[deep, [['f'.repeat(200), Buffer.alloc(32), 1, false]]]], [])).toThrow(/^invalid tree: a path longer than 4096 characters$/);
  });
});
