// Starting programs through a small helper process instead of from the agent itself, whose
// memory makes every fork expensive: the native one (meshcc-spawn.c, built with the native
// client) where it was built, else a Node one (spawner-process.ts). If neither can run,
// programs are started directly: slower, never wrong.
import { fork, spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Socket } from 'node:net';
import { fileURLToPath } from 'node:url';
import { locateClient } from '../native-client.js';
import { PACKAGE_ROOT } from '../paths.js';
import { emptyReply, runChild } from './run-child.js';
import type { ProgramLimits } from './program-limits.js';
import { encodeKill, encodeRun, ReplyReader, unsendable } from './spawn-protocol.js';

export type { ProgramLimits } from './program-limits.js';

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
  /** Set on the program before it starts (started directly or by the Node helper: through prlimit). */
  limits?: ProgramLimits;
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
  /** The helper ends after this reply (a kept sandbox a job left something in). */
  helperEnds?: boolean;
}

export type SpawnOptions = Omit<SpawnRequest, 'id'> & { signal?: AbortSignal };

/** The helper beside this module, or (run from TypeScript sources: tests) the built one. */
function helperScript(): string | undefined {
  const beside = path.join(path.dirname(fileURLToPath(import.meta.url)), 'spawner-process.js');
  const built = existsSync(beside) ? beside : path.join(PACKAGE_ROOT, 'dist', 'node', 'spawner', 'spawner-process.js');
  return existsSync(built) ? built : undefined;
}

const HELPER = helperScript();

/** The native spawner built with the native client (dist/ of a clone, or the user's build), if any. */
export function nativeSpawnerPath(env: NodeJS.ProcessEnv = process.env): string | undefined {
  const file = path.join(locateClient(env).dir, 'spawner', 'meshcc-spawn');
  return existsSync(file) ? file : undefined;
}

/** One way to reach a helper: the native one's pipes or the Node one's IPC channel. */
interface HelperLink {
  run(req: SpawnRequest): void;
  kill(id: number): void;
  stop(): void;
}

/** How a native spawner is started when not as itself: inside a kept sandbox (kept-sandboxes.ts). */
export interface SpawnerLaunch {
  file: string;
  args: string[];
  /** Given to it as descriptor 3 (the spawner's own binary, which it is started from). */
  fd3?: number;
  /** What it writes to stderr (bubblewrap's errors), the last 4 KiB. */
  onStderr?: (text: string) => void;
}

export class LeanSpawner {
  /** `nice`: the helper's niceness, which every program it starts inherits (started directly,
   *  without the helper, they run at the agent's). `native`: the native spawner to use, if any
   *  (by default the one built with the native client; false: the Node helper). `launch`: how
   *  to start it, when not by its own path. */
  constructor(
    private readonly nice = 0,
    private readonly native: string | false | undefined = nativeSpawnerPath(),
    private readonly launch?: SpawnerLaunch,
  ) {}

  /** The niceness its programs start at (from its helper). */
  get niceness(): number {
    return this.nice;
  }

  /** Whether its helper runs now (a kept sandbox that ended must be started again). */
  get running(): boolean {
    return this.helper !== undefined;
  }

  private helper?: HelperLink;
  private nextId = 1;
  private readonly waiting = new Map<number, { file: string; done: (reply: SpawnReply) => void }>();

  /** The native spawner programs start from, if they do (their limits then cost no prlimit). */
  get nativePath(): string | undefined {
    return this.native || undefined;
  }

  /** Starts a program and collects its output; resolves when it has exited. */
  run(options: SpawnOptions): Promise<SpawnReply> {
    const { signal, ...rest } = options;
    const id = this.nextId++;
    const req = { id, ...rest };
    const refused = this.native ? unsendable(req) : undefined;
    if (refused) return Promise.resolve(emptyReply(id, refused));
    const helper = this.ensureHelper();
    if (!helper) return direct(req, signal);
    return new Promise((resolve) => {
      const onAbort = () => helper.kill(id);
      signal?.addEventListener('abort', onAbort, { once: true });
      this.waiting.set(id, {
        file: req.file,
        done: (reply) => {
          signal?.removeEventListener('abort', onAbort);
          resolve(reply);
        },
      });
      helper.run(req);
    });
  }

  stop(): void {
    this.helper?.stop();
    this.helper = undefined;
  }

  private settle(reply: SpawnReply): void {
    const waiter = this.waiting.get(reply.id);
    this.waiting.delete(reply.id);
    waiter?.done(reply);
  }

  /** The helper is gone: what it was running is lost; callers see failed starts and fall back. */
  private lost(helper: HelperLink): void {
    if (this.helper === helper) this.helper = undefined;
    for (const [id, { done }] of this.waiting) done(emptyReply(id, 'the spawner helper exited'));
    this.waiting.clear();
  }

  private ensureHelper(): HelperLink | undefined {
    if (this.helper) return this.helper;
    try {
      const helper = this.native ? this.startNative(this.native) : HELPER ? this.startNode(HELPER) : undefined;
      this.helper = helper;
      return helper;
    } catch {
      return undefined;
    }
  }

  private startNative(file: string): HelperLink {
    const launch = this.launch;
    const stdio: ('pipe' | 'inherit' | number)[] = ['pipe', 'pipe', launch?.onStderr ? 'pipe' : 'inherit'];
    if (launch?.fd3 !== undefined) stdio.push(launch.fd3);
    const child = spawn(launch?.file ?? file, launch?.args ?? [], { stdio });
    const reader = new ReplyReader();
    let link: HelperLink;
    if (launch?.onStderr) {
      let text = '';
      child.stderr!.on('data', (chunk: Buffer) => (text = (text + chunk.toString()).slice(-4096)));
      child.stderr!.on('end', () => text && launch.onStderr?.(text));
      (child.stderr as unknown as Socket).unref?.();
    }
    child.stdout!.on('data', (chunk: Buffer) => {
      for (const reply of reader.push(chunk, (id) => this.waiting.get(id)?.file)) this.settle(reply);
    });
    child.stdin!.on('error', () => undefined);
    // 'close', not 'exit': the replies it wrote before it ended are read first.
    child.on('close', () => this.lost(link));
    child.on('error', () => undefined);
    this.niced(child);
    child.unref();
    (child.stdin as unknown as Socket).unref?.();
    (child.stdout as unknown as Socket).unref?.();
    link = {
      run: (req) => child.stdin!.write(encodeRun(req)),
      kill: (id) => child.stdin!.write(encodeKill(id)),
      // Its stdin ends: it kills what still runs and exits.
      stop: () => child.stdin!.end(),
    };
    return link;
  }

  private startNode(script: string): HelperLink | undefined {
    const child = fork(script, [], { serialization: 'advanced', stdio: ['ignore', 'ignore', 'inherit', 'ipc'], execArgv: [] });
    let link: HelperLink;
    child.on('message', (reply: SpawnReply) => this.settle(reply));
    child.on('exit', () => this.lost(link));
    child.on('error', () => undefined);
    this.niced(child);
    child.unref();
    (child.channel as { unref?: () => void } | undefined)?.unref?.();
    link = {
      run: (req) => child.connected && child.send(req),
      kill: (id) => child.connected && child.send({ id, kill: true }),
      stop: () => child.connected && child.disconnect(),
    };
    return link;
  }

  private niced(child: ChildProcess): void {
    if (this.nice <= 0 || child.pid === undefined) return;
    try {
      os.setPriority(child.pid, this.nice);
    } catch {
      // not allowed here (a container's seccomp profile): the jobs run at the agent's priority
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
