// The README's build quickstarts, run as they stand: every ```sh block after a
// `<!-- quickstart: NAME -->` marker is taken from README.md itself and run with bash in a
// real project, in a namespace whose agent has no slots of its own (so the compiles go to a
// peer in another namespace). Each build must succeed with objects identical to a plain build
// of the same tree at the same path, and the client's stats must show remote compiles and no
// fallback. A quickstart that changes in the README is tested as changed; one that appears
// without a project here fails the test until it gets one.
import { execFile, type ChildProcess } from 'node:child_process';
import { chmodSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { query } from '../node/cli/query.js';
import { socketAnswers } from '../node/instance-lock.js';
import { setMeshKey } from '../node/mesh/keys.js';
import type { AgentStatus } from '../node/mesh/mesh-service.js';
import type { StatsSnapshot } from '../node/stats.js';
import { MESHCC_BIN, plainEnv as basePlainEnv } from './helpers/agent.js';
import { createNetnsMesh, netnsAvailable, type NetnsMesh } from './helpers/netns.js';
import { collect, copyProject, differences, type ProjectName } from './helpers/projects.js';
import { readmeBlocks } from './helpers/readme.js';
import { tempDir } from './helpers/tmp.js';
import { hostToolchainId } from './helpers/toolchain-id.js';

const avail = netnsAvailable();
if (!avail.ok) console.log(`README quickstart tests skipped: ${avail.reason}`);

const run = promisify(execFile);
const KEY = 'a3'.repeat(32);
/** The plain environment, without the ccache settings a developer's shell may carry. */
const plainEnv = Object.fromEntries(Object.entries(basePlainEnv).filter(([k]) => !k.startsWith('CCACHE')));

const quickstarts = () => readmeBlocks('quickstart');

/** Each quickstart on the projects it is for, with the plain build it must equal. */
const CASES: { quickstart: string; project: ProjectName; plain: string; objects: RegExp; prepare?: (dir: string) => void }[] = [
  { quickstart: 'make', project: 'zlib', plain: './configure && make -j2', objects: /\.o$/ },
  { quickstart: 'make', project: 'libogg', plain: './configure && make -j2', objects: /\.o$/ },
  { quickstart: 'cmake', project: 'googletest', plain: 'cmake -S . -B build -G Ninja && cmake --build build -j2', objects: /\.o$/, prepare: googletestWithoutGmock },
  { quickstart: 'meson', project: 'pixman', plain: 'meson setup build && meson compile -C build -j 2', objects: /\.o$/, prepare: pixmanLibraryOnly },
  { quickstart: 'ccache', project: 'zlib', plain: './configure && make -j2', objects: /\.o$/ },
];

/** Changes one setting in a project's copy (the README's commands stay as they are); a file
 *  that no longer has it fails the test, rather than building the whole project unnoticed. */
function setInCopy(dir: string, file: string, from: string | RegExp, to: string): void {
  const text = readFileSync(path.join(dir, file), 'utf8');
  const changed = text.replace(from, to);
  if (changed === text) throw new Error(`${file} in ${path.basename(dir)} no longer has ${String(from)}`);
  writeFileSync(path.join(dir, file), changed);
}

/** pixman's tests and demos are most of its units and add nothing the library does not
 *  (the same compiler driven by the same ninja): off by default in the copy, so that the
 *  README's `meson setup build`, unchanged, builds the library. */
function pixmanLibraryOnly(dir: string): void {
  setInCopy(dir, 'meson_options.txt', /(option\(\s*'tests',\s*type : 'feature',)/, "$1\n  value : 'disabled',");
}

/** googletest's own libraries: googlemock's are the same kind of C++ at twice the cost. */
function googletestWithoutGmock(dir: string): void {
  setInCopy(dir, 'CMakeLists.txt', 'option(BUILD_GMOCK "Builds the googlemock subproject" ON)', 'option(BUILD_GMOCK "Builds the googlemock subproject" OFF)');
}

/** Each project's plain build, once for every quickstart that builds it (zlib: make and ccache),
 *  with the path it was built at: the quickstarts build that project there again. */
const plainBuilds = new Map<string, Promise<{ dir: string; objects: Map<string, Buffer> }>>();
function plainBuild(c: (typeof CASES)[number]): Promise<{ dir: string; objects: Map<string, Buffer> }> {
  const key = `${c.project}: ${c.plain}`;
  if (!plainBuilds.has(key)) {
    plainBuilds.set(key, (async () => {
      const dir = copyProject(c.project);
      c.prepare?.(dir);
      await run('bash', ['-euo', 'pipefail', '-c', c.plain], { cwd: dir, env: plainEnv, maxBuffer: 64 << 20 });
      return { dir, objects: collect(dir, c.objects) };
    })());
  }
  return plainBuilds.get(key)!;
}

describe.skipIf(!avail.ok)('the README quickstarts, run from the README', () => {
  let mesh: NetnsMesh;
  const client = tempDir('meshcc-qs-client-');
  const peer = tempDir('meshcc-qs-peer-');
  const agents: ChildProcess[] = [];
  /** a `meshcc` on PATH, as `npm link` would give */
  const bin = tempDir('meshcc-qs-bin-');

  let agentLog = '';

  beforeAll(async () => {
    writeFileSync(path.join(bin, 'meshcc'), `#!/bin/sh\nexec ${process.execPath} ${MESHCC_BIN} "$@"\n`);
    chmodSync(path.join(bin, 'meshcc'), 0o755);
    mesh = await createNetnsMesh({ hosts: 2, prefix: 'mcq' });
    for (const [host, home, env] of [
      [0, client, { MESHCC_SLOTS: '0', MESHCC_LOCAL_SLOTS: '0' }],
      [1, peer, { MESHCC_SLOTS: '2', MESHCC_LOCAL_SLOTS: '0' }],
    ] as const) {
      await setMeshKey(home, KEY);
      const agent = mesh.spawn(host, process.execPath, [MESHCC_BIN, 'agent'], { env: { ...plainEnv, MESHCC_HOME: home, MESHCC_LOG_LEVEL: 'warn', MESHCC_SPEED: '1', ...env }, stdio: ['ignore', 'ignore', 'pipe'] });
      // What an agent says before it is ready, for the error if it never is.
      agent.stderr!.on('data', (d: Buffer) => (agentLog = (agentLog + `h${host}: ${d.toString()}`).slice(-4000)));
      agent.once('exit', (code, signal) => (agentLog += `h${host} exited (${code ?? signal})\n`));
      agents.push(agent);
    }
    const ids = await Promise.all(['gcc', 'g++'].map(async (cc) => hostToolchainId((await run('which', [cc])).stdout.trim())));
    const deadline = Date.now() + 90_000;
    for (;;) {
      const rows = (await socketAnswers(path.join(client, 'agent.sock'))) ? ((await query(path.join(client, 'agent.sock'), { t: 'status', v: 1 })).agents as AgentStatus[]) : [];
      const self = rows.find((r) => r.self);
      const other = rows.find((r) => !r.self);
      if (other?.slots === 2 && ids.every((id) => self?.toolchains.includes(id) && other.toolchains.includes(id))) break;
      if (Date.now() > deadline) throw new Error(`the agents never got ready: ${JSON.stringify(rows.map((r) => [r.self, r.slots, r.toolchains.length]))}; their log: ${agentLog || 'nothing'}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }, 150_000);

  afterAll(async () => {
    await mesh?.destroy();
  }, 60_000);

  it('names every quickstart the cases cover, and covers every quickstart', () => {
    expect([...quickstarts().keys()].sort()).toEqual([...new Set(CASES.map((c) => c.quickstart))].sort());
  });

  for (const c of CASES) {
    it(`${c.quickstart} on ${c.project}: builds through the mesh, objects identical to a plain build`, async () => {
      const block = quickstarts().get(c.quickstart);
      expect(block, `README.md has no quickstart '${c.quickstart}'`).toBeDefined();
      const { dir, objects: plain } = await plainBuild(c);
      expect(plain.size).toBeGreaterThan(0);
      // The same tree at the same path (objects with debug info record it), as it was unpacked.
      rmSync(dir, { recursive: true, force: true });
      copyProject(c.project, dir);
      c.prepare?.(dir);
      const stats = async () => (await query(path.join(client, 'agent.sock'), { t: 'stats', v: 1 })).stats as StatsSnapshot;
      const before = await stats();
      const r = await mesh.exec(0, 'bash', ['-euo', 'pipefail', '-c', block!], {
        cwd: dir,
        env: { ...plainEnv, PATH: `${bin}:${plainEnv.PATH}`, MESHCC_HOME: client, CCACHE_DIR: tempDir('meshcc-ccache-') },
        timeoutMs: 240_000,
      });
      expect(r.code, `${r.stdout.slice(-2000)}\n${r.stderr.slice(-3000)}`).toBe(0);
      expect(differences(plain, collect(dir, c.objects))).toEqual([]);
      const after = await stats();
      const remote = after.counts.remote - before.counts.remote;
      console.log(`quickstart ${c.quickstart} on ${c.project}: ${plain.size} objects identical, ${remote} compiles on the peer`);
      expect(remote).toBeGreaterThan(0);
      expect(after.counts.fallback - before.counts.fallback).toBe(0);
    }, 300_000);
  }
});
