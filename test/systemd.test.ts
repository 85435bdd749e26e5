// The systemd units: deploy/systemd's and the ones `meshcc service install` writes pass
// `systemd-analyze verify`; and the system unit's ExecStart, environment and user, run as the
// unit states (its own unprivileged user, no new privileges, its state and cache directories),
// give an agent that takes remote jobs in the namespace harness, bubblewrap included.
// (No systemd runs as PID 1 here, so `systemctl enable --now` itself is not exercised.)
import { execFile, spawnSync, type ChildProcess } from 'node:child_process';
import { chmodSync, chownSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { query } from '../node/cli/query.js';
import { socketAnswers } from '../node/instance-lock.js';
import { setMeshKey } from '../node/mesh/keys.js';
import type { AgentStatus } from '../node/mesh/mesh-service.js';
import type { StatsSnapshot } from '../node/stats.js';
import { MASQUERADE, MESHCC_BIN, plainEnv, REPO } from './helpers/agent.js';
import { createNetnsMesh, netnsAvailable, type NetnsMesh } from './helpers/netns.js';
import { collect, differences, plainZlib } from './helpers/projects.js';
import { tempDir } from './helpers/tmp.js';
import { hostToolchainId } from './helpers/toolchain-id.js';
import { sleep } from './helpers/wait.js';

const analyze = spawnSync('systemd-analyze', ['--version']).status === 0;
const avail = netnsAvailable();
const root = process.getuid?.() === 0;
const why = !analyze ? 'systemd-analyze is missing' : '';
const runWhy = why || (!avail.ok ? avail.reason : !root ? 'running a unit as its user needs root' : '');
if (why) console.log(`systemd unit tests skipped: ${why}`);
else if (runWhy) console.log(`running the systemd unit skipped: ${runWhy}`);

const run = promisify(execFile);
const KEY = 'f1'.repeat(32);

function verify(file: string, user: boolean): { status: number | null; output: string } {
  const runtime = tempDir('meshcc-xdg-');
  const r = spawnSync('systemd-analyze', [...(user ? ['--user'] : []), 'verify', file], { encoding: 'utf8', env: { ...process.env, XDG_RUNTIME_DIR: runtime } });
  return { status: r.status, output: `${r.stdout}${r.stderr}` };
}

/** The unit `meshcc service install --dry-run` would write. */
function installedUnit(scope: 'user' | 'system'): string {
  const r = spawnSync(process.execPath, [MESHCC_BIN, 'service', 'install', `--${scope}`, '--dry-run'], { encoding: 'utf8' });
  expect(r.status, r.stderr).toBe(0);
  return r.stdout.replace(/^# .*\n/, '');
}

/** Key=value lines of the [Service] section (repeated keys: every value, in order). */
function serviceSection(unit: string): Map<string, string[]> {
  const section = /\[Service\]\n([\s\S]*?)(?:\n\[|$)/.exec(unit)![1]!;
  const entries = new Map<string, string[]>();
  for (const line of section.split('\n')) {
    const m = /^([A-Za-z]+)=(.*)$/.exec(line);
    if (m) entries.set(m[1]!, [...(entries.get(m[1]!) ?? []), m[2]!]);
  }
  return entries;
}

describe.skipIf(why !== '')('systemd units', () => {
  it('deploy/systemd and the units meshcc service install writes pass systemd-analyze verify', () => {
    const dir = tempDir('meshcc-units-');
    for (const [file, user] of [[path.join(REPO, 'deploy/systemd/meshcc.service'), false], [path.join(REPO, 'deploy/systemd/meshcc-user.service'), true]] as const) {
      const r = verify(file, user);
      expect(r.status, r.output).toBe(0);
    }
    for (const scope of ['system', 'user'] as const) {
      const file = path.join(dir, 'meshcc.service');
      const unit = installedUnit(scope);
      expect(unit).toContain(`ExecStart=${process.execPath} ${MESHCC_BIN} agent`);
      writeFileSync(file, unit);
      const r = verify(file, scope === 'user');
      expect(r.status, r.output).toBe(0);
      expect(r.output).toBe('');
    }
  });
});

describe.skipIf(runWhy !== '')('the system unit, run as it states, in the namespace harness', () => {
  let mesh: NetnsMesh;
  let serviceAgent: ChildProcess;
  let createdUser = false;
  let stateRoot: string;
  const clientHome = tempDir('meshcc-unit-client-');
  let log = '';

  beforeAll(async () => {
    const unit = serviceSection(installedUnit('system'));
    const user = unit.get('User')![0]!;
    if (spawnSync('id', ['-u', user]).status !== 0) {
      const r = spawnSync('useradd', ['--system', '--user-group', '--no-create-home', '--shell', '/usr/sbin/nologin', user], { encoding: 'utf8' });
      expect(r.status, r.stderr).toBe(0);
      createdUser = true;
    }
    const uid = Number(spawnSync('id', ['-u', user], { encoding: 'utf8' }).stdout);
    const gid = Number(spawnSync('id', ['-g', user], { encoding: 'utf8' }).stdout);
    // StateDirectory= and CacheDirectory=, as systemd makes them: owned by the user, 0700; %S and %C point at them.
    stateRoot = tempDir('meshcc-unit-root-');
    const dirs = { S: path.join(stateRoot, 'state'), C: path.join(stateRoot, 'cache') };
    // /var/lib and /var/cache are 0755 and root's; so are these.
    chmodSync(stateRoot, 0o755);
    for (const base of Object.values(dirs)) mkdirSync(base, { mode: 0o755 });
    for (const [letter, base] of Object.entries(dirs)) {
      const name = unit.get(letter === 'S' ? 'StateDirectory' : 'CacheDirectory')![0]!;
      mkdirSync(path.join(base, name), { recursive: true, mode: 0o700 });
      chownSync(path.join(base, name), uid, gid);
    }
    const env: Record<string, string> = { PATH: '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin', LANG: 'C', MESHCC_LOG_LEVEL: 'warn' };
    for (const assignments of unit.get('Environment') ?? []) {
      for (const pair of assignments.split(/\s+/)) {
        const [k, v] = pair.split('=') as [string, string];
        env[k] = v.replace(/%([SC])/g, (_, l: 'S' | 'C') => dirs[l]);
      }
    }
    const home = env.MESHCC_HOME!;
    await setMeshKey(home, KEY);
    for (const f of ['mesh.key']) chownSync(path.join(home, f), uid, gid);
    mesh = await createNetnsMesh({ hosts: 2, prefix: 'mcu' });
    const [exe, ...args] = unit.get('ExecStart')![0]!.split(' ');
    const nice = unit.get('Nice')?.[0] ?? '0';
    const setpriv = ['--reuid', String(uid), '--regid', String(gid), '--init-groups'];
    if (unit.get('NoNewPrivileges')?.[0] === 'yes') setpriv.push('--no-new-privs');
    serviceAgent = mesh.spawn(1, 'setpriv', [...setpriv, 'nice', '-n', nice, exe!, ...args], { env: { ...env, MESHCC_SLOTS: '2' }, stdio: ['ignore', 'ignore', 'pipe'] });
    serviceAgent.stderr!.setEncoding('utf8').on('data', (d: string) => (log = (log + d).slice(-20_000)));
    await setMeshKey(clientHome, KEY);
    mesh.spawn(0, process.execPath, [MESHCC_BIN, 'agent'], {
      env: { ...plainEnv, MESHCC_HOME: clientHome, MESHCC_SLOTS: '0', MESHCC_LOCAL_SLOTS: '0', MESHCC_LOG_LEVEL: 'warn', MESHCC_SPEED: '1' },
      stdio: 'ignore',
    });
    const gccId = await hostToolchainId((await run('which', ['gcc'])).stdout.trim());
    const deadline = Date.now() + 90_000;
    for (;;) {
      const ready = (await socketAnswers(path.join(clientHome, 'agent.sock')))
        ? ((await query(path.join(clientHome, 'agent.sock'), { t: 'status', v: 1 })).agents as AgentStatus[])
        : [];
      const self = ready.find((r) => r.self);
      const peer = ready.find((r) => !r.self);
      if (self?.toolchains.includes(gccId) && peer && peer.slots === 2 && peer.toolchains.includes(gccId)) break;
      if (Date.now() > deadline) throw new Error(`the unit's agent never joined: ${JSON.stringify(ready)}\n${log}`);
      await sleep(100);
    }
  }, 150_000);

  afterAll(async () => {
    await mesh?.destroy();
    if (createdUser) spawnSync('userdel', ['meshcc']);
    if (stateRoot) rmSync(stateRoot, { recursive: true, force: true });
  }, 60_000);

  it('takes remote jobs as user meshcc, sandboxed by bubblewrap', async () => {
    const make = ['make', '-j4', 'CC=gcc', 'CFLAGS=-O2', 'libz.a'];
    const { dir: zlib, objects: plainObjects } = await plainZlib(make);
    const r = await mesh.exec(0, make[0]!, make.slice(1), { cwd: zlib, env: { ...plainEnv, MESHCC_HOME: clientHome, PATH: `${MASQUERADE}:${plainEnv.PATH}` }, timeoutMs: 150_000 });
    expect(r.code, r.stderr).toBe(0);
    expect(differences(plainObjects, collect(zlib, /\.o$/))).toEqual([]);
    const stats = (await query(path.join(clientHome, 'agent.sock'), { t: 'stats', v: 1 })).stats as StatsSnapshot;
    expect(stats.counts, JSON.stringify([stats.routes, stats.perPeer, log])).toMatchObject({ remote: 15, fallback: 0 });
    // The agent that served them runs as the unit's user, with no new privileges.
    const status = spawnSync('cat', [`/proc/${serviceAgent.pid}/status`], { encoding: 'utf8' }).stdout;
    const uid = spawnSync('id', ['-u', 'meshcc'], { encoding: 'utf8' }).stdout.trim();
    expect(status).toMatch(new RegExp(`^Uid:\\s+${uid}\\s`, 'm'));
    expect(status).toMatch(/^NoNewPrivs:\s+1$/m);
    expect(log).not.toMatch(/bubblewrap cannot run|no-executor/);
  }, 180_000);
});
