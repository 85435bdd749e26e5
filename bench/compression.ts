// bench/compression: which codec to compress the files of remote compile jobs with.
// A job ships its inputs (C/C++ sources and headers, mostly system headers) to a peer
// and gets back object files (often with -g debug info) and .d files; every file (or
// 1 MiB chunk of a larger one) is compressed on its own before it goes on the link.
// This measures, on two corpora gathered on this machine, each candidate codec's ratio
// (compressed bytes / raw bytes), compression and decompression throughput on one
// thread, and the time to move a corpus over a 100 Mbit/s LAN and a 20 Mbit/s internet
// link (compress + transfer + decompress, one after the other), so the choice is made by
// measurement. Corpora: "sources" = every regular file under /usr/include/c++/<newest>,
// /usr/include/*.h and /usr/include/<triplet>/**; "objects" = the .o and .d files of
// zlib and googletest (from .cache/projects) compiled here with gcc/g++ -O2 -g -c -MD.
// Built-in candidates use Node's synchronous zlib functions, so that no thread-pool hop
// is timed; optional npm packages (zstd, lz4) are used through their synchronous API
// where they have one, else awaited one chunk at a time (marked "async"). Optional
// packages resolve from the repo's node_modules and, if set, from the directories in
// MESHCC_BENCH_EXTRA_MODULES (e.g. /tmp/compbench/node_modules). Prints tables, never
// fails on numbers. MESHCC_BENCH_PASSES sets the timed passes (default 7, at least 3).
import { execFile, execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import zlib from 'node:zlib';
import { median } from './measure.js';

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const CHUNK = 1024 * 1024;
const MB = 1e6;
/** Timed passes per codec and corpus; codecs take turns pass by pass, so load bursts spread. */
const passes = Math.max(3, Number(process.env.MESHCC_BENCH_PASSES ?? 7));
const links = [
  { name: '100 Mbit/s LAN', bitsPerSecond: 100e6 },
  { name: '20 Mbit/s internet', bitsPerSecond: 20e6 },
];

type CorpusKind = 'sources' | 'objects';

interface Corpus {
  kind: CorpusKind;
  files: number;
  /** Each file, or each 1 MiB chunk of a larger file: the unit that is compressed. */
  chunks: Buffer[];
  bytes: number;
}

// ---------------------------------------------------------------------------------
// Corpora

/** Every regular file under `dir`, recursively (symlinks are not followed). */
function regularFilesUnder(dir: string): string[] {
  const out: string[] = [];
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, entry.name);
    if (entry.isDirectory()) out.push(...regularFilesUnder(p));
    else if (entry.isFile()) out.push(p);
  }
  return out;
}

/** The newest /usr/include/c++/<version> directory. */
function newestLibstdcxxHeaders(): string {
  const base = '/usr/include/c++';
  const versions = readdirSync(base).filter((v) => /^\d+(\.\d+)*$/.test(v));
  versions.sort((a, b) => Number.parseFloat(b) - Number.parseFloat(a));
  if (!versions[0]) throw new Error(`no libstdc++ headers under ${base}`);
  return path.join(base, versions[0]);
}

function multiarchIncludeDir(): string | undefined {
  let triplet = `${os.arch() === 'arm64' ? 'aarch64' : 'x86_64'}-linux-gnu`;
  try {
    triplet = execFileSync('gcc', ['-dumpmachine'], { encoding: 'utf8' }).trim();
  } catch {
    // keep the guess
  }
  const dir = path.join('/usr/include', triplet);
  return existsSync(dir) ? dir : undefined;
}

function corpusOf(kind: CorpusKind, files: string[]): Corpus {
  const chunks: Buffer[] = [];
  for (const file of files) {
    const data = readFileSync(file);
    if (data.length === 0) continue;
    for (let off = 0; off < data.length; off += CHUNK) chunks.push(data.subarray(off, Math.min(data.length, off + CHUNK)));
  }
  return { kind, files: files.length, chunks, bytes: chunks.reduce((n, c) => n + c.length, 0) };
}

/** The headers a typical C++ compile reads: libstdc++, the libc headers, the multiarch ones. */
function gatherSources(): { corpus: Corpus; from: string[] } {
  const cxx = newestLibstdcxxHeaders();
  const top = readdirSync('/usr/include', { withFileTypes: true })
    .filter((e) => e.isFile() && e.name.endsWith('.h'))
    .map((e) => path.join('/usr/include', e.name));
  const multiarch = multiarchIncludeDir();
  const files = [...regularFilesUnder(cxx), ...top, ...(multiarch ? regularFilesUnder(multiarch) : [])];
  return { corpus: corpusOf('sources', files), from: [`${cxx}/**`, '/usr/include/*.h', ...(multiarch ? [`${multiarch}/**`] : [])] };
}

interface CompileJob {
  compiler: string;
  source: string;
  args: string[];
}

/** The compiles of zlib's library and of googletest's and googlemock's own sources. */
function projectCompiles(projects: string): CompileJob[] {
  const jobs: CompileJob[] = [];
  const zlib = path.join(projects, 'zlib');
  for (const f of readdirSync(zlib).filter((f) => f.endsWith('.c')).sort()) {
    jobs.push({ compiler: 'gcc', source: path.join(zlib, f), args: [`-I${zlib}`] });
  }
  const gt = path.join(projects, 'googletest', 'googletest');
  const gm = path.join(projects, 'googletest', 'googlemock');
  const cxxFlags = ['-std=c++17', `-I${gt}/include`, `-I${gt}`, `-I${gm}/include`, `-I${gm}`];
  for (const dir of [path.join(gt, 'src'), path.join(gm, 'src')]) {
    // The *-all.cc files only #include the others: compiling both would count each twice.
    for (const f of readdirSync(dir).filter((f) => f.endsWith('.cc') && !f.endsWith('-all.cc')).sort()) {
      jobs.push({ compiler: 'g++', source: path.join(dir, f), args: cxxFlags });
    }
  }
  return jobs;
}

/** Object and .d files made by real gcc/g++ -O2 -g compiles, in a temporary directory. */
async function gatherObjects(): Promise<{ corpus: Corpus; from: string[] }> {
  execFileSync('bash', [path.join(repo, 'test', 'projects', 'fetch.sh')], { stdio: 'ignore' });
  const projects = process.env.MESHCC_PROJECTS ?? path.join(repo, '.cache', 'projects');
  const jobs = projectCompiles(projects);
  const out = mkdtempSync(path.join(os.tmpdir(), 'meshcc-bench-compression-'));
  try {
    const run = promisify(execFile);
    const parallel = Math.max(1, os.availableParallelism());
    let next = 0;
    let done = 0;
    const worker = async () => {
      while (next < jobs.length) {
        const i = next++;
        const job = jobs[i]!;
        const obj = path.join(out, `${i}-${path.basename(job.source).replace(/\.\w+$/, '')}.o`);
        await run(job.compiler, ['-O2', '-g', '-MD', '-c', ...job.args, job.source, '-o', obj], { maxBuffer: 64 * MB });
        process.stderr.write(`\rcompiling objects: ${++done}/${jobs.length}`);
      }
    };
    await Promise.all(Array.from({ length: parallel }, worker));
    process.stderr.write('\n');
    const files = regularFilesUnder(out).sort();
    return {
      corpus: corpusOf('objects', files),
      from: [`${files.filter((f) => f.endsWith('.o')).length} .o + ${files.filter((f) => f.endsWith('.d')).length} .d of zlib + googletest, -O2 -g`],
    };
  } finally {
    rmSync(out, { recursive: true, force: true });
  }
}

// ---------------------------------------------------------------------------------
// Codecs

type Bytes = Uint8Array;

interface Codec {
  name: string;
  /** Where it comes from and what it is: built-in, native, wasm, pure JS. */
  impl: string;
  /** Returns a compressor for one corpus kind (e.g. brotli's text/generic mode). */
  compressor?(kind: CorpusKind): (chunk: Buffer) => Bytes | Promise<Bytes>;
  decompress(data: Bytes, rawSize: number): Bytes | Promise<Bytes>;
  /** Decompress-only codecs read the frames of this codec. */
  framesFrom?: Codec;
  async?: boolean;
}

interface Unavailable {
  name: string;
  reason: string;
}

function builtinCodecs(): Codec[] {
  const codecs: Codec[] = [];
  for (const level of [1, 3, 6]) {
    codecs.push({
      name: `gzip -${level}`,
      impl: 'node:zlib',
      compressor: () => (c) => zlib.gzipSync(c, { level }),
      decompress: (d) => zlib.gunzipSync(d),
    });
  }
  codecs.push({
    name: 'deflateRaw -1',
    impl: 'node:zlib',
    compressor: () => (c) => zlib.deflateRawSync(c, { level: 1 }),
    decompress: (d) => zlib.inflateRawSync(d),
  });
  for (const quality of [1, 3, 4, 5]) {
    codecs.push({
      name: `brotli q${quality}`,
      impl: 'node:zlib',
      compressor: (kind) => {
        const mode = kind === 'sources' ? zlib.constants.BROTLI_MODE_TEXT : zlib.constants.BROTLI_MODE_GENERIC;
        return (c) =>
          zlib.brotliCompressSync(c, {
            params: {
              [zlib.constants.BROTLI_PARAM_QUALITY]: quality,
              [zlib.constants.BROTLI_PARAM_MODE]: mode,
              [zlib.constants.BROTLI_PARAM_SIZE_HINT]: c.length,
            },
          });
      },
      decompress: (d) => zlib.brotliDecompressSync(d),
    });
  }
  return codecs;
}

/** zstd in node:zlib itself (Node >= 22.15 / 23.8); absent from Node 20. */
function nodeZstdCodecs(): Codec[] | Unavailable {
  const z = zlib as unknown as Record<string, unknown>;
  const compress = z.zstdCompressSync as ((b: Buffer, o: object) => Buffer) | undefined;
  const decompress = z.zstdDecompressSync as ((b: Bytes) => Buffer) | undefined;
  const levelParam = (zlib.constants as unknown as Record<string, number>).ZSTD_c_compressionLevel;
  if (!compress || !decompress || levelParam === undefined) return { name: 'node:zlib zstd', reason: `not in Node ${process.version}` };
  return [1, 3].map((level) => ({
    name: `zstd -${level}`,
    impl: 'node:zlib',
    compressor: () => (c: Buffer) => compress(c, { params: { [levelParam]: level } }),
    decompress: (d: Bytes) => decompress(d),
  }));
}

type AnyModule = any;

/** The module's exports (a CommonJS module's exports are the namespace's default). */
function exportsOf(ns: AnyModule): AnyModule {
  const d = ns?.default;
  return d && (typeof d === 'object' || typeof d === 'function') ? d : ns;
}

function isNotFound(err: unknown, name: string): boolean {
  const e = err as { code?: string; message?: string };
  return (e.code === 'ERR_MODULE_NOT_FOUND' || e.code === 'MODULE_NOT_FOUND') && (e.message ?? '').includes(`'${name}'`);
}

/** Imports an optional package from the repo's node_modules, else from MESHCC_BENCH_EXTRA_MODULES. */
async function loadOptional(name: string): Promise<{ module: AnyModule; version: string; from: string } | { missing: string }> {
  const extra = (process.env.MESHCC_BENCH_EXTRA_MODULES ?? '').split(path.delimiter).filter(Boolean);
  const bases = [repo, ...extra];
  for (const base of bases) {
    const req = createRequire(path.join(base, base === repo ? 'package.json' : 'noop.js'));
    let resolved: string;
    try {
      resolved = req.resolve(name);
    } catch (err) {
      if (isNotFound(err, name)) continue;
      return { missing: `cannot resolve: ${(err as Error).message.split('\n')[0]}` };
    }
    try {
      const ns: AnyModule = base === repo ? await import(name) : await import(pathToFileURL(resolved).href);
      let version = '?';
      const root = resolved.slice(0, resolved.lastIndexOf(`node_modules${path.sep}${name}`) + `node_modules${path.sep}${name}`.length);
      try {
        version = (JSON.parse(readFileSync(path.join(root, 'package.json'), 'utf8')) as { version: string }).version;
      } catch {
        // version unknown
      }
      return { module: exportsOf(ns), version, from: base === repo ? 'repo' : base };
    } catch (err) {
      return { missing: `installed but does not load: ${(err as Error).message.split('\n')[0]}` };
    }
  }
  return { missing: 'not installed' };
}

interface OptionalPackage {
  name: string;
  kind: string;
  make(m: AnyModule): Promise<Codec[]> | Codec[];
}

const optionalPackages: OptionalPackage[] = [
  {
    name: 'zstd-napi',
    kind: 'native',
    make: (m) =>
      [1, 3].map((level) => ({
        name: `zstd -${level}`,
        impl: '',
        compressor: () => (c: Buffer) => m.compress(c, { compressionLevel: level }) as Buffer,
        decompress: (d: Bytes) => m.decompress(d) as Buffer,
      })),
  },
  {
    name: '@toondepauw/node-zstd',
    kind: 'native',
    make: (m) => {
      const decoder = new m.Decoder();
      return [1, 3, 6].map((level) => {
        const encoder = new m.Encoder(level);
        return {
          name: `zstd -${level}`,
          impl: '',
          compressor: () => (c: Buffer) => encoder.encodeSync(c) as Buffer,
          decompress: (d: Bytes) => decoder.decodeSync(Buffer.from(d.buffer, d.byteOffset, d.byteLength)) as Buffer,
        };
      });
    },
  },
  {
    name: '@mongodb-js/zstd',
    kind: 'native',
    // 1.x's compress(data) drops any level (zstd's default, 3); later majors take one.
    make: (m) =>
      (m.compress.length >= 2 ? [1, 3] : [3]).map((level) => ({
        name: `zstd -${level}`,
        impl: '',
        async: true,
        compressor: () => (c: Buffer) => m.compress(c, level) as Promise<Buffer>,
        decompress: (d: Bytes) => m.decompress(Buffer.from(d.buffer, d.byteOffset, d.byteLength)) as Promise<Buffer>,
      })),
  },
  {
    name: '@bokuweb/zstd-wasm',
    kind: 'wasm',
    make: async (m) => {
      await m.init();
      return [1, 3].map((level) => ({
        name: `zstd -${level}`,
        impl: '',
        compressor: () => (c: Buffer) => m.compress(c, level) as Uint8Array,
        decompress: (d: Bytes) => m.decompress(d) as Uint8Array,
      }));
    },
  },
  {
    name: 'zstd-codec',
    kind: 'wasm',
    make: async (m) => {
      const simple: AnyModule = await new Promise((resolve) => m.ZstdCodec.run((zstd: AnyModule) => resolve(new zstd.Simple())));
      return [
        {
          name: 'zstd -3',
          impl: '',
          compressor: () => (c: Buffer) => simple.compress(c, 3) as Uint8Array,
          decompress: (d: Bytes) => simple.decompress(d) as Uint8Array,
        },
      ];
    },
  },
  {
    name: 'fzstd',
    kind: 'pure JS, decompress only',
    make: (m) => [{ name: 'zstd (decode)', impl: '', decompress: (d: Bytes) => m.decompress(d) as Uint8Array }],
  },
  {
    name: 'lz4-napi',
    kind: 'native',
    make: (m) => [
      {
        name: 'lz4',
        impl: '',
        compressor: () => (c: Buffer) => m.compressSync(c) as Buffer,
        decompress: (d: Bytes) => m.uncompressSync(d) as Buffer,
      },
    ],
  },
  {
    name: 'lz4-wasm-nodejs',
    kind: 'wasm',
    make: (m) => [
      {
        name: 'lz4',
        impl: '',
        compressor: () => (c: Buffer) => m.compress(c) as Uint8Array,
        decompress: (d: Bytes) => m.decompress(d) as Uint8Array,
      },
    ],
  },
  {
    name: 'lz4js',
    kind: 'pure JS',
    make: (m) => [
      {
        name: 'lz4 (frame)',
        impl: '',
        compressor: () => (c: Buffer) => m.compress(c) as Uint8Array,
        decompress: (d: Bytes) => m.decompress(d) as Uint8Array,
      },
    ],
  },
];

async function optionalCodecs(): Promise<{ codecs: Codec[]; unavailable: Unavailable[] }> {
  const codecs: Codec[] = [];
  const unavailable: Unavailable[] = [];
  for (const pkg of optionalPackages) {
    const loaded = await loadOptional(pkg.name);
    if ('missing' in loaded) {
      unavailable.push({ name: pkg.name, reason: loaded.missing });
      continue;
    }
    try {
      for (const codec of await pkg.make(loaded.module)) {
        codec.impl = `${pkg.name}@${loaded.version} (${pkg.kind}${codec.async ? ', async' : ''})`;
        codecs.push(codec);
      }
    } catch (err) {
      unavailable.push({ name: pkg.name, reason: `loaded but failed: ${(err as Error).message.split('\n')[0]}` });
    }
  }
  // A decompress-only codec reads the frames of the first zstd -3 encoder available.
  const encoder = codecs.find((c) => c.name === 'zstd -3' && c.compressor);
  for (const c of codecs.filter((c) => !c.compressor)) {
    if (encoder) c.framesFrom = encoder;
    else unavailable.push({ name: c.impl, reason: 'no zstd encoder to make its input' });
  }
  return { codecs: codecs.filter((c) => c.compressor || c.framesFrom), unavailable };
}

// ---------------------------------------------------------------------------------
// Measuring

interface Result {
  codec: Codec;
  compressedBytes: number;
  /** Median MB/s of raw bytes; undefined for decompress-only codecs. */
  compressMBps?: number;
  decompressMBps: number;
  roundTripOk: boolean;
}

/** One codec on one corpus: its frames (from an untimed warm-up pass) and its pass times. */
interface Trial {
  codec: Codec;
  corpus: Corpus;
  compress?: (chunk: Buffer) => Bytes | Promise<Bytes>;
  frames: Bytes[];
  roundTripOk: boolean;
  compressMs: number[];
  decompressMs: number[];
}

/** Warms the codec up on the corpus, keeps its frames and checks the round trip. */
async function prepareTrial(codec: Codec, corpus: Corpus): Promise<Trial> {
  const source = codec.compressor ? codec : codec.framesFrom!;
  const encode = source.compressor!(corpus.kind);
  const frames: Bytes[] = [];
  for (const chunk of corpus.chunks) frames.push(await encode(chunk));
  let roundTripOk = true;
  for (let i = 0; i < frames.length; i++) {
    const back = await codec.decompress(frames[i]!, corpus.chunks[i]!.length);
    if (Buffer.compare(Buffer.from(back.buffer, back.byteOffset, back.byteLength), corpus.chunks[i]!) !== 0) roundTripOk = false;
  }
  return { codec, corpus, compress: codec.compressor ? encode : undefined, frames, roundTripOk, compressMs: [], decompressMs: [] };
}

/** Milliseconds of one compression pass over the corpus, every chunk on its own. */
async function timeCompressPass(t: Trial): Promise<number> {
  const compress = t.compress!;
  const chunks = t.corpus.chunks;
  const t0 = performance.now();
  if (t.codec.async) for (const chunk of chunks) await compress(chunk);
  else for (const chunk of chunks) compress(chunk);
  return performance.now() - t0;
}

/** Milliseconds of one decompression pass over the trial's frames. */
async function timeDecompressPass(t: Trial): Promise<number> {
  const { codec, frames } = t;
  const sizes = t.corpus.chunks.map((c) => c.length);
  const t0 = performance.now();
  if (codec.async) for (let i = 0; i < frames.length; i++) await codec.decompress(frames[i]!, sizes[i]!);
  else for (let i = 0; i < frames.length; i++) codec.decompress(frames[i]!, sizes[i]!);
  return performance.now() - t0;
}

/** All codecs on one corpus: `passes` rounds, each codec timed once per round. */
async function measureCorpus(codecs: Codec[], corpus: Corpus): Promise<Result[]> {
  const trials: Trial[] = [];
  for (const codec of codecs) {
    process.stderr.write(`\r${`${corpus.kind}: warming up ${codec.name} ${codec.impl}`.padEnd(100)}`);
    trials.push(await prepareTrial(codec, corpus));
  }
  for (let round = 1; round <= passes; round++) {
    process.stderr.write(`\r${`${corpus.kind}: pass ${round}/${passes}`.padEnd(100)}`);
    for (const t of trials) {
      if (t.compress) t.compressMs.push(await timeCompressPass(t));
      t.decompressMs.push(await timeDecompressPass(t));
    }
  }
  process.stderr.write('\n');
  const mbps = (ms: number) => corpus.bytes / MB / (ms / 1000);
  return trials.map((t) => ({
    codec: t.codec,
    compressedBytes: t.frames.reduce((n, f) => n + f.length, 0),
    compressMBps: t.compress ? mbps(median(t.compressMs)) : undefined,
    decompressMBps: mbps(median(t.decompressMs)),
    roundTripOk: t.roundTripOk,
  }));
}

// ---------------------------------------------------------------------------------
// Printing

const pad = (s: string, n: number) => s.padEnd(n);
const lpad = (s: string, n: number) => s.padStart(n);

function printCorpusTable(corpus: Corpus, from: string[], results: Result[]): void {
  console.log(`\n${corpus.kind}: ${corpus.files} files, ${corpus.chunks.length} chunks, ${(corpus.bytes / MB).toFixed(1)} MB raw`);
  for (const f of from) console.log(`  from ${f}`);
  console.log(`  ${pad('codec', 15)} ${pad('implementation', 46)} ${lpad('ratio', 6)} ${lpad('comp MB/s', 10)} ${lpad('decomp MB/s', 12)}`);
  for (const r of results) {
    const comp = r.compressMBps === undefined ? '-' : r.compressMBps.toFixed(0);
    console.log(
      `  ${pad(r.codec.name, 15)} ${pad(r.codec.impl, 46)} ${lpad(((r.compressedBytes / corpus.bytes) * 100).toFixed(1) + '%', 6)} ` +
        `${lpad(comp, 10)} ${lpad(r.decompressMBps.toFixed(0), 12)}${r.roundTripOk ? '' : '  ROUND TRIP FAILED'}`,
    );
  }
}

/** Seconds to move the corpus: compress, send the compressed bytes, decompress, one after the other. */
function printLinkTable(corpus: Corpus, results: Result[]): void {
  const rawMB = corpus.bytes / MB;
  console.log(`\nTime to move the ${corpus.kind} corpus (${rawMB.toFixed(1)} MB), one thread, compress + transfer + decompress, in seconds:`);
  console.log(`  ${pad('codec', 15)} ${pad('implementation', 46)} ${lpad('comp', 6)} ${lpad('decomp', 7)} ${lpad('wire MB', 8)} ${links.map((l) => lpad(l.name, 19)).join(' ')}`);
  const rows: { name: string; impl: string; comp: number; decomp: number; wire: number }[] = [
    { name: 'none', impl: '', comp: 0, decomp: 0, wire: corpus.bytes },
    ...results
      .filter((r) => r.compressMBps !== undefined && r.roundTripOk)
      .map((r) => ({ name: r.codec.name, impl: r.codec.impl, comp: rawMB / r.compressMBps!, decomp: rawMB / r.decompressMBps, wire: r.compressedBytes })),
  ];
  const totals = rows.map((row) => links.map((l) => row.comp + (row.wire * 8) / l.bitsPerSecond + row.decomp));
  const best = links.map((_, i) => Math.min(...totals.map((t) => t[i]!)));
  rows.forEach((row, r) => {
    const cells = links.map((_, i) => lpad(`${totals[r]![i]!.toFixed(2)}${totals[r]![i] === best[i] ? ' *' : '  '}`, 19));
    console.log(
      `  ${pad(row.name, 15)} ${pad(row.impl, 46)} ${lpad(row.comp.toFixed(2), 6)} ${lpad(row.decomp.toFixed(2), 7)} ` +
        `${lpad((row.wire / MB).toFixed(1), 8)} ${cells.join(' ')}`,
    );
  });
  console.log('  (* = fastest for that link; done one after the other, so an upper bound: a pipelined sender overlaps them; decompress-only codecs left out)');
}

async function main(): Promise<void> {
  const sources = gatherSources();
  const objects = await gatherObjects();
  const builtin = builtinCodecs();
  const nodeZstd = nodeZstdCodecs();
  const optional = await optionalCodecs();
  const codecs = [...builtin, ...(Array.isArray(nodeZstd) ? nodeZstd : []), ...optional.codecs];
  const unavailable = [...(Array.isArray(nodeZstd) ? [] : [nodeZstd]), ...optional.unavailable];

  console.log(`Compression of compile job files, each file or 1 MiB chunk on its own; Node ${process.version}, ${os.cpus()[0]?.model ?? 'cpu?'}`);
  console.log(`Throughput: MB (1e6 bytes) of raw data per second, one thread, median of ${passes} passes (codecs interleaved); ratio = compressed / raw.`);
  console.log('Built-in codecs use the synchronous node:zlib functions (no thread-pool hop is timed).');
  for (const u of unavailable) console.log(`  ${pad(u.name, 24)} ${u.reason}`);

  const byCorpus: { corpus: Corpus; from: string[]; results: Result[] }[] = [];
  for (const { corpus, from } of [sources, objects]) {
    byCorpus.push({ corpus, from, results: await measureCorpus(codecs, corpus) });
  }
  for (const { corpus, from, results } of byCorpus) printCorpusTable(corpus, from, results);
  for (const { corpus, results } of byCorpus) printLinkTable(corpus, results);
}

await main();
