// Builds the native per-invocation client (node/client/*.c) with the system C compiler into
// OUT/client/meshcc-cc, and OUT/masquerade/ with gcc, g++, cc, c++, clang and clang++ linking to
// it (put that directory first on PATH to route a build through meshcc); and with the same
// compiler the agent's native spawner (node/spawner/meshcc-spawn.c) into OUT/spawner/. OUT is dist/ of the
// package unless given: `node scripts/build-client.js [OUT]` (an installed package builds into
// the user's cache on first use, see node/native-client.ts).
//
// It is idempotent, and it replaces files atomically (rename) so that a build running the
// client meanwhile never sees a half-written binary. It never fails: without a working C
// compiler it writes the Node client (`meshcc cc`) in the same places, as small shell scripts,
// says so in one line and exits 0, because everything works without the native client, only
// with a slower start per compile.
import { spawnSync } from 'node:child_process';
import { chmodSync, lstatSync, mkdirSync, readlinkSync, renameSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const sources = ['meshcc-client.c', 'msgpack.c', 'copy-outputs.c'].map((f) => path.join(root, 'node', 'client', f));
const spawnerSources = ['meshcc-spawn.c', 'exec-program.c', 'sandbox-state.c'].map((f) => path.join(root, 'node', 'spawner', f));
const out = path.resolve(process.argv[2] ?? path.join(root, 'dist'));
const clientDir = path.join(out, 'client');
const masqueradeDir = path.join(out, 'masquerade');
const binary = path.join(clientDir, 'meshcc-cc');
const spawnerDir = path.join(out, 'spawner');
const spawnerBinary = path.join(spawnerDir, 'meshcc-spawn');
const LINK_TARGET = '../client/meshcc-cc';
const MASQUERADE_NAMES = ['gcc', 'g++', 'cc', 'c++', 'clang', 'clang++'];
// The first line of every Node-client script: what it is, and how to replace it.
const NODE_CLIENT_MARK = '# meshcc: the Node client, written because no C compiler could build the native one (meshcc setup rebuilds it)';

// CC may carry arguments ("ccache gcc", "gcc -m64"), as make allows; a CC that is set is the
// only compiler tried, since the user chose it.
const compilers = process.env.CC?.trim() ? [process.env.CC.trim().split(/\s+/)] : [['cc'], ['gcc'], ['clang']];

/** Compiles a program with one compiler; returns why it could not, or undefined once built. */
function compileWith([cc, ...ccArgs], target = binary, from = sources) {
  const tmp = `${target}.tmp-${process.pid}`;
  const args = [...ccArgs, '-O2', '-Wall', '-Wextra', '-o', tmp, ...from];
  // Static first: without the dynamic loader each invocation starts about 0.4 ms sooner
  // (measured here: 1.3-1.8 ms against 1.8-2.4 ms for exec + exec of a trivial program).
  // Many systems have no static libc (macOS, some distributions): then link dynamically,
  // and show the diagnostics of the attempt that counts.
  let run = spawnSync(cc, [...args, '-static'], { stdio: ['ignore', 'pipe', 'pipe'] });
  if (!run.error && run.status === 0) process.stderr.write(run.stdout + run.stderr);
  else if (run.error?.code !== 'ENOENT') run = spawnSync(cc, args, { stdio: ['ignore', 2, 2] });
  if (run.error || run.status !== 0) {
    rmSync(tmp, { force: true });
    if (run.error?.code === 'ENOENT') return `${cc}: not found`;
    if (run.error) return `${cc}: ${run.error.message}`;
    return `${cc} failed to compile ${path.relative(root, from[0])}`;
  }
  renameSync(tmp, target);
  return undefined;
}

/** Replaces a file atomically: written under a private name, then renamed over it. */
function replaceFile(file, write) {
  const tmp = `${file}.tmp-${process.pid}`;
  rmSync(tmp, { force: true });
  write(tmp);
  renameSync(tmp, file);
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
    replaceFile(link, (tmp) => symlinkSync(LINK_TARGET, tmp));
  }
}

const shellQuoted = (s) => `'${s.replaceAll("'", "'\\''")}'`;

/** The Node client as a script: `meshcc cc COMPILER ARGS…`, COMPILER fixed for a masquerade name. */
function writeNodeClient(file, compiler) {
  const node = shellQuoted(process.execPath);
  const meshcc = shellQuoted(path.join(root, 'bin', 'meshcc.js'));
  const script = [
    '#!/bin/sh',
    NODE_CLIENT_MARK,
    // The Node that built it, or the one on PATH should that one be gone (nvm, an upgrade).
    `node=${node}; [ -x "$node" ] || node=node`,
    `exec "$node" ${meshcc} cc ${compiler ? `${compiler} ` : ''}"$@"`,
    '',
  ].join('\n');
  replaceFile(file, (tmp) => {
    writeFileSync(tmp, script);
    chmodSync(tmp, 0o755);
  });
}

mkdirSync(clientDir, { recursive: true });
const failures = [];
for (const compiler of compilers) {
  const failure = compileWith(compiler);
  if (failure === undefined) break;
  failures.push(failure);
}
if (failures.length < compilers.length) {
  linkMasquerade();
  // The spawner is Linux's (pipe2, setrlimit before exec); without it the agent starts its
  // programs from a Node helper and prlimit, a few ms of CPU more per job.
  mkdirSync(spawnerDir, { recursive: true });
  const spawnerFailure = compileWith(compilers[failures.length], spawnerBinary, spawnerSources);
  if (spawnerFailure) console.warn(`meshcc: warning: the native spawner was not built (${spawnerFailure}); the agent starts its jobs through a Node helper instead`);
} else {
  writeNodeClient(binary);
  mkdirSync(masqueradeDir, { recursive: true });
  for (const name of MASQUERADE_NAMES) writeNodeClient(path.join(masqueradeDir, name), name);
  console.warn(`meshcc: warning: no C compiler built the native client (${failures.join('; ')}): compiles go through the Node client instead (a Node start, ~50 ms, per compile); run 'meshcc setup' once one is installed`);
}
