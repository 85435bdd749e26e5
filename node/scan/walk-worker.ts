// Worker thread entry: the include walk and the hashing of one compile's inputs, off the
// agent's event loop (walk-thread.ts is the agent's side).
import { parentPort } from 'node:worker_threads';
import { WalkScanner, type WalkScanRequest } from './walk-scan.js';

const scanner = new WalkScanner();

parentPort!.on('message', (request: { id: number; scan: WalkScanRequest }) => {
  let reply;
  try {
    reply = scanner.scan(request.scan);
  } catch (err) {
    reply = { ok: false as const, reason: `the walk failed: ${(err as Error).message}` };
  }
  // File contents are copied, not transferred: small Buffers share Node's pool, which must not be detached.
  parentPort!.postMessage({ id: request.id, reply });
});
