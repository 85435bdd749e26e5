// Runs one program to completion, collecting stdout, stderr and (optionally) fd 3, with an
// output limit and a timeout. Shared by the spawner helper and the direct fallback.
import { spawn, type ChildProcess } from 'node:child_process';
import type { SpawnReply, SpawnRequest } from './lean-spawn.js';
import { limitFlags } from './program-limits.js';

export function emptyReply(id: number, error: string): SpawnReply {
  return { id, error, code: null, signal: null, stdout: new Uint8Array(), stderr: new Uint8Array(), fd3: new Uint8Array(), overLimit: false, timedOut: false };
}

/** Resolves when the program has exited; `started` receives the child (to kill it early). */
export function runChild(req: SpawnRequest, started?: (child: ChildProcess) => void): Promise<SpawnReply> {
  return new Promise((resolve) => {
    const stdio: ('ignore' | 'pipe')[] = ['ignore', 'pipe', 'pipe'];
    if (req.captureFd3) stdio.push('pipe');
    let child: ChildProcess;
    try {
      // Node cannot call setrlimit: prlimit sets the limits and execs the program in its place.
      const [file, args] = req.limits ? ['prlimit', [...limitFlags(req.limits), req.file, ...req.args]] : [req.file, req.args];
      child = spawn(file, args, { argv0: req.limits ? undefined : req.argv0, cwd: req.cwd, env: req.env, stdio });
    } catch (err) {
      resolve(emptyReply(req.id, (err as Error).message));
      return;
    }
    started?.(child);
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    const fd3: Buffer[] = [];
    let bytes = 0;
    let overLimit = false;
    let timedOut = false;
    const collect = (into: Buffer[]) => (chunk: Buffer) => {
      bytes += chunk.length;
      if (bytes > req.outputLimit) {
        overLimit = true;
        child.kill('SIGKILL');
        // A program of its own that still holds the pipe must not keep the reply waiting.
        child.stdout!.destroy();
        child.stderr!.destroy();
      } else into.push(chunk);
    };
    child.stdout!.on('data', collect(out));
    child.stderr!.on('data', collect(err));
    if (req.captureFd3) (child.stdio[3] as NodeJS.ReadableStream).on('data', (c: Buffer) => fd3.push(c));
    const timer = req.timeoutMs
      ? setTimeout(() => {
          timedOut = true;
          child.kill('SIGKILL');
        }, req.timeoutMs)
      : undefined;
    let error: string | undefined;
    child.on('error', (e) => (error = e.message));
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      // A program that could not start has no exit code (Node gives the negated errno).
      resolve({ id: req.id, error, code: error ? null : code, signal, stdout: Buffer.concat(out), stderr: Buffer.concat(err), fd3: Buffer.concat(fd3), overLimit, timedOut });
    });
  });
}
