import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { appendFileSync, chmodSync, copyFileSync, existsSync, readFileSync, realpathSync, statSync, symlinkSync, utimesSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { beforeAll, describe, expect, it, vi } from 'vitest';
import { parseLdd } from '../toolchain/elf-deps.js';
import { findHostCompilers, toolchainId, ToolchainIdentifier, type Toolchain } from '../toolchain/identify.js';
import { tempDir } from './helpers/tmp.js';

const GCC = '/usr/bin/gcc';

function which(name: string): string {
  return execFileSync('which', [name], { encoding: 'utf8' }).trim();
}

function basenames(t: Toolchain, role: string): string[] {
  return t.files.filter((f) => f.role === role).map((f) => path.basename(f.path));
}

async function rejection(p: Promise<unknown>): Promise<Error> {
  try {
    await p;
  } catch (err) {
    return err as Error;
  }
  throw new Error('expected a rejection');
}

describe('ToolchainIdentifier with the compilers of this host', () => {
  const identifier = new ToolchainIdentifier();
  let gcc: Toolchain;
  let gxx: Toolchain;
  let clang: Toolchain;
  let clangxx: Toolchain;

  beforeAll(async () => {
    // Cold: a fresh identifier each, so nothing is cached (the OS page cache may be warm).
    let started = performance.now();
    gxx = await new ToolchainIdentifier().identify(which('g++'));
    const gxxMs = performance.now() - started;
    started = performance.now();
    clangxx = await new ToolchainIdentifier().identify(which('clang++'));
    const clangxxMs = performance.now() - started;
    console.log(
      `cold identify: g++ ${gxxMs.toFixed(0)} ms (${gxx.files.length} files, ${(gxx.files.reduce((n, f) => n + f.size, 0) / 2 ** 20).toFixed(0)} MiB), ` +
        `clang++ ${clangxxMs.toFixed(0)} ms (${clangxx.files.length} files, ${(clangxx.files.reduce((n, f) => n + f.size, 0) / 2 ** 20).toFixed(0)} MiB)`,
    );
    gcc = await identifier.identify(GCC);
    clang = await identifier.identify(which('clang'));
  });

  it('lists gcc’s driver, programs, loader and libraries, each hashed', () => {
    expect(gcc.family).toBe('gcc');
    expect(gcc.driver).toBe(realpathSync(GCC));
    expect(gcc.version).toMatch(/^\d+\.\d+/);
    expect(gcc.target).toBe(execFileSync(GCC, ['-dumpmachine'], { encoding: 'utf8' }).trim());
    expect(gcc.files[0]).toMatchObject({ role: 'driver', path: gcc.driver, executable: true });
    expect(basenames(gcc, 'cc1')).toEqual(['cc1']);
    expect(basenames(gcc, 'as')).toHaveLength(1);
    expect(basenames(gcc, 'loader')).toEqual([expect.stringMatching(/^ld-/)]);
    expect(basenames(gcc, 'lib')).toContain('libc.so.6');
    for (const f of gcc.files) {
      expect(path.isAbsolute(f.path)).toBe(true);
      expect(f.size).toBe(statSync(f.path).size);
      expect(f.hash).toMatch(/^[0-9a-f]{64}$/);
    }
    // Each file once, except the name gcc runs `as` by on PATH (a second way to the same file, which a sandbox needs).
    const files = gcc.files.filter((f) => !f.role.endsWith('-on-path'));
    expect(new Set(files.map((f) => realpathSync(f.path))).size).toBe(files.length);
    expect(gcc.files.filter((f) => f.role === 'as-on-path').map((f) => path.basename(f.path))).toEqual(['as']);
    expect(gcc.files[0]!.hash).toBe(createHash('sha256').update(readFileSync(gcc.driver)).digest('hex'));
    // The id is a function of the description alone: whoever receives it can check it.
    expect(toolchainId(gcc)).toBe(gcc.id);
    expect(gcc.mode).toBe('c');
  });

  it('gives gcc the same id through a symlink and through cc', async () => {
    const link = path.join(tempDir(), 'gcc');
    symlinkSync(GCC, link);
    const viaLink = await identifier.identify(link);
    expect(viaLink.id).toBe(gcc.id);
    expect(viaLink.driver).toBe(gcc.driver);
    const cc = which('cc');
    if (realpathSync(cc) === gcc.driver) expect((await identifier.identify(cc)).id).toBe(gcc.id);
  });

  it('tells gcc, g++ and clang apart; clang++ is the clang binary', async () => {
    expect(gxx.driver).not.toBe(gcc.driver);
    expect(gxx.id).not.toBe(gcc.id);
    expect(basenames(gxx, 'cc1plus')).toEqual(['cc1plus']);
    expect(clang.family).toBe('clang');
    expect(clang.id).not.toBe(gcc.id);
    expect(clang.files[0]).toMatchObject({ role: 'driver', path: clang.driver });
    expect(basenames(clang, 'lib')).toContain('libc.so.6');
    expect(basenames(clang, 'loader')).toHaveLength(1);
    expect(gxx.mode).toBe('c++');
    // One binary, but the name picks the language (clang++ compiles .c as C++), and a peer
    // runs a job with its own compiler for the id: two toolchains with the same files.
    expect(clang.mode).toBe('c');
    expect(clangxx.mode).toBe('c++');
    expect(clangxx.id).not.toBe(clang.id);
    if (clangxx.driver === clang.driver) expect(clangxx.files).toEqual(clang.files);
    expect(toolchainId(clangxx)).toBe(clangxx.id);
  });

  it('rejects what is not a gcc or clang driver with a one-line message, without running scripts', async () => {
    const dir = tempDir();
    const marker = path.join(dir, 'ran');
    const script = path.join(dir, 'gcc');
    writeFileSync(script, `#!/bin/sh\ntouch '${marker}'\necho 'gcc version 12.2.0'\necho 'Target: x86_64-linux-gnu'\n`);
    chmodSync(script, 0o755);
    const preprocessor = path.join(dir, 'clang-cpp');
    symlinkSync(clang.driver, preprocessor);
    for (const [compiler, reason] of [
      ['/bin/true', /not a gcc or clang driver/],
      [script, /not an ELF executable/],
      [path.join(dir, 'missing'), /no such file/],
      ['gcc', /not an absolute path/],
      [preprocessor, /not a C\/C\+\+ compiler driver/],
    ] as const) {
      const err = await rejection(identifier.identify(compiler));
      expect(err.message).toMatch(reason);
      expect(err.message).toContain(compiler);
      expect(err.message).not.toContain('\n');
    }
    expect(existsSync(marker)).toBe(false);
  });

  it('answers a second identify from the cache, and concurrent ones with one computation', async () => {
    const fresh = new ToolchainIdentifier();
    const all = await Promise.all([fresh.identify(GCC), fresh.identify(GCC), fresh.identify(GCC)]);
    expect(new Set(all.map((t) => t.id))).toEqual(new Set([gcc.id]));
    const after = fresh.stats;
    expect(after.identifications).toBe(1);
    expect(after.filesHashed).toBe(gcc.files.length);
    expect(await fresh.identify(GCC)).toBe(all[0]);
    expect(fresh.stats).toEqual(after);
    // Another name of the same binary: its own `-v`, but the files are not collected or read again.
    const viaLink = path.join(tempDir(), 'cc');
    symlinkSync(GCC, viaLink);
    expect((await fresh.identify(viaLink)).id).toBe(gcc.id);
    expect(fresh.stats).toEqual({ identifications: 2, filesHashed: after.filesHashed });
  });

  it('re-validates a driver whose mtime changed (same id) and notices a changed content', async () => {
    const fresh = new ToolchainIdentifier();
    const copy = path.join(tempDir(), 'clang');
    copyFileSync(clang.driver, copy);
    chmodSync(copy, 0o755);
    // The same files elsewhere (clang finds its libraries through the loader): the same toolchain.
    const first = await fresh.identify(copy);
    expect(first.id).toBe(clang.id);
    expect(first.driver).toBe(copy);
    await fresh.identify(copy);
    const before = fresh.stats;
    expect(before.identifications).toBe(1);

    const later = new Date(Date.now() + 60_000);
    utimesSync(copy, later, later);
    const touched = await fresh.identify(copy);
    expect(fresh.stats.identifications).toBe(before.identifications + 1);
    expect(fresh.stats.filesHashed).toBe(before.filesHashed + 1); // only the driver is read again
    expect(touched.id).toBe(first.id);

    appendFileSync(copy, Buffer.from([0]));
    const changed = await fresh.identify(copy);
    expect(changed.id).not.toBe(first.id);
    expect(changed.files[0]!.size).toBe(first.files[0]!.size + 1);
  });

  it('rejects a gcc driver copied away from its installation (it finds no cc1)', async () => {
    const copy = path.join(tempDir(), 'gcc');
    copyFileSync(gcc.driver, copy);
    chmodSync(copy, 0o755);
    const err = await rejection(identifier.identify(copy));
    expect(err.message).toMatch(/finds no cc1/);
    expect(err.message).not.toContain('\n');
  });

  it('keeps results in the cache file across identifiers', async () => {
    const cacheFile = path.join(tempDir(), 'toolchains.json');
    await new ToolchainIdentifier({ cacheFile }).identify(GCC);
    await vi.waitFor(() => expect(existsSync(cacheFile)).toBe(true));
    const restarted = new ToolchainIdentifier({ cacheFile });
    expect((await restarted.identify(GCC)).id).toBe(gcc.id);
    expect(restarted.stats).toEqual({ identifications: 0, filesHashed: 0 });
  });
});

describe('findHostCompilers', () => {
  it('finds gcc and clang on this PATH', () => {
    const found = findHostCompilers(process.env.PATH);
    expect(found).toContain(which('gcc'));
    expect(found).toContain(which('clang'));
    expect(found.every((f) => path.isAbsolute(f))).toBe(true);
  });

  it('takes compiler names only, executable ones, the first on PATH', () => {
    const [first, second] = [tempDir(), tempDir()];
    for (const name of ['gcc', 'x86_64-linux-gnu-gcc-12', 'clang++-14', 'gcc-ar', 'clang-format', 'c++filt', 'c99-gcc']) {
      symlinkSync(GCC, path.join(first, name));
    }
    writeFileSync(path.join(first, 'cc'), 'not executable');
    symlinkSync(path.join(first, 'nowhere'), path.join(first, 'g++'));
    symlinkSync('/bin/true', path.join(second, 'gcc'));
    symlinkSync('/bin/true', path.join(second, 'c++'));
    expect(findHostCompilers(`${first}:relative/dir::${second}`)).toEqual([
      path.join(first, 'clang++-14'),
      path.join(first, 'gcc'),
      path.join(first, 'x86_64-linux-gnu-gcc-12'),
      path.join(second, 'c++'),
    ]);
  });
});

describe('parseLdd', () => {
  it('takes libraries by the path the loader opens, the loader, and what is missing', () => {
    const out = [
      '/usr/lib/gcc/x86_64-linux-gnu/12/cc1:',
      '\tlinux-vdso.so.1 (0x00007fee8d566000)',
      '\tlibz.so.1 => /lib/x86_64-linux-gnu/libz.so.1 (0x00007fee8d45a000)',
      '\tlibgone.so.2 => not found',
      '\t/lib64/ld-linux-x86-64.so.2 (0x00007fee8d568000)',
      '/usr/bin/x86_64-linux-gnu-as:',
      '\tlibz.so.1 => /lib/x86_64-linux-gnu/libz.so.1 (0x00007fd6409c8000)',
      '\tstatically linked',
    ].join('\n');
    expect(parseLdd(out)).toEqual({
      objects: [
        { role: 'lib', path: '/lib/x86_64-linux-gnu/libz.so.1' },
        { role: 'loader', path: '/lib64/ld-linux-x86-64.so.2' },
      ],
      missing: ['libgone.so.2'],
    });
  });
});
