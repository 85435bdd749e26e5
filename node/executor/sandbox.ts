// The bubblewrap command line for one job: the job root as /, the host's compiler
// directories read-only on top (until toolchains are shipped), the job's own copies of
// any search directories that live inside those, no network, nothing else of the host.
// The spawner sets its resource limits (resource-limits.ts).
import { spawnSync } from 'node:child_process';
import { existsSync, lstatSync, readlinkSync, statSync } from 'node:fs';
import path from 'node:path';
import type { InputFile, Job } from '../../protocol/messages.js';
import { limitFlags, type ProgramLimits } from '../spawner/program-limits.js';
import { toolchainMountArgs, type ToolchainMounts } from './toolchain-mounts.js';

/** Where a compiler's programs and libraries live on Debian-like and Fedora-like systems.
 *  Deliberately not /usr/include, /usr/local or /usr/src: headers come from the input tree. */
const HOST_COMPILER_DIRS = [
  '/usr/bin',
  '/usr/sbin',
  '/usr/lib',
  '/usr/lib32',
  '/usr/lib64',
  '/usr/libx32',
  '/usr/libexec',
  '/usr/share/locale',
  '/bin',
  '/sbin',
  '/lib',
  '/lib32',
  '/lib64',
  '/libx32',
  '/etc/alternatives',
  '/etc/ld.so.cache',
];

export interface HostBinds {
  /** Real directories and files bound read-only. */
  bound: string[];
  /** Symlinks recreated as symlinks (merged-/usr systems: /bin → usr/bin). */
  links: { path: string; target: string }[];
}

export function detectHostBinds(): HostBinds {
  const binds: HostBinds = { bound: [], links: [] };
  for (const dir of HOST_COMPILER_DIRS) {
    if (!existsSync(dir)) continue;
    const st = lstatSync(dir);
    if (st.isSymbolicLink()) binds.links.push({ path: dir, target: readlinkSync(dir) });
    else binds.bound.push(dir);
  }
  return binds;
}

function under(dir: string, file: string): boolean {
  return file === dir || file.startsWith(dir + '/');
}

/** bubblewrap's options that make a job's sandbox, up to the job's own (directory,
 *  environment, command). */
export interface SandboxMounts {
  args: string[];
  /** Some mounts are this job's own (its inputs or listings inside host-bound directories,
   *  bound file by file): such a sandbox serves this job only (kept-sandboxes.ts). */
  jobOwn: boolean;
  /** What else a kept sandbox with these mounts must have been made with: the toolchain tree's
   *  identity (a tree evicted and installed again is another directory, whatever its path). */
  identity: string;
}

/**
 * The sandbox of one job. With `toolchain`, the compiler comes from a shipped toolchain and
 * nothing of the host is bound; without it, the host's compiler directories are (the
 * toolchain id then says they hold the identical compiler). `sameAsHost`: whether an input
 * inside a host-bound directory is byte for byte the host's file there (then the host's
 * serves, and no mount of its own is needed: git's jobs read five of gcc's own headers).
 */
export function sandboxMounts(job: Job, root: string, binds: HostBinds, toolchain?: ToolchainMounts, hostCopies?: { sameAsHost(file: InputFile): boolean }): SandboxMounts {
  const args = ['--unshare-all', '--die-with-parent', '--new-session', '--bind', root, '/'];
  if (toolchain) {
    // What the root holds of its own (inputs under it); not a link a kept sandbox made there.
    args.push(...toolchainMountArgs(toolchain, (p) => lstatSync(path.join(root, p), { throwIfNoEntry: false })?.isSymbolicLink() === false));
    args.push('--proc', '/proc', '--dev', '/dev');
    const tree = statSync(toolchain.root);
    return { args, jobOwn: false, identity: `${toolchain.root}:${tree.dev}:${tree.ino}:${tree.ctimeMs}` };
  }
  for (const link of binds.links) args.push('--symlink', link.target, link.path);
  for (const dir of binds.bound) args.push('--ro-bind', dir, dir);
  // The root's own /tmp (fresh per job), not a tmpfs: projects under /tmp must stay visible.
  args.push('--proc', '/proc', '--dev', '/dev');
  const base = args.length;
  // Search directories (and stray inputs) inside a host-bound directory come from the job.
  const isHostBound = (p: string) => binds.bound.some((b) => under(b, p));
  const overlaidDirs = job.listings.map((l) => l.path).filter((p) => isHostBound(p) && existsSync(p));
  overlaidDirs.sort();
  for (const dir of overlaidDirs) args.push('--ro-bind', path.join(root, dir), dir);
  for (const f of job.inputs) {
    if (isHostBound(f.path) && !overlaidDirs.some((d) => under(d, f.path)) && existsSync(f.path) && !hostCopies?.sameAsHost(f)) {
      args.push('--ro-bind', path.join(root, f.path), f.path);
    }
  }
  return { args, jobOwn: args.length > base, identity: '' };
}

/** The environment a job's command runs with. */
export function jobEnvironment(job: Job): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(job.env)) if (k !== 'TMPDIR') env[k] = v;
  env.TMPDIR = '/tmp';
  if (!job.env.PATH) env.PATH = '/usr/local/bin:/usr/bin:/bin';
  return env;
}

/** bubblewrap's whole command line for one job, run by bubblewrap itself. */
export function bwrapArgs(job: Job, root: string, binds: HostBinds, statusFd: number, toolchain?: ToolchainMounts, hostCopies?: { sameAsHost(file: InputFile): boolean }): string[] {
  return [...sandboxMounts(job, root, binds, toolchain, hostCopies).args, ...jobTail(job, statusFd)];
}

/** The symlinks bubblewrap's arguments make in the root. */
export function symlinkDestinations(args: string[]): string[] {
  const links: string[] = [];
  for (let i = 0; i < args.length && args[i] !== '--'; i++) if (args[i] === '--symlink') links.push(args[i + 2]!);
  return links;
}

/** Where bubblewrap's arguments mount or link something inside the root (it makes those paths there if missing). */
export function mountDestinations(args: string[]): string[] {
  const destinations: string[] = [];
  for (let i = 0; i < args.length && args[i] !== '--'; i++) {
    const a = args[i]!;
    if (a === '--bind' || a === '--ro-bind' || a === '--dev-bind' || a === '--symlink' || a === '--ro-bind-try' || a === '--bind-try') {
      if (args[i + 2] !== '/') destinations.push(args[i + 2]!);
      i += 2;
    } else if (a === '--proc' || a === '--dev' || a === '--tmpfs' || a === '--dir' || a === '--mqueue') {
      destinations.push(args[++i]!);
    } else if (a === '--chdir' || a === '--json-status-fd' || a === '--unsetenv' || a === '--perms' || a === '--size') {
      i += 1;
    } else if (a === '--setenv' || a === '--chmod') {
      i += 2;
    }
  }
  return destinations;
}

/** bubblewrap's options for the job's own: its directory, environment and command. */
export function jobTail(job: Job, statusFd: number): string[] {
  const args = ['--chdir', job.cwd, '--clearenv'];
  for (const [k, v] of Object.entries(jobEnvironment(job))) args.push('--setenv', k, v);
  args.push('--json-status-fd', String(statusFd), '--', job.compiler, ...job.argv.slice(1));
  return args;
}

/** Whether bubblewrap can build a sandbox here under the jobs' limits, set by the native spawner
 *  (`nativeSpawner`) or else prlimit; the reason when it cannot. */
export function probeBubblewrap(limits: ProgramLimits, nativeSpawner?: string): { ok: true } | { ok: false; reason: string } {
  // A fresh /proc and /dev, as every job gets: in a container whose /proc is masked (the
  // engines' default) the kernel refuses that mount, and only that.
  const sandbox = ['--unshare-all', '--die-with-parent', '--ro-bind', '/', '/', '--proc', '/proc', '--dev', '/dev', 'true'];
  const limiter = nativeSpawner ?? 'prlimit';
  const limited = spawnSync(limiter, [...limitFlags(limits), 'bwrap', ...sandbox], { encoding: 'utf8', timeout: 10_000 });
  if (limited.status === 0) return { ok: true };
  // Only on failure: which of the two is at fault.
  const bare = spawnSync('bwrap', sandbox, { encoding: 'utf8', timeout: 10_000 });
  if (isMissing(bare)) return { ok: false, reason: 'bubblewrap (bwrap) is not installed; install it to execute jobs' };
  if (bare.status !== 0) return { ok: false, reason: `bubblewrap cannot create a sandbox here: ${firstLine(bare)}` };
  if (isMissing(limited)) return { ok: false, reason: nativeSpawner ? `${nativeSpawner} is missing` : 'prlimit (util-linux) is not installed; install it to execute jobs' };
  // E.g. a hard limit below ours, which only CAP_SYS_RESOURCE may raise.
  return { ok: false, reason: `cannot set the jobs' resource limits here: ${firstLine(limited)}` };
}

function isMissing(run: { error?: Error }): boolean {
  return (run.error as NodeJS.ErrnoException | undefined)?.code === 'ENOENT';
}

function firstLine(run: { stderr: string; error?: Error }): string {
  return (run.stderr || String(run.error ?? '')).trim().split('\n')[0] ?? '';
}
