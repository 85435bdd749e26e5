// A job's input tree as it travels in an offer. The files a job reads are listed inline,
// grouped by directory ([dir, [[name, sha256 (32 bytes), size, executable], …]]): consecutive
// offers to a peer are compressed against each other (protocol/compression.ts), so the
// hundreds of entries a build's jobs share cost a few bytes each time. Search-directory
// listings, large and the same for every job, are content-addressed chunks instead: a peer
// fetches each once, like any store file, and keeps it.
import { createHash } from 'node:crypto';
import path from 'node:path';
import { z } from 'zod';
import { decodeBody, encodeBody } from './framing.js';
import { LIMITS, parseMessage, type DirListing, type InputFile, type Job, type TableRefs } from './messages.js';
import { ProtocolError } from './errors.js';

export interface TreeChunk {
  hash: string;
  data: Buffer;
}

const name = z.string().min(1).max(255);
const sha256Bytes = z.custom<Uint8Array>((v) => v instanceof Uint8Array && v.length === 32, 'must be a 32-byte sha256');

/** [dir, [[name, sha256, size, executable], …]] per directory: the inline part of a wire job. */
export const InlineFiles = z
  .array(z.tuple([z.string().min(1).max(LIMITS.pathBytes), z.array(z.tuple([name, sha256Bytes, z.number().int().nonnegative(), z.boolean()])).max(LIMITS.inputsPerJob)]))
  .max(LIMITS.inputsPerJob);
export type InlineFiles = z.infer<typeof InlineFiles>;

const ListingChunk = z.object({
  k: z.literal('listing'),
  dir: z.string().min(1).max(LIMITS.pathBytes),
  /** [name, is a directory] */
  entries: z.array(z.tuple([name, z.boolean()])).max(LIMITS.inputsPerJob),
});

function chunkOf(value: unknown): TreeChunk {
  const data = encodeBody(value);
  return { hash: createHash('sha256').update(data).digest('hex'), data };
}

const byPath = <T extends { path: string }>(a: T, b: T) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0);

/** A job's files grouped by directory, in a stable order (so consecutive offers line up). */
export function inlineFiles(inputs: InputFile[]): InlineFiles {
  const byDir = new Map<string, InputFile[]>();
  for (const file of [...inputs].sort(byPath)) {
    const dir = path.dirname(file.path);
    const list = byDir.get(dir) ?? [];
    list.push(file);
    byDir.set(dir, list);
  }
  return [...byDir.keys()]
    .sort()
    .map((dir) => [dir, byDir.get(dir)!.map((f) => [path.basename(f.path), Buffer.from(f.hash, 'hex'), f.size, f.executable] as [string, Buffer, number, boolean])]);
}

/** One chunk per search-directory listing, in a stable order. */
export function listingChunks(listings: DirListing[]): TreeChunk[] {
  return [...listings].sort(byPath).map((l) => chunkOf({ k: 'listing', dir: l.path, entries: l.entries.map((e) => [e.name, e.dir]) }));
}

function absoluteDir(dir: string): string {
  if (!dir.startsWith('/') || path.posix.normalize(dir) !== dir) throw new ProtocolError('bad-message', `invalid tree: ${dir} is not an absolute normalised path`);
  return dir;
}

/** Rebuilds inputs and listings from the inline files and the listing chunks (each already checked against its hash). */
export function joinInputTree(files: InlineFiles, listingData: Uint8Array[]): { inputs: InputFile[]; listings: DirListing[] } {
  const inputs: InputFile[] = [];
  for (const [dir, entries] of files) {
    absoluteDir(dir);
    for (const [file, hash, size, executable] of entries) {
      if (file.includes('/') || file === '.' || file === '..') throw new ProtocolError('bad-message', `invalid tree: bad file name ${file}`);
      const full = path.posix.join(dir, file);
      if (full.length > LIMITS.pathBytes) throw new ProtocolError('too-large', `invalid tree: a path longer than ${LIMITS.pathBytes} characters`);
      inputs.push({ path: full, hash: Buffer.from(hash).toString('hex'), size, executable });
    }
    if (inputs.length > LIMITS.inputsPerJob) throw new ProtocolError('too-large', 'the input tree is too large');
  }
  const listings = listingData.map((data) => {
    const chunk = parseMessage(ListingChunk, decodeBody(data));
    return { path: absoluteDir(chunk.dir), entries: chunk.entries.map(([n, dir]) => ({ name: n, dir })) };
  });
  return { inputs, listings };
}

/** A job as offered: files inline (or, with `table`, by number in the input table the client
 *  and the peer share), listings by chunk. */
export function wireJob(job: Job, listings: TreeChunk[], table?: TableRefs): unknown {
  const { inputs, listings: _listings, ...rest } = job;
  const tree = listings.map((c) => [Buffer.from(c.hash, 'hex'), c.data.length]);
  return table ? { ...rest, inputs: [], listings: [], files: [], table, tree } : { ...rest, inputs: [], listings: [], files: inlineFiles(inputs), tree };
}
