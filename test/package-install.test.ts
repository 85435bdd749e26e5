// meshcc as a user installs it: `npm pack`, then `npm install -g` of the tarball into a prefix
// of its own, whose `meshcc` starts an agent and runs the README's make quickstart (taken from
// README.md) on zlib with nothing of this checkout on PATH: objects identical to a plain build.
// The native client is built on first use into the user's cache (never into the package), or
// written as the Node client where no C compiler is. A clone without its build says in one
// line what to run.
//
// The tarball is packed from this checkout's dist/ (`npm test` builds it first) with
// --ignore-scripts: its prepack would rebuild dist/ under the other test files running now.
import { execFile, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { query } from '../node/cli/query.js';
import { socketAnswers } from '../node/instance-lock.js';
import type { AgentStatus } from '../node/mesh/mesh-service.js';
import type { StatsSnapshot } from '../node/stats.js';
import { plainEnv as basePlainEnv, REPO } from './helpers/agent.js';
import { collect, copyProject, differences } from './helpers/projects.js';
import { readmeBlock } from './helpers/readme.js';
import { tempDir } from './helpers/tmp.js';
import { hostToolchainId } from './helpers/toolchain-id.js';
import { waitFor } from './helpers/wait.js';

const run = promisify(execFile);
const VERSION = (JSON.parse(readFileSync(path.join(REPO, 'package.json'), 'utf8')) as { version: string }).version;
/** A user's environment: nothing of meshcc's, no ccache settings, no CC choosing a compiler. */
const plainEnv = Object.fromEntries(Object.entries(basePlainEnv).filter(([k]) => !k.startsWith('CCACHE') && k !== 'CC'));

interface PackResult {
  filename: string;
  size: number;
  unpackedSize: number;
  files: { path: string }[];
}

describe('the package, packed and installed with npm install -g', () => {
  let packed: PackResult;
  const prefix = tempDir('meshcc-prefix-');
  const home = tempDir('meshcc-pkg-home-');
  const installed = path.join(prefix, 'lib', 'node_modules', 'meshcc');
  const meshcc = path.join(prefix, 'bin', 'meshcc');
  const socket = path.join(home, 'agent.sock');
  let agent: ChildProcess;
  let agentLog = '';
  let plainBuild: Promise<{ dir: string; objects: Map<string, Buffer> }>;
  const stats = async () => (await query(socket, { t: 'stats', v: 1 })).stats as StatsSnapshot;

  beforeAll(async () => {
    // zlib's plain build, while npm packs and installs (it is I/O and the registry's cache, mostly).
    plainBuild = (async () => {
      const dir = copyProject('zlib');
      await run('bash', ['-euo', 'pipefail', '-c', './configure && make -j2'], { cwd: dir, env: plainEnv, maxBuffer: 64 << 20 });
      const objects = collect(dir, /\.o$/);
      // The same tree at the same path for the quickstart (objects with debug info record it), as unpacked.
      rmSync(dir, { recursive: true, force: true });
      copyProject('zlib', dir);
      return { dir, objects };
    })();
    plainBuild.catch(() => undefined); // awaited by the quickstart test, which reports its failure
    const packDir = tempDir('meshcc-pack-');
    const pack = await run('npm', ['pack', '--ignore-scripts', '--json', '--pack-destination', packDir], { cwd: REPO, env: plainEnv, maxBuffer: 16 << 20 });
    packed = (JSON.parse(pack.stdout) as PackResult[])[0]!;
    // The dependencies come from npm's cache when it has them (`npm ci` filled it); the registry otherwise.
    const npmEnv = { ...plainEnv, npm_config_update_notifier: 'false' };
    await run('npm', ['install', '-g', '--prefix', prefix, '--prefer-offline', '--no-audit', '--no-fund', path.join(packDir, packed.filename)], { env: npmEnv, maxBuffer: 16 << 20 });
    const agentEnv = {
      ...plainEnv,
      MESHCC_HOME: home,
      MESHCC_MDNS: '0',
      MESHCC_LISTEN: '/ip4/127.0.0.1/tcp/0',
      MESHCC_HTTP: '127.0.0.1:0',
      MESHCC_LOG_LEVEL: 'warn',
      MESHCC_SPEED: '1',
      // Every distributable compile takes the job route through the agent's own executor.
      MESHCC_LOCAL_SLOTS: '0',
      MESHCC_SLOTS: '2',
    };
    agent = spawn(meshcc, ['agent'], { env: agentEnv, stdio: ['ignore', 'ignore', 'pipe'] });
    agent.stderr!.on('data', (c: Buffer) => (agentLog += c.toString()));
    // Compiles before the agent knows gcc would run locally (it packs a new compiler first).
    const gcc = await hostToolchainId((await run('which', ['gcc'], { env: plainEnv })).stdout.trim());
    await waitFor(
      'the installed agent to answer and know gcc',
      async () => {
        if (agent.exitCode !== null) throw new Error(`the installed agent exited: ${agentLog}`);
        if (!(await socketAnswers(socket))) return undefined;
        const self = ((await query(socket, { t: 'status', v: 1 })).agents as AgentStatus[]).find((a) => a.self);
        return self?.toolchains.includes(gcc) ? true : undefined;
      },
      60_000,
    );
  }, 120_000);

  afterAll(async () => {
    if (!agent || agent.exitCode !== null || agent.signalCode !== null) return;
    const exited = new Promise((r) => agent.once('exit', r));
    agent.kill('SIGTERM');
    await exited;
  });

  it('holds the compiled JavaScript and the client sources, and nothing built for one machine', () => {
    const files = new Set(packed.files.map((f) => f.path));
    console.log(`${packed.filename}: ${(packed.size / 1024).toFixed(0)} KiB packed, ${(packed.unpackedSize / 1024).toFixed(0)} KiB unpacked, ${files.size} files`);
    for (const needed of ['bin/meshcc.js', 'dist/node/cli.js', 'dist/node/agent.js', 'dist/node/executor/job-root-worker.js', 'dist/node/spawner/spawner-process.js', 'dist/monitor/page/app.js', 'node/monitor/page/index.html', 'node/client/meshcc-client.c', 'node/client/msgpack.h', 'node/spawner/meshcc-spawn.c', 'node/spawner/exec-program.h', 'node/spawner/sandbox-state.c', 'scripts/build-client.js', 'deploy/systemd/meshcc.service', 'README.md']) {
      expect(files, needed).toContain(needed);
    }
    const unwanted = [...files].filter((f) => /^(dist\/(client|masquerade|bench|test)|test|bench|\.ci|docs)\//.test(f) || (f.endsWith('.ts') && !f.startsWith('dist/')));
    expect(unwanted).toEqual([]);
  });

  it('meshcc --version prints the package version', () => {
    const r = spawnSync(meshcc, ['--version'], { env: plainEnv, encoding: 'utf8' });
    expect(r.stderr).toBe('');
    expect(r.stdout).toBe(`${VERSION}\n`);
  });

  it('the installed agent serves its monitor page and the page script from the package', async () => {
    const r = spawnSync(meshcc, ['monitor', '--no-open'], { env: { ...plainEnv, MESHCC_HOME: home }, encoding: 'utf8', timeout: 30_000 });
    expect(r.stderr).toBe('');
    const page = new URL(r.stdout.trim().split('\n')[0]!);
    const html = await fetch(page);
    expect(html.status).toBe(200);
    expect(await html.text()).toContain('src="app.js"');
    const script = await fetch(new URL('app.js', page));
    expect(script.status).toBe(200);
    expect(script.headers.get('content-type')).toMatch(/javascript/);
  });

  it("the README's make quickstart with the installed meshcc on PATH: zlib's objects identical to a plain build", async () => {
    const { dir, objects: plain } = await plainBuild;
    expect(plain.size).toBeGreaterThan(0);
    const before = await stats();
    const cache = tempDir('meshcc-user-cache-');
    const env = { ...plainEnv, PATH: `${path.join(prefix, 'bin')}:${plainEnv.PATH}`, MESHCC_HOME: home, MESHCC_CACHE_DIR: cache };
    const r = await run('bash', ['-euo', 'pipefail', '-c', readmeBlock('quickstart', 'make')], { cwd: dir, env, maxBuffer: 64 << 20, timeout: 200_000 });
    expect(differences(plain, collect(dir, /\.o$/))).toEqual([]);
    // The first `meshcc bindir` built the native client for this user, and said so once.
    expect(r.stderr.match(/^meshcc: built the native compiler client into .*$/gm)).toHaveLength(1);
    expect(existsSync(path.join(installed, 'dist', 'client'))).toBe(false);
    const after = await stats();
    const jobs = after.counts.job - before.counts.job;
    console.log(`installed meshcc, make quickstart on zlib: ${plain.size} objects identical, ${jobs} compiles on the job route`);
    expect(jobs).toBeGreaterThan(0);
    expect(after.counts.fallback - before.counts.fallback).toBe(0);
  }, 240_000);

  it('without a C compiler, bindir writes the Node client, and compiles through it give the same object', async () => {
    // PATH with node alone: no cc, gcc or clang for the client's build.
    const nodeOnly = tempDir('meshcc-node-only-');
    symlinkSync(process.execPath, path.join(nodeOnly, 'node'));
    const cache = tempDir('meshcc-user-cache-');
    const r = spawnSync(meshcc, ['bindir'], { env: { ...plainEnv, PATH: nodeOnly, MESHCC_CACHE_DIR: cache }, encoding: 'utf8', timeout: 60_000 });
    expect(r.status).toBe(0);
    expect(r.stderr).toMatch(/^meshcc: warning: no C compiler built the native client \(cc: not found; gcc: not found; clang: not found\): compiles go through the Node client instead .*\n$/);
    const masquerade = r.stdout.trim();
    expect(masquerade.startsWith(cache)).toBe(true);
    expect(readFileSync(path.join(masquerade, 'gcc'), 'utf8')).toMatch(/^#!\/bin\/sh\n/);

    const dir = tempDir('meshcc-node-client-');
    writeFileSync(path.join(dir, 'a.c'), '#include <string.h>\nsize_t n(const char *s) { return strlen(s); }\n');
    const before = await stats();
    const env = { ...plainEnv, PATH: `${masquerade}:${plainEnv.PATH}`, MESHCC_HOME: home };
    // A Node client that took itself for the compiler would call itself forever: fail, not hang.
    const mesh = spawnSync('gcc', ['-O2', '-g', '-c', 'a.c', '-o', 'mesh.o'], { cwd: dir, env, encoding: 'utf8', timeout: 60_000 });
    expect(mesh.stderr).toBe('');
    expect(mesh.status).toBe(0);
    expect(spawnSync('gcc', ['-O2', '-g', '-c', 'a.c', '-o', 'plain.o'], { cwd: dir, env: plainEnv }).status).toBe(0);
    expect(readFileSync(path.join(dir, 'mesh.o')).equals(readFileSync(path.join(dir, 'plain.o')))).toBe(true);
    expect((await stats()).counts.job - before.counts.job).toBe(1);
  });
});

describe('a clone without its build', () => {
  it('says in one line what to run, before npm ci and after it', () => {
    const clone = tempDir('meshcc-clone-');
    mkdirSync(path.join(clone, 'bin'));
    copyFileSync(path.join(REPO, 'bin', 'meshcc.js'), path.join(clone, 'bin', 'meshcc.js'));
    copyFileSync(path.join(REPO, 'package.json'), path.join(clone, 'package.json'));
    const meshcc = () => spawnSync(process.execPath, [path.join(clone, 'bin', 'meshcc.js'), 'status'], { env: plainEnv, encoding: 'utf8' });
    const fresh = meshcc();
    expect(fresh.status).toBe(1);
    expect(fresh.stderr).toBe(`meshcc: not built yet: run 'npm ci && npm run build' in ${clone} (it compiles dist/ and the compiler client)\n`);
    mkdirSync(path.join(clone, 'node_modules'));
    expect(meshcc().stderr).toBe(`meshcc: not built yet: run 'npm run build' in ${clone} (it compiles dist/ and the compiler client)\n`);
  });
});
