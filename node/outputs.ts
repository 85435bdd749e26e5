// Writes a job's output files where the plain command would have written them, with the mode
// the client's umask gives. A new file is written in place: created exclusively, so nobody
// else's file is touched, and the native client compiles locally (rewriting it) if the agent
// fails halfway, as a crashed compiler would leave it too. An existing one is replaced
// atomically (a temporary file beside it, then rename): it may be a hard link into another
// tree or a cache, which writing through would change.
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import type { OutputFile } from '../protocol/messages.js';

// The callback API: the promise API makes a FileHandle (and its finaliser) per file, which the
// event loop's profile showed per job.
const writeFile = promisify(fs.writeFile);
const chmod = promisify(fs.chmod);
const rename = promisify(fs.rename);
const rm = promisify(fs.rm);

/** Whether a file someone else names as an output (a peer's result, a cache entry) is one the
 *  command may write: a normalised path in the directory of one of its expected outputs. */
export function inOutputDirs(expected: readonly string[]): (file: string) => boolean {
  const dirs = new Set(expected.map((o) => path.dirname(o)));
  return (file) => path.normalize(file) === file && dirs.has(path.dirname(file));
}

/** The mode the plain compile would have given the output under the client's umask. */
function modeOf(output: OutputFile, umask: number): number {
  return (output.executable ? 0o777 : 0o666) & ~umask;
}

/** Where an output is written first (beside its target), and the mode it gets. */
function staging(output: OutputFile, umask: number): { temp: string; mode: number } {
  return { temp: `${output.path}.meshcc-${randomBytes(4).toString('hex')}`, mode: modeOf(output, umask) };
}

export async function writeOutputs(outputs: OutputFile[], umask: number): Promise<void> {
  for (const output of outputs) {
    const { temp, mode } = staging(output, umask);
    try {
      await writeFile(temp, output.data, { mode });
      await chmod(temp, mode);
      await rename(temp, output.path);
    } catch (err) {
      await rm(temp, { force: true });
      throw err;
    }
  }
}

/** The same, with synchronous calls: for a worker thread, where they block nothing, and for a
 *  cache hit's small outputs on the event loop. */
export function writeOutputsSync(outputs: OutputFile[], umask: number): void {
  for (const output of outputs) {
    const mode = modeOf(output, umask);
    if (writeNewSync(output, mode, umask)) continue;
    const { temp } = staging(output, umask);
    try {
      fs.writeFileSync(temp, output.data, { mode });
      fs.chmodSync(temp, mode);
      fs.renameSync(temp, output.path);
    } catch (err) {
      fs.rmSync(temp, { force: true });
      throw err;
    }
  }
}

/** The agent's own umask, which the kernel applies to the mode a file is created with. */
const PROCESS_UMASK = process.umask();

/** Creates the output where none exists; false when one does (it is replaced atomically). */
function writeNewSync(output: OutputFile, mode: number, umask: number): boolean {
  let fd: number;
  try {
    fd = fs.openSync(output.path, 'wx', mode);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw err;
  }
  try {
    fs.writeFileSync(fd, output.data);
    if (umask !== PROCESS_UMASK) fs.fchmodSync(fd, mode);
  } catch (err) {
    fs.closeSync(fd);
    fs.rmSync(output.path, { force: true });
    throw err;
  }
  fs.closeSync(fd);
  return true;
}
