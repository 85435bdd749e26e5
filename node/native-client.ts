// The native compiler client (node/client/*.c) and its masquerade directory: where they are, and
// building them on first use.
//
// A clone builds them into dist/ (`npm run build`). An installed package ships only their
// sources: a binary belongs to one machine, the package directory may not be the user's to
// write (a global prefix), and npm 11 runs no install script the user has not allowed. So the
// first command that hands out their paths (`meshcc bindir`, `meshcc run`) builds them into the
// user's cache, once per package version and location, and says so in one line; without a C
// compiler the build writes the Node client there instead (scripts/build-client.js).
import { spawnSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, readSync, realpathSync, renameSync, rmSync } from 'node:fs';
import path from 'node:path';
import { MeshccError } from '../protocol/errors.js';
import { toolchainKnowledgeDir } from './config.js';
import { CLIENT_BUILD_INPUTS, CLIENT_BUILD_SCRIPT, PACKAGE_ROOT, PACKAGE_VERSION } from './paths.js';

/** A directory laid out as dist/ is: client/meshcc-cc and masquerade/ beside it. */
export interface ClientBuild {
  dir: string;
  /** the launcher form: `meshcc-cc gcc -c a.c` (CMAKE_C_COMPILER_LAUNCHER, CCACHE_PREFIX) */
  client: string;
  /** gcc, g++, cc, c++, clang and clang++, each leading to the client: first on PATH */
  masquerade: string;
}

function laidOutIn(dir: string): ClientBuild {
  return { dir, client: path.join(dir, 'client', 'meshcc-cc'), masquerade: path.join(dir, 'masquerade') };
}

/** The build a clone makes with `npm run build`. */
const packageBuild = laidOutIn(path.join(PACKAGE_ROOT, 'dist'));

/**
 * The user's build for this package: in MESHCC_CACHE_DIR (default ~/.cache/meshcc), named by
 * the version and a hash of the package's location and the client's sources, so that an upgrade
 * or a second installation never runs a client built from other sources.
 */
export function userBuild(env: NodeJS.ProcessEnv = process.env): ClientBuild {
  const hash = createHash('sha256').update(PACKAGE_ROOT);
  for (const file of CLIENT_BUILD_INPUTS) hash.update('\0').update(readFileSync(file));
  return laidOutIn(path.join(toolchainKnowledgeDir(env), 'client', `${PACKAGE_VERSION}-${hash.digest('hex').slice(0, 12)}`));
}

/** Where the client is (or is to be built) without building it: the package's own build first. */
export function locateClient(env: NodeJS.ProcessEnv = process.env): ClientBuild {
  return existsSync(packageBuild.client) ? packageBuild : userBuild(env);
}

/** The names the masquerade directory holds (scripts/build-client.js makes them). */
export const MASQUERADE_NAMES = ['gcc', 'g++', 'cc', 'c++', 'clang', 'clang++'];
/** How the Node client's scripts begin their second line (scripts/build-client.js writes them). */
const NODE_CLIENT_MARK = '# meshcc: the Node client';

/**
 * Whether a compiler entry is one of ours: a link to the native client, or the Node client's
 * script. Known by what it is, not where: a masquerade directory built for another user,
 * version or MESHCC_CACHE_DIR must be skipped as well, or a compile would call itself forever.
 */
export function isMeshccClient(file: string): boolean {
  try {
    if (path.basename(realpathSync(file)) === 'meshcc-cc') return true;
    const head = Buffer.alloc(256);
    const fd = openSync(file, 'r');
    try {
      return head.subarray(0, readSync(fd, head, 0, head.length, 0)).toString('latin1').includes(`\n${NODE_CLIENT_MARK}`);
    } finally {
      closeSync(fd);
    }
  } catch {
    return false;
  }
}

/** Runs scripts/build-client.js into dir; its one warning line (no C compiler) goes to stderr. */
function runBuildScript(dir: string): void {
  // The script's stdout (a compiler's messages) goes to stderr too: `meshcc bindir` prints
  // nothing on stdout but the directory, which `$(meshcc bindir)` takes whole.
  const run = spawnSync(process.execPath, [CLIENT_BUILD_SCRIPT, dir], { stdio: ['ignore', 2, 2] });
  if (run.error || run.status !== 0 || !existsSync(path.join(dir, 'client', 'meshcc-cc'))) {
    throw new MeshccError('client-build', `could not build the compiler client in ${dir}: ${run.error?.message ?? `exit ${run.status}`}; set MESHCC_CACHE_DIR to a directory you can write`);
  }
}

/** Whether the client is the compiled one (an ELF or Mach-O file), not the Node client's script. */
export function isNativeClient(file: string): boolean {
  const head = Buffer.alloc(2);
  const fd = openSync(file, 'r');
  try {
    readSync(fd, head, 0, 2, 0);
  } finally {
    closeSync(fd);
  }
  return head.toString('latin1') !== '#!';
}

/**
 * The client, built first if this user has none yet for this package. Built under a private
 * name and renamed into place, so that two first uses at once both end with a whole build.
 */
export function ensureClient(env: NodeJS.ProcessEnv = process.env): ClientBuild {
  const found = locateClient(env);
  if (existsSync(found.client)) return found;
  mkdirSync(path.dirname(found.dir), { recursive: true });
  const staging = path.join(path.dirname(found.dir), `.build-${process.pid}-${randomBytes(4).toString('hex')}`);
  try {
    runBuildScript(staging);
    try {
      renameSync(staging, found.dir);
    } catch (err) {
      // Another first use renamed its build into place first: use that one.
      const code = (err as NodeJS.ErrnoException).code;
      if ((code !== 'ENOTEMPTY' && code !== 'EEXIST') || !existsSync(found.client)) throw err;
      return found;
    }
  } finally {
    rmSync(staging, { recursive: true, force: true });
  }
  if (isNativeClient(found.client)) process.stderr.write(`meshcc: built the native compiler client into ${found.dir} (once per meshcc version)\n`);
  return found;
}

/** `meshcc setup`: builds the client again where it is used from (files replaced one by one, atomically). */
export function rebuildClient(env: NodeJS.ProcessEnv = process.env): ClientBuild {
  const target = locateClient(env);
  runBuildScript(target.dir);
  process.stderr.write(`meshcc: ${isNativeClient(target.client) ? 'native client' : 'Node client'} in ${target.dir}\n`);
  return target;
}
