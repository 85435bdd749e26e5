// Writes a job's output files where the plain command would have written them: atomically
// (temporary file beside the target, then rename) and with the mode the client's umask gives.
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import { promisify } from 'node:util';
import type { OutputFile } from '../protocol/messages.js';

// The callback API: the promise API makes a FileHandle (and its finaliser) per file, which the
// event loop's profile showed per job.
const writeFile = promisify(fs.writeFile);
const chmod = promisify(fs.chmod);
const rename = promisify(fs.rename);
const rm = promisify(fs.rm);

/** Where an output is written first (beside its target), and the mode it gets. */
function staging(output: OutputFile, umask: number): { temp: string; mode: number } {
  return { temp: `${output.path}.meshcc-${randomBytes(4).toString('hex')}`, mode: (output.executable ? 0o777 : 0o666) & ~umask };
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

/** The same, with synchronous calls: for a worker thread, where they block nothing. */
export function writeOutputsSync(outputs: OutputFile[], umask: number): void {
  for (const output of outputs) {
    const { temp, mode } = staging(output, umask);
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
