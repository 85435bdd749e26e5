// Input trees as content-addressed chunks: what a job offer names instead of every path.
import { describe, expect, it } from 'vitest';
import { encodeBody } from '../protocol/framing.js';
import { joinInputTree, splitInputTree } from '../protocol/input-tree.js';
import type { DirListing, InputFile } from '../protocol/messages.js';

const h = (c: string) => c.repeat(64);
const inputs: InputFile[] = [
  { path: '/src/a.c', hash: h('a'), size: 10, executable: false },
  { path: '/usr/include/stdio.h', hash: h('b'), size: 900, executable: false },
  { path: '/src/a.h', hash: h('c'), size: 20, executable: false },
  { path: '/usr/include/bits/types.h', hash: h('d'), size: 300, executable: false },
];
const listings: DirListing[] = [{ path: '/usr/include', entries: [{ name: 'stdio.h', dir: false }, { name: 'bits', dir: true }] }];

describe('input tree chunks', () => {
  it('split and join give back the same inputs and listings', () => {
    const chunks = splitInputTree(inputs, listings);
    expect(chunks).toHaveLength(4); // /src, /usr/include, /usr/include/bits, one listing
    const joined = joinInputTree(chunks.map((c) => c.data));
    expect(new Set(joined.inputs.map((f) => JSON.stringify(f)))).toEqual(new Set(inputs.map((f) => JSON.stringify(f))));
    expect(joined.listings).toEqual(listings);
  });

  it('the same directory contents make the same chunk whatever the job, so a peer sees it once', () => {
    const one = splitInputTree(inputs, listings);
    const other = splitInputTree([...inputs].reverse(), listings);
    expect(other.map((c) => c.hash)).toEqual(one.map((c) => c.hash));
    const withAnotherSource = splitInputTree([{ ...inputs[0]!, path: '/src/b.c' }, ...inputs.slice(1)], listings);
    const shared = withAnotherSource.filter((c) => one.some((o) => o.hash === c.hash));
    expect(shared).toHaveLength(3);
  });

  it('rejects a chunk whose file name escapes its directory, in one line', () => {
    const evil = encodeBody({ k: 'files', dir: '/src', files: [['../etc/passwd', Buffer.alloc(32), 1, false]] });
    expect(() => joinInputTree([evil])).toThrow(/^invalid chunk: bad file name \.\.\/etc\/passwd$/);
    const relative = encodeBody({ k: 'listing', dir: 'src', entries: [] });
    expect(() => joinInputTree([relative])).toThrow(/absolute path/);
    expect(() => joinInputTree([Buffer.from([0xc1])])).toThrow(/not valid msgpack|invalid k/);
  });
});
