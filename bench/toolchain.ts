// bench/toolchain: what shipping a toolchain costs, per host compiler: identifying it (its
// files, hashed), packing it as the deterministic tarball whose sha256 is its id, the
// tarball's size raw and compressed for the wire (gzip -1 and brotli q1, time and size), and
// installing it on a peer (streamed, verified, unpacked atomically into a fresh cache).
// icecream's icecc-create-env for this gcc: about 31 MB, about 4 s to create and ship.
//   node dist/bench/toolchain.js [compiler …]   (default: gcc g++ clang clang++ from /usr/bin)
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { PassThrough, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { constants, createBrotliCompress, createGzip } from 'node:zlib';
import { ToolchainIdentifier } from '../toolchain/identify.js';
import { planToolchainTar, toolchainTarId, toolchainTarStream, writeToolchainTar } from '../toolchain/pack.js';
import { installToolchain } from '../toolchain/unpack.js';

function counter(): { sink: Writable; bytes: () => number } {
  let n = 0;
  return {
    sink: new Writable({
      write(chunk: Buffer, _enc, done) {
        n += chunk.length;
        done();
      },
    }),
    bytes: () => n,
  };
}

async function compressed(make: () => NodeJS.ReadWriteStream, source: () => NodeJS.ReadableStream): Promise<{ bytes: number; ms: number }> {
  const t0 = performance.now();
  const out = counter();
  await pipeline(source(), make(), out.sink);
  return { bytes: out.bytes(), ms: performance.now() - t0 };
}

const mb = (n: number) => `${(n / 1e6).toFixed(1)} MB`;
const ms = (n: number) => `${Math.round(n)} ms`;

const compilers = process.argv.slice(2).length ? process.argv.slice(2) : ['/usr/bin/gcc', '/usr/bin/g++', '/usr/bin/clang', '/usr/bin/clang++'].filter((c) => existsSync(c));
const work = mkdtempSync(path.join(os.tmpdir(), 'meshcc-bench-toolchain-'));
try {
  for (const compiler of compilers) {
    const t0 = performance.now();
    const toolchain = await new ToolchainIdentifier().identify(compiler);
    const t1 = performance.now();
    const plan = await planToolchainTar(toolchain, compiler);
    const { id, size } = await toolchainTarId(plan);
    const t2 = performance.now();
    const gzip = await compressed(() => createGzip({ level: 1 }), () => toolchainTarStream(plan));
    const brotli = await compressed(() => createBrotliCompress({ params: { [constants.BROTLI_PARAM_QUALITY]: 1 } }), () => toolchainTarStream(plan));
    const cacheDir = path.join(work, path.basename(compiler));
    const t3 = performance.now();
    const wire = new PassThrough();
    await Promise.all([installToolchain({ cacheDir, id, source: wire }), writeToolchainTar(plan, wire)]);
    const t4 = performance.now();
    console.log(`${compiler}: ${toolchain.family} ${toolchain.version}, id ${id.slice(0, 12)}…`);
    console.log(`  identify (files found and hashed, cold)   ${ms(t1 - t0)}`);
    console.log(`  pack: plan + tarball hashed             ${ms(t2 - t1)}   ${mb(size)} in ${plan.entries.length} entries`);
    console.log(`  for the wire: gzip -1                   ${ms(gzip.ms)}   ${mb(gzip.bytes)}`);
    console.log(`                brotli q1                 ${ms(brotli.ms)}   ${mb(brotli.bytes)}`);
    console.log(`  install on a fresh peer (stream, verify, unpack, rename)   ${ms(t4 - t3)}`);
    rmSync(cacheDir, { recursive: true, force: true });
  }
} finally {
  rmSync(work, { recursive: true, force: true });
}
