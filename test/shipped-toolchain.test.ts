// A job run with a shipped toolchain: the host's gcc and clang packed as deterministic
// tarballs, installed (safely unpacked) into a cache, and the job's sandbox built from that
// tree alone, with none of the host's compiler directories bound. The objects must be
// byte-identical to plain compiles, C and C++, and a program the toolchain does not hold
// must be absent in the sandbox.
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { PassThrough } from 'node:stream';
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import type { Job } from '../protocol/messages.js';
import { Executor } from '../node/executor/executor.js';
import { readToolchainMounts } from '../node/executor/toolchain-mounts.js';
import { InputHasher } from '../node/scan/hasher.js';
import { InputScanner } from '../node/scan/scanner.js';
import { Store } from '../node/store.js';
import { ToolchainIdentifier } from '../toolchain/identify.js';
import { planToolchainTar, toolchainTarId, writeToolchainTar } from '../toolchain/pack.js';
import { installToolchain } from '../toolchain/unpack.js';
import { tempDir } from './helpers/tmp.js';

const log = pino({ level: 'silent' });
const env = { PATH: '/usr/local/bin:/usr/bin:/bin', LANG: 'C' };

async function shipped(compiler: string, cacheDir: string) {
  const toolchain = await new ToolchainIdentifier().identify(compiler);
  const plan = await planToolchainTar(toolchain, compiler);
  const { id } = await toolchainTarId(plan);
  const wire = new PassThrough();
  const [install] = await Promise.all([installToolchain({ cacheDir, id, source: wire }), writeToolchainTar(plan, wire)]);
  return install;
}

/** A store and an executor in a fresh home; no executor (and a printed reason) without bubblewrap. */
async function sandbox(): Promise<{ home: string; store: Store; executor?: Executor }> {
  const home = tempDir();
  const store = new Store(path.join(home, 'store'), 512 * 1024 * 1024, log);
  await store.start();
  const executor = new Executor({ store, workDir: path.join(home, 'jobs'), slots: 1, timeoutMs: 120_000, log });
  await executor.start();
  if (!executor.sandboxUnavailableReason) return { home, store, executor };
  console.log(`skipped: ${executor.sandboxUnavailableReason}`);
  await executor.stop();
  return { home, store };
}

describe('a job with a shipped toolchain and nothing of the host', () => {
  it('prints the diagnostics a local compile prints, in the client\'s UTF-8 locale (its locale data travels as inputs)', async () => {
    const utf8 = { ...env, LANG: 'C.UTF-8' };
    const { home, store, executor } = await sandbox();
    if (!executor) return;
    try {
      const mounts = readToolchainMounts((await shipped('/usr/bin/gcc', path.join(home, 'toolchains'))).root);
      const dir = tempDir();
      writeFileSync(path.join(dir, 'w.c'), 'int main(void) { int unused; return 0; }\n');
      const argv = ['gcc', '-Wall', '-c', 'w.c', '-o', 'w.o'];
      const scan = await new InputScanner().scan({ compiler: '/usr/bin/gcc', scanArgv: ['gcc', '-Wall', 'w.c', '-M', '-MT', 'meshcc-scan', '-v'], cwd: dir, env: utf8, source: 'w.c', language: 'c' });
      expect(scan.files.some((f) => f.startsWith('/usr/lib/locale/'))).toBe(true);
      const hasher = new InputHasher(store);
      const inputs = await Promise.all(scan.files.map((f) => hasher.hash(f)));
      const job: Job = { id: 'utf8', compiler: '/usr/bin/gcc', argv, cwd: dir, env: utf8, inputs, listings: scan.listings, dirs: scan.dirs, outputs: [path.join(dir, 'w.o')] };
      const result = await executor.run(job, undefined, mounts);
      const local = spawnSync('/usr/bin/gcc', argv.slice(1), { cwd: dir, env: utf8, encoding: 'utf8' });
      expect(local.stderr).toContain('‘unused’');
      expect(result.stderr.toString()).toBe(local.stderr);
    } finally {
      await executor.stop();
    }
  });

  const cases = [
    { compiler: '/usr/bin/gcc', source: 'a.c', text: '#include <stdio.h>\n#include "local.h"\nint main(void) { printf("%d\\n", ANSWER); return 0; }\n' },
    { compiler: '/usr/bin/g++', source: 'b.cc', text: '#include <vector>\n#include <string>\n#include "local.h"\nint f() { std::vector<std::string> v(ANSWER); return v.size(); }\n' },
    { compiler: '/usr/bin/clang', source: 'a.c', text: '#include <stdio.h>\n#include "local.h"\nint main(void) { printf("%d\\n", ANSWER); return 0; }\n' },
    { compiler: '/usr/bin/clang++', source: 'b.cc', text: '#include <vector>\n#include <string>\n#include "local.h"\nint f() { std::vector<std::string> v(ANSWER); return v.size(); }\n' },
  ];
  for (const c of cases) {
    it(`${path.basename(c.compiler)} -g: the object equals a plain compile's`, async () => {
      const { home, store, executor } = await sandbox();
      if (!executor) return;
      try {
        const install = await shipped(c.compiler, path.join(home, 'toolchains'));
        const mounts = readToolchainMounts(install.root);
        expect(mounts.files.some((f) => /\/cc1(plus)?$/.test(f)) || c.compiler.includes('clang')).toBe(true);

        const dir = tempDir();
        mkdirSync(path.join(dir, 'inc'));
        writeFileSync(path.join(dir, 'inc', 'local.h'), '#define ANSWER 42\n');
        writeFileSync(path.join(dir, c.source), c.text);
        const object = c.source.replace(/\.\w+$/, '.o');
        const argv = [path.basename(c.compiler), '-g', '-O2', '-Iinc', '-c', c.source, '-o', object];
        const scanArgv = [path.basename(c.compiler), '-g', '-O2', '-Iinc', c.source, '-M', '-MT', 'meshcc-scan', '-v'];
        const language = c.source.endsWith('.cc') ? 'c++' : 'c';
        const scan = await new InputScanner().scan({ compiler: c.compiler, scanArgv, cwd: dir, env, source: c.source, language });
        const hasher = new InputHasher(store);
        const inputs = await Promise.all(scan.files.map((f) => hasher.hash(f)));
        const job: Job = { id: 'shipped', compiler: c.compiler, argv, cwd: dir, env, inputs, listings: scan.listings, dirs: scan.dirs, outputs: [path.join(dir, object)] };
        const result = await executor.run(job, undefined, mounts);
        expect(result.stderr.toString()).toBe('');
        expect(result.exit).toBe(0);
        execFileSync(c.compiler, argv.slice(1), { cwd: dir, env });
        expect(Buffer.compare(Buffer.from(result.outputs[0]!.data), readFileSync(path.join(dir, object)))).toBe(0);

        // Nothing of the host's programs: a shell is not part of a compiler toolchain.
        const probe: Job = { ...job, id: 'probe', compiler: '/bin/sh', argv: ['sh', '-c', 'exit 0'] };
        await expect(executor.run(probe, undefined, mounts)).rejects.toThrow();
      } finally {
        await executor.stop();
      }
    });
  }
});
