// Worker thread entry: builds job roots and collects outputs off the agent's event loop.
import { parentPort } from 'node:worker_threads';
import { writeStoreObjectSync } from '../store.js';
import { collectOutputs } from './job-root.js';
import { dropJobRoots, releaseJobRoot, takeJobRoot } from './warm-roots.js';

export type JobRootRequest =
  | { id: number; op: 'take'; args: Parameters<typeof takeJobRoot> }
  | { id: number; op: 'collect'; args: Parameters<typeof collectOutputs> }
  | { id: number; op: 'release'; args: Parameters<typeof releaseJobRoot> }
  | { id: number; op: 'drop'; args: [] }
  | { id: number; op: 'store'; args: Parameters<typeof writeStoreObjectSync> };

function answer(request: JobRootRequest): unknown {
  switch (request.op) {
    case 'take':
      return takeJobRoot(...request.args);
    case 'collect':
      return collectOutputs(...request.args);
    case 'release':
      return releaseJobRoot(...request.args);
    case 'drop':
      return dropJobRoots();
    case 'store':
      return writeStoreObjectSync(...request.args);
  }
}

parentPort!.on('message', (request: JobRootRequest) => {
  try {
    const value = answer(request);
    // Copied, not transferred: small Buffers share Node's pool, which must not be detached.
    parentPort!.postMessage({ id: request.id, ok: true, value });
  } catch (err) {
    // The errno code too (ENOSPC, EACCES, …): the job server reports a full disk as such.
    parentPort!.postMessage({ id: request.id, ok: false, message: (err as Error).message, code: (err as NodeJS.ErrnoException).code });
  }
});
