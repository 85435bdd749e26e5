// The mesh across real network namespaces: agents with a shared key find each other with no
// other configuration, a killed agent leaves every view and comes back with the same peer id,
// and an agent of another mesh, or a plain TCP client, gets nothing.
import type { ChildProcess } from 'node:child_process';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { query } from '../node/cli/query.js';
import { socketAnswers } from '../node/instance-lock.js';
import { setMeshKey } from '../node/mesh/keys.js';
import type { AgentStatus } from '../node/mesh/mesh-service.js';
import { MESHCC_BIN } from './helpers/agent.js';
import { createNetnsMesh, netnsAvailable, type NetnsMesh } from './helpers/netns.js';
import { tempDir } from './helpers/tmp.js';
import { waitFor } from './helpers/wait.js';

const avail = netnsAvailable();
if (!avail.ok) console.log(`mesh namespace tests skipped: ${avail.reason}`);

const SHARED_KEY = 'a1'.repeat(32);
const STRANGER_KEY = '5e'.repeat(32);

interface Agent {
  home: string;
  host: number;
  child?: ChildProcess;
}

async function statusOf(agent: Agent): Promise<AgentStatus[]> {
  const reply = await query(path.join(agent.home, 'agent.sock'), { t: 'status', v: 1 });
  return reply.agents as AgentStatus[];
}

describe.skipIf(!avail.ok)('mesh across network namespaces', () => {
  let mesh: NetnsMesh;
  const agents: Agent[] = [];

  const start = (agent: Agent) => {
    agent.child = mesh.spawn(agent.host, process.execPath, [MESHCC_BIN, 'agent'], {
      env: { ...process.env, MESHCC_HOME: agent.home, MESHCC_SPEED: '1', MESHCC_LOG_LEVEL: 'warn' },
      stdio: 'ignore',
    });
  };
  const peersSeenBy = async (agent: Agent) => (await statusOf(agent)).filter((r) => !r.self).map((r) => r.peerId).sort();
  const selfOf = async (agent: Agent) => (await statusOf(agent)).find((r) => r.self)!;

  beforeAll(async () => {
    mesh = await createNetnsMesh({ hosts: 4, prefix: 'mcm' });
    for (let i = 0; i < 4; i++) {
      const agent = { home: tempDir('meshcc-home-'), host: i };
      await setMeshKey(agent.home, i < 3 ? SHARED_KEY : STRANGER_KEY);
      agents.push(agent);
    }
  });
  afterAll(async () => {
    await mesh?.destroy();
  });

  it('three agents with a shared key list each other within 2 s of the last start; a stranger is never listed', async () => {
    const members = agents.slice(0, 3);
    start(agents[3]!);
    for (const a of members) start(a);
    const spawnedAt = Date.now();
    const ids = await Promise.all(
      agents.map((a) => waitFor('agent socket', async () => ((await socketAnswers(path.join(a.home, 'agent.sock'))) ? selfOf(a) : undefined), 15_000)),
    );
    // "Started": the last agent answers on its socket (its mesh node is listening by then).
    const lastStart = Date.now();
    const memberIds = ids.slice(0, 3).map((s) => s.peerId);
    await waitFor(
      'every member to list the other two',
      async () => {
        for (const [i, a] of members.entries()) {
          const seen = await peersSeenBy(a);
          const others = memberIds.filter((_, j) => j !== i).sort();
          if (JSON.stringify(seen) !== JSON.stringify(others)) return undefined;
        }
        return true;
      },
      10_000,
    );
    const discoveryMs = Date.now() - lastStart;
    console.log(`agents took ${lastStart - spawnedAt} ms to start; all three listed each other ${discoveryMs} ms after the last had started`);
    expect(discoveryMs).toBeLessThan(2000);
    await new Promise((r) => setTimeout(r, 1500));
    for (const a of members) expect(await peersSeenBy(a)).not.toContain(ids[3]!.peerId);
    expect(await peersSeenBy(agents[3]!)).toEqual([]);
    const row = (await statusOf(members[0]!)).find((r) => !r.self)!;
    for (const field of ['name', 'peerId', 'self', 'addresses', 'cores', 'slots', 'slotsUsed', 'load', 'speed', 'toolchains', 'rttMs', 'role']) {
      expect(row).toHaveProperty(field);
    }
    // Round-trip times are measured over the bridge by libp2p's ping.
    await waitFor('an rtt for every peer', async () => ((await statusOf(members[0]!)).filter((r) => !r.self).every((r) => typeof r.rttMs === 'number') ? true : undefined), 8000);
    // Sub-millisecond on a quiet machine; a loaded CI box has been seen at 141 ms.
    for (const r of (await statusOf(members[0]!)).filter((r) => !r.self)) expect(r.rttMs).toBeLessThan(1000);
  });

  it('a plain TCP client gets nothing but a closed connection', async () => {
    const target = (await selfOf(agents[0]!)).addresses[0]!;
    const [, , ip, , port] = target.split('/');
    const script = `const s=require('net').connect(${port},'${ip}');let n=0;s.on('connect',()=>s.write('GET / HTTP/1.0\\r\\n\\r\\nhello'));s.on('data',d=>n+=d.length);s.on('close',()=>{console.log(JSON.stringify({n}));process.exit(0)});s.on('error',()=>{});setTimeout(()=>{console.log(JSON.stringify({n,open:true}));process.exit(0)},8000);`;
    const r = await mesh.exec(3, process.execPath, ['-e', script], { timeoutMs: 15_000 });
    expect(JSON.parse(r.stdout.trim())).toEqual({ n: 0 });
  });

  it('an agent killed with SIGKILL leaves every view within 3 s and comes back with the same peer id', async () => {
    const victim = agents[0]!;
    const victimId = (await selfOf(victim)).peerId;
    const exited = new Promise((r) => victim.child!.once('exit', r));
    victim.child!.kill('SIGKILL');
    await exited;
    const killedAt = Date.now();
    await waitFor(
      'the others to drop the killed agent',
      async () => ((await Promise.all(agents.slice(1, 3).map(peersSeenBy))).every((seen) => !seen.includes(victimId)) ? true : undefined),
      3000,
    );
    console.log(`a killed agent left every view after ${Date.now() - killedAt} ms`);
    start(victim);
    const back = await waitFor('the restarted agent', async () => ((await socketAnswers(path.join(victim.home, 'agent.sock'))) ? selfOf(victim) : undefined), 15_000);
    expect(back.peerId).toBe(victimId);
    await waitFor('the others to list it again', async () => ((await Promise.all(agents.slice(1, 3).map(peersSeenBy))).every((seen) => seen.includes(victimId)) ? true : undefined), 5000);
  });
});
