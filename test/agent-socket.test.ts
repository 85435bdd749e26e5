// The agent's client socket under bad input: every bad connection gets one clear error
// and the agent keeps serving everyone else.
import { spawn } from 'node:child_process';
import { existsSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { Agent } from '../node/agent.js';
import { loadConfig } from '../node/config.js';
import { exchange, frame, LOOPBACK_AGENT_ENV, startAgentInProcess, startAgentProcess } from './helpers/agent.js';
import { tempDir } from './helpers/tmp.js';

const stops: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const stop of stops.splice(0)) await stop();
});

async function agent() {
  const a = await startAgentInProcess();
  stops.push(a.stop);
  return a;
}

const ping = () => frame({ t: 'ping', v: 1 });

describe('agent client socket', () => {
  it('is a unix socket only its owner can use (mode 0600)', async () => {
    const { socketPath } = await agent();
    expect(statSync(socketPath).mode & 0o777).toBe(0o600);
  });

  it('answers garbage bytes with a one-line error and keeps serving', async () => {
    const { socketPath } = await agent();
    const garbage = Buffer.concat([Buffer.from([0, 0, 0, 2]), Buffer.from([0x92, 0x01])]);
    const [reply] = await exchange(socketPath, garbage);
    expect(reply).toMatchObject({ t: 'error', code: 'bad-message' });
    expect((reply as { message: string }).message).not.toContain('\n');
    expect(await exchange(socketPath, ping())).toMatchObject([{ t: 'pong' }]);
  });

  it('answers a compile request without cwd by naming the field', async () => {
    const { socketPath } = await agent();
    const [reply] = await exchange(
      socketPath,
      frame({ t: 'compile', v: 1, argv: ['gcc', '-c', 'a.c'], compiler: '/usr/bin/gcc', env: {} }),
    );
    expect(reply).toMatchObject({ t: 'error', code: 'bad-message', message: 'invalid cwd: Invalid input: expected string, received undefined' });
    expect(await exchange(socketPath, ping())).toMatchObject([{ t: 'pong' }]);
  });

  it('refuses a 100 MiB frame from its header, without reading it, and keeps serving', async () => {
    const { socketPath } = await agent();
    const header = Buffer.alloc(4);
    header.writeUInt32BE(100 * 1024 * 1024);
    const [reply] = await exchange(socketPath, Buffer.concat([header, Buffer.alloc(64 * 1024)]));
    expect(reply).toEqual({ t: 'error', code: 'frame-too-large', message: 'frame of 100 MiB exceeds the 8 MiB limit' });
    expect(await exchange(socketPath, ping())).toMatchObject([{ t: 'pong' }]);
  });

  it('refuses a client of another protocol version', async () => {
    const { socketPath } = await agent();
    const [reply] = await exchange(socketPath, frame({ t: 'ping', v: 99 }));
    expect(reply).toMatchObject({ t: 'error', code: 'version-mismatch' });
  });

  it('refuses to start a second agent on the same MESHCC_HOME', async () => {
    const { home, stop } = await startAgentProcess();
    stops.push(stop);
    const second = new Agent(loadConfig({ MESHCC_HOME: home, ...LOOPBACK_AGENT_ENV }), pino({ level: 'silent' }));
    await expect(second.start()).rejects.toThrow(/another agent \(pid \d+\) is already running/);
  });

  it('takes over the socket and pid file left by a crashed agent', async () => {
    const home = tempDir('meshcc-home-');
    const socketPath = path.join(home, 'agent.sock');
    // What a SIGKILLed agent leaves behind: its pid file and a socket file nobody serves.
    const crashed = spawn(process.execPath, ['-e', `require('net').createServer().listen(${JSON.stringify(socketPath)})`]);
    while (!existsSync(socketPath)) await new Promise((r) => setTimeout(r, 20));
    writeFileSync(path.join(home, 'agent.pid'), `${crashed.pid}\n`);
    const exited = new Promise((r) => crashed.once('exit', r));
    crashed.kill('SIGKILL');
    await exited;
    expect(existsSync(socketPath)).toBe(true);
    const revived = new Agent(loadConfig({ MESHCC_HOME: home, ...LOOPBACK_AGENT_ENV }), pino({ level: 'silent' }));
    await revived.start();
    stops.push(() => revived.stop());
    expect(await exchange(socketPath, ping())).toMatchObject([{ t: 'pong', pid: process.pid }]);
  });
});
