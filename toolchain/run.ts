// Runs a program of the toolchain to completion and collects its output, bounded in time and
// size: identify runs drivers it has not vetted yet (`/usr/bin/yes -v` never ends).
import { spawn } from 'node:child_process';

export interface RunResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

const TIMEOUT_MS = 20_000;
const OUTPUT_LIMIT = 1 << 20;

/** The environment probes run in: the agent's own, with messages in English (we parse them) and no preloads. */
export function probeEnvironment(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, LC_ALL: 'C', LANG: 'C' };
  delete env.LANGUAGE;
  delete env.LD_PRELOAD;
  return env;
}

export function runProgram(file: string, args: string[]): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(file, args, { env: probeEnvironment(), stdio: ['ignore', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    let bytes = 0;
    let failure: Error | undefined;
    const stop = (why: Error): void => {
      failure ??= why;
      child.kill('SIGKILL');
    };
    const timer = setTimeout(() => stop(new Error(`${file} ${args.join(' ')} did not finish within ${TIMEOUT_MS / 1000} s`)), TIMEOUT_MS);
    const collect = (into: Buffer[]) => (chunk: Buffer) => {
      bytes += chunk.length;
      if (bytes > OUTPUT_LIMIT) stop(new Error(`${file} ${args.join(' ')} wrote more than ${OUTPUT_LIMIT} bytes`));
      else into.push(chunk);
    };
    child.stdout.on('data', collect(out));
    child.stderr.on('data', collect(err));
    child.on('error', (e) => {
      clearTimeout(timer);
      reject(failure ?? e);
    });
    child.on('close', (code) => {
      clearTimeout(timer);
      if (failure) reject(failure);
      else resolve({ code, stdout: Buffer.concat(out).toString('utf8'), stderr: Buffer.concat(err).toString('utf8') });
    });
  });
}
