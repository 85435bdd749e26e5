// Small toolchain trees and tarballs for the pack, unpack and cache tests: real files on disk,
// valid descriptions, and tarballs built entry by entry (hostile ones included).
import { createHash } from 'node:crypto';
import { chmodSync, lstatSync, mkdirSync, readdirSync, readlinkSync, symlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { Writable } from 'node:stream';
import tar, { type Header } from 'tar-stream';
import { descriptionBytes, DESCRIPTION_PATH, TAR_SCHEME, type ToolchainDescription } from '../../toolchain/description.js';
import { planFromTree, writeToolchainTar } from '../../toolchain/pack.js';

export function fakeDescription(overrides: Partial<ToolchainDescription> = {}): ToolchainDescription {
  return {
    scheme: TAR_SCHEME,
    family: 'gcc',
    mode: 'c',
    version: '99.1.0',
    target: 'x86_64-linux-gnu',
    compiler: '/usr/bin/fakecc',
    driver: '/usr/libexec/fake/fakecc-1',
    arch: process.arch,
    os: process.platform,
    ...overrides,
  };
}

/** Deterministic filler: the same seed gives the same bytes. */
function filler(seed: string, bytes: number): Buffer {
  const out = Buffer.alloc(bytes);
  let block = createHash('sha256').update(seed).digest();
  for (let at = 0; at < bytes; at += block.length) {
    block.copy(out, at);
    block = createHash('sha256').update(block).digest();
  }
  return out;
}

/**
 * A minimal installed-looking toolchain under dir: a compiler symlink, an executable driver of
 * `driverBytes` bytes (content from `seed`), a library and the description.
 */
export function makeToolchainTree(dir: string, seed: string, options: { driverBytes?: number; description?: Partial<ToolchainDescription> } = {}): string {
  mkdirSync(path.join(dir, 'usr/bin'), { recursive: true });
  mkdirSync(path.join(dir, 'usr/libexec/fake'), { recursive: true });
  mkdirSync(path.join(dir, 'usr/lib'), { recursive: true });
  mkdirSync(path.join(dir, '.meshcc'), { recursive: true });
  writeFileSync(path.join(dir, 'usr/libexec/fake/fakecc-1'), filler(seed, options.driverBytes ?? 10_000));
  chmodSync(path.join(dir, 'usr/libexec/fake/fakecc-1'), 0o755);
  writeFileSync(path.join(dir, 'usr/lib/libfake.so.1.0'), filler(`${seed}-lib`, 3000));
  chmodSync(path.join(dir, 'usr/lib/libfake.so.1.0'), 0o644);
  symlinkSync('libfake.so.1.0', path.join(dir, 'usr/lib/libfake.so.1'));
  symlinkSync('../libexec/fake/fakecc-1', path.join(dir, 'usr/bin/fakecc'));
  writeFileSync(path.join(dir, DESCRIPTION_PATH), descriptionBytes(fakeDescription(options.description)));
  return dir;
}

class Collector extends Writable {
  readonly chunks: Buffer[] = [];
  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: () => void): void {
    this.chunks.push(chunk);
    callback();
  }
}

/** The tarball of a tree (as pack.ts makes it) and its id. */
export async function tarOfTree(dir: string): Promise<{ bytes: Buffer; id: string }> {
  const collector = new Collector();
  const digest = await writeToolchainTar(await planFromTree(dir), collector);
  return { bytes: Buffer.concat(collector.chunks), id: digest.id };
}

export function sha256(bytes: Buffer): string {
  return createHash('sha256').update(bytes).digest('hex');
}

export interface RawEntry {
  header: Partial<Header> & Pick<Header, 'name'>;
  body?: Buffer | string;
}

/** A tarball with exactly these entries, in this order, however unwise they are. */
export async function rawTar(entries: RawEntry[]): Promise<Buffer> {
  const pack = tar.pack();
  const collected = (async () => {
    const chunks: Buffer[] = [];
    for await (const chunk of pack) chunks.push(chunk as Buffer);
    return Buffer.concat(chunks);
  })();
  for (const { header, body } of entries) {
    await new Promise<void>((resolve, reject) => {
      const done = (err?: Error | null): void => (err ? reject(err) : resolve());
      if (body !== undefined) pack.entry({ mtime: new Date(0), ...header }, body, done);
      else pack.entry({ mtime: new Date(0), ...header }, done);
    });
  }
  pack.finalize();
  return collected;
}

/** The header block(s) tar-stream writes for this entry, without any content after them. */
export async function headerOnly(header: Partial<Header> & Pick<Header, 'name'>): Promise<Buffer> {
  const pack = tar.pack();
  pack.entry({ mtime: new Date(0), ...header });
  const chunks: Buffer[] = [];
  for await (const chunk of pack) {
    chunks.push(chunk as Buffer);
    if (Buffer.concat(chunks).length >= 512) break;
  }
  return Buffer.concat(chunks);
}

/** Entries that make a valid toolchain: a description and the executable it names. */
export function baseEntries(description: Partial<ToolchainDescription> = {}): RawEntry[] {
  const desc = descriptionBytes(fakeDescription({ compiler: '/usr/bin/fakecc', driver: '/usr/bin/fakecc', ...description }));
  return [
    { header: { name: '.meshcc/', type: 'directory', mode: 0o755 } },
    { header: { name: DESCRIPTION_PATH, type: 'file', mode: 0o644 }, body: desc },
    { header: { name: 'usr/', type: 'directory', mode: 0o755 } },
    { header: { name: 'usr/bin/', type: 'directory', mode: 0o755 } },
    { header: { name: 'usr/bin/fakecc', type: 'file', mode: 0o755 }, body: '#!/bin/sh\necho fake\n' },
  ];
}

/** Every path under dir with its type, mode, size, mtime and link target: equal listings, equal trees. */
export function listTree(dir: string): string[] {
  const out: string[] = [];
  const walk = (rel: string): void => {
    for (const name of readdirSync(path.join(dir, rel)).sort()) {
      const relPath = rel ? `${rel}/${name}` : name;
      const full = path.join(dir, relPath);
      const st = lstatSync(full);
      const kind = st.isDirectory() ? 'd' : st.isSymbolicLink() ? `l→${readlinkSync(full)}` : st.isFile() ? 'f' : '?';
      out.push(`${relPath} ${kind} ${(st.mode & 0o7777).toString(8)} ${st.isDirectory() ? '' : st.size} ${st.isDirectory() ? '' : st.mtimeMs}`);
      if (st.isDirectory()) walk(relPath);
    }
  };
  walk('');
  return out;
}
