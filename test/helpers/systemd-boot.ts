// A real systemd (a booted system manager, or a user manager) on a namespace harness host;
// see systemd-boot.sh for what it isolates and how. Commands run inside it with nsenter, so
// `systemctl` and `meshcc service install` talk to that systemd.
import { existsSync, mkdirSync, readdirSync, readFileSync, rmdirSync, statSync } from 'node:fs';
import path from 'node:path';
import type { ExecResult, HostRef, NetnsMesh } from './netns.js';
import { REPO } from './agent.js';
import { sleep } from './wait.js';

const SCRIPT = path.join(REPO, 'test', 'helpers', 'systemd-boot.sh');
const SYSTEMD = '/lib/systemd/systemd';
/** Where the checkout is inside the booted namespace. */
export const BOOTED_CHECKOUT = '/opt/meshcc';

export function systemdAvailable(): { ok: true } | { ok: false; reason: string } {
  if (!existsSync(SYSTEMD)) return { ok: false, reason: `${SYSTEMD} is missing (apt-get install systemd)` };
  if (!existsSync('/sys/fs/cgroup')) return { ok: false, reason: 'no cgroup file system at /sys/fs/cgroup' };
  if (!readFileSync('/proc/filesystems', 'utf8').includes('overlay')) return { ok: false, reason: 'the kernel has no overlay file system' };
  // systemd needs a cgroup of its own: the cgroup file system must take a new one here.
  const probe = `meshcc-test-probe-${process.pid}`;
  const hierarchy = existsSync('/sys/fs/cgroup/cgroup.procs') ? '/sys/fs/cgroup' : '/sys/fs/cgroup/systemd';
  try {
    mkdirSync(path.join(hierarchy, probe));
    rmdirSync(path.join(hierarchy, probe));
  } catch (err) {
    return { ok: false, reason: `cannot create a cgroup under ${hierarchy}: ${(err as Error).message}` };
  }
  return { ok: true };
}

export interface BootedSystemd {
  /** Runs a command inside the booted namespaces (mount, cgroup and, for `system`, PID). */
  exec(cmd: string, args: string[], opts?: { env?: NodeJS.ProcessEnv; cwd?: string; timeoutMs?: number }): Promise<ExecResult>;
  /** Ends every process of this systemd's cgroup (systemd and what it started) and removes the cgroups. */
  stop(): Promise<void>;
}

/** Every cgroup hierarchy's copy of `name` (cgroup v1 has one per hierarchy, v2 one). */
function cgroupDirs(name: string): string[] {
  if (existsSync('/sys/fs/cgroup/cgroup.procs')) return [path.join('/sys/fs/cgroup', name)];
  return readdirSync('/sys/fs/cgroup')
    .map((h) => path.join('/sys/fs/cgroup', h, name))
    .filter((dir) => existsSync(dir));
}

function pidsUnder(dir: string): number[] {
  const pids: number[] = [];
  for (const entry of readdirSync(dir)) {
    const child = path.join(dir, entry);
    if (statSync(child).isDirectory()) pids.push(...pidsUnder(child));
  }
  const procs = path.join(dir, 'cgroup.procs');
  if (existsSync(procs)) pids.push(...readFileSync(procs, 'utf8').split('\n').filter(Boolean).map(Number));
  return pids;
}

function removeTree(dir: string): void {
  for (const entry of readdirSync(dir)) {
    const child = path.join(dir, entry);
    if (statSync(child).isDirectory()) removeTree(child);
  }
  rmdirSync(dir);
}

/** Boots systemd (`system`: PID 1 of its own PID namespace; `user`: a user manager) on `host` and waits until it answers. */
export async function bootSystemd(mesh: NetnsMesh, host: HostRef, mode: 'system' | 'user'): Promise<BootedSystemd> {
  const cgroup = `meshcc-test-${process.pid}-${mode}-${Date.now()}`;
  const boot = mesh.spawn(host, 'sh', [SCRIPT, mode, REPO, cgroup], { stdio: ['ignore', 'ignore', 'pipe'] });
  let log = '';
  boot.stderr!.setEncoding('utf8').on('data', (d: string) => (log = (log + d).slice(-10_000)));
  const stop = async () => {
    for (let attempt = 0; attempt < 50; attempt++) {
      const pids = cgroupDirs(cgroup).flatMap(pidsUnder);
      if (!pids.length) break;
      for (const p of new Set(pids)) {
        try {
          process.kill(p, 'SIGKILL');
        } catch {
          // already gone
        }
      }
      await sleep(100);
    }
    for (const dir of cgroupDirs(cgroup)) {
      try {
        removeTree(dir);
      } catch (err) {
        console.log(`cannot remove the test cgroup ${dir}: ${(err as Error).message}`);
      }
    }
  };
  // systemd is the process of that cgroup whose command is systemd's, and whose parent's is
  // not: a child it forks carries its name until that child execs (and may be gone a moment later).
  const readProc = (pid: number, file: string) => {
    try {
      return readFileSync(`/proc/${pid}/${file}`, 'utf8');
    } catch {
      return '';
    }
  };
  const findSystemd = (): number => {
    const named = [...new Set(cgroupDirs(cgroup).flatMap(pidsUnder))].filter((p) => readProc(p, 'comm').trim() === 'systemd');
    const parentOf = (p: number) => Number(/^PPid:\s*(\d+)/m.exec(readProc(p, 'status'))?.[1] ?? 0);
    return named.find((p) => !named.includes(parentOf(p))) ?? 0;
  };
  let pid = 0;
  const deadline = Date.now() + 20_000;
  while (!pid) {
    pid = findSystemd();
    if ((boot.exitCode !== null && !pid) || Date.now() > deadline) {
      await stop();
      throw new Error(`systemd (${mode}) did not start: ${log}`);
    }
    if (!pid) await sleep(100);
  }
  const namespaces = ['--mount', '--cgroup', ...(mode === 'system' ? ['--pid'] : [])];
  const userEnv = mode === 'user' ? { HOME: '/opt/home', XDG_RUNTIME_DIR: '/opt/run' } : {};
  const booted: BootedSystemd = {
    exec: (cmd, args, opts = {}) =>
      // (nsenter's --wd opens the directory before it enters the mount namespace)
      mesh.exec(host, 'nsenter', ['--target', String(pid), ...namespaces, '--', 'sh', '-c', 'cd "$0" && exec "$@"', opts.cwd ?? '/', cmd, ...args], {
        env: { ...(opts.env ?? { PATH: '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin', LANG: 'C' }), ...userEnv },
        timeoutMs: opts.timeoutMs,
      }),
    stop,
  };
  // Up when systemctl gets an answer (a user manager: through its private socket).
  const systemctl = mode === 'user' ? ['--user'] : [];
  for (;;) {
    const r = await booted.exec('systemctl', [...systemctl, 'is-system-running']);
    if (['running', 'degraded'].includes(r.stdout.trim())) return booted;
    if (Date.now() > deadline) {
      await stop();
      throw new Error(`systemd (${mode}) never came up: ${r.stdout}${r.stderr} ${log}`);
    }
    await sleep(200);
  }
}
