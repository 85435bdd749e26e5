// Multi-host test harness: N Linux network namespaces ("hosts") joined by a bridge.
//
// Layout (nothing at all is created in the root namespace):
//   <base>-br            a namespace holding the bridge `br0` and one veth end `h<i>` per host
//   <base>-h<i>          one namespace per host: `lo` up, veth end `eth0` with 10.213.<n>.<i+1>/24,
//                        and a route for 224.0.0.0/4 on eth0 (without it multicast — and so
//                        multicast DNS — is dropped silently).
// <base> is `<prefix><pid>x<seq>`, so parallel test files (different worker pids) never collide.
// Because every host lives in namespaces of its own, the subnet is invisible to the machine; it
// is still chosen so that it overlaps nothing the root namespace routes.
//
// Cleanup: destroy() (idempotent) kills the processes this mesh spawned (by PID) and any process
// still inside its namespaces (necessarily descendants of ours), then deletes the links and
// namespaces. Every live mesh is also destroyed synchronously on process exit / SIGINT / SIGTERM.
import { execFile, execFileSync, spawn as spawnChild, type ChildProcess, type SpawnOptions } from 'node:child_process';

export interface NetnsHost {
  /** Short name, e.g. `h0`. */
  name: string;
  /** Network namespace name (for `ip netns exec`). */
  ns: string;
  /** IPv4 address of the host's eth0. */
  address: string;
  /** Interface name inside the namespace. */
  iface: string;
}

export interface ExecResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

export interface ExecOptions {
  /** Kill the command (SIGKILL) after this many ms. Default 30 s. */
  timeoutMs?: number;
  /** Written to the command's stdin, which is then closed. */
  input?: string;
  env?: NodeJS.ProcessEnv;
  cwd?: string;
}

export type HostRef = NetnsHost | number | string;

export interface NetnsMesh {
  /** `<prefix><pid>x<seq>`: every namespace name of this mesh starts with it. */
  base: string;
  /** Namespace holding the bridge. */
  bridgeNs: string;
  /** e.g. `10.213.0.0/24`. */
  subnet: string;
  hosts: NetnsHost[];
  /** Runs `ip netns exec <ns> cmd ...args` to completion; never rejects on a non-zero exit. */
  exec(host: HostRef, cmd: string, args?: string[], opts?: ExecOptions): Promise<ExecResult>;
  /** Starts `ip netns exec <ns> cmd ...args` (ip execs the command, so the PID is the command's); tracked for destroy(). */
  spawn(host: HostRef, cmd: string, args?: string[], opts?: SpawnOptions): ChildProcess;
  /** A namespace of its own (`lo` up, nothing else) that destroy() removes: wire it yourself. */
  addHost(name: string, address: string, iface?: string): Promise<NetnsHost>;
  /** Kills what this mesh spawned and removes its namespaces and links. Idempotent. */
  destroy(): Promise<void>;
}

export interface CreateNetnsMeshOptions {
  hosts: number;
  /** Name prefix (letters/digits), default `mcc`. */
  prefix?: string;
}

let seq = 0;
const live = new Set<MeshImpl>();
let exitHooksInstalled = false;

function ipSync(args: string[]): string {
  return execFileSync('ip', args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}

function ip(args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile('ip', args, { encoding: 'utf8' }, (err, stdout, stderr) => {
      if (err) reject(new Error(`ip ${args.join(' ')} failed: ${stderr.trim() || err.message}`));
      else resolve(stdout);
    });
  });
}

function listNetns(): string[] {
  try {
    return ipSync(['netns', 'list'])
      .split('\n')
      .map((l) => l.trim().split(/\s+/)[0] ?? '')
      .filter((n) => n.length > 0);
  } catch {
    return [];
  }
}

/** Names of all network namespaces on the machine (for leftover checks in tests). */
export function listNamespaces(): string[] {
  return listNetns();
}

let availability: { ok: true } | { ok: false; reason: string } | undefined;

/** Whether this machine can create namespaces, bridges and veths (root + iproute2 + kernel support). */
export function netnsAvailable(): { ok: true } | { ok: false; reason: string } {
  if (availability) return availability;
  availability = probe();
  return availability;
}

function probe(): { ok: true } | { ok: false; reason: string } {
  if (process.platform !== 'linux') return { ok: false, reason: `network namespaces need Linux (this is ${process.platform})` };
  if (typeof process.getuid === 'function' && process.getuid() !== 0) {
    return { ok: false, reason: 'network namespaces need root (uid is not 0)' };
  }
  try {
    ipSync(['-V']);
  } catch {
    return { ok: false, reason: 'iproute2 `ip` is not installed' };
  }
  const ns = `mccprobe${process.pid}x${seq++}`;
  try {
    ipSync(['netns', 'add', ns]);
    ipSync(['-n', ns, 'link', 'add', 'br0', 'type', 'bridge']);
    ipSync(['-n', ns, 'link', 'add', 'p0', 'type', 'veth', 'peer', 'name', 'p1']);
    ipSync(['-n', ns, 'link', 'set', 'p0', 'master', 'br0']);
    return { ok: true };
  } catch (err) {
    const e = err as { stderr?: string; message: string };
    return { ok: false, reason: `cannot create a namespace with a bridge and veth: ${(e.stderr ?? '').trim() || e.message}` };
  } finally {
    try {
      ipSync(['netns', 'del', ns]);
    } catch {
      // it may never have been created
    }
  }
}

function ipToInt(a: string): number {
  const p = a.split('.').map(Number);
  return (((p[0] ?? 0) << 24) | ((p[1] ?? 0) << 16) | ((p[2] ?? 0) << 8) | (p[3] ?? 0)) >>> 0;
}

function overlaps(a: string, b: string): boolean {
  const [aa = '', al = '32'] = a.split('/');
  const [ba = '', bl = '32'] = b.split('/');
  const len = Math.min(Number(al), Number(bl));
  const mask = len === 0 ? 0 : (0xffffffff << (32 - len)) >>> 0;
  return ((ipToInt(aa) & mask) >>> 0) === ((ipToInt(ba) & mask) >>> 0);
}

/** Prefixes the root namespace already routes or owns (the default route excluded). */
function rootPrefixes(): string[] {
  const out: string[] = [];
  try {
    const routes = JSON.parse(ipSync(['-4', '-j', 'route', 'show', 'table', 'all'])) as { dst?: string }[];
    for (const r of routes) {
      if (!r.dst || r.dst === 'default' || !/^\d/.test(r.dst)) continue;
      out.push(r.dst.includes('/') ? r.dst : `${r.dst}/32`);
    }
  } catch {
    // no JSON support: fall through to addresses only
  }
  try {
    const addrs = JSON.parse(ipSync(['-4', '-j', 'addr', 'show'])) as { addr_info?: { local?: string; prefixlen?: number }[] }[];
    for (const l of addrs) for (const a of l.addr_info ?? []) if (a.local) out.push(`${a.local}/${a.prefixlen ?? 32}`);
  } catch {
    // ignore
  }
  return out;
}

function pickSubnet(): string {
  const used = rootPrefixes();
  for (let n = 0; n < 256; n++) {
    const subnet = `10.213.${n}.0/24`;
    if (!used.some((u) => overlaps(u, subnet))) return subnet;
  }
  throw new Error('no free 10.213.x.0/24 subnet: the machine routes all of 10.213.0.0/16');
}

function installExitHooks(): void {
  if (exitHooksInstalled) return;
  exitHooksInstalled = true;
  process.on('exit', () => {
    for (const m of [...live]) m.destroySync();
  });
  for (const sig of ['SIGINT', 'SIGTERM'] as const) {
    const handler = (): void => {
      for (const m of [...live]) m.destroySync();
      process.off(sig, handler);
      // Keep the default behaviour (die of the signal) unless somebody else handles it.
      if (process.listenerCount(sig) === 0) process.kill(process.pid, sig);
    };
    process.on(sig, handler);
  }
}

class MeshImpl implements NetnsMesh {
  readonly hosts: NetnsHost[] = [];
  readonly namespaces: string[] = [];
  private readonly children = new Set<ChildProcess>();
  private destroying: Promise<void> | undefined;
  private destroyed = false;

  constructor(
    readonly base: string,
    readonly bridgeNs: string,
    readonly subnet: string,
  ) {}

  resolve(host: HostRef): NetnsHost {
    const h =
      typeof host === 'number'
        ? this.hosts[host]
        : typeof host === 'string'
          ? this.hosts.find((x) => x.name === host || x.ns === host)
          : host;
    if (!h) throw new Error(`no such host: ${String(typeof host === 'object' ? host.name : host)}`);
    return h;
  }

  async addHost(name: string, address: string, iface = 'eth0'): Promise<NetnsHost> {
    if (!/^h\d+$/.test(name) || this.hosts.some((h) => h.name === name)) throw new Error(`bad or taken host name ${name} (h<number>)`);
    const ns = `${this.base}-${name}`;
    await ip(['netns', 'add', ns]);
    this.namespaces.push(ns);
    await ip(['-n', ns, 'link', 'set', 'lo', 'up']);
    const host = { name, ns, address, iface };
    this.hosts.push(host);
    return host;
  }

  spawn(host: HostRef, cmd: string, args: string[] = [], opts: SpawnOptions = {}): ChildProcess {
    if (this.destroyed || this.destroying) throw new Error('mesh is destroyed');
    const h = this.resolve(host);
    const child = spawnChild('ip', ['netns', 'exec', h.ns, cmd, ...args], opts);
    this.children.add(child);
    child.once('exit', () => this.children.delete(child));
    child.once('error', () => this.children.delete(child));
    return child;
  }

  exec(host: HostRef, cmd: string, args: string[] = [], opts: ExecOptions = {}): Promise<ExecResult> {
    return new Promise((resolve, reject) => {
      let child: ChildProcess;
      try {
        child = this.spawn(host, cmd, args, { stdio: ['pipe', 'pipe', 'pipe'], env: opts.env, cwd: opts.cwd });
      } catch (err) {
        reject(err as Error);
        return;
      }
      let stdout = '';
      let stderr = '';
      child.stdout?.setEncoding('utf8').on('data', (d: string) => (stdout += d));
      child.stderr?.setEncoding('utf8').on('data', (d: string) => (stderr += d));
      const timer = setTimeout(() => {
        if (child.pid !== undefined) {
          try {
            process.kill(child.pid, 'SIGKILL');
          } catch {
            // already gone
          }
        }
      }, opts.timeoutMs ?? 30_000);
      child.once('error', (err) => {
        clearTimeout(timer);
        reject(err);
      });
      child.once('close', (code, signal) => {
        clearTimeout(timer);
        resolve({ code, signal, stdout, stderr });
      });
      child.stdin?.on('error', () => {});
      child.stdin?.end(opts.input ?? '');
    });
  }

  /** PIDs still running inside our namespaces: only descendants of what we spawned can be there. */
  private pidsInNamespaces(): number[] {
    const pids: number[] = [];
    const existing = new Set(listNetns());
    for (const ns of this.namespaces) {
      if (!existing.has(ns)) continue;
      try {
        for (const line of ipSync(['netns', 'pids', ns]).split('\n')) {
          const pid = Number(line.trim());
          if (Number.isInteger(pid) && pid > 0 && pid !== process.pid) pids.push(pid);
        }
      } catch {
        // namespace vanished meanwhile
      }
    }
    return pids;
  }

  private killPid(pid: number | undefined, sig: NodeJS.Signals): void {
    if (pid === undefined) return;
    try {
      process.kill(pid, sig);
    } catch {
      // already gone
    }
  }

  private removeNamespacesSync(): void {
    const existing = new Set(listNetns());
    // Host namespaces first (deleting one removes its eth0 and the peer in the bridge ns), then the bridge ns.
    for (const ns of [...this.namespaces].reverse()) {
      if (!existing.has(ns)) continue;
      try {
        ipSync(['netns', 'del', ns]);
      } catch {
        // best effort; reported by the leftover check in tests
      }
    }
  }

  destroy(): Promise<void> {
    if (this.destroyed) return Promise.resolve();
    this.destroying ??= (async () => {
      const waits: Promise<void>[] = [];
      for (const child of [...this.children]) {
        if (child.exitCode !== null || child.signalCode !== null) continue;
        waits.push(
          new Promise<void>((resolve) => {
            const t = setTimeout(resolve, 2000);
            child.once('exit', () => {
              clearTimeout(t);
              resolve();
            });
          }),
        );
        this.killPid(child.pid, 'SIGTERM');
      }
      const grace = setTimeout(() => {
        for (const child of this.children) this.killPid(child.pid, 'SIGKILL');
      }, 1000);
      await Promise.all(waits);
      clearTimeout(grace);
      for (const pid of this.pidsInNamespaces()) this.killPid(pid, 'SIGKILL');
      for (const h of this.hosts) {
        await ip(['-n', this.bridgeNs, 'link', 'del', `${h.name}`]).catch(() => {});
      }
      await ip(['-n', this.bridgeNs, 'link', 'del', 'br0']).catch(() => {});
      this.removeNamespacesSync();
      this.destroyed = true;
      live.delete(this);
    })();
    return this.destroying;
  }

  /** Synchronous last-resort cleanup for process exit. */
  destroySync(): void {
    if (this.destroyed) return;
    for (const child of this.children) this.killPid(child.pid, 'SIGKILL');
    for (const pid of this.pidsInNamespaces()) this.killPid(pid, 'SIGKILL');
    this.removeNamespacesSync();
    this.destroyed = true;
    live.delete(this);
  }
}

/**
 * Deletes namespaces left by an earlier run of this harness that died without cleanup (SIGKILL):
 * names `<prefix><pid>x<seq>-...` whose pid no longer exists. Processes are not touched.
 */
function reapStale(prefix: string): void {
  const re = new RegExp(`^${prefix}(\\d+)x\\d+-(br|h\\d+)$`);
  for (const ns of listNetns()) {
    const m = re.exec(ns);
    if (!m) continue;
    const pid = Number(m[1]);
    let alive = true;
    try {
      process.kill(pid, 0);
    } catch (err) {
      alive = (err as NodeJS.ErrnoException).code === 'EPERM';
    }
    if (alive) continue;
    try {
      ipSync(['netns', 'del', ns]);
    } catch {
      // somebody else reaped it
    }
  }
}

/** Creates `hosts` namespaces joined by a bridge living in a namespace of its own. */
export async function createNetnsMesh(options: CreateNetnsMeshOptions): Promise<NetnsMesh> {
  const prefix = options.prefix ?? 'mcc';
  if (!/^[a-z][a-z0-9]{0,11}$/i.test(prefix)) throw new Error(`bad prefix ${prefix}: use 1-12 letters/digits`);
  if (options.hosts < 1 || options.hosts > 250) throw new Error('hosts must be 1..250');
  const avail = netnsAvailable();
  if (!avail.ok) throw new Error(avail.reason);

  reapStale(prefix);
  const base = `${prefix}${process.pid}x${seq++}`;
  const subnet = pickSubnet();
  const net3 = subnet.split('.').slice(0, 3).join('.');
  const mesh = new MeshImpl(base, `${base}-br`, subnet);
  installExitHooks();
  live.add(mesh);
  try {
    const br = mesh.bridgeNs;
    await ip(['netns', 'add', br]);
    mesh.namespaces.push(br);
    await ip(['-n', br, 'link', 'set', 'lo', 'up']);
    // No multicast snooping (flood every group, like a dumb switch), no STP forwarding delay.
    await ip(['-n', br, 'link', 'add', 'br0', 'type', 'bridge', 'mcast_snooping', '0', 'forward_delay', '0', 'stp_state', '0']);
    await ip(['-n', br, 'link', 'set', 'br0', 'up']);
    for (let i = 0; i < options.hosts; i++) {
      const name = `h${i}`;
      const ns = `${base}-${name}`;
      const address = `${net3}.${i + 1}`;
      await ip(['netns', 'add', ns]);
      mesh.namespaces.push(ns);
      await ip(['-n', br, 'link', 'add', name, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', ns]);
      await ip(['-n', br, 'link', 'set', name, 'master', 'br0']);
      await ip(['-n', br, 'link', 'set', name, 'up']);
      await ip(['-n', ns, 'link', 'set', 'lo', 'up']);
      await ip(['-n', ns, 'addr', 'add', `${address}/24`, 'dev', 'eth0']);
      await ip(['-n', ns, 'link', 'set', 'eth0', 'up']);
      await ip(['-n', ns, 'route', 'add', '224.0.0.0/4', 'dev', 'eth0']);
      mesh.hosts.push({ name, ns, address, iface: 'eth0' });
    }
  } catch (err) {
    await mesh.destroy();
    throw err;
  }
  return mesh;
}
