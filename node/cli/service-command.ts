// `meshcc service install|uninstall [--user|--system]`: the agent as a systemd service. The
// units are deploy/systemd's, with the ExecStart of this installation written in.
import { spawnSync } from 'node:child_process';
import { existsSync, promises as fs, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Command } from 'commander';
import { MeshccError } from '../../protocol/errors.js';
import { meshccHome } from '../config.js';
import { PACKAGE_ROOT } from '../paths.js';

type Scope = 'user' | 'system';
const UNIT = 'meshcc.service';
const SERVICE_USER = 'meshcc';
/** The system unit's MESHCC_HOME: its StateDirectory under /var/lib. */
const SYSTEM_HOME = '/var/lib/meshcc';

function quoted(arg: string): string {
  return /[\s"\\]/.test(arg) ? `"${arg.replace(/["\\]/g, (c) => `\\${c}`)}"` : arg;
}

/** The unit of this installation: deploy/systemd's, running this node and this meshcc. */
export function unitText(scope: Scope): string {
  const template = readFileSync(path.join(PACKAGE_ROOT, 'deploy', 'systemd', scope === 'system' ? 'meshcc.service' : 'meshcc-user.service'), 'utf8');
  const execStart = ['ExecStart=', [process.execPath, path.join(PACKAGE_ROOT, 'bin', 'meshcc.js'), 'agent'].map(quoted).join(' ')].join('');
  let unit = template.replace(/^ExecStart=.*$/m, execStart);
  // The service cannot run code it may not read: an installation under a home stays readable.
  if (scope === 'system' && /^\/(home|root)(\/|$)/.test(PACKAGE_ROOT)) unit = unit.replace(/^ProtectHome=yes$/m, 'ProtectHome=read-only');
  return unit;
}

export function unitPath(scope: Scope): string {
  if (scope === 'system') return path.join('/etc/systemd/system', UNIT);
  const config = process.env.XDG_CONFIG_HOME || path.join(os.homedir(), '.config');
  return path.join(config, 'systemd', 'user', UNIT);
}

function systemctl(scope: Scope, ...args: string[]): void {
  const full = scope === 'user' ? ['--user', ...args] : args;
  const r = spawnSync('systemctl', full, { encoding: 'utf8' });
  if (r.error || r.status !== 0) {
    const why = r.error ? r.error.message : (r.stderr || r.stdout).trim().split('\n')[0];
    throw new MeshccError('systemctl-failed', `systemctl ${full.join(' ')} failed: ${why}`);
  }
}

function ensureServiceUser(): void {
  if (spawnSync('id', ['-u', SERVICE_USER]).status === 0) return;
  const r = spawnSync('useradd', ['--system', '--user-group', '--home-dir', '/var/lib/meshcc', '--no-create-home', '--shell', '/usr/sbin/nologin', SERVICE_USER], { encoding: 'utf8' });
  if (r.status !== 0) throw new MeshccError('useradd-failed', `cannot create the service user ${SERVICE_USER}: ${(r.stderr || r.error?.message || '').trim()}`);
}

function scopeOf(opts: { user?: boolean; system?: boolean }): Scope {
  if (opts.user && opts.system) throw new MeshccError('usage', 'choose --user or --system, not both');
  if (opts.system) return 'system';
  if (opts.user) return 'user';
  return process.getuid?.() === 0 ? 'system' : 'user';
}

function idOf(flag: '-u' | '-g'): number {
  return Number(spawnSync('id', [flag, SERVICE_USER], { encoding: 'utf8' }).stdout.trim());
}

/** The mesh the service joins, written where its agent reads it (the system unit's state directory is its user's). */
async function storeMeshKey(scope: Scope, hex: string): Promise<void> {
  const { setMeshKey } = await import('../mesh/keys.js');
  if (scope === 'user') {
    await setMeshKey(meshccHome(), hex);
    return;
  }
  await fs.mkdir(SYSTEM_HOME, { recursive: true, mode: 0o700 });
  await setMeshKey(SYSTEM_HOME, hex);
  for (const entry of [SYSTEM_HOME, path.join(SYSTEM_HOME, 'mesh.key')]) await fs.chown(entry, idOf('-u'), idOf('-g'));
}

async function install(scope: Scope, opts: { dryRun?: boolean; key?: string }): Promise<void> {
  const unit = unitText(scope);
  const file = unitPath(scope);
  // A bad key is refused before anything is written.
  if (opts.key !== undefined) (await import('../mesh/keys.js')).parseMeshKeyHex(opts.key, '--key');
  if (opts.dryRun) {
    process.stdout.write(`# ${file}\n${unit}`);
    return;
  }
  if (scope === 'system' && process.getuid?.() !== 0) throw new MeshccError('not-root', 'a system service is installed by root (sudo meshcc service install --system), or use --user');
  if (scope === 'system') ensureServiceUser();
  if (opts.key !== undefined) await storeMeshKey(scope, opts.key);
  await fs.mkdir(path.dirname(file), { recursive: true });
  await fs.writeFile(file, unit, { mode: 0o644 });
  systemctl(scope, 'daemon-reload');
  systemctl(scope, 'enable', UNIT);
  // restart, not start: an agent already running picks up a new unit and key.
  systemctl(scope, 'restart', UNIT);
  process.stderr.write(`meshcc: ${file} installed, enabled and started (${scope === 'user' ? 'systemctl --user status meshcc' : 'systemctl status meshcc'})\n`);
}

async function uninstall(scope: Scope): Promise<void> {
  const file = unitPath(scope);
  if (!existsSync(file)) throw new MeshccError('not-installed', `no ${scope} service is installed (${file} does not exist)`);
  // A unit systemd no longer knows is removed all the same.
  try {
    systemctl(scope, 'disable', '--now', UNIT);
  } catch (err) {
    process.stderr.write(`meshcc: ${(err as Error).message}; removing the unit anyway\n`);
  }
  await fs.rm(file);
  try {
    systemctl(scope, 'daemon-reload');
  } catch {
    // nothing to reload without a running systemd
  }
  process.stderr.write(`meshcc: ${file} stopped and removed\n`);
}

export function addServiceCommands(program: Command): void {
  const service = program.command('service').description('the agent as a systemd service');
  service
    .command('install')
    .description('write, enable and start a systemd unit for the agent (--user: a laptop; --system: a LAN box, as user meshcc)')
    .option('--user', 'a user unit (default when not root)')
    .option('--system', 'a system unit (default as root)')
    .option('--key <hex>', "the mesh to join: its key (`meshcc key` on a member); without it the agent keeps its own")
    .option('--dry-run', 'print the unit and where it would go, change nothing')
    .action((opts: { user?: boolean; system?: boolean; dryRun?: boolean; key?: string }) => install(scopeOf(opts), opts));
  service
    .command('uninstall')
    .description('stop, disable and remove the unit installed by `meshcc service install`')
    .option('--user', 'the user unit')
    .option('--system', 'the system unit')
    .action((opts: { user?: boolean; system?: boolean }) => uninstall(scopeOf(opts)));
}
