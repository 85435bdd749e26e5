// The systemd units: deploy/systemd's and the ones `meshcc service install` writes pass
// `systemd-analyze verify`. Running them (systemd itself starting the agent as the unit
// states, hardening included, taking remote jobs in bubblewrap) is
// test/service-quickstart.test.ts.
import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { MESHCC_BIN, REPO } from './helpers/agent.js';
import { tempDir } from './helpers/tmp.js';

const analyze = spawnSync('systemd-analyze', ['--version']).status === 0;
const why = !analyze ? 'systemd-analyze is missing' : '';
if (why) console.log(`systemd unit tests skipped: ${why}`);

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

describe.skipIf(why !== '')('systemd units', () => {
  it('deploy/systemd (the relay unit too) and the units meshcc service install writes pass systemd-analyze verify', () => {
    const dir = tempDir('meshcc-units-');
    const units = [['meshcc.service', false], ['meshcc-user.service', true], ['meshcc-relay.service', false]] as const;
    for (const [file, user] of units.map(([name, user]) => [path.join(REPO, 'deploy/systemd', name), user] as const)) {
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

describe('meshcc service install --key', () => {
  it('refuses a bad key in one line, before anything is written', () => {
    const home = tempDir('meshcc-svc-key-');
    const r = spawnSync(process.execPath, [MESHCC_BIN, 'service', 'install', '--user', '--key', 'not-a-key'], {
      encoding: 'utf8',
      env: { ...process.env, HOME: home, XDG_CONFIG_HOME: path.join(home, '.config'), MESHCC_HOME: path.join(home, '.meshcc') },
    });
    expect(r.status).toBe(1);
    expect(r.stderr).toBe('meshcc: --key: a mesh key is 64 hex characters (32 bytes)\n');
    expect(spawnSync('find', [home, '-mindepth', '1'], { encoding: 'utf8' }).stdout).toBe('');
  });
});
