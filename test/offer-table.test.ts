// The input table a client and a peer share: what an offer carries the first time and after,
// offers arriving out of order, a peer that lost the table, and a client that lies.
import { describe, expect, it } from 'vitest';
import type { InputFile } from '../protocol/messages.js';
import { ClientTable, PeerTables } from '../node/remote/offer-table.js';

const file = (i: number, hash = i): InputFile => ({ path: `/src/include/h${i}.h`, hash: hash.toString(16).padStart(64, '0'), size: 100 + i, executable: false });
const byPath = (a: InputFile, b: InputFile) => a.path.localeCompare(b.path);

describe('input tables', () => {
  it('defines each file once, then names it by a number; the peer gets back exactly the inputs', () => {
    const client = new ClientTable();
    const peer = new PeerTables();
    const first = Array.from({ length: 600 }, (_, i) => file(i));
    const a = client.encode(first);
    expect(a.refs.defs).toHaveLength(600);
    expect(peer.resolve(a.refs)!.sort(byPath)).toEqual([...first].sort(byPath));
    client.acked(a.carried);
    // The next unit shares 550 headers and reads 50 of its own: only those are defined.
    const second = [...first.slice(50), ...Array.from({ length: 50 }, (_, i) => file(1000 + i))];
    const b = client.encode(second);
    expect(b.refs.defs).toHaveLength(50);
    expect(b.refs.refs.every((d) => d <= 600)).toBe(true);
    expect(peer.resolve(b.refs)!.sort(byPath)).toEqual([...second].sort(byPath));
  });

  it('an offer overtaken by a later one: definitions not yet acknowledged travel again', () => {
    const client = new ClientTable();
    const peer = new PeerTables();
    const a = client.encode([file(1), file(2)]);
    const b = client.encode([file(2), file(3)]); // sent before a was answered
    expect(b.refs.defs.map((d) => d[0])).toEqual([1, 2]);
    expect(peer.resolve(b.refs)).toHaveLength(2); // b arrives first
    expect(peer.resolve(a.refs)).toHaveLength(2);
  });

  it('a peer that lost the table says so (undefined: refused as an unknown dictionary)', () => {
    const client = new ClientTable();
    client.acked(client.encode([file(1), file(2)]).carried);
    const fresh = new PeerTables();
    expect(fresh.resolve(client.encode([file(1), file(2), file(3)]).refs)).toBeUndefined();
  });

  it('a changed file is a new entry; one number defined twice differently is refused', () => {
    const client = new ClientTable();
    const peer = new PeerTables();
    const a = client.encode([file(1)]);
    peer.resolve(a.refs);
    client.acked(a.carried);
    const changed = client.encode([file(1, 99)]);
    expect(changed.refs.defs).toHaveLength(1);
    expect(peer.resolve(changed.refs)![0]!.hash).toBe(file(1, 99).hash);
    const forged = { ...changed.refs, defs: [[0, '/src/include/h1.h', Buffer.alloc(32, 7), 101, false] as (typeof changed.refs.defs)[number]] };
    expect(() => peer.resolve(forged)).toThrow(/defined twice differently/);
    const sneaky = { ...changed.refs, defs: [[5, '/src/../etc/passwd', Buffer.alloc(32, 7), 1, false] as (typeof changed.refs.defs)[number]] };
    expect(() => peer.resolve(sneaky)).toThrow(/not a normalised path/);
  });
});
