// Homes behind NAT routers, for multi-host tests: a router is a host of a netns mesh (its
// eth0 is the "internet" side); a home is a new namespace on a private /24 behind it, whose
// traffic the router masquerades (iptables MASQUERADE, like a home router), optionally with
// one TCP port forwarded to the home (what a user sets up by hand or UPnP does).
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import type { NetnsHost, NetnsMesh } from './netns.js';

const run = promisify(execFile);

async function ipn(ns: string, ...args: string[]): Promise<void> {
  await run('ip', ['-n', ns, ...args]);
}

async function inNs(ns: string, cmd: string, ...args: string[]): Promise<void> {
  await run('ip', ['netns', 'exec', ns, cmd, ...args]);
}

export interface HomeOptions {
  /** The home's private network is 192.168.<lan>.0/24: the router .1, the home .2. */
  lan: number;
  /** A TCP port the router forwards from its internet side to the same port of the home. */
  forwardPort?: number;
}

/** Creates host `name` behind `router`; resolves with it once its default route works. */
export async function addHomeBehindNat(mesh: NetnsMesh, router: NetnsHost, name: string, options: HomeOptions): Promise<NetnsHost> {
  const homeAddress = `192.168.${options.lan}.2`;
  const routerLan = `192.168.${options.lan}.1`;
  const home = await mesh.addHost(name, homeAddress);
  const lanIf = `lan${options.lan}`;
  await ipn(router.ns, 'link', 'add', lanIf, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', home.ns);
  await ipn(router.ns, 'addr', 'add', `${routerLan}/24`, 'dev', lanIf);
  await ipn(router.ns, 'link', 'set', lanIf, 'up');
  await ipn(home.ns, 'addr', 'add', `${homeAddress}/24`, 'dev', 'eth0');
  await ipn(home.ns, 'link', 'set', 'eth0', 'up');
  await ipn(home.ns, 'route', 'add', 'default', 'via', routerLan);
  await inNs(router.ns, 'sysctl', '-qw', 'net.ipv4.ip_forward=1');
  await inNs(router.ns, 'iptables', '-t', 'nat', '-A', 'POSTROUTING', '-s', `192.168.${options.lan}.0/24`, '-o', router.iface, '-j', 'MASQUERADE');
  if (options.forwardPort !== undefined) {
    const port = String(options.forwardPort);
    await inNs(router.ns, 'iptables', '-t', 'nat', '-A', 'PREROUTING', '-i', router.iface, '-p', 'tcp', '--dport', port, '-j', 'DNAT', '--to-destination', `${homeAddress}:${port}`);
  }
  return home;
}
