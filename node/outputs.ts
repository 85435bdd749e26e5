// Writes a job's output files where the plain command would have written them: atomically
// (temporary file beside the target, then rename) and with the mode the client's umask gives.
import { randomBytes } from 'node:crypto';
import { promises as fs } from 'node:fs';
import type { OutputFile } from '../protocol/messages.js';

export async function writeOutputs(outputs: OutputFile[], umask: number): Promise<void> {
  for (const output of outputs) {
    const mode = (output.executable ? 0o777 : 0o666) & ~umask;
    const temp = `${output.path}.meshcc-${randomBytes(4).toString('hex')}`;
    try {
      await fs.writeFile(temp, output.data, { mode });
      await fs.chmod(temp, mode);
      await fs.rename(temp, output.path);
    } catch (err) {
      await fs.rm(temp, { force: true });
      throw err;
    }
  }
}
