// Worker thread entry: the include walk and the hashing of one compile's inputs, off the
// agent's event loop (walk-thread.ts is the agent's side).
import { parentPort, workerData } from 'node:worker_threads';
import type { SearchChains } from './search-probe.js';
import { WalkScanner, type WalkScanRequest } from './walk-scan.js';

/** A scan; its search chains only the first time their number is used. */
export interface WalkWorkerRequest {
  id: number;
  chainsId: number;
  scan: Omit<WalkScanRequest, 'chains'> & { chains?: SearchChains };
}

const scanner = new WalkScanner((workerData as { storeDir: string }).storeDir);
const chains = new Map<number, SearchChains>();

parentPort?.on('message', (request: WalkWorkerRequest) => {
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
