// The README's laptop and LAN box quickstarts, run as they stand under a real systemd: in one
// namespace a user manager (the laptop), in another systemd booted as PID 1 (the LAN box;
// see helpers/systemd-boot.sh for what keeps both off this machine). The README's blocks
// install the units with `systemctl enable` and start them; the LAN box's agent runs as the
// unit states (user meshcc, every hardening option of deploy/systemd/meshcc.service, jobs in
// bubblewrap) in the mesh of the key the README passes; the README's make quickstart on the
// laptop then builds zlib with compiles on the LAN box, objects identical to a plain build;
// the uninstall block stops and removes the laptop's unit.
// Test-only configuration is what a user would add: a drop-in that gives the laptop no slots
// of its own (so the compiles must cross) and the LAN box two.
import { execFile } from 'node:child_process';
import { chmodSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AgentStatus } from '../node/mesh/mesh-service.js';
import type { StatsSnapshot } from '../node/stats.js';
import { plainEnv } from './helpers/agent.js';
import { createNetnsMesh, netnsAvailable, type NetnsMesh } from './helpers/netns.js';
import { collect, copyProject, differences } from './helpers/projects.js';
import { readmeBlock } from './helpers/readme.js';
import { BOOTED_CHECKOUT, bootSystemd, systemdAvailable, type BootedSystemd } from './helpers/systemd-boot.js';
import { tempDir } from './helpers/tmp.js';
import { sleep, waitFor } from './helpers/wait.js';

const avail = netnsAvailable();
const systemd = systemdAvailable();
const why = !avail.ok ? avail.reason : !systemd.ok ? systemd.reason : process.getuid?.() !== 0 ? 'booting systemd in namespaces needs root' : '';
if (why) console.log(`service quickstart tests skipped: ${why}`);

const run = promisify(execFile);
const PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';
const meshcc = ['node', path.join(BOOTED_CHECKOUT, 'bin', 'meshcc.js')];

/** Writes a file inside a booted namespace (its /etc and /opt are its own). */
async function writeInside(booted: BootedSystemd, file: string, text: string): Promise<void> {
  const r = await booted.exec('sh', ['-c', 'mkdir -p "$(dirname "$1")" && printf %s "$2" > "$1"', 'sh', file, text]);
  expect(r.code, r.stderr).toBe(0);
}

describe.skipIf(why !== '')('the laptop and LAN box quickstarts, under a real systemd', () => {
  let mesh: NetnsMesh;
  let laptop: BootedSystemd;
  let lanBox: BootedSystemd;

  beforeAll(async () => {
    mesh = await createNetnsMesh({ hosts: 2, prefix: 'mcs' });
    laptop = await bootSystemd(mesh, 0, 'user');
    lanBox = await bootSystemd(mesh, 1, 'system');
  }, 60_000);

  afterAll(async () => {
    await laptop?.stop();
    await lanBox?.stop();
    await mesh?.destroy();
  }, 60_000);

  it('install, build through the LAN box, uninstall', async () => {
    const shell = (booted: BootedSystemd, script: string, env: Record<string, string> = {}, cwd = BOOTED_CHECKOUT) =>
      booted.exec('bash', ['-euo', 'pipefail', '-c', script], { cwd, env: { PATH, LANG: 'C', ...env }, timeoutMs: 240_000 });

    // The laptop: no slots of its own, by a drop-in; then the README's block.
    await writeInside(laptop, '/opt/home/.config/systemd/user/meshcc.service.d/test.conf', '[Service]\nEnvironment=MESHCC_SLOTS=0 MESHCC_LOCAL_SLOTS=0 MESHCC_SPEED=1\n');
    let r = await shell(laptop, readmeBlock('service', 'laptop'));
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect(r.stderr).toMatch(/installed, enabled and started/);
    r = await laptop.exec('systemctl', ['--user', 'is-enabled', 'meshcc']);
    expect(r.stdout.trim()).toBe('enabled');
    r = await laptop.exec(meshcc[0]!, [meshcc[1]!, 'key']);
    const key = r.stdout.trim();
    expect(key).toMatch(/^[0-9a-f]{64}$/);

    // The LAN box: two slots, by a drop-in; then the README's block with the laptop's key.
    await writeInside(lanBox, '/etc/systemd/system/meshcc.service.d/test.conf', '[Service]\nEnvironment=MESHCC_SLOTS=2 MESHCC_SPEED=1\n');
    r = await shell(lanBox, readmeBlock('service', 'lan-box'), { KEY: key });
    expect(r.code, r.stdout + r.stderr).toBe(0);
    // The agent, once systemd has set up its sandbox and executed it: the unit's user, no privileges.
    const meshccUid = (await lanBox.exec('id', ['-u', 'meshcc'])).stdout.trim();
    let status = '';
    await waitFor('the LAN box agent to run as meshcc', async () => {
      r = await lanBox.exec('systemctl', ['show', '-p', 'MainPID', '-p', 'ActiveState', 'meshcc']);
      const mainPid = /MainPID=(\d+)/.exec(r.stdout)?.[1];
      status = mainPid && mainPid !== '0' ? (await lanBox.exec('cat', [`/proc/${mainPid}/status`])).stdout : '';
      return /ActiveState=active/.test(r.stdout) && /^Name:\s+node/m.test(status) ? true : undefined;
    }, 20_000);
    expect(status).toMatch(new RegExp(`^Uid:\\s+${meshccUid}\\s`, 'm'));
    expect(status).toMatch(/^NoNewPrivs:\s+1$/m);
    expect(status).toMatch(/^CapBnd:\s+0+$/m);

    // The laptop sees the LAN box with its two slots.
    const deadline = Date.now() + 60_000;
    for (;;) {
      r = await laptop.exec(meshcc[0]!, [meshcc[1]!, 'status', '--json']);
      const rows = r.code === 0 ? (JSON.parse(r.stdout) as AgentStatus[]) : [];
      const box = rows.find((row) => !row.self);
      const self = rows.find((row) => row.self);
      if (box?.slots === 2 && self && self.toolchains.some((t) => box.toolchains.includes(t))) break;
      if (Date.now() > deadline) {
        const journal = await lanBox.exec('systemctl', ['status', '--no-pager', '-l', 'meshcc']);
        throw new Error(`the laptop never saw the LAN box: ${r.stdout}${r.stderr}\n${journal.stdout}`);
      }
      await sleep(250);
    }

    // The README's make quickstart on the laptop, against a plain build of the same tree.
    const zlib = copyProject('zlib');
    await run('bash', ['-euo', 'pipefail', '-c', './configure && make -j2'], { cwd: zlib, env: plainEnv });
    const plain = collect(zlib, /\.o$/);
    rmSync(zlib, { recursive: true, force: true });
    copyProject('zlib', zlib);
    const bin = tempDir('meshcc-svc-bin-');
    writeFileSync(path.join(bin, 'meshcc'), `#!/bin/sh\nexec node ${meshcc[1]} "$@"\n`);
    chmodSync(path.join(bin, 'meshcc'), 0o755);
    r = await shell(laptop, readmeBlock('quickstart', 'make'), { PATH: `${bin}:${PATH}` }, zlib);
    expect(r.code, r.stdout.slice(-2000) + r.stderr.slice(-3000)).toBe(0);
    expect(differences(plain, collect(zlib, /\.o$/))).toEqual([]);
    const stats = JSON.parse((await laptop.exec(meshcc[0]!, [meshcc[1]!, 'stats', '--json'])).stdout) as StatsSnapshot;
    console.log(`service quickstart: ${plain.size} objects identical; ${stats.counts.remote} compiles on the LAN box, ${stats.counts.fallback} fallbacks`);
    expect(stats.counts.remote).toBeGreaterThan(0);
    expect(stats.counts.fallback).toBe(0);

    // And back.
    r = await shell(laptop, readmeBlock('service', 'uninstall'));
    expect(r.code, r.stdout + r.stderr).toBe(0);
    r = await laptop.exec('systemctl', ['--user', 'is-active', 'meshcc']);
    expect(r.stdout.trim()).not.toBe('active');
    r = await laptop.exec('test', ['-e', '/opt/home/.config/systemd/user/meshcc.service']);
    expect(r.code).not.toBe(0);
  }, 300_000);
});
