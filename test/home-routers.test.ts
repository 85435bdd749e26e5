// Friends at home behind routers that map ports when asked, in network namespaces: an
// "internet" bridge on 11.77.0.0/24 (miniupnpd maps nothing for a WAN in a private range) with
// a public namespace (h0) and two home routers (h1, h2) that masquerade their homes and run
// miniupnpd (Debian's package) with UPnP IGD and NAT-PMP on; home A (h10 behind h1), home B
// (h11 behind h2).
//   - the public agent's invitation carries its public interface address from the start;
//   - A and B map their ports, advertise the mappings, and link directly through them
//     (`meshcc status` says "mapped"); a build in A runs in B; when both stop, neither router
//     holds a mapping;
//   - with miniupnpd stopped on B's router, B is reachable only through the relay, and the
//     link goes through A's mapping (B dials it); with miniupnpd stopped on both the link is
//     relayed; builds succeed each time;
//   - with no agent in the public namespace but `meshcc relay`, two fresh homes invited by the
//     relay find each other through it and link directly through their mappings (B's router
//     speaks only UPnP IGD there, so B maps by UPnP and removes that mapping when it stops).
import { execFile, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { query } from '../node/cli/query.js';
import { socketAnswers } from '../node/instance-lock.js';
import { readInvitation } from '../node/mesh/invite-token.js';
import type { AgentStatus } from '../node/mesh/mesh-service.js';
import type { StatsSnapshot } from '../node/stats.js';
import { MASQUERADE, MESHCC_BIN, plainEnv, REPO } from './helpers/agent.js';
import { addHomeBehindNat } from './helpers/nat.js';
import { createNetnsMesh, netnsAvailable, type NetnsHost, type NetnsMesh } from './helpers/netns.js';
import { collect, differences, plainZlib, removeOutputs } from './helpers/projects.js';
import { tempDir } from './helpers/tmp.js';
import { publicWan, upnpRouter, type UpnpRouter } from './helpers/upnp-router.js';
import { readmeBlock } from './helpers/readme.js';
import { waitFor } from './helpers/wait.js';

const run = promisify(execFile);
const avail = netnsAvailable();
const missing = async (cmd: string, args: string[], pkg: string) => run(cmd, args).then(() => '', () => `${cmd} is missing (apt-get install ${pkg})`);
const why = !avail.ok ? avail.reason : (await missing('iptables', ['--version'], 'iptables')) || (await missing('nft', ['--version'], 'nftables')) || (await missing('miniupnpd', ['--version'], 'miniupnpd'));
if (why) console.log(`home router (UPnP/NAT-PMP) tests skipped: ${why}`);

const PORT = 7624;

/** The meshcc commands of the README's relay block, as argument lists: a person runs them as
 *  the relay's user with its home, the test with the relay's home. */
function relayCommands(): string[][] {
  const prefix = 'sudo -u meshcc env MESHCC_HOME=/var/lib/meshcc-relay meshcc ';
  return readmeBlock('friend', 'relay')
    .split('\n')
    .map((line) => line.replace(/#.*$/, '').trim())
    .filter((line) => line.startsWith(prefix))
    .map((line) => line.slice(prefix.length).split(/\s+/));
}

interface Site {
  name: string;
  host: NetnsHost;
  home: string;
  env: Record<string, string>;
  command: 'agent' | 'relay';
  child?: ChildProcess;
  log: string;
  peerId?: string;
}

describe.skipIf(why !== '')('friends behind home routers: port mappings, relayed links, a relay you can run', () => {
  let mesh: NetnsMesh;
  let routerA: UpnpRouter;
  let routerB: UpnpRouter;
  const sites: Record<'pub' | 'a' | 'b', Site> = {} as never;
  let zlib: string;
  let plainObjects: Map<string, Buffer>;
  const make = ['make', '-j8', 'CC=gcc', 'CFLAGS=-O2 -g', 'libz.a'];

  const socketOf = (s: Site) => path.join(s.home, 'agent.sock');
  const statusOf = async (s: Site) => (await query(socketOf(s), { t: 'status', v: 1 })).agents as AgentStatus[];
  const statsOf = async (s: Site) => (await query(socketOf(s), { t: 'stats', v: 1 })).stats as StatsSnapshot;
  const cli = (s: Site, args: string[]) => mesh.exec(s.host, process.execPath, [MESHCC_BIN, ...args], { env: { ...plainEnv, MESHCC_HOME: s.home }, timeoutMs: 60_000 });
  const row = async (from: Site, to: Site) => (await statusOf(from)).find((r) => r.peerId === to.peerId);
  const selfRow = async (s: Site) => (await statusOf(s)).find((r) => r.self)!;

  async function start(site: Site, extraEnv: Record<string, string> = {}): Promise<void> {
    const child = mesh.spawn(site.host, process.execPath, [MESHCC_BIN, site.command], {
      env: { ...plainEnv, MESHCC_HOME: site.home, MESHCC_MDNS: '0', MESHCC_HTTP: 'off', MESHCC_LISTEN: `/ip4/0.0.0.0/tcp/${PORT}`, MESHCC_SPEED: '1', MESHCC_LOG_LEVEL: 'info', MESHCC_NAME: site.name, ...site.env, ...extraEnv },
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    child.stderr!.setEncoding('utf8').on('data', (d: string) => (site.log = (site.log + d).slice(-200_000)));
    site.child = child;
    await waitFor(`${site.name}'s agent`, async () => ((await socketAnswers(socketOf(site))) ? true : undefined), 20_000);
    site.peerId = await waitFor(`${site.name}'s mesh`, async () => (await statusOf(site)).find((r) => r.self)?.peerId, 20_000);
  }

  async function stop(site: Site): Promise<void> {
    const child = site.child;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise((r) => child.once('exit', r));
    child.kill('SIGTERM');
    await exited;
  }

  async function join(site: Site, token: string): Promise<void> {
    const joined = await cli(site, ['join', token]);
    expect(joined.code, joined.stderr).toBe(0);
  }

  /** A build in `from`; every job on `to`, objects identical to a plain build. */
  async function buildOn(from: Site, to: Site): Promise<void> {
    removeOutputs(zlib);
    const built = await mesh.exec(from.host, make[0]!, make.slice(1), { cwd: zlib, env: { ...plainEnv, MESHCC_HOME: from.home, PATH: `${MASQUERADE}:${plainEnv.PATH ?? '/usr/bin:/bin'}` }, timeoutMs: 180_000 });
    expect(built.code, built.stderr).toBe(0);
    expect(differences(plainObjects, collect(zlib, /\.o$/))).toEqual([]);
    const stats = await statsOf(from);
    // Where the others went, and why, if not all went to `to` (a rare failure under load: say why).
    const where = JSON.stringify({ counts: stats.counts, fallback: stats.fallbackByReason, byReason: stats.routes, perPeer: stats.perPeer, backedOff: stats.peersBackedOff, excluded: stats.peersExcluded });
    expect(stats.perPeer[to.peerId!]?.jobs, where).toBe(15);
  }

  beforeAll(async () => {
    mesh = await createNetnsMesh({ hosts: 3, prefix: 'mhr' });
    await publicWan(mesh);
    const [h0, h1, h2] = mesh.hosts as [NetnsHost, NetnsHost, NetnsHost];
    const homeA = await addHomeBehindNat(mesh, h1, 'h10', { lan: 10 });
    const homeB = await addHomeBehindNat(mesh, h2, 'h11', { lan: 11 });
    [routerA, routerB] = await Promise.all([upnpRouter(mesh, h1, 10, tempDir('meshcc-upnp-a-')), upnpRouter(mesh, h2, 11, tempDir('meshcc-upnp-b-'))]);
    await Promise.all([routerA.start(), routerB.start()]);
    const site = (name: string, host: NetnsHost, env: Record<string, string>): Site => ({ name, host, home: tempDir(`meshcc-${name}-`), env, command: 'agent', log: '' });
    sites.pub = site('pub', h0, { MESHCC_SLOTS: '0' });
    sites.a = site('homea', homeA, { MESHCC_SLOTS: '0', MESHCC_LOCAL_SLOTS: '0' });
    sites.b = site('homeb', homeB, { MESHCC_SLOTS: '2' });
    ({ dir: zlib, objects: plainObjects } = await plainZlib(make));
  }, 120_000);

  afterEach((ctx) => {
    if (ctx.task.result?.state !== 'fail') return;
    for (const s of Object.values(sites)) console.log(`--- ${s.name} log tail:\n${s.log.slice(-6000)}`);
    for (const r of [routerA, routerB]) console.log(`--- miniupnpd on ${r.router.name}:\n${r.log().slice(-3000)}`);
  });

  afterAll(async () => {
    await mesh?.destroy();
  }, 60_000);

  it('the public agent invites with its public address; homes map their ports and link directly through the mappings; a build in A runs in B; stopped agents leave no mapping', async () => {
    await start(sites.pub);
    const invited = await cli(sites.pub, ['invite']);
    expect(invited.code, invited.stderr).toBe(0);
    const token = invited.stdout.trim();
    expect((await readInvitation(token)).addresses).toContain(`/ip4/11.77.0.1/tcp/${PORT}/p2p/${sites.pub.peerId}`);
    await Promise.all([start(sites.a), start(sites.b)]);
    await join(sites.a, token);
    await join(sites.b, token);

    await waitFor('A to link to B directly through a mapping', async () => {
      const toB = await row(sites.a, sites.b);
      return toB?.link === 'direct' && toB.mapped && toB.slots === 2 ? true : undefined;
    }, 60_000);
    // Each home's router maps its agent's port (NAT-PMP answers first); the agent says so.
    expect(await routerA.mappings()).toContain(`TCP:${PORT}:192.168.10.2:${PORT}`);
    expect(await routerB.mappings()).toContain(`TCP:${PORT}:192.168.11.2:${PORT}`);
    expect((await selfRow(sites.b)).addresses[0]).toBe(`/ip4/11.77.0.3/tcp/${PORT}/p2p/${sites.b.peerId}`);
    const status = await cli(sites.a, ['status']);
    expect(status.code, status.stderr).toBe(0);
    console.log(status.stdout);
    expect(status.stdout).toMatch(/^\s+homeb\s.*\smapped\s/m);
    // Direct either way: A dialled pub, or pub dialled A at its mapping.
    expect(status.stdout).toMatch(/^\s+pub\s.*\s(direct|mapped)\s/m);
    expect(status.stdout).toMatch(/^this agent: reachable: mapped by the router \(NAT-PMP\) at 11\.77\.0\.2:7624$/m);
    expect((await selfRow(sites.pub)).reach).toMatch(/^reachable: public address 11\.77\.0\.1$/);

    await buildOn(sites.a, sites.b);

    await Promise.all([stop(sites.a), stop(sites.b)]);
    expect(await routerA.mappings()).toEqual([]);
    expect(await routerB.mappings()).toEqual([]);
  }, 240_000);

  it("with miniupnpd stopped on B's router, B is reachable only through the relay and links to A through A's mapping; with it stopped on both, the link is relayed; builds succeed", async () => {
    await Promise.all([stop(sites.a), stop(sites.b)]);
    await routerB.stop();
    await Promise.all([start(sites.a), start(sites.b)]);
    await waitFor("B to take a relay and A to link to B through A's mapping", async () => {
      const [toB, b] = [await row(sites.a, sites.b), await selfRow(sites.b)];
      return toB?.link === 'direct' && toB.mapped && toB.slots === 2 && /^reachable only through a relay: through the relay …/.test(b.reach ?? '') ? true : undefined;
    }, 90_000);
    await buildOn(sites.a, sites.b);

    await stop(sites.a);
    await routerA.stop();
    await start(sites.a, { MESHCC_RELAYED_JOBS: '1' });
    await waitFor('A to reach B only through the relay', async () => {
      const toB = await row(sites.a, sites.b);
      return toB?.link === 'relayed' && toB.slots === 2 ? true : undefined;
    }, 90_000);
    const status = await cli(sites.a, ['status']);
    expect(status.stdout).toMatch(/^\s+homeb\s.*\srelayed\s/m);
    await buildOn(sites.a, sites.b);
    await Promise.all([stop(sites.a), stop(sites.b), stop(sites.pub)]);
  }, 240_000);

  it("with only `meshcc relay` in the public namespace, two fresh homes invited by it find each other through it and link directly through their mappings (B's router speaks only UPnP IGD)", async () => {
    await Promise.all(Object.values(sites).map(stop));
    await Promise.all([routerA.start(), routerB.start({ natPmp: false })]);
    const relay: Site = { ...sites.pub, name: 'relay', home: tempDir('meshcc-relay-'), command: 'relay', env: {}, log: '' };
    sites.pub = relay;
    sites.a = { ...sites.a, home: tempDir('meshcc-homea2-'), log: '' };
    sites.b = { ...sites.b, home: tempDir('meshcc-homeb2-'), log: '' };
    await start(relay, { MESHCC_LISTEN: '' });
    const [invite, , status] = relayCommands() as [string[], string[], string[]];
    const invited = await cli(relay, invite);
    expect(invited.code, invited.stderr).toBe(0);
    await Promise.all([start(sites.a), start(sites.b)]);
    await join(sites.a, invited.stdout.trim());
    await join(sites.b, invited.stdout.trim());
    await waitFor('A and B to link directly through a mapping', async () => {
      const [toB, toA] = [await row(sites.a, sites.b), await row(sites.b, sites.a)];
      return toB?.link === 'direct' && toB.mapped && toA?.link === 'direct' && toB.slots === 2 ? true : undefined;
    }, 60_000);
    const relayRow = await row(sites.a, relay);
    expect(relayRow?.slots).toBe(0);
    // The relay, though it started first, is never the scheduler: a home is.
    expect(relayRow?.role).toBe('member');
    await waitFor('both homes to follow one scheduler, a home', async () => {
      const schedulers = await Promise.all([sites.a, sites.b].map(async (s) => (await statusOf(s)).find((r) => r.role === 'scheduler')?.peerId));
      return schedulers[0] && schedulers[0] === schedulers[1] && schedulers[0] !== relay.peerId ? true : undefined;
    }, 20_000);
    const listed = await cli(relay, status);
    expect(listed.code, listed.stderr).toBe(0);
    expect(listed.stdout).toMatch(/^\s+homea\s/m);
    expect(listed.stdout).toMatch(/^\s+homeb\s/m);
    expect(listed.stdout).toMatch(/^this agent: reachable: public address 11\.77\.0\.1$/m);
    expect((await selfRow(sites.b)).reach).toBe('reachable: mapped by the router (UPnP IGD) at 11.77.0.3:7624');
    await buildOn(sites.a, sites.b);
    expect((await statsOf(relay)).served.results).toBe(0);
    await Promise.all([stop(sites.a), stop(sites.b)]);
    expect(await routerA.mappings()).toEqual([]);
    expect(await routerB.mappings()).toEqual([]);
  }, 180_000);

  it('renews a NAT-PMP mapping at half its lifetime and removes it on stop', async () => {
    // The agent's port mapper in a process of its own in home A, with a 2 s lifetime.
    const mapper = pathToFileURL(path.join(REPO, 'dist', 'node', 'nat', 'port-mapper.js')).href;
    const script = `
      const { PortMapper } = await import(${JSON.stringify(mapper)});
      const log = { info() {}, warn() {} };
      const m = new PortMapper({ port: 7700, lifetime: 2, methods: ['nat-pmp'], log, onChange() {} });
      m.start();
      while (!m.mapping) await new Promise((r) => setTimeout(r, 10));
      console.log('mapped');
      await new Promise((r) => setTimeout(r, 4500));
      console.log(m.mapping ? 'still mapped' : 'lost');
      await m.stop();`;
    const renewals = () => (routerA.log().match(/NAT-PMP port mapping request : 7700->192\.168\.10\.2:7700 tcp lifetime=2s/g) ?? []).length;
    const before = renewals();
    const child = mesh.exec(sites.a.host, process.execPath, ['--input-type=module', '-e', script], { timeoutMs: 30_000 });
    await waitFor('the mapping', async () => ((await routerA.mappings()).includes('TCP:7700:192.168.10.2:7700') ? true : undefined), 10_000);
    const done = await child;
    expect(done.stdout, done.stderr).toBe('mapped\nstill mapped\n');
    // One request to map, then one per second for 4.5 s.
    expect(renewals() - before).toBeGreaterThanOrEqual(4);
    expect(await routerA.mappings()).toEqual([]);
  }, 60_000);
});
