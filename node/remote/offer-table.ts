// The input tables a client and a peer share: every input file a client's jobs named to a peer
// gets a number the first time ([path, sha256, size, executable] sent once), and later offers
// name it by that number. A kernel unit reads ~600 files: as entries, their 32-byte hashes
// alone are 19 KB that no compressor shrinks (and deflate's 32 KB window cannot reach back to
// the previous offer); as numbers in ascending order, their differences are mostly one byte.
//
// The table lives in memory on both sides, under an id the client draws. Offers on different
// streams may arrive in any order, so an offer repeats every definition the peer has not yet
// shown it holds (by answering an offer that carried it). A peer that lost the table (a
// restart) finds a number it does not know and refuses the offer as 'unknown-dictionary'; the
// client then starts a new table for it.
import { randomBytes } from 'node:crypto';
import path from 'node:path';
import { ProtocolError } from '../../protocol/errors.js';
import type { TableRefs } from '../../protocol/messages.js';
import type { InputFile } from '../../protocol/messages.js';

/** Entries one table holds at most (a build that reads more starts a new one). */
const MAX_ENTRIES = 1_000_000;
/** Tables a peer keeps (one per client agent it serves, and a few spares). */
const MAX_TABLES = 64;

const keyOf = (f: InputFile) => `${f.path}\0${f.hash}\0${f.size}\0${f.executable ? 1 : 0}`;

/** The client's side of the table with one peer. */
export class ClientTable {
  readonly id = randomBytes(8).toString('hex');
  private readonly ids = new Map<string, number>();
  /** The same ids by object: the hasher hands out one object per unchanged file, so most
   *  inputs are found without building their key (~1 ms a job for hundreds of files). */
  private readonly idsByObject = new WeakMap<InputFile, number>();
  private readonly unacked = new Set<number>();

  get full(): boolean {
    return this.ids.size >= MAX_ENTRIES;
  }

  /** The table part of an offer for these inputs, and the definitions it carries. */
  encode(inputs: InputFile[]): { refs: TableRefs; carried: number[] } {
    const defs: TableRefs['defs'] = [];
    const ids: number[] = [];
    const carried: number[] = [];
    for (const file of inputs) {
      let id = this.idsByObject.get(file);
      if (id === undefined) {
        const key = keyOf(file);
        id = this.ids.get(key);
        if (id === undefined) {
          id = this.ids.size;
          this.ids.set(key, id);
          this.unacked.add(id);
        }
        this.idsByObject.set(file, id);
      }
      if (this.unacked.has(id)) {
        defs.push([id, file.path, Buffer.from(file.hash, 'hex'), file.size, file.executable]);
        carried.push(id);
      }
      ids.push(id);
    }
    ids.sort((a, b) => a - b);
    const refs = ids.map((id, i) => (i === 0 ? id : id - ids[i - 1]!));
    return { refs: { table: this.id, defs, refs }, carried };
  }

  /** The peer answered an offer: it holds what that offer defined. */
  acked(carried: number[]): void {
    for (const id of carried) this.unacked.delete(id);
  }
}

/** A peer's tables, one per client (by table id), least recently used dropped first. */
export class PeerTables {
  private readonly tables = new Map<string, Map<number, InputFile>>();

  /** The inputs an offer names, or undefined when it names a number this peer does not hold. */
  resolve(refs: TableRefs): InputFile[] | undefined {
    let table = this.tables.get(refs.table);
    if (table) this.tables.delete(refs.table);
    else table = new Map();
    this.tables.set(refs.table, table);
    while (this.tables.size > MAX_TABLES) this.tables.delete(this.tables.keys().next().value!);
    for (const [id, file_, hash, size, executable] of refs.defs) {
      if (path.posix.normalize(file_) !== file_) throw new ProtocolError('bad-message', `input table: ${file_} is not a normalised path`);
      const file = { path: file_, hash: Buffer.from(hash).toString('hex'), size, executable };
      const known = table.get(id);
      if (known && keyOf(known) !== keyOf(file)) throw new ProtocolError('bad-message', `input table ${refs.table}: entry ${id} defined twice differently`);
      if (!known) {
        if (table.size >= MAX_ENTRIES) throw new ProtocolError('too-large', 'the input table is full');
        table.set(id, file);
      }
    }
    const inputs: InputFile[] = [];
    let id = 0;
    for (const [i, delta] of refs.refs.entries()) {
      id = i === 0 ? delta : id + delta;
      const file = table.get(id);
      if (!file) return undefined;
      inputs.push(file);
    }
    return inputs;
  }
}
