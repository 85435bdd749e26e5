// Which IPv4 addresses the internet can route to: an agent on one of them needs no mapping and
// advertises it from the start; one behind a router maps a port instead.
import os from 'node:os';

/** [first octets as a 32-bit number, prefix length]: private, shared, loopback, link-local,
 *  documentation, benchmarking, multicast and reserved ranges. */
const NOT_PUBLIC: [string, number][] = [
  ['0.0.0.0', 8], ['10.0.0.0', 8], ['100.64.0.0', 10], ['127.0.0.0', 8], ['169.254.0.0', 16], ['172.16.0.0', 12],
  ['192.0.0.0', 24], ['192.0.2.0', 24], ['192.168.0.0', 16], ['198.18.0.0', 15], ['198.51.100.0', 24], ['203.0.113.0', 24],
  ['224.0.0.0', 4], ['240.0.0.0', 4],
];

function word(address: string): number {
  return address.split('.').reduce((n, part) => ((n << 8) | Number(part)) >>> 0, 0);
}

export function isPublicIPv4(address: string): boolean {
  if (!/^\d{1,3}(\.\d{1,3}){3}$/.test(address)) return false;
  const value = word(address);
  return !NOT_PUBLIC.some(([base, bits]) => ((value ^ word(base)) >>> (32 - bits)) === 0);
}

let cached: { at: number; addresses: string[] } | undefined;

/** This machine's public IPv4 interface addresses (looked up again after 5 s: each lookup
 *  asks the kernel for every interface, and `meshcc status` asks once a monitor frame). */
export function publicInterfaceAddresses(now = Date.now()): string[] {
  if (cached && now - cached.at < 5_000) return cached.addresses;
  const addresses = Object.values(os.networkInterfaces())
    .flat()
    .filter((e) => e !== undefined && e.family === 'IPv4' && !e.internal && isPublicIPv4(e.address))
    .map((e) => e!.address);
  cached = { at: now, addresses };
  return addresses;
}

/** The IPv4 address of ours on `gateway`'s network (what UPnP wants as the internal host). */
export function addressTowards(gateway: string): string | undefined {
  for (const entry of Object.values(os.networkInterfaces()).flat()) {
    if (!entry || entry.family !== 'IPv4' || entry.internal) continue;
    const mask = word(entry.netmask);
    if (((word(entry.address) & mask) >>> 0) === ((word(gateway) & mask) >>> 0)) return entry.address;
  }
  return undefined;
}

/** Whether `address` is on one of this machine's IPv4 networks (a LAN peer, not one from afar). */
export function onLocalNetwork(address: string): boolean {
  return addressTowards(address) !== undefined;
}
