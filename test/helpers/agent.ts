// Starting real agents for tests: in-process (for socket-level tests) or as a process
// (bin/meshcc.js agent, for kill tests and builds through the native client).
import { spawn, type ChildProcess } from 'node:child_process';
import net from 'node:net';
import path from 'node:path';
import { pino } from 'pino';
import { Agent } from '../../node/agent.js';
import { loadConfig } from '../../node/config.js';
import { encodeFrame, FrameDecoder } from '../../protocol/framing.js';
import { tempDir } from './tmp.js';
import { socketAnswers } from '../../node/instance-lock.js';

export const REPO = path.resolve(import.meta.dirname, '..', '..');
export const MESHCC_BIN = path.join(REPO, 'bin', 'meshcc.js');
export const MASQUERADE = path.join(REPO, 'dist', 'masquerade');

/** This process's environment without any MESHCC_* a developer's shell may carry, in the C locale. */
export const plainEnv: Record<string, string> = { LANG: 'C' };
for (const [k, v] of Object.entries(process.env)) if (v !== undefined && !k.startsWith('MESHCC_') && k !== 'LANG') plainEnv[k] = v;

/** Agents outside a test's own namespaces listen on loopback only and send no multicast. */
export const LOOPBACK_AGENT_ENV = { MESHCC_LISTEN: '/ip4/127.0.0.1/tcp/0', MESHCC_MDNS: '0', MESHCC_SPEED: '1' };

export async function startAgentInProcess(env: Record<string, string> = {}) {
  const home = tempDir('meshcc-home-');
  const config = loadConfig({ MESHCC_HOME: home, ...LOOPBACK_AGENT_ENV, ...env });
  const agent = new Agent(config, pino({ level: 'silent' }));
  await agent.start();
  return { agent, home, socketPath: config.socketPath, stop: () => agent.stop() };
}

export interface AgentProcess {
  child: ChildProcess;
  home: string;
  socketPath: string;
  env: Record<string, string>;
  /** What the agent wrote to stderr so far (its log lines at MESHCC_LOG_LEVEL, warn by default). */
  logs(): string;
  stop(): Promise<void>;
}

/** A real `meshcc agent` process; resolves once its socket answers. */
export async function startAgentProcess(extraEnv: Record<string, string> = {}, home = tempDir('meshcc-home-'), startTimeoutMs = 15_000) {
  const socketPath = path.join(home, 'agent.sock');
  const env = { ...process.env, MESHCC_HOME: home, MESHCC_LOG_LEVEL: 'warn', ...LOOPBACK_AGENT_ENV, ...extraEnv } as Record<string, string>;
  const child = spawn(process.execPath, [MESHCC_BIN, 'agent'], { env, stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr!.on('data', (c: Buffer) => (stderr += c.toString()));
  const deadline = Date.now() + startTimeoutMs;
  while (!(await socketAnswers(socketPath))) {
    if (child.exitCode !== null || Date.now() > deadline) throw new Error(`agent did not start: ${stderr}`);
    await new Promise((r) => setTimeout(r, 50));
  }
  const stop = async () => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise((r) => child.once('exit', r));
    child.kill('SIGTERM');
    await exited;
  };
  return { child, home, socketPath, env, stop, logs: () => stderr } satisfies AgentProcess;
}


/** Sends raw bytes and collects the frames the agent answers with until it closes. */
export function exchange(socketPath: string, bytes: Buffer, maxWaitMs = 5000): Promise<unknown[]> {
  return new Promise((resolve, reject) => {
    const s = net.connect(socketPath);
    const decoder = new FrameDecoder(64 * 1024 * 1024);
    const frames: unknown[] = [];
    const timer = setTimeout(() => {
      s.destroy();
      resolve(frames);
    }, maxWaitMs);
    s.on('data', (c) => frames.push(...decoder.push(c)));
    s.on('error', (err) => (frames.length ? undefined : reject(err)));
    s.on('close', () => {
      clearTimeout(timer);
      resolve(frames);
    });
    s.write(bytes);
  });
}

export const frame = encodeFrame;
