// Home routers that map ports when asked, for multi-host tests: miniupnpd (Debian's package,
// nftables back end) with UPnP IGD and NAT-PMP on, inside a router namespace of a netns mesh
// whose home was made by addHomeBehindNat. Everything it creates lives in that namespace: an
// nftables table of its own, a config, a lease file and a pid file under a temporary folder.
//
// miniupnpd maps nothing when its WAN address is private or reserved (10/8, 172.16/12,
// 192.168/16, 100.64/10, the TEST-NETs), so publicWan() moves a mesh's "internet" onto
// 11.77.0.0/24: harmless, as no namespace of the mesh has a route out of it.
import { execFile, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import type { NetnsHost, NetnsMesh } from './netns.js';
import { waitFor } from './wait.js';

const run = promisify(execFile);

/** Replaces each host's address on the mesh bridge by 11.77.0.<n> (n = its index + 1). */
export async function publicWan(mesh: NetnsMesh): Promise<void> {
  for (const [i, host] of mesh.hosts.entries()) {
    const address = `11.77.0.${i + 1}`;
    await run('ip', ['-n', host.ns, 'addr', 'flush', 'dev', host.iface]);
    await run('ip', ['-n', host.ns, 'addr', 'add', `${address}/24`, 'dev', host.iface]);
    host.address = address;
  }
}

/** The /24 of a home's LAN interface on its router, as addHomeBehindNat made it. */
export interface UpnpRouter {
  router: NetnsHost;
  lan: number;
  /** Its config, lease file (`leases`) and pid file. */
  dir: string;
  /** Starts miniupnpd (again), with NAT-PMP on unless told otherwise (UPnP IGD is always on);
   *  resolves once it listens. */
  start(options?: { natPmp?: boolean }): Promise<void>;
  /** Stops miniupnpd (SIGTERM: it removes its mappings as it goes) and waits for it. */
  stop(): Promise<void>;
  /** The port mappings miniupnpd holds now, as `TCP:<external port>:<internal host>:<internal port>`. */
  mappings(): Promise<string[]>;
  log(): string;
}

const NFT_TABLES = `
table inet filter {
  chain forward { type filter hook forward priority 0; policy accept; jump miniupnpd; }
  chain miniupnpd { }
  chain prerouting { type nat hook prerouting priority -100; policy accept; jump prerouting_miniupnpd; }
  chain postrouting { type nat hook postrouting priority 100; policy accept; jump postrouting_miniupnpd; }
  chain prerouting_miniupnpd { }
  chain postrouting_miniupnpd { }
}
`;

/** miniupnpd on `router` for the home on 192.168.<lan>.0/24 behind its interface lan<lan>;
 *  its config, leases and pid file go to `dir`. */
export async function upnpRouter(mesh: NetnsMesh, router: NetnsHost, lan: number, dir: string): Promise<UpnpRouter> {
  const tables = path.join(dir, 'tables.nft');
  writeFileSync(tables, NFT_TABLES);
  await run('ip', ['netns', 'exec', router.ns, 'nft', '-f', tables]);
  const leases = path.join(dir, 'leases');
  const conf = path.join(dir, 'miniupnpd.conf');
  const config = (natPmp: boolean) => [
    `ext_ifname=${router.iface}`,
    `listening_ip=lan${lan}`,
    'port=0',
    `enable_natpmp=${natPmp ? 'yes' : 'no'}`,
    'enable_upnp=yes',
    'secure_mode=yes',
    'system_uptime=yes',
    `lease_file=${leases}`,
    'uuid=3d3cec3a-8cf0-11e0-98ee-001a6bd2d07' + String(lan % 10),
    'min_lifetime=60',
    `allow 1024-65535 192.168.${lan}.0/24 1024-65535`,
    'deny 0-65535 0.0.0.0/0 0-65535',
    '',
  ].join('\n');
  let child: ChildProcess | undefined;
  let output = '';
  const pidFile = path.join(dir, 'miniupnpd.pid');
  const self: UpnpRouter = {
    router,
    lan,
    dir,
    async start(options = {}) {
      if (child && child.exitCode === null && child.signalCode === null) return;
      const natPmp = options.natPmp ?? true;
      writeFileSync(conf, config(natPmp));
      output = '';
      child = mesh.spawn(router, 'miniupnpd', ['-f', conf, '-d', '-P', pidFile], { stdio: ['ignore', 'pipe', 'pipe'] });
      child.stdout!.setEncoding('utf8').on('data', (d: string) => (output = (output + d).slice(-50_000)));
      child.stderr!.setEncoding('utf8').on('data', (d: string) => (output = (output + d).slice(-50_000)));
      const started = child;
      // Listening on its HTTP port and NAT-PMP's: the log line comes after both are bound.
      await waitFor(`miniupnpd on ${router.name}`, async () => {
        if (started.exitCode !== null) throw new Error(`miniupnpd on ${router.name} exited: ${output.slice(-2000)}`);
        return /HTTP listening on port \d+/.test(output) && (!natPmp || /Listening for NAT-PMP/.test(output)) ? true : undefined;
      }, 10_000);
    },
    async stop() {
      const running = child;
      if (!running || running.exitCode !== null || running.signalCode !== null) return;
      const exited = new Promise((resolve) => running.once('exit', resolve));
      running.kill('SIGTERM');
      await exited;
    },
    async mappings() {
      // The lease file is what miniupnpd itself reloads; the nftables chain is what forwards.
      const listed = existsSync(leases) ? readFileSync(leases, 'utf8').split('\n').filter(Boolean).map((l) => l.split(':').slice(0, 4).join(':')) : [];
      const chain = (await run('ip', ['netns', 'exec', router.ns, 'nft', 'list', 'chain', 'inet', 'filter', 'prerouting_miniupnpd'])).stdout;
      const rules = [...chain.matchAll(/tcp dport (\d+) dnat ip to ([\d.]+):(\d+)/g)].map((m) => `TCP:${m[1]}:${m[2]}:${m[3]}`);
      return [...new Set([...listed, ...rules])];
    },
    log: () => output,
  };
  return self;
}
