// A far link for a host of a netns mesh: `tc netem` delay and a `tbf` rate limit on both
// directions of its veth (its eth0, and its port on the bridge), like a peer behind a home
// uplink across the internet.
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import type { NetnsHost, NetnsMesh } from './netns.js';

const run = promisify(execFile);

export interface LinkShape {
  /** One-way delay each direction adds (a round trip gets twice this). */
  delayMs: number;
  rateMbit: number;
}

async function shape(ns: string, dev: string, link: LinkShape): Promise<void> {
  const tc = async (...args: string[]) => {
    await run('ip', ['netns', 'exec', ns, 'tc', ...args]).catch((err: { stderr?: string; message: string }) => {
      throw new Error(`tc ${args.join(' ')} in ${ns}: ${(err.stderr ?? err.message).trim()}`);
    });
  };
  // netem delays; tbf under it limits the rate (its queue holds ~400 ms of data).
  await tc('qdisc', 'add', 'dev', dev, 'root', 'handle', '1:', 'netem', 'delay', `${link.delayMs}ms`, 'limit', '10000');
  await tc('qdisc', 'add', 'dev', dev, 'parent', '1:1', 'handle', '10:', 'tbf', 'rate', `${link.rateMbit}mbit`, 'burst', '32kbit', 'latency', '400ms');
}

/** A friend's machine behind a home uplink: 100 ms round trip, 20 Mbit/s. */
export const FAR_LINK: LinkShape = { delayMs: 50, rateMbit: 20 };

/** Shapes everything `host` sends and receives. */
export async function makeFar(mesh: NetnsMesh, host: NetnsHost, link: LinkShape): Promise<void> {
  await shape(host.ns, host.iface, link);
  await shape(mesh.bridgeNs, host.name, link);
}
