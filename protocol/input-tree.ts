// A job's input tree as content-addressed chunks, so that what every job of a build shares
// crosses the wire once: one chunk per directory for the files the job reads there, one per
// search-directory listing. A job then names its chunks (a few dozen hashes) instead of
// carrying hundreds of paths and hashes; a peer asks only for chunks it has not seen, and
// keeps them in its store like any other file.
import { createHash } from 'node:crypto';
import path from 'node:path';
import { z } from 'zod';
import { decodeBody, encodeBody } from './framing.js';
import { LIMITS, parseMessage, type DirListing, type InputFile, type Job } from './messages.js';
import { ProtocolError } from './errors.js';

export interface TreeChunk {
  hash: string;
  data: Buffer;
}

const FilesChunk = z.object({
  k: z.literal('files'),
  dir: z.string().min(1).max(LIMITS.pathBytes),
  /** [name, sha256 (32 bytes), size, executable] */
  files: z
    .array(z.tuple([z.string().min(1).max(255), z.custom<Uint8Array>((v) => v instanceof Uint8Array && v.length === 32), z.number().int().nonnegative(), z.boolean()]))
    .max(LIMITS.inputsPerJob),
});
const ListingChunk = z.object({
  k: z.literal('listing'),
  dir: z.string().min(1).max(LIMITS.pathBytes),
  /** [name, is a directory] */
  entries: z.array(z.tuple([z.string().min(1).max(255), z.boolean()])).max(LIMITS.inputsPerJob),
});
const Chunk = z.discriminatedUnion('k', [FilesChunk, ListingChunk]);

function chunkOf(value: unknown): TreeChunk {
  const data = encodeBody(value);
  return { hash: createHash('sha256').update(data).digest('hex'), data };
}

/** The chunks of a job's inputs and listings, in a stable order. */
export function splitInputTree(inputs: InputFile[], listings: DirListing[]): TreeChunk[] {
  const byDir = new Map<string, InputFile[]>();
  for (const file of inputs) {
    const dir = path.dirname(file.path);
    const list = byDir.get(dir) ?? [];
    list.push(file);
    byDir.set(dir, list);
  }
  const chunks: TreeChunk[] = [];
  for (const dir of [...byDir.keys()].sort()) {
    const files = byDir
      .get(dir)!
      .sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0))
      .map((f) => [path.basename(f.path), Buffer.from(f.hash, 'hex'), f.size, f.executable]);
    chunks.push(chunkOf({ k: 'files', dir, files }));
  }
  for (const listing of [...listings].sort((a, b) => (a.path < b.path ? -1 : 1))) {
    chunks.push(chunkOf({ k: 'listing', dir: listing.path, entries: listing.entries.map((e) => [e.name, e.dir]) }));
  }
  return chunks;
}

/** Rebuilds inputs and listings from chunk contents (each already checked against its hash). */
export function joinInputTree(chunks: Uint8Array[]): { inputs: InputFile[]; listings: DirListing[] } {
  const inputs: InputFile[] = [];
  const listings: DirListing[] = [];
  for (const data of chunks) {
    const chunk = parseMessage(Chunk, decodeBody(data));
    if (!chunk.dir.startsWith('/')) throw new ProtocolError('bad-message', 'invalid chunk: dir must be an absolute path');
    if (chunk.k === 'files') {
      for (const [name, hash, size, executable] of chunk.files) {
        if (name.includes('/') || name === '.' || name === '..') throw new ProtocolError('bad-message', `invalid chunk: bad file name ${name}`);
        inputs.push({ path: path.posix.join(chunk.dir, name), hash: Buffer.from(hash).toString('hex'), size, executable });
      }
    } else {
      listings.push({ path: chunk.dir, entries: chunk.entries.map(([name, dir]) => ({ name, dir })) });
    }
    if (inputs.length > LIMITS.inputsPerJob || listings.length > LIMITS.inputsPerJob) throw new ProtocolError('too-large', 'the input tree is too large');
  }
  return { inputs, listings };
}

/** A job with its tree replaced by chunk names: what a job offer carries. */
export function wireJob(job: Job, chunks: TreeChunk[]): unknown {
  const { inputs: _inputs, listings: _listings, ...rest } = job;
  return { ...rest, inputs: [], listings: [], tree: chunks.map((c) => [Buffer.from(c.hash, 'hex'), c.data.length]) };
}
