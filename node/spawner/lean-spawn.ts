// Starting programs through a small helper process (spawner-process.ts) instead of from the
// agent itself, whose memory makes every fork expensive. If the helper cannot run, programs
// are started directly: slower, never wrong.
import { fork, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { PACKAGE_ROOT } from '../paths.js';
import { emptyReply, runChild } from './run-child.js';

export interface SpawnRequest {
  id: number;
  file: string;
  args: string[];
  argv0?: string;
  cwd?: string;
  env?: NodeJS.ProcessEnv;
  /** Also collect what the program writes to file descriptor 3 (bubblewrap's status). */
  captureFd3?: boolean;
  /** Kill the program when stdout + stderr exceed this many bytes. */
  outputLimit: number;
  timeoutMs?: number;
}

export interface SpawnReply {
  id: number;
  error?: string;
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: Uint8Array;
  stderr: Uint8Array;
  fd3: Uint8Array;
  overLimit: boolean;
  timedOut: boolean;
}

export type SpawnOptions = Omit<SpawnRequest, 'id'> & { signal?: AbortSignal };

/** The helper beside this module, or (run from TypeScript sources: tests) the built one. */
function helperScript(): string | undefined {
  const beside = path.join(path.dirname(fileURLToPath(import.meta.url)), 'spawner-process.js');
  const built = existsSync(beside) ? beside : path.join(PACKAGE_ROOT, 'dist', 'node', 'spawner', 'spawner-process.js');
  return existsSync(built) ? built : undefined;
}

const HELPER = helperScript();

export class LeanSpawner {
  /** `nice`: the helper's niceness, which every program it starts inherits (started directly,
   *  without the helper, they run at the agent's). */
  constructor(private readonly nice = 0) {}

  private helper?: ChildProcess;
  private nextId = 1;
  private readonly waiting = new Map<number, (reply: SpawnReply) => void>();

  /** Starts a program and collects its output; resolves when it has exited. */
  run(options: SpawnOptions): Promise<SpawnReply> {
    const { signal, ...rest } = options;
    const helper = this.ensureHelper();
    const id = this.nextId++;
    if (!helper) return direct({ id, ...rest }, signal);
    return new Promise((resolve) => {
      const onAbort = () => helper.send({ id, kill: true });
      signal?.addEventListener('abort', onAbort, { once: true });
      this.waiting.set(id, (reply) => {
        signal?.removeEventListener('abort', onAbort);
        resolve(reply);
      });
      helper.send({ id, ...rest });
    });
  }

  stop(): void {
    this.helper?.disconnect();
    this.helper = undefined;
  }

  private ensureHelper(): ChildProcess | undefined {
    if (this.helper?.connected) return this.helper;
    if (!HELPER) return undefined;
    try {
      const helper = fork(HELPER, [], { serialization: 'advanced', stdio: ['ignore', 'ignore', 'inherit', 'ipc'], execArgv: [] });
      helper.on('message', (reply: SpawnReply) => {
        const done = this.waiting.get(reply.id);
        this.waiting.delete(reply.id);
        done?.(reply);
      });
      helper.on('exit', () => {
        if (this.helper === helper) this.helper = undefined;
        // Whatever it was running is lost: report those as failed starts; callers fall back.
        for (const [id, done] of this.waiting) done(emptyReply(id, 'the spawner helper exited'));
        this.waiting.clear();
      });
      helper.on('error', () => undefined);
      if (this.nice > 0 && helper.pid !== undefined) {
        try {
          os.setPriority(helper.pid, this.nice);
        } catch {
          // not allowed here (a container's seccomp profile): the jobs run at the agent's priority
        }
      }
      helper.unref();
      (helper.channel as { unref?: () => void } | undefined)?.unref?.();
      this.helper = helper;
      return helper;
    } catch {
      return undefined;
    }
  }
}

/** The same, from this process. */
function direct(req: SpawnRequest, signal?: AbortSignal): Promise<SpawnReply> {
  let child: ChildProcess | undefined;
  const onAbort = () => child?.kill('SIGKILL');
  signal?.addEventListener('abort', onAbort, { once: true });
  return runChild(req, (c) => (child = c)).finally(() => signal?.removeEventListener('abort', onAbort));
}
