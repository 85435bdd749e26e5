// Debian's podman for tests, as root, with configuration of the test's own: containers.conf
// (runc, since crun fails on this machine's hybrid cgroup layout; the cgroupfs manager, no
// systemd here; no default ulimits, which root's podman cannot raise here), image and container
// storage in a temporary directory, no registry (none is reachable: base images are made here,
// by debootstrap from the machine's own apt mirror), and CNI networks configured in that
// directory too. Nothing of the machine's own podman set-up is read or changed.
import { execFile, execFileSync, spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, readdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { plainEnv, REPO } from './agent.js';
import { tempDir } from './tmp.js';

export interface PodmanResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Why podman tests cannot run here, or '' when they can. */
export function podmanUnavailable(): string {
  if (process.getuid?.() !== 0) return 'podman tests run as root';
  for (const tool of ['podman', 'runc', 'debootstrap']) {
    if (spawnSync('sh', ['-c', `command -v ${tool}`]).status !== 0) return `${tool} is missing (apt-get install podman runc debootstrap)`;
  }
  return '';
}

/** The bridge of podman's default network, which `podman build` puts its RUN steps on. */
const DEFAULT_BRIDGE = '/sys/class/net/cni-podman0';

export class Podman {
  readonly dir = tempDir('meshcc-podman-');
  readonly env: Record<string, string>;
  /** Whether the default network's bridge was there before this instance (then it is not ours to remove). */
  private readonly defaultBridgeBefore = existsSync(DEFAULT_BRIDGE);

  constructor() {
    const storage = path.join(this.dir, 'storage');
    const cni = path.join(this.dir, 'cni');
    mkdirSync(cni);
    mkdirSync(path.join(this.dir, 'tmp'));
    writeFileSync(
      path.join(this.dir, 'containers.conf'),
      [
        '[containers]',
        'default_ulimits = []',
        '[engine]',
        'cgroup_manager = "cgroupfs"',
        'runtime = "runc"',
        'events_logger = "file"',
        `tmp_dir = "${path.join(this.dir, 'tmp')}"`,
        '[network]',
        'network_backend = "cni"',
        `network_config_dir = "${cni}"`,
        '',
      ].join('\n'),
    );
    writeFileSync(path.join(this.dir, 'storage.conf'), `[storage]\ndriver = "overlay"\ngraphroot = "${storage}/graph"\nrunroot = "${storage}/run"\n`);
    writeFileSync(path.join(this.dir, 'registries.conf'), 'unqualified-search-registries = []\n');
    this.env = {
      ...plainEnv,
      CONTAINERS_CONF: path.join(this.dir, 'containers.conf'),
      CONTAINERS_STORAGE_CONF: path.join(this.dir, 'storage.conf'),
      CONTAINERS_REGISTRIES_CONF: path.join(this.dir, 'registries.conf'),
    };
  }

  /** Runs podman to completion; never rejects on a non-zero exit. */
  run(args: string[], timeoutMs = 120_000): Promise<PodmanResult> {
    return new Promise((resolve) => {
      execFile('podman', args, { env: this.env, timeout: timeoutMs, killSignal: 'SIGKILL', maxBuffer: 64 << 20 }, (err, stdout, stderr) => {
        const code = err ? ((err as { code?: unknown }).code as number | null) ?? null : 0;
        resolve({ code: typeof code === 'number' ? code : null, stdout, stderr });
      });
    });
  }

  /** Runs podman and returns its output; throws with what it said when it fails. */
  async ok(args: string[], timeoutMs?: number): Promise<string> {
    const r = await this.run(args, timeoutMs);
    if (r.code !== 0) throw new Error(`podman ${args.slice(0, 3).join(' ')} … exited ${r.code}: ${r.stderr.trim().split('\n').slice(-5).join(' | ')}`);
    return r.stdout.trim();
  }

  /** Image size in bytes, as podman counts it (all layers). */
  async imageSize(image: string): Promise<number> {
    return Number(await this.ok(['image', 'inspect', '--format', '{{.Size}}', image]));
  }

  /** Removes every container and network of this instance (its storage goes with its directory). */
  async destroy(): Promise<void> {
    await this.run(['rm', '--all', '--force', '--time', '0']);
    const networks = (await this.run(['network', 'ls', '--format', '{{.Name}} {{.NetworkInterface}}'])).stdout.trim().split('\n').filter(Boolean);
    for (const line of networks) {
      const [name, bridge] = line.split(' ');
      if (name === 'podman') continue;
      await this.run(['network', 'rm', '--force', name!]);
      // CNI leaves the bridge behind once its last container is gone.
      if (bridge) spawnSync('ip', ['link', 'del', bridge]);
    }
    // The default network's bridge, made by this instance's builds, once nothing is attached to it.
    if (!this.defaultBridgeBefore && existsSync(DEFAULT_BRIDGE) && readdirSync(`${DEFAULT_BRIDGE}/brif`).length === 0) {
      spawnSync('ip', ['link', 'del', 'cni-podman0']);
    }
  }
}

/** The first URI of this machine's own apt entry for its release's main archive (never a host
 *  named here): test/projects/deb-src.sh's reading of /etc/apt/sources.list*. */
export function aptMirror(): string {
  const script = `source ${JSON.stringify(path.join(REPO, 'test', 'projects', 'deb-src.sh'))} && deb_src_twin`;
  const twin = execFileSync('bash', ['-c', script], { encoding: 'utf8' });
  const uri = /^URIs:\s*(\S+)/m.exec(twin)?.[1];
  if (!uri) throw new Error(`no URI in this machine's apt entry for its release:\n${twin}`);
  return uri;
}

/** A base image to make: its name, and the packages beyond debootstrap's minbase. */
export interface BaseWanted {
  image: string;
  packages: string[];
}

/** Where made root file systems are kept between runs: this checkout's .cache (gitignored). */
const BASE_CACHE = path.join(REPO, '.cache', 'container-base');

/** The tarball a base's root file system is cached in, keyed by its packages and Node version. */
const cachedRoot = (packages: string[]) => path.join(BASE_CACHE, `bookworm-minbase-${packages.join('+') || 'none'}-node-${process.version}.tar`);

function debootstrap(args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile('debootstrap', args, { timeout: 600_000, maxBuffer: 64 << 20 }, (err, stdout, stderr) =>
      err ? reject(new Error(`debootstrap failed: ${err.message} ${String(stderr).slice(-2000)}`)) : resolve(stdout),
    );
  });
}

/**
 * Debian bookworm images (debootstrap --variant=minbase, plus each one's `packages`) with this
 * process's Node at /usr/local/bin/node, as the node:*-bookworm-slim images have it; without
 * apt's caches, manuals, documentation and translations, as those images are. Each root file
 * system is cached as a tarball in .cache/container-base.
 *
 * The packages of each base are a subset of the largest's: one debootstrap makes the largest,
 * and each smaller one is that root with the packages its own debootstrap would not have
 * installed purged (debootstrap --print-debs names them). A debootstrap is CPU-bound (unpacking
 * and configuring): two of them took 291 s of a fresh CI machine's test run, one plus a purge
 * 86 s against 128 s on an idle one.
 */
export async function debianBases(podman: Podman, wanted: BaseWanted[]): Promise<{ images: string[]; debootstrapSeconds: number }> {
  const started = Date.now();
  const missing = wanted.filter((b) => !existsSync(cachedRoot(b.packages)));
  if (missing.length) {
    const largestFirst = [...wanted].sort((a, b) => b.packages.length - a.packages.length);
    for (const base of largestFirst.slice(1)) {
      const outside = base.packages.filter((p) => !largestFirst[0]!.packages.includes(p));
      if (outside.length) throw new Error(`debianBases: ${outside.join(', ')} of ${base.image} is not in ${largestFirst[0]!.image}`);
    }
    const debs = path.join(BASE_CACHE, 'debs');
    mkdirSync(debs, { recursive: true });
    const include = (packages: string[]) => (packages.length ? [`--include=${packages.join(',')}`] : []);
    const mirror = aptMirror();
    const root = path.join(tempDir('meshcc-rootfs-'), 'root');
    await debootstrap(['--variant=minbase', ...include(largestFirst[0]!.packages), `--cache-dir=${debs}`, 'bookworm', root, mirror]);
    for (const dir of ['var/cache/apt/archives', 'var/lib/apt/lists', 'usr/share/doc', 'usr/share/man', 'usr/share/info', 'usr/share/locale']) {
      rmSync(path.join(root, dir), { recursive: true, force: true });
      mkdirSync(path.join(root, dir), { recursive: true });
    }
    mkdirSync(path.join(root, 'var/cache/apt/archives/partial'), { recursive: true });
    cpSync(process.execPath, path.join(root, 'usr/local/bin/node'));
    for (const [i, base] of largestFirst.entries()) {
      if (i > 0) {
        const listed = path.join(tempDir('meshcc-print-debs-'), 'root');
        const own = new Set((await debootstrap(['--print-debs', '--variant=minbase', ...include(base.packages), `--cache-dir=${debs}`, 'bookworm', listed, mirror])).split(/\s+/).filter(Boolean));
        const installed = execFileSync('chroot', [root, 'dpkg-query', '-W', '-f', '${Package}\n'], { encoding: 'utf8' }).split('\n').filter(Boolean);
        const extra = installed.filter((p) => !own.has(p));
        if (extra.length) execFileSync('chroot', [root, 'dpkg', '--purge', ...extra], { stdio: 'ignore' });
      }
      const tarball = cachedRoot(base.packages);
      const partial = `${tarball}.${process.pid}`;
      execFileSync('tar', ['-C', root, '--numeric-owner', '-cf', partial, '.']);
      renameSync(partial, tarball);
    }
    rmSync(root, { recursive: true, force: true });
  }
  const debootstrapSeconds = missing.length ? (Date.now() - started) / 1000 : 0;
  for (const base of wanted) await podman.ok(['import', '--quiet', cachedRoot(base.packages), base.image]);
  return { images: wanted.map((b) => b.image), debootstrapSeconds };
}
