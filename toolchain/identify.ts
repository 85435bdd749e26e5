// Which compiler is this, exactly? A toolchain is the compiler driver plus every program and
// library it runs or loads (cc1/cc1plus, the assembler, the LTO plugin, specs, shared
// libraries, the dynamic loader). Its id is a sha256 over the contents of those files, so two
// machines with identical compilers agree on it and any change of content changes it.
import { createHash } from 'node:crypto';
import { execFile } from 'node:child_process';
import { createReadStream, existsSync, promises as fs, readdirSync, readFileSync, realpathSync, renameSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { sharedLibraryClosure } from './elf-deps.js';

const run = promisify(execFile);

export interface ToolchainFile {
  role: string;
  path: string;
  size: number;
  mtimeMs: number;
  hash: string;
  executable: boolean;
}

export interface Toolchain {
  id: string;
  /** The driver's real path. */
  driver: string;
  family: 'gcc' | 'clang';
  /** The language the driver assumes from its name (clang++ compiles .c files as C++). */
  mode: 'c' | 'c++';
  version: string;
  target: string;
  files: ToolchainFile[];
}

interface Cached {
  key: string;
  toolchain: Promise<Toolchain>;
}

const GCC_PROGRAMS = ['cc1', 'cc1plus', 'collect2', 'lto-wrapper', 'as'];

export class ToolchainIdentifier {
  private readonly cache = new Map<string, Cached>();
  /** File hashes by path, size and mtime: gcc, g++ and cc share most of their files. */
  private readonly hashes = new Map<string, Promise<string>>();
  /** How many identifications were computed rather than served from the cache. */
  computed = 0;

  private persisted: Record<string, { key: string; toolchain: Toolchain }> = {};

  /** With `cacheFile`, identifications survive restarts (re-validated by every file's size and mtime). */
  constructor(private readonly options: { log?: { debug(obj: object, msg: string): void }; cacheFile?: string } = {}) {
    if (options.cacheFile) {
      try {
        this.persisted = JSON.parse(readFileSync(options.cacheFile, 'utf8')) as typeof this.persisted;
      } catch {
        this.persisted = {};
      }
    }
  }

  /** Identifies the compiler at this path (as invoked; symlinks resolve to the same toolchain
   *  unless the name changes the driver's language, as clang++ does). Cached. */
  identify(compilerPath: string): Promise<Toolchain> {
    let key: string;
    let cacheKey: string;
    try {
      const real = realpathSync(compilerPath);
      const st = statSync(real);
      key = `${st.size}:${st.mtimeMs}:${st.ino}:${st.dev}`;
      cacheKey = `${real}\0${modeOf(compilerPath)}`;
    } catch (err) {
      return Promise.reject(new Error(`${compilerPath}: ${(err as NodeJS.ErrnoException).code ?? 'cannot stat'}`));
    }
    const hit = this.cache.get(cacheKey);
    if (hit && hit.key === key) return hit.toolchain;
    const stored = this.persisted[cacheKey];
    const toolchain =
      stored && stored.key === key && stillTheSame(stored.toolchain) ? Promise.resolve(stored.toolchain) : this.compute(compilerPath, cacheKey, key);
    this.cache.set(cacheKey, { key, toolchain });
    toolchain.catch(() => this.cache.delete(cacheKey));
    return toolchain;
  }

  private compute(compilerPath: string, cacheKey: string, key: string): Promise<Toolchain> {
    this.computed++;
    const toolchain = computeToolchain(compilerPath, this.hashes);
    toolchain.then(
      (t) => {
        this.options.log?.debug({ compiler: compilerPath, id: t.id.slice(0, 12), files: t.files.length }, 'toolchain identified');
        this.persisted[cacheKey] = { key, toolchain: t };
        if (this.options.cacheFile) {
          const temp = `${this.options.cacheFile}.${process.pid}`;
          try {
            writeFileSync(temp, JSON.stringify(this.persisted));
            renameSync(temp, this.options.cacheFile);
          } catch {
            // a cache that cannot be written only costs the next start some hashing
          }
        }
      },
      () => undefined,
    );
    return toolchain;
  }
}

function modeOf(compilerPath: string): 'c' | 'c++' {
  return /\+\+/.test(path.basename(compilerPath)) ? 'c++' : 'c';
}

function stillTheSame(toolchain: Toolchain): boolean {
  return toolchain.files.every((f) => {
    try {
      const st = statSync(f.path);
      return st.size === f.size && st.mtimeMs === f.mtimeMs;
    } catch {
      return false;
    }
  });
}

async function output(file: string, args: string[]): Promise<string> {
  const { stdout } = await run(file, args, { encoding: 'utf8', timeout: 10_000, env: { ...process.env, LC_ALL: 'C' } });
  return stdout.trim();
}

async function computeToolchain(compilerPath: string, hashes: Map<string, Promise<string>>): Promise<Toolchain> {
  const driver = await fs.realpath(compilerPath);
  let versionText: string;
  try {
    versionText = await output(driver, ['--version']);
  } catch {
    throw new Error(`${compilerPath} is not a gcc or clang driver (--version failed)`);
  }
  const family = /clang version/.test(versionText) ? 'clang' : /\b(gcc|g\+\+|GCC)\b|Free Software Foundation/.test(versionText) ? 'gcc' : undefined;
  if (!family) throw new Error(`${compilerPath} is not a gcc or clang driver`);
  const target = await output(driver, ['-dumpmachine']);
  const version = family === 'gcc' ? await output(driver, ['-dumpfullversion']) : (/clang version (\S+)/.exec(versionText)?.[1] ?? 'unknown');
  const members = new Map<string, string>([[driver, 'driver']]);
  if (family === 'gcc') {
    for (const program of GCC_PROGRAMS) {
      const found = await locate(await output(driver, [`-print-prog-name=${program}`]));
      if (found && !members.has(found)) members.set(found, program);
    }
    for (const [name, role] of [['liblto_plugin.so', 'lto-plugin'], ['specs', 'specs']] as const) {
      const printed = await output(driver, [`-print-file-name=${name}`]);
      if (path.isAbsolute(printed) && existsSync(printed)) members.set(await fs.realpath(printed), role);
    }
  }
  for (const library of await sharedLibraryClosure([...members.keys()])) {
    if (!members.has(library.path)) members.set(library.path, library.role);
  }
  const files: ToolchainFile[] = [];
  for (const [file, role] of members) {
    const st = await fs.stat(file);
    const key = `${file}\0${st.size}\0${st.mtimeMs}\0${st.ino}`;
    let hash = hashes.get(key);
    if (!hash) {
      hash = hashFile(file);
      hashes.set(key, hash);
      hash.catch(() => hashes.delete(key));
    }
    files.push({ role, path: file, size: st.size, mtimeMs: st.mtimeMs, hash: await hash, executable: (st.mode & 0o111) !== 0 });
  }
  files.sort((a, b) => (a.role === b.role ? (a.path < b.path ? -1 : 1) : a.role < b.role ? -1 : 1));
  // The id covers what a file is (its role and name) and what it holds, not where this host
  // keeps it: a library's directory differs between distributions of the same bytes.
  const id = createHash('sha256');
  const mode = modeOf(compilerPath);
  id.update(`meshcc-toolchain-1\0${family}\0${mode}\0${version}\0${target}\0`);
  for (const f of files) id.update(`${f.role}\0${path.basename(f.path)}\0${f.size}\0${f.executable ? 1 : 0}\0${f.hash}\0`);
  return { id: id.digest('hex'), driver, family, mode, version, target, files };
}

/** A program name printed by the driver: absolute if found in its libexec dir, bare if not (then on PATH). */
async function locate(printed: string): Promise<string | undefined> {
  if (path.isAbsolute(printed)) return existsSync(printed) ? fs.realpath(printed) : undefined;
  for (const dir of (process.env.PATH ?? '').split(':').filter(Boolean)) {
    const candidate = path.join(dir, printed);
    if (existsSync(candidate)) return fs.realpath(candidate);
  }
  return undefined;
}

function hashFile(file: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const hash = createHash('sha256');
    createReadStream(file)
      .on('data', (chunk) => hash.update(chunk))
      .on('end', () => resolve(hash.digest('hex')))
      .on('error', reject);
  });
}

const COMPILER_NAME = /^(([a-z0-9_]+-)+)?(gcc|g\+\+|cc|c\+\+|clang|clang\+\+)(-\d+(\.\d+)*)?$/;

/** Absolute paths of C/C++ compiler drivers on this PATH, one per name (first on PATH wins). */
export function findHostCompilers(pathEnv = process.env.PATH ?? ''): string[] {
  const seen = new Set<string>();
  const found: string[] = [];
  for (const dir of pathEnv.split(':').filter(Boolean)) {
    let names: string[];
    try {
      names = readdirSync(dir);
    } catch {
      continue;
    }
    for (const name of names.sort()) {
      // c89-gcc and c99-gcc are shell wrappers around gcc, not drivers.
      if (seen.has(name) || !COMPILER_NAME.test(name) || /^c[89]9-/.test(name)) continue;
      const full = path.join(dir, name);
      try {
        const st = statSync(full);
        // meshcc's own masquerade links are not compilers.
        if (!st.isFile() || (st.mode & 0o111) === 0 || path.basename(realpathSync(full)) === 'meshcc-cc') continue;
      } catch {
        continue;
      }
      seen.add(name);
      found.push(full);
    }
  }
  return found;
}
