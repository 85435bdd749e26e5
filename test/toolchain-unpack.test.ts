// Safe unpacking: every hostile tarball is refused with a one-line reason and leaves the cache
// directory (and everything around it) exactly as it was; a good one installs atomically.
import { existsSync, lstatSync, mkdirSync, readFileSync, readlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { Readable } from 'node:stream';
import { beforeAll, describe, expect, it } from 'vitest';
import { DESCRIPTION_PATH } from '../toolchain/description.js';
import { planFromTree, toolchainTarId } from '../toolchain/pack.js';
import { installToolchain, ToolchainRejected, type RejectionReason, type UnpackLimits } from '../toolchain/unpack.js';
import { baseEntries, headerOnly, listTree, makeToolchainTree, rawTar, sha256, tarOfTree, type RawEntry } from './helpers/toolchain-tars.js';
import { tempDir } from './helpers/tmp.js';

const work = tempDir('meshcc-unpack-');
const cacheDir = path.join(work, 'cache');
const outside = path.join(work, 'outside');

function chunked(bytes: Buffer, size = 700): Readable {
  // Odd chunk sizes, so headers and contents straddle chunk boundaries.
  return Readable.from((function* () {
    for (let at = 0; at < bytes.length; at += size) yield bytes.subarray(at, at + size);
  })());
}

async function rejectionOf(bytes: Buffer | Readable, options: { id?: string; limits?: Partial<UnpackLimits> } = {}): Promise<ToolchainRejected> {
  const source = Buffer.isBuffer(bytes) ? chunked(bytes) : bytes;
  const id = options.id ?? (Buffer.isBuffer(bytes) ? sha256(bytes) : '0'.repeat(64));
  try {
    await installToolchain({ cacheDir, id, source, limits: options.limits });
  } catch (err) {
    expect(err).toBeInstanceOf(ToolchainRejected);
    return err as ToolchainRejected;
  }
  throw new Error('the tarball was accepted');
}

describe('installToolchain refuses hostile tarballs and leaves the cache as it was', () => {
  let before: string[];

  beforeAll(async () => {
    mkdirSync(outside, { recursive: true });
    writeFileSync(path.join(outside, 'precious'), 'do not touch');
    // A cache that already holds one toolchain and a stray file.
    const tree = makeToolchainTree(tempDir('meshcc-tree-'), 'resident');
    const { bytes, id } = await tarOfTree(tree);
    await installToolchain({ cacheDir, id, source: chunked(bytes) });
    writeFileSync(path.join(cacheDir, 'index.json'), '{}');
    before = listTree(work);
  });

  const hostile: { what: string; reason: RejectionReason; entries?: () => RawEntry[]; message: RegExp; limits?: Partial<UnpackLimits> }[] = [
    {
      what: 'an absolute path',
      reason: 'absolute-path',
      entries: () => [...baseEntries(), { header: { name: `${outside}/evil`, type: 'file', mode: 0o644 }, body: 'x' }],
      message: /is an absolute path/,
    },
    {
      what: 'a ../ escape',
      reason: 'parent-reference',
      entries: () => [...baseEntries(), { header: { name: 'usr/../../outside/evil', type: 'file', mode: 0o644 }, body: 'x' }],
      message: /has a \.\. component/,
    },
    {
      what: 'a symlink to /etc and a file written through it',
      reason: 'through-link',
      entries: () => [
        ...baseEntries(),
        { header: { name: 'usr/etc', type: 'symlink', linkname: '/etc' } },
        { header: { name: 'usr/etc/passwd', type: 'file', mode: 0o644 }, body: 'root::0:0::/:/bin/sh\n' },
      ],
      message: /would be written through the symlink usr\/etc/,
    },
    {
      what: 'a symlink climbing out with ../../..',
      reason: 'link-escape',
      entries: () => [...baseEntries(), { header: { name: 'usr/bin/up', type: 'symlink', linkname: '../../../outside' } }],
      message: /usr\/bin\/up → \.\.\/\.\.\/\.\.\/outside leaves the toolchain root/,
    },
    {
      what: 'a symlink that leaves the root only through another symlink',
      reason: 'link-escape',
      entries: () => [
        ...baseEntries(),
        { header: { name: 'usr/bin/root', type: 'symlink', linkname: '../..' } },
        { header: { name: 'usr/bin/sneaky', type: 'symlink', linkname: 'root/../outside' } },
      ],
      message: /usr\/bin\/sneaky → root\/\.\.\/outside leads out of the toolchain root/,
    },
    {
      what: 'a symlink loop',
      reason: 'link-escape',
      entries: () => [
        ...baseEntries(),
        { header: { name: 'usr/bin/ping', type: 'symlink', linkname: 'pong' } },
        { header: { name: 'usr/bin/pong', type: 'symlink', linkname: '/usr/bin/ping' } },
      ],
      message: /the symlink usr\/bin\/ping → pong loops/,
    },
    {
      what: 'a character device',
      reason: 'entry-type',
      entries: () => [...baseEntries(), { header: { name: 'usr/bin/mem', type: 'character-device', mode: 0o666, devmajor: 1, devminor: 1 } }],
      message: /"usr\/bin\/mem" is a character-device entry/,
    },
    {
      what: 'a fifo',
      reason: 'entry-type',
      entries: () => [...baseEntries(), { header: { name: 'usr/bin/pipe', type: 'fifo', mode: 0o644 } }],
      message: /is a fifo entry/,
    },
    {
      what: 'a hard link',
      reason: 'entry-type',
      entries: () => [...baseEntries(), { header: { name: 'usr/bin/passwd', type: 'link', linkname: '/etc/passwd' } }],
      message: /is a link entry/,
    },
    {
      what: 'a file over the per-file limit',
      reason: 'file-too-large',
      entries: () => [...baseEntries(), { header: { name: 'usr/bin/big', type: 'file', mode: 0o644 }, body: Buffer.alloc(5000) }],
      limits: { maxFileBytes: 4096 },
      message: /usr\/bin\/big claims 5000 bytes, more than the 4096 allowed per file/,
    },
    {
      what: 'files over the total limit',
      reason: 'too-large',
      entries: () => [
        ...baseEntries(),
        ...[1, 2, 3].map((i) => ({ header: { name: `usr/bin/part${i}`, type: 'file' as const, mode: 0o644 }, body: Buffer.alloc(4000) })),
      ],
      limits: { maxFileBytes: 4096, maxTotalBytes: 10_000 },
      message: /the files exceed 10000 bytes in all \(at usr\/bin\/part3\)/,
    },
    {
      what: 'more entries than allowed',
      reason: 'too-many-entries',
      entries: () => [...baseEntries(), ...Array.from({ length: 50 }, (_, i) => ({ header: { name: `usr/d${i}/`, type: 'directory' as const, mode: 0o755 } }))],
      limits: { maxEntries: 20 },
      message: /more than 20 entries/,
    },
    {
      what: 'a duplicate entry',
      reason: 'duplicate',
      entries: () => [...baseEntries(), { header: { name: 'usr/bin/fakecc', type: 'symlink', linkname: '/bin/sh' } }],
      message: /usr\/bin\/fakecc appears twice/,
    },
    {
      what: 'an entry before its directory',
      reason: 'missing-parent',
      entries: () => [...baseEntries(), { header: { name: 'usr/lib/x/libc.so', type: 'file', mode: 0o644 }, body: 'x' }],
      message: /comes before its directory usr\/lib/,
    },
    {
      what: 'no description',
      reason: 'description',
      entries: () => baseEntries().filter((e) => e.header.name !== DESCRIPTION_PATH),
      message: /no \.meshcc\/toolchain\.json/,
    },
    {
      what: 'a description whose compiler is not in the tarball',
      reason: 'description',
      entries: () => baseEntries({ compiler: '/usr/bin/missing-cc' }),
      message: /\/usr\/bin\/missing-cc named by the description is not an executable file/,
    },
    {
      what: 'a toolchain for another architecture',
      reason: 'platform',
      entries: () => baseEntries({ arch: 'sparc64' }),
      message: new RegExp(`built for sparc64/linux, this machine is ${process.arch}/${process.platform}`),
    },
  ];

  for (const c of hostile) {
    it(`refuses ${c.what}`, async () => {
      const err = await rejectionOf(await rawTar(c.entries!()), { limits: c.limits });
      expect(err.reason).toBe(c.reason);
      expect(err.message).toMatch(c.message);
      expect(err.message).not.toContain('\n');
      expect(listTree(work)).toEqual(before);
      expect(existsSync('/etc/passwd') && readFileSync('/etc/passwd', 'utf8')).not.toContain('root::0:0::/:/bin/sh');
    });
  }

  it('refuses a tarball bomb at its header, without reading the endless content after it', async () => {
    let sent = 0;
    const endless = Readable.from((async function* () {
      yield await headerOnly({ name: 'bomb', type: 'file', mode: 0o644, size: 2 ** 40 });
      for (;;) {
        sent += 1 << 16;
        yield Buffer.alloc(1 << 16);
      }
    })());
    const err = await rejectionOf(endless);
    expect(err.reason).toBe('file-too-large');
    expect(err.message).toMatch(/bomb claims 1099511627776 bytes/);
    expect(sent).toBeLessThan(1 << 20);
    expect(endless.destroyed).toBe(true);
    expect(listTree(work)).toEqual(before);
  });

  it('refuses a valid tarball under the id of another', async () => {
    const bytes = await rawTar(baseEntries());
    const wrongId = sha256(Buffer.from('something else'));
    const err = await rejectionOf(bytes, { id: wrongId });
    expect(err.reason).toBe('hash-mismatch');
    expect(err.message).toContain(`its sha256 is ${sha256(bytes)}, not ${wrongId}`);
    expect(listTree(work)).toEqual(before);
  });

  it('refuses truncated tarballs, cut inside an entry or before the end-of-archive blocks', async () => {
    const bytes = await rawTar([...baseEntries(), { header: { name: 'usr/bin/data', type: 'file', mode: 0o644 }, body: Buffer.alloc(3000, 7) }]);
    const insideEntry = await rejectionOf(bytes.subarray(0, bytes.length - 1024 - 1000), { id: sha256(bytes) });
    expect(insideEntry.reason).toBe('truncated');
    expect(insideEntry.message).toMatch(/ends in the middle of an entry/);
    const noEnd = await rejectionOf(bytes.subarray(0, bytes.length - 1024), { id: sha256(bytes) });
    expect(noEnd.reason).toBe('truncated');
    expect(noEnd.message).toMatch(/without an end-of-archive marker/);
    expect(listTree(work)).toEqual(before);
  });

  it('refuses what is not a tarball, and an id that is not a sha256', async () => {
    const garbage = await rejectionOf(Buffer.alloc(4096, 0x41));
    expect(garbage.reason).toBe('malformed');
    expect(garbage.message).toMatch(/not a valid tarball/);
    const badId = await rejectionOf(await rawTar(baseEntries()), { id: '../../outside' });
    expect(badId.reason).toBe('bad-id');
    expect(listTree(work)).toEqual(before);
  });
});

describe('installToolchain with a good tarball', () => {
  it('installs the tree with its links and safe modes, and re-packing it gives the id back', async () => {
    const dir = tempDir('meshcc-good-');
    const tree = makeToolchainTree(tempDir('meshcc-tree-'), 'good');
    const { bytes, id } = await tarOfTree(tree);
    const installed = await installToolchain({ cacheDir: dir, id, source: chunked(bytes, 333) });
    expect(installed).toMatchObject({ id, root: path.join(dir, id), alreadyPresent: false });
    expect(installed.description.compiler).toBe('/usr/bin/fakecc');
    expect(listTree(installed.root).map((l) => l.split(' ').slice(0, 3).join(' '))).toEqual(listTree(tree).map((l) => l.split(' ').slice(0, 3).join(' ')));
    expect(readlinkSync(path.join(installed.root, 'usr/bin/fakecc'))).toBe('../libexec/fake/fakecc-1');
    expect(lstatSync(path.join(installed.root, 'usr/libexec/fake/fakecc-1')).mode & 0o7777).toBe(0o755);
    expect(lstatSync(path.join(installed.root, 'usr/lib/libfake.so.1.0')).mode & 0o7777).toBe(0o644);
    expect((await toolchainTarId(await planFromTree(installed.root))).id).toBe(id);
    expect(readdirNames(dir)).toEqual([id]);

    // A second install of the same id keeps the first tree and leaves no staging behind.
    const again = await installToolchain({ cacheDir: dir, id, source: chunked(bytes) });
    expect(again.alreadyPresent).toBe(true);
    expect(readdirNames(dir)).toEqual([id]);
  });

  it('drops setuid and write bits that a header asks for, and writes empty files', async () => {
    const dir = tempDir('meshcc-modes-');
    const entries = baseEntries();
    entries.push({ header: { name: 'usr/bin/suid', type: 'file', mode: 0o6777 }, body: 'x' });
    entries.push({ header: { name: 'usr/bin/world', type: 'file', mode: 0o666 }, body: 'y' });
    entries.push({ header: { name: 'usr/bin/zero', type: 'file', mode: 0o644 }, body: '' });
    const bytes = await rawTar(entries);
    const installed = await installToolchain({ cacheDir: dir, id: sha256(bytes), source: chunked(bytes) });
    expect(lstatSync(path.join(installed.root, 'usr/bin/suid')).mode & 0o7777).toBe(0o755);
    expect(lstatSync(path.join(installed.root, 'usr/bin/world')).mode & 0o7777).toBe(0o644);
    expect(lstatSync(path.join(installed.root, 'usr/bin/zero')).size).toBe(0);
  });
});

function readdirNames(dir: string): string[] {
  return listTree(dir).filter((l) => !l.split(' ')[0]!.includes('/')).map((l) => l.split(' ')[0]!);
}
