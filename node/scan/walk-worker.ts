// Worker thread entry: the client side's file work of the job route, off the agent's event
// loop (walk-thread.ts is the agent's side): the include walk and the hashing of one compile's
// inputs, and the writing of a remote job's outputs.
import { parentPort, workerData } from 'node:worker_threads';
import type { OutputFile } from '../../protocol/messages.js';
import { writeOutputsSync } from '../outputs.js';
import type { SearchChains } from './search-probe.js';
import { WalkScanner, type WalkScanRequest } from './walk-scan.js';

/** A scan (its search chains only the first time their number is used), or outputs to write. */
export type WalkWorkerRequest =
  | { id: number; op: 'scan'; chainsId: number; scan: Omit<WalkScanRequest, 'chains'> & { chains?: SearchChains } }
  | { id: number; op: 'write'; outputs: OutputFile[]; umask: number };

const scanner = new WalkScanner((workerData as { storeDir: string }).storeDir);
const chains = new Map<number, SearchChains>();

parentPort?.on('message', (request: WalkWorkerRequest) => {
  if (request.op === 'write') {
    try {
      writeOutputsSync(request.outputs, request.umask);
      parentPort!.postMessage({ id: request.id, written: true });
    } catch (err) {
      parentPort!.postMessage({ id: request.id, written: false, message: (err as Error).message, code: (err as NodeJS.ErrnoException).code });
    }
    return;
  }
  let reply;
  try {
    if (request.scan.chains) chains.set(request.chainsId, request.scan.chains);
    const known = chains.get(request.chainsId);
    if (!known) throw new Error(`search chains ${request.chainsId} were never sent`);
    reply = scanner.scan({ ...request.scan, chains: known });
  } catch (err) {
    reply = { ok: false as const, reason: `the walk failed: ${(err as Error).message}` };
  }
  parentPort!.postMessage({ id: request.id, reply });
});
