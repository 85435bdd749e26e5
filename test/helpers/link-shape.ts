// A far link for a host of a netns mesh, like a peer behind a home uplink across the internet:
// a `tbf` rate limit on both directions of its veth (its eth0, and its port on the bridge) and a
// delay, by `tc netem` where the kernel has it, else by test/helpers/linkem.c between the
// host's bridge port and the bridge (the whole round-trip delay on the frames the host sends).
import { execFile, spawn } from 'node:child_process';
import { existsSync, mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import type { NetnsHost, NetnsMesh } from './netns.js';

const run = promisify(execFile);
// Beside this file in the repository; three levels up from its compiled copy in dist/ (benches).
const LINKEM_SOURCE = [path.join(import.meta.dirname, 'linkem.c'), path.resolve(import.meta.dirname, '..', '..', '..', 'test', 'helpers', 'linkem.c')].find((p) => existsSync(p))!;

export interface LinkShape {
  /** One-way delay each direction adds (a round trip gets twice this). */
  delayMs: number;
  rateMbit: number;
}

/** A friend's machine behind a home uplink: 100 ms round trip, 20 Mbit/s. */
export const FAR_LINK: LinkShape = { delayMs: 50, rateMbit: 20 };

async function tc(ns: string, ...args: string[]): Promise<string | undefined> {
  try {
    await run('ip', ['netns', 'exec', ns, 'tc', ...args]);
    return undefined;
  } catch (err) {
    return ((err as { stderr?: string }).stderr ?? (err as Error).message).trim();
  }
}

async function rateLimit(ns: string, dev: string, rateMbit: number): Promise<void> {
  const failed = await tc(ns, 'qdisc', 'add', 'dev', dev, 'root', 'tbf', 'rate', `${rateMbit}mbit`, 'burst', '32kbit', 'latency', '400ms');
  if (failed) throw new Error(`tc tbf on ${dev} in ${ns}: ${failed}`);
}

/** Delays what `host` sends by the whole round trip with linkem, between its bridge port and the bridge. */
async function linkemDelay(mesh: NetnsMesh, host: NetnsHost, delayMs: number): Promise<void> {
  const linkem = path.join(mkdtempSync(path.join(os.tmpdir(), 'meshcc-linkem-')), 'linkem');
  await run('gcc', ['-O2', '-o', linkem, LINKEM_SOURCE]);
  const br = mesh.bridgeNs;
  const port = host.name;
  const [em, emPeer] = [`${port}em`, `${port}br`];
  await run('ip', ['-n', br, 'link', 'add', em, 'type', 'veth', 'peer', 'name', emPeer]);
  await run('ip', ['-n', br, 'link', 'set', emPeer, 'master', 'br0']);
  for (const dev of [em, emPeer]) await run('ip', ['-n', br, 'link', 'set', dev, 'up']);
  await run('ip', ['-n', br, 'link', 'set', port, 'nomaster']);
  // Runs until the mesh is destroyed (destroy() ends every process in its namespaces).
  const child = spawn('ip', ['netns', 'exec', br, linkem, port, em, String(delayMs), '0'], { stdio: ['ignore', 'pipe', 'pipe'] });
  await new Promise<void>((resolve, reject) => {
    let out = '';
    const timer = setTimeout(() => reject(new Error(`linkem did not start: ${out}`)), 5000);
    const onData = (d: Buffer) => {
      out += d.toString();
      if (out.includes('ready')) {
        clearTimeout(timer);
        resolve();
      }
    };
    child.stdout!.on('data', onData);
    child.stderr!.on('data', onData);
    child.once('exit', () => reject(new Error(`linkem exited: ${out}`)));
  });
}

/** Shapes everything `host` sends and receives; says how. */
export async function makeFar(mesh: NetnsMesh, host: NetnsHost, link: LinkShape): Promise<string> {
  const netem = await tc(host.ns, 'qdisc', 'add', 'dev', host.iface, 'root', 'handle', '1:', 'netem', 'delay', `${link.delayMs}ms`, 'limit', '10000');
  if (!netem) {
    const failed = await tc(host.ns, 'qdisc', 'add', 'dev', host.iface, 'parent', '1:1', 'handle', '10:', 'tbf', 'rate', `${link.rateMbit}mbit`, 'burst', '32kbit', 'latency', '400ms');
    if (failed) throw new Error(`tc tbf under netem in ${host.ns}: ${failed}`);
    await tc(mesh.bridgeNs, 'qdisc', 'add', 'dev', host.name, 'root', 'handle', '1:', 'netem', 'delay', `${link.delayMs}ms`, 'limit', '10000');
    const back = await tc(mesh.bridgeNs, 'qdisc', 'add', 'dev', host.name, 'parent', '1:1', 'handle', '10:', 'tbf', 'rate', `${link.rateMbit}mbit`, 'burst', '32kbit', 'latency', '400ms');
    if (back) throw new Error(`tc on the bridge port of ${host.name}: ${back}`);
    return `tc netem ${link.delayMs} ms + tbf ${link.rateMbit} Mbit/s, both directions`;
  }
  await rateLimit(host.ns, host.iface, link.rateMbit);
  await rateLimit(mesh.bridgeNs, host.name, link.rateMbit);
  await linkemDelay(mesh, host, 2 * link.delayMs);
  return `tbf ${link.rateMbit} Mbit/s both directions; no netem in this kernel (${netem}): test/helpers/linkem.c delays what ${host.name} sends by ${2 * link.delayMs} ms`;
}
