// Friends over the internet, in network namespaces: an "internet" bridge with a public agent
// (h0) and three home routers (h1, h2, h3) that masquerade their homes (iptables MASQUERADE);
// home A (h10, behind h1) and home B (h11, behind h2) have nothing forwarded, home C (h12,
// behind h3) has the agent's port forwarded by its router.
//   - every home joins with a token from the public agent (`meshcc invite` / `meshcc join`);
//   - A reaches C directly (C's forwarded port was confirmed by a dial-back) and B only through
//     the public agent's relay (two masquerading NATs: Node's TCP cannot dial from its listening
//     port, so no hole punch gets through them), and `meshcc status` says so;
//   - a build in A runs on C and never through the relay by default; tokens that expired, were
//     altered or are for another mesh are refused in one line; a revoked member cannot come
//     back; A restarted with MESHCC_RELAYED_JOBS=1 rejoins by itself and builds on B.
import { execFile, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { promisify } from 'node:util';
import { generateKeyPair } from '@libp2p/crypto/keys';
import { peerIdFromPrivateKey } from '@libp2p/peer-id';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { query } from '../node/cli/query.js';
import { socketAnswers } from '../node/instance-lock.js';
import { createInvitation } from '../node/mesh/invite-token.js';
import type { AgentStatus } from '../node/mesh/mesh-service.js';
import type { StatsSnapshot } from '../node/stats.js';
import { MASQUERADE, MESHCC_BIN, plainEnv } from './helpers/agent.js';
import { readmeBlock } from './helpers/readme.js';
import { addHomeBehindNat } from './helpers/nat.js';
import { createNetnsMesh, netnsAvailable, type NetnsHost, type NetnsMesh } from './helpers/netns.js';
import { collect, differences, plainZlib, removeOutputs } from './helpers/projects.js';
import { tempDir } from './helpers/tmp.js';
import { sleep, waitFor } from './helpers/wait.js';

const avail = netnsAvailable();
const iptables = avail.ok ? await promisify(execFile)('iptables', ['--version']).then(() => '', () => 'iptables is missing (apt-get install iptables)') : '';
const why = !avail.ok ? avail.reason : iptables;
if (why) console.log(`internet (NAT) tests skipped: ${why}`);

const run = promisify(execFile);
const PORT = 7624;

/** The meshcc commands of a README block marked `<!-- friend: NAME -->`, as argument lists
 *  (the README's placeholders are replaced by the test: the token, a peer id). */
function readmeCommands(name: string): string[][] {
  return readmeBlock('friend', name)
    .split('\n')
    .map((line) => line.replace(/#.*$/, '').trim())
    .filter((line) => line.startsWith('node bin/meshcc.js '))
    .map((line) => line.slice('node bin/meshcc.js '.length).split(/\s+/));
}
const fill = (args: string[], values: Record<string, string>) => args.map((a) => values[a] ?? a);

interface Site {
  name: string;
  host: NetnsHost;
  home: string;
  env: Record<string, string>;
  child?: ChildProcess;
  log: string;
  peerId?: string;
}

describe.skipIf(why !== '')('friends over the internet: invitations, NAT, relays', () => {
  let mesh: NetnsMesh;
  const sites: Record<'pub' | 'a' | 'b' | 'c', Site> = {} as never;
  let zlib: string;
  let plainObjects: Map<string, Buffer>;
  const make = ['make', '-j8', 'CC=gcc', 'CFLAGS=-O2 -g', 'libz.a'];

  const socketOf = (s: Site) => path.join(s.home, 'agent.sock');
  const statusOf = async (s: Site) => (await query(socketOf(s), { t: 'status', v: 1 })).agents as AgentStatus[];
  const statsOf = async (s: Site) => (await query(socketOf(s), { t: 'stats', v: 1 })).stats as StatsSnapshot;
  const cli = (s: Site, args: string[], env: Record<string, string> = {}) =>
    mesh.exec(s.host, process.execPath, [MESHCC_BIN, ...args], { env: { ...plainEnv, MESHCC_HOME: s.home, ...env }, timeoutMs: 60_000 });

  async function startAgent(site: Site, extraEnv: Record<string, string> = {}): Promise<void> {
    const child = mesh.spawn(site.host, process.execPath, [MESHCC_BIN, 'agent'], {
      env: { ...plainEnv, MESHCC_HOME: site.home, MESHCC_MDNS: '0', MESHCC_HTTP: 'off', MESHCC_LISTEN: `/ip4/0.0.0.0/tcp/${PORT}`, MESHCC_SPEED: '1', MESHCC_LOG_LEVEL: 'info', MESHCC_NAME: site.name, ...site.env, ...extraEnv },
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    child.stderr!.setEncoding('utf8').on('data', (d: string) => (site.log = (site.log + d).slice(-200_000)));
    site.child = child;
    await waitFor(`${site.name}'s agent`, async () => ((await socketAnswers(socketOf(site))) ? true : undefined), 20_000);
    site.peerId = await waitFor(`${site.name}'s mesh`, async () => (await statusOf(site)).find((r) => r.self)?.peerId, 20_000);
  }

  async function stopAgent(site: Site): Promise<void> {
    const child = site.child;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise((r) => child.once('exit', r));
    child.kill('SIGTERM');
    await exited;
  }

  const row = async (from: Site, to: Site) => (await statusOf(from)).find((r) => r.peerId === to.peerId);
  const build = async (from: Site) => {
    removeOutputs(zlib);
    return mesh.exec(from.host, make[0]!, make.slice(1), { cwd: zlib, env: { ...plainEnv, MESHCC_HOME: from.home, PATH: `${MASQUERADE}:${plainEnv.PATH ?? '/usr/bin:/bin'}` }, timeoutMs: 180_000 });
  };

  beforeAll(async () => {
    mesh = await createNetnsMesh({ hosts: 4, prefix: 'mci' });
    const [h0, h1, h2, h3] = mesh.hosts as [NetnsHost, NetnsHost, NetnsHost, NetnsHost];
    const homeA = await addHomeBehindNat(mesh, h1, 'h10', { lan: 10 });
    const homeB = await addHomeBehindNat(mesh, h2, 'h11', { lan: 11 });
    const homeC = await addHomeBehindNat(mesh, h3, 'h12', { lan: 12, forwardPort: PORT });
    const site = (name: string, host: NetnsHost, env: Record<string, string>): Site => ({ name, host, home: tempDir(`meshcc-${name}-`), env, log: '' });
    sites.pub = site('pub', h0, { MESHCC_SLOTS: '0' });
    sites.a = site('homea', homeA, { MESHCC_SLOTS: '0', MESHCC_LOCAL_SLOTS: '0' });
    sites.b = site('homeb', homeB, { MESHCC_SLOTS: '2' });
    sites.c = site('homec', homeC, { MESHCC_SLOTS: '2' });
    ({ dir: zlib, objects: plainObjects } = await plainZlib(make));
    await startAgent(sites.pub);
    await Promise.all([sites.a, sites.b, sites.c].map((s) => startAgent(s)));
  }, 120_000);

  afterEach((ctx) => {
    if (ctx.task.result?.state === 'fail') for (const s of Object.values(sites)) console.log(`--- ${s.name} log tail:\n${s.log.slice(-6000)}`);
  });

  afterAll(async () => {
    await mesh?.destroy();
  }, 60_000);

  it('homes join with a token; A reaches C directly and B through the relay; a build in A runs on C, not through the relay', async () => {
    // The README's commands, as a person copies them: invite on a member, join on each home.
    const [invite] = readmeCommands('invite') as [string[]];
    const [join, list] = readmeCommands('join') as [string[], string[], string[]];
    const invited = await cli(sites.pub, invite);
    expect(invited.code, invited.stderr).toBe(0);
    const token = invited.stdout.trim();
    expect(token).toMatch(/^meshcc1-[A-Za-z0-9_-]+$/);
    for (const s of [sites.b, sites.c, sites.a]) {
      const joined = await cli(s, fill(join, { 'meshcc1-…': token }));
      expect(joined.code, joined.stderr).toBe(0);
      expect(joined.stdout).toMatch(/^joined mesh [0-9a-f]{16} through pub; \d+ member\(s\) known\n$/);
    }
    // Reachability as the members found it: the public agent and C (forwarded port) yes, A and B no.
    await waitFor('C to be reachable and B not', async () => {
      const rows = await statusOf(sites.pub);
      const reach = (s: Site) => rows.find((r) => r.peerId === s.peerId)?.reachable;
      return reach(sites.c) === true && reach(sites.b) === false && reach(sites.a) === false ? true : undefined;
    }, 60_000);
    // A must have heard C's new card (its forwarded address, reachable) before it can dial it:
    // until then it knows only C's private address, which no dial from home A reaches.
    await waitFor('A to reach C directly and B through the relay', async () => {
      const [toB, toC] = [await row(sites.a, sites.b), await row(sites.a, sites.c)];
      return toB?.link === 'relayed' && toC?.link === 'direct' && toC.reachable === true && toB.slots === 2 && toC.slots === 2 ? true : undefined;
    }, 90_000);
    // What a person sees: `meshcc status` in home A.
    const status = await cli(sites.a, ['status']);
    expect(status.code, status.stderr).toBe(0);
    console.log(status.stdout);
    expect(status.stdout).toMatch(/^\s+homeb\s.*\srelayed\s/m);
    expect(status.stdout).toMatch(/^\s+homec\s.*\sdirect\s/m);
    expect(status.stdout).toMatch(/^\s+pub\s.*\sdirect\s/m);
    const members = await cli(sites.a, list);
    expect(members.code, members.stderr).toBe(0);
    for (const name of ['pub', 'homea', 'homeb', 'homec']) expect(members.stdout).toContain(name);

    const built = await build(sites.a);
    expect(built.code, built.stderr).toBe(0);
    expect(differences(plainObjects, collect(zlib, /\.o$/))).toEqual([]);
    const stats = await statsOf(sites.a);
    expect(stats.counts.remote).toBe(15);
    expect(stats.perPeer[sites.c.peerId!]?.jobs).toBe(15);
    expect(stats.perPeer[sites.b.peerId!]).toBeUndefined();

    // A CI runner in home A with nothing but the token: `meshcc run --join` builds on C too.
    removeOutputs(zlib);
    const tmp = tempDir('meshcc-run-join-');
    const ci = await mesh.exec(sites.a.host, process.execPath, [MESHCC_BIN, 'run', '--join', token, '--wait', '30', '--', ...make], {
      cwd: zlib,
      env: { ...plainEnv, HOME: tmp, TMPDIR: tmp, MESHCC_MDNS: '0', MESHCC_LOCAL_SLOTS: '0', MESHCC_JOBS_DIR: path.join(tmp, 'jobs') },
      timeoutMs: 180_000,
    });
    expect(ci.code, ci.stderr).toBe(0);
    expect(differences(plainObjects, collect(zlib, /\.o$/))).toEqual([]);
    expect(ci.stderr).toMatch(/^meshcc: 15 compiles: 15 remote, 0 local, 0 fallback; 1 peer used; /m);
    const stale = await mesh.exec(sites.a.host, process.execPath, [MESHCC_BIN, 'run', '--join', `${token.slice(0, -4)}AAAA`, '--', 'true'], { env: { ...plainEnv, HOME: tmp, TMPDIR: tmp, MESHCC_MDNS: '0' } });
    expect(stale.code).toBe(0);
    expect(stale.stderr).toMatch(/^meshcc: the invitation was altered .*: compiling locally$/m);
  }, 300_000);

  it('refuses an expired token, an altered one and one for another mesh, each in one line', async () => {
    const short = await cli(sites.pub, ['invite', '--valid', '1s']);
    expect(short.code, short.stderr).toBe(0);
    await sleep(1500);
    const expired = await cli(sites.a, ['join', short.stdout.trim()]);
    expect(expired.code).not.toBe(0);
    expect(expired.stderr.trim()).toMatch(/^meshcc: the invitation expired at \S+; ask pub for a new one \(meshcc invite\)$/);

    const good = (await cli(sites.pub, ['invite'])).stdout.trim();
    const at = Math.floor(good.length / 2);
    const altered = good.slice(0, at) + (good[at] === 'A' ? 'B' : 'A') + good.slice(at + 1);
    const tampered = await cli(sites.a, ['join', altered]);
    expect(tampered.code).not.toBe(0);
    expect(tampered.stderr.trim()).toMatch(/^meshcc: the invitation was altered/);
    expect(tampered.stderr.trim().split('\n')).toHaveLength(1);

    const identity = await generateKeyPair('Ed25519');
    const otherMesh = await createInvitation({
      meshKey: new Uint8Array(32).fill(7),
      identity,
      inviter: peerIdFromPrivateKey(identity).toString(),
      name: 'stranger',
      addresses: ['/ip4/127.0.0.1/tcp/1'],
      expiresAt: Date.now() + 3_600_000,
    });
    const foreign = await cli(sites.a, ['join', otherMesh]);
    expect(foreign.code).not.toBe(0);
    expect(foreign.stderr.trim()).toMatch(/^meshcc: the invitation is for mesh [0-9a-f]{16}, but this agent belongs to mesh [0-9a-f]{16} with \d+ other member\(s\); add --leave/);
    // Nothing was lost: A is still in its mesh.
    expect((await row(sites.a, sites.pub))?.link).toBe('direct');
  }, 60_000);

  it('a revoked member cannot come back; A restarted with relayed jobs allowed rejoins by itself and builds on B', async () => {
    const revoke = readmeCommands('join')[2]!;
    const revoked = await cli(sites.pub, fill(revoke, { '12D3Koo…': sites.c.peerId! }));
    expect(revoked.code, revoked.stderr).toBe(0);
    await waitFor('every member to drop C', async () => {
      for (const s of [sites.pub, sites.a, sites.b]) if ((await statusOf(s)).some((r) => r.peerId === sites.c.peerId)) return undefined;
      return true;
    }, 30_000);
    // C keeps the mesh key and its member list, and still tries: every member refuses it.
    await stopAgent(sites.c);
    await startAgent(sites.c);
    await sleep(12_000);
    expect((await statusOf(sites.c)).filter((r) => !r.self)).toEqual([]);
    const listed = await cli(sites.a, ['members', '--json']);
    expect(JSON.parse(listed.stdout).revoked.map((r: { peerId: string }) => r.peerId)).toEqual([sites.c.peerId]);

    await stopAgent(sites.a);
    await startAgent(sites.a, { MESHCC_RELAYED_JOBS: '1' });
    await waitFor('A to be back with pub and (relayed) B', async () => {
      const [toB, toPub] = [await row(sites.a, sites.b), await row(sites.a, sites.pub)];
      return toB?.link === 'relayed' && toB.slots === 2 && toPub?.link === 'direct' ? true : undefined;
    }, 90_000);
    const built = await build(sites.a);
    expect(built.code, built.stderr).toBe(0);
    expect(differences(plainObjects, collect(zlib, /\.o$/))).toEqual([]);
    const stats = await statsOf(sites.a);
    expect(stats.perPeer[sites.b.peerId!]?.jobs).toBe(15);
  }, 300_000);
});
