// Packing the host's real compilers: deterministic bytes, the files a compile needs, the
// symlinks of the invoked name, and an installed tree that re-packs to the same id.
import { execFileSync, spawnSync } from 'node:child_process';
import { appendFileSync, copyFileSync, createWriteStream, lstatSync, mkdirSync, readFileSync, readlinkSync, realpathSync, symlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { PassThrough } from 'node:stream';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { beforeAll, describe, expect, it } from 'vitest';
import { DESCRIPTION_PATH } from '../toolchain/description.js';
import { ToolchainIdentifier, type Toolchain } from '../toolchain/identify.js';
import { ToolchainPacker } from '../toolchain/pack-cache.js';
import { planFromTree, planToolchainTar, toolchainTarId, toolchainTarStream, writeToolchainTar, type PlanEntry, type ToolchainTarPlan } from '../toolchain/pack.js';
import { installToolchain } from '../toolchain/unpack.js';
import { makeToolchainTree, sha256 } from './helpers/toolchain-tars.js';
import { tempDir } from './helpers/tmp.js';

const GCC = '/usr/bin/gcc';
const CLANG = '/usr/bin/clang';

function names(plan: ToolchainTarPlan, type?: PlanEntry['type']): string[] {
  return plan.entries.filter((e) => !type || e.type === type).map((e) => e.name);
}

function rel(p: string): string {
  return p.replace(/^\/+/, '');
}

describe('packing the compilers of this host', () => {
  const identifier = new ToolchainIdentifier();
  let gcc: Toolchain;
  let clang: Toolchain;

  beforeAll(async () => {
    [gcc, clang] = await Promise.all([identifier.identify(GCC), identifier.identify(CLANG)]);
  });

  it('gives the same bytes and id twice, for gcc and clang (and prints time and size)', async () => {
    for (const [compiler, toolchain] of [[GCC, gcc], [CLANG, clang]] as const) {
      const started = performance.now();
      const plan = await planToolchainTar(toolchain, compiler);
      const first = await toolchainTarId(plan);
      const ms = performance.now() - started;
      const second = await toolchainTarId(await planToolchainTar(toolchain, compiler));
      expect(second).toEqual(first);
      expect(first.id).toMatch(/^[0-9a-f]{64}$/);
      console.log(`pack ${compiler}: ${(first.size / 1e6).toFixed(1)} MB tarball, ${plan.entries.length} entries, planned and hashed in ${ms.toFixed(0)} ms`);
    }
  });

  it('writes exactly the bytes it hashes, as a tar that GNU tar reads with fixed times and owners', async () => {
    const dir = tempDir('meshcc-pack-');
    const plan = await planToolchainTar(gcc, GCC);
    const file = path.join(dir, 'gcc.tar');
    const written = await writeToolchainTar(plan, createWriteStream(file));
    const bytes = readFileSync(file);
    expect(written).toEqual({ id: sha256(bytes), size: bytes.length });
    expect(written.id).toBe((await toolchainTarId(plan)).id);
    expect(bytes.length % 512).toBe(0);

    const listing = execFileSync('tar', ['--numeric-owner', '--full-time', '-tvf', file], { encoding: 'utf8' }).trim().split('\n');
    expect(listing).toHaveLength(plan.entries.length);
    for (const line of listing) expect(line).toMatch(/^(?:-rw-r--r--|-rwxr-xr-x|drwxr-xr-x|lrwxrwxrwx) 0\/0 +\d+ 1970-01-01 00:00:00 /);
    const listed = listing.map((l) => l.split(/ +/)[5]!.replace(/\/$/, ''));
    expect(listed).toEqual(names(plan));
  });

  it('lists the driver, cc1 and the libraries at their real paths, sorted, with every parent directory', async () => {
    const plan = await planToolchainTar(gcc, GCC);
    const files = names(plan, 'file');
    expect(files).toContain(rel(gcc.driver));
    expect(files).toContain(rel(gcc.files.find((f) => f.role === 'cc1')!.path));
    for (const f of gcc.files) expect(files).toContain(rel(realpathSync(f.path)));
    const all = names(plan);
    expect([...all].sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)))).toEqual(all);
    const directories = new Set(names(plan, 'directory'));
    for (const name of all) {
      const parts = name.split('/');
      for (let i = 1; i < parts.length; i++) expect(directories.has(parts.slice(0, i).join('/'))).toBe(true);
    }
    for (const e of plan.entries) if (e.type === 'symlink') expect(readlinkSync(`/${e.name}`)).toBe(e.target);
    expect(plan.entries.find((e) => e.name === rel(gcc.driver))).toMatchObject({ type: 'file', executable: true });
  });

  it('describes compiler, driver, architecture and OS', async () => {
    const plan = await planToolchainTar(clang, CLANG);
    expect(plan.description).toMatchObject({ family: 'clang', compiler: CLANG, driver: clang.driver, arch: process.arch, os: 'linux', mode: 'c' });
    const file = plan.entries.find((e) => e.name === DESCRIPTION_PATH);
    expect(file?.type === 'file' && Buffer.isBuffer(file.source) && JSON.parse(file.source.toString())).toEqual(plan.description);
  });

  it('differs between gcc and gcc-12 only in the symlinks of the name and the compiler it describes', async () => {
    const viaGcc = await planToolchainTar(gcc, GCC);
    const viaVersioned = await planToolchainTar(gcc, '/usr/bin/gcc-12');
    const notLinks = (plan: ToolchainTarPlan): PlanEntry[] => plan.entries.filter((e) => e.type !== 'symlink' && e.name !== DESCRIPTION_PATH);
    expect(notLinks(viaVersioned)).toEqual(notLinks(viaGcc));
    expect(names(viaGcc, 'symlink')).toContain('usr/bin/gcc');
    expect(names(viaVersioned, 'symlink')).not.toContain('usr/bin/gcc');
    expect(viaVersioned.description).toEqual({ ...viaGcc.description, compiler: '/usr/bin/gcc-12' });
    expect((await toolchainTarId(viaVersioned)).id).not.toBe((await toolchainTarId(viaGcc)).id);
  });

  it('re-packs an installed gcc to the same id, and the installed gcc compiles', async () => {
    const cacheDir = tempDir('meshcc-installed-');
    const plan = await planToolchainTar(gcc, GCC);
    const { id } = await toolchainTarId(plan);
    const installed = await installToolchain({ cacheDir, id, source: toolchainTarStream(plan) });
    expect((await toolchainTarId(await planFromTree(installed.root))).id).toBe(id);
    expect(lstatSync(path.join(installed.root, rel(gcc.files.find((f) => f.role === 'cc1')!.path))).mode & 0o777).toBe(0o755);

    // Run by its unpacked path (not in a sandbox: the loader and libraries are the host's), gcc
    // finds the unpacked cc1 next to itself and produces the host gcc's object.
    const source = path.join(cacheDir, 'tiny.c');
    writeFileSync(source, 'int twice(int x) { return 2 * x; }\n');
    const unpackedGcc = path.join(installed.root, 'usr/bin/gcc');
    const steps = spawnSync(unpackedGcc, ['-###', '-c', source], { encoding: 'utf8' });
    const cc1Run = steps.stderr.split('\n').find((line) => /\/cc1 /.test(line));
    expect(cc1Run?.trim().startsWith(`${installed.root}/`)).toBe(true);
    execFileSync(unpackedGcc, ['-c', source, '-o', path.join(cacheDir, 'unpacked.o')]);
    execFileSync(GCC, ['-c', source, '-o', path.join(cacheDir, 'host.o')]);
    expect(readFileSync(path.join(cacheDir, 'unpacked.o')).equals(readFileSync(path.join(cacheDir, 'host.o')))).toBe(true);
  });

  it('packs each compiler once: the id comes from the cache (also after a restart) until a file changes', async () => {
    const dir = tempDir('meshcc-packer-');
    const cacheFile = path.join(dir, 'packs.json');
    const packer = new ToolchainPacker({ cacheFile });
    const first = await packer.pack(gcc, GCC);
    expect((await packer.pack(gcc, GCC)).id).toBe(first.id);
    expect(packer.hashed).toBe(1);
    await packer.flush();
    const restarted = new ToolchainPacker({ cacheFile });
    expect((await restarted.pack(gcc, GCC)).id).toBe(first.id);
    expect(restarted.hashed).toBe(0);

    // A compiler of our own, so a file of it can change: /usr/bin/true as the driver.
    mkdirSync(path.join(dir, 'bin'));
    const driver = path.join(dir, 'bin', 'mycc-1');
    copyFileSync('/usr/bin/true', driver);
    symlinkSync('mycc-1', path.join(dir, 'bin', 'mycc'));
    const mine: Toolchain = { ...gcc, driver, files: [{ role: 'driver', path: driver, size: 0, hash: '', executable: true }] };
    const before = await packer.pack(mine, path.join(dir, 'bin', 'mycc'));
    expect(names(before.plan)).toContain(rel(path.join(dir, 'bin', 'mycc')));
    expect((await packer.pack(mine, path.join(dir, 'bin', 'mycc'))).id).toBe(before.id);
    expect(packer.hashed).toBe(2);
    appendFileSync(driver, 'x');
    const after = await packer.pack(mine, path.join(dir, 'bin', 'mycc'));
    expect(packer.hashed).toBe(3);
    expect(after.id).not.toBe(before.id);
  });
});

describe('packing a tree whose files change', () => {
  it('fails with a clear error rather than produce other bytes under the planned id', async () => {
    const tree = makeToolchainTree(tempDir('meshcc-tree-'), 'changing');
    const driver = path.join(tree, 'usr/libexec/fake/fakecc-1');
    const plan = await planFromTree(tree);
    const { id } = await toolchainTarId(plan);
    expect((await toolchainTarId(await planFromTree(tree))).id).toBe(id);

    appendFileSync(driver, 'grown');
    await expect(toolchainTarId(plan)).rejects.toThrow(/fakecc-1 changed while the toolchain was packed \(10005 bytes where 10000 were planned\)/);

    const replanned = await planFromTree(tree);
    writeFileSync(driver, Buffer.alloc(10_005, 1)); // same size, other content
    utimesSync(driver, new Date(), new Date(Date.now() + 10_000));
    await expect(writeToolchainTar(replanned, new PassThrough().resume())).rejects.toThrow(/changed while the toolchain was packed \(another inode or mtime\)/);
  });
});

