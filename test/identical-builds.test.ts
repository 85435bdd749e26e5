// Must-show 1: real projects built through meshcc give byte-identical objects and
// identical dependency files to a plain build, on both routes (local slot and job route),
// with and without -g (C; C++ with -g), with gcc and with clang; and the same diagnostics.
import { execFileSync, spawnSync } from 'node:child_process';
import { rmSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { query } from '../node/cli/query.js';
import { MASQUERADE, REPO, startAgentProcess, type AgentProcess } from './helpers/agent.js';
import { collect, copyProject, differences } from './helpers/projects.js';

const NATIVE_CLIENT = path.join(REPO, 'dist', 'client', 'meshcc-cc');
const plainEnv = { ...process.env, LANG: 'C' } as Record<string, string>;

const agents: Partial<Record<'local' | 'job', AgentProcess>> = {};
beforeAll(async () => {
  // Route "local": every distributable job takes a local slot. Route "job": none does.
  agents.local = await startAgentProcess({ MESHCC_LOCAL_SLOTS: '64' });
  agents.job = await startAgentProcess({ MESHCC_LOCAL_SLOTS: '0' });
});
afterAll(async () => {
  await agents.local?.stop();
  await agents.job?.stop();
});

function meshEnv(route: 'local' | 'job'): Record<string, string> {
  return { ...plainEnv, MESHCC_HOME: agents[route]!.home, PATH: `${MASQUERADE}:${process.env.PATH}` };
}

async function routeCounts(route: 'local' | 'job') {
  const reply = await query(agents[route]!.socketPath, { t: 'stats', v: 1 });
  const routes = (reply.stats as { routes: Record<string, { jobs: number }> }).routes;
  return { local: routes.local!.jobs, job: routes.job!.jobs, fallback: routes.fallback!.jobs };
}

function run(cmd: string, args: string[], cwd: string, env: Record<string, string>) {
  const r = spawnSync(cmd, args, { cwd, env, encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed (${r.status}): ${r.stderr}`);
  return r;
}

describe.each(['gcc', 'clang'])('zlib with make through the masquerade directory, %s', (cc) => {
  let src: string;
  const products = /\.(o|d)$/;
  const cleanBuild = (flags: string, env: Record<string, string>) => {
    for (const f of collect(src, /\.(o|d|a)$/).keys()) rmSync(path.join(src, f));
    run('make', ['-j4', `CC=${cc}`, `CFLAGS=${flags}`, 'libz.a'], src, env);
    return collect(src, products);
  };

  /** The plain build of each set of flags, built once for both routes. */
  const plainBuilds = new Map<string, Map<string, Buffer>>();
  const plainBuild = (flags: string) => {
    if (!plainBuilds.has(flags)) plainBuilds.set(flags, cleanBuild(flags, plainEnv));
    return plainBuilds.get(flags)!;
  };

  beforeAll(() => {
    src = copyProject('zlib');
    run('./configure', ['--static'], src, { ...plainEnv, CC: cc });
  });

  for (const flags of ['-O2 -MD', '-O2 -g -MD -MP']) {
    for (const route of ['local', 'job'] as const) {
      it(`${flags}, ${route} route: objects and dependency files are identical`, async () => {
        const plain = plainBuild(flags);
        expect(plain.size).toBe(30);
        const before = await routeCounts(route);
        const meshed = cleanBuild(flags, meshEnv(route));
        expect(differences(plain, meshed)).toEqual([]);
        const after = await routeCounts(route);
        expect(after[route] - before[route]).toBe(15);
        expect(after.fallback - before.fallback).toBe(0);
      });
    }
  }

  it('a file with warnings gives the same diagnostics and exit code on the job route', async () => {
    const args = ['-O2', '-Wall', '-Wextra', '-Wconversion', '-c', 'deflate.c', '-o', 'warn.o'];
    const plain = spawnSync(cc, args, { cwd: src, env: plainEnv, encoding: 'utf8' });
    expect(plain.stderr).toMatch(/warning:/);
    const meshed = spawnSync(cc, args, { cwd: src, env: meshEnv('job'), encoding: 'utf8' });
    expect(meshed.stderr).toBe(plain.stderr);
    expect(meshed.status).toBe(plain.status);
  });

  it('a compile error is returned as it is, with the same exit code, and not retried locally', async () => {
    const before = await routeCounts('job');
    const args = ['-O2', '-DZ_SOLO', '-Dlocal=', '-c', 'trees.c', '-o', 'broken.o', '-include', 'zconf.h', '-Werror=conversion', '-Wconversion'];
    const plain = spawnSync(cc, args, { cwd: src, env: plainEnv, encoding: 'utf8' });
    expect(plain.status).not.toBe(0);
    const meshed = spawnSync(cc, args, { cwd: src, env: meshEnv('job'), encoding: 'utf8' });
    expect(meshed.status).toBe(plain.status);
    expect(meshed.stderr).toBe(plain.stderr);
    const after = await routeCounts('job');
    expect(after.job - before.job).toBe(1);
    expect(after.fallback - before.fallback).toBe(0);
  });
});

describe.each([
  ['gcc', 'g++'],
  ['clang', 'clang++'],
])('googletest with cmake and the compiler launcher, %s', (cc, cxx) => {
  let src: string;
  const build = (flags: string, launcher: boolean, env: Record<string, string>) => {
    const buildDir = path.join(src, 'build');
    const launch = launcher ? NATIVE_CLIENT : '';
    run(
      'cmake',
      ['-S', '.', '-B', 'build', '-G', 'Unix Makefiles', `-DCMAKE_C_COMPILER=${cc}`, `-DCMAKE_CXX_COMPILER=${cxx}`,
        `-DCMAKE_CXX_FLAGS=${flags}`, `-DCMAKE_C_COMPILER_LAUNCHER=${launch}`, `-DCMAKE_CXX_COMPILER_LAUNCHER=${launch}`,
        // googletest's own two libraries: googlemock's are the same kind of C++ at twice the cost
        '-DBUILD_GMOCK=OFF'],
      src,
      plainEnv,
    );
    run('make', ['-C', 'build', 'clean'], src, plainEnv);
    run('make', ['-C', 'build', '-j4'], src, env);
    return collect(buildDir, /\.(o|o\.d)$/);
  };

  const plainBuilds = new Map<string, Map<string, Buffer>>();
  const plainBuild = (flags: string) => {
    if (!plainBuilds.has(flags)) plainBuilds.set(flags, build(flags, false, plainEnv));
    return plainBuilds.get(flags)!;
  };

  beforeAll(() => {
    src = copyProject('googletest');
  });

  // -O0: optimisation is zlib's part (-O2 above), and so is the job route without -g; here it
  // only doubled the cost of gtest-all.cc, the suite's longest compile, with nothing more for
  // meshcc to get wrong. With -g (the build directory in the debug information), both routes.
  for (const [flags, route] of [
    ['-O0 -g', 'job'],
    ['-O0 -g', 'local'],
  ] as const) {
    it(`${flags}, ${route} route: objects and dependency files are identical`, async () => {
      const plain = plainBuild(flags);
      expect(plain.size).toBe(4);
      const before = await routeCounts(route);
      const meshed = build(flags, true, { ...plainEnv, MESHCC_HOME: agents[route]!.home });
      expect(differences(plain, meshed)).toEqual([]);
      const after = await routeCounts(route);
      expect(after[route] - before[route]).toBe(2);
      expect(after.fallback - before.fallback).toBe(0);
    });
  }
});

it('the projects were really fetched from Debian', () => {
  expect(execFileSync('bash', ['-c', `ls ${path.join(REPO, '.cache', 'projects')}`], { encoding: 'utf8' })).toMatch(/googletest[\s\S]*zlib/);
});
