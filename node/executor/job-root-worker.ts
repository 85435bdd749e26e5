// Worker thread entry: builds job roots and collects outputs off the agent's event loop.
import { parentPort } from 'node:worker_threads';
import { buildJobRoot, collectOutputs } from './job-root.js';

export type JobRootRequest =
  | { id: number; op: 'build'; args: Parameters<typeof buildJobRoot> }
  | { id: number; op: 'collect'; args: Parameters<typeof collectOutputs> };

parentPort!.on('message', (request: JobRootRequest) => {
  try {
    const value = request.op === 'build' ? buildJobRoot(...request.args) : collectOutputs(...request.args);
    // Copied, not transferred: small Buffers share Node's pool, which must not be detached.
    parentPort!.postMessage({ id: request.id, ok: true, value });
  } catch (err) {
    // The errno code too (ENOSPC, EACCES, …): the job server reports a full disk as such.
    parentPort!.postMessage({ id: request.id, ok: false, message: (err as Error).message, code: (err as NodeJS.ErrnoException).code });
  }
});
