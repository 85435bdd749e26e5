// Builds the native per-invocation client (node/client/*.c) with the system C compiler
// into dist/client/meshcc-cc, and dist/masquerade/ with gcc, g++, cc, c++, clang and
// clang++ linking to it (put that directory first on PATH to route a build through meshcc).
//
// Run as `node scripts/build-client.js` from anywhere; it is idempotent, and it replaces
// files atomically (rename) so that a build running the client meanwhile never sees a
// half-written binary. It never fails the install: without a working C compiler it warns
// and exits 0, because the agent (and `meshcc cc`) work without the native client.
import { spawnSync } from 'node:child_process';
import { lstatSync, mkdirSync, readlinkSync, renameSync, rmSync, symlinkSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const sources = ['meshcc-client.c', 'msgpack.c'].map((f) => path.join(root, 'node', 'client', f));
const clientDir = path.join(root, 'dist', 'client');
const masqueradeDir = path.join(root, 'dist', 'masquerade');
const binary = path.join(clientDir, 'meshcc-cc');
const LINK_TARGET = '../client/meshcc-cc';
const MASQUERADE_NAMES = ['gcc', 'g++', 'cc', 'c++', 'clang', 'clang++'];

// CC may carry arguments ("ccache gcc", "gcc -m64"), as make allows.
const [cc, ...ccArgs] = (process.env.CC || 'cc').trim().split(/\s+/);

function warn(why) {
  console.warn(`meshcc: warning: native client not built (${why}); the agent works without it`);
}

function buildBinary() {
  mkdirSync(clientDir, { recursive: true });
  const tmp = `${binary}.tmp-${process.pid}`;
  const args = [...ccArgs, '-O2', '-Wall', '-Wextra', '-o', tmp, ...sources];
  // Static first: without the dynamic loader each invocation starts about 0.4 ms sooner
  // (measured here: 1.3-1.8 ms against 1.8-2.4 ms for exec + exec of a trivial program).
  // Many systems have no static libc (macOS, some distributions): then link dynamically,
  // and show the diagnostics of the attempt that counts.
  let run = spawnSync(cc, [...args, '-static'], { stdio: ['ignore', 'pipe', 'pipe'] });
  if (!run.error && run.status === 0) process.stderr.write(run.stdout + run.stderr);
  else run = spawnSync(cc, args, { stdio: ['ignore', 'inherit', 'inherit'] });
  if (run.error || run.status !== 0) {
    rmSync(tmp, { force: true });
    // Leave no stale client behind: the masquerade links then dangle, and a shell or make
    // searching PATH skips a dangling link and finds the real compiler.
    rmSync(binary, { force: true });
    if (run.error?.code === 'ENOENT') warn(`no C compiler '${cc}' found`);
    else if (run.error) warn(`cannot run '${cc}': ${run.error.message}`);
    else warn(`'${cc}' failed to compile node/client/meshcc-client.c`);
    return false;
  }
  renameSync(tmp, binary);
  return true;
}

function linkMasquerade() {
  mkdirSync(masqueradeDir, { recursive: true });
  for (const name of MASQUERADE_NAMES) {
    const link = path.join(masqueradeDir, name);
    try {
      if (lstatSync(link).isSymbolicLink() && readlinkSync(link) === LINK_TARGET) continue;
    } catch {
      // absent: create it below
    }
    const tmp = `${link}.tmp-${process.pid}`;
    rmSync(tmp, { force: true });
    symlinkSync(LINK_TARGET, tmp);
    renameSync(tmp, link);
  }
}

if (buildBinary()) linkMasquerade();
