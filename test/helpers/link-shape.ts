// Bad links for hosts of a netns mesh. What a host sends is delayed (and some of it dropped)
// by `tc netem` on its eth0 where the kernel has netem, else by test/helpers/linkem.c between
// the host's bridge port and the bridge (the same effect); a far link adds a `tbf` rate limit
// on both directions of the host's veth, like a peer behind a home uplink.
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

export interface Impairment {
  /** How it was done (netem, or linkem and why). */
  how: string;
  /** Whether netem does it on the host's eth0 (a rate limit then goes under it). */
  netem: boolean;
  /** Puts the link back as it was. */
  undo(): Promise<void>;
}

async function tc(ns: string, ...args: string[]): Promise<string | undefined> {
  try {
    await run('ip', ['netns', 'exec', ns, 'tc', ...args]);
    return undefined;
  } catch (err) {
    return ((err as { stderr?: string }).stderr ?? (err as Error).message).trim();
  }
}

/** Resolves once linkem printed "ready"; rejects if it exits first or stays silent 5 s. */
function linkemReady(child: ReturnType<typeof spawn>): Promise<void> {
  return new Promise<void>((resolve, reject) => {
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
    child.once('exit', () => {
      clearTimeout(timer);
      reject(new Error(`linkem exited: ${out}`));
    });
  });
}

/** Delays what `host` sends by `delayMs` and drops `lossPercent` of it. */
export async function impairFromHost(mesh: NetnsMesh, host: NetnsHost, delayMs: number, lossPercent = 0): Promise<Impairment> {
  const netem = await tc(host.ns, 'qdisc', 'add', 'dev', host.iface, 'root', 'handle', '1:', 'netem', 'delay', `${delayMs}ms`, 'loss', `${lossPercent}%`, 'limit', '10000');
  if (!netem) {
    return {
      how: `tc netem on ${host.name}'s ${host.iface}`,
      netem: true,
      undo: async () => {
        const failed = await tc(host.ns, 'qdisc', 'del', 'dev', host.iface, 'root');
        if (failed) throw new Error(`tc qdisc del in ${host.ns}: ${failed}`);
      },
    };
  }
  const linkem = path.join(mkdtempSync(path.join(os.tmpdir(), 'meshcc-linkem-')), 'linkem');
  await run('gcc', ['-O2', '-o', linkem, LINKEM_SOURCE]);
  const br = mesh.bridgeNs;
  const port = host.name; // the bridge side of the host's veth
  const [em, emPeer] = [`${port}em`, `${port}br`];
  await run('ip', ['-n', br, 'link', 'add', em, 'type', 'veth', 'peer', 'name', emPeer]);
  await run('ip', ['-n', br, 'link', 'set', emPeer, 'master', 'br0']);
  for (const dev of [em, emPeer]) await run('ip', ['-n', br, 'link', 'set', dev, 'up']);
  await run('ip', ['-n', br, 'link', 'set', port, 'nomaster']);
  const child = spawn('ip', ['netns', 'exec', br, linkem, port, em, String(delayMs), String(lossPercent)], { stdio: ['ignore', 'pipe', 'pipe'] });
  const exited = new Promise((r) => child.once('exit', r));
  const undo = async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
    await exited;
    await run('ip', ['-n', br, 'link', 'del', em]);
    await run('ip', ['-n', br, 'link', 'set', port, 'master', 'br0']);
  };
  try {
    await linkemReady(child);
  } catch (err) {
    await undo();
    throw err;
  }
  return { how: `no netem in this kernel (${netem}): test/helpers/linkem.c between ${host.name} and the bridge`, netem: false, undo };
}

/** Makes `host` far: the whole round-trip delay on what it sends, and a rate limit both ways; says how. */
export async function makeFar(mesh: NetnsMesh, host: NetnsHost, link: LinkShape): Promise<string> {
  const delay = await impairFromHost(mesh, host, 2 * link.delayMs);
  const tbf = ['tbf', 'rate', `${link.rateMbit}mbit`, 'burst', '32kbit', 'latency', '400ms'];
  // Under netem when netem holds the host's root qdisc; alone otherwise.
  const toward = await tc(host.ns, 'qdisc', 'add', 'dev', host.iface, ...(delay.netem ? ['parent', '1:1', 'handle', '10:'] : ['root']), ...tbf);
  const back = toward ?? (await tc(mesh.bridgeNs, 'qdisc', 'add', 'dev', host.name, 'root', ...tbf));
  if (back) throw new Error(`tc tbf for ${host.name}: ${back}`);
  return `tbf ${link.rateMbit} Mbit/s both directions; ${2 * link.delayMs} ms on what ${host.name} sends: ${delay.how}`;
}
